//! Translate.

mod codec;
pub mod index;

pub use codec::*;
