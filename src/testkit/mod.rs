//! Test kit.

pub mod localpg;
