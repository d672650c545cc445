//! Run.

mod execute;

pub use execute::*;
