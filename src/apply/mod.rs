//! Apply: the target side.

mod applier;
pub mod copy;
pub mod state;
pub mod stream;

pub use applier::*;
