//! Verify.

pub mod ann;
mod compare;
pub mod keys;
pub mod values;

pub use compare::*;
