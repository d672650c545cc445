//! Run.

mod cleanup;
mod execute;

pub use cleanup::cleanup;
pub use execute::*;
