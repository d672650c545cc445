//! Throwaway local PostgreSQL clusters (being written).
