//! Observe.

pub mod metrics;
pub mod progress;
