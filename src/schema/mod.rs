//! Schema: what a source table looks like, how it maps onto its target, and the target's DDL.
//!
//! ```text
//!   catalog.rs  source catalog (SQL in src/sql/*.sql) ──> Table: columns, types, key, indexes
//!   mapping.rs  PURE: Table + TableConfig (profile, renames, exclusions) ──> TableMap: each
//!               column's target name, type and value Conversion; index plans (through
//!               translate::index); what blocks the table
//!   ddl.rs      PURE: TableMap ──> CREATE SCHEMA / CREATE TABLE for the target
//! ```

pub mod catalog;
pub mod ddl;
pub mod mapping;
