//! Errors.

pub mod connect;
pub mod retry;
mod types;

pub use types::*;
