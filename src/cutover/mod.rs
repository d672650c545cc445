//! Cutover.

mod steps;

pub use steps::*;
