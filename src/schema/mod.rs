//! Schema.

pub mod catalog;
pub mod ddl;
pub mod mapping;
