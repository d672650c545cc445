//! Source.

mod connect;
pub mod copyframe;
pub mod pgoutput;
pub mod replication;
pub mod slot;
pub mod tls;
pub mod walguard;

pub use connect::*;
