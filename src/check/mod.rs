//! Checks.

mod preflight;

pub use preflight::*;
