//! Index translation.

mod common;

pub use common::*;
