//! Observe.

pub mod metrics;
pub mod progress;
pub mod stats;
