//! Test kit: throwaway local PostgreSQL clusters ([`localpg`]) for `pgvshift demo`, `pgvshift
//! bench` and the integration tests. Public API only with the `testkit` cargo feature.

pub mod localpg;
