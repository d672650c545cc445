//! The verbs.

pub mod bench;
pub mod commands;
pub mod demo;
