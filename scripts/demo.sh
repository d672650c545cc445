#!/usr/bin/env bash
# The embedded default (README "Try it"): installs PostgreSQL + pgvector if needed, then runs
# `pgvshift demo`: throwaway source and target clusters, demo data, a live migration with writes
# during streaming, verification, cleanup.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
if ! command -v cargo >/dev/null 2>&1; then
  echo "demo.sh: cargo not found: install a Rust toolchain (https://rustup.rs) first" >&2
  exit 2
fi
cargo run --quiet -- demo "$@"
