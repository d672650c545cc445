//! Config.

pub mod profile;
mod raw;

pub use raw::*;
