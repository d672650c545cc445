//! Config.

pub mod profile;
mod raw;
mod size;

pub use raw::*;
pub use size::{human_bytes, parse_size};
