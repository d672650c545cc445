//! Index definition parsing and translation per target profile (being written).
