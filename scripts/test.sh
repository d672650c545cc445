#!/usr/bin/env bash
# The project's test command (README "Run the tests"; .ci/run calls it): installs what the
# tests need (PostgreSQL server + pgvector), then runs every unit and integration test. The
# integration tests start their own throwaway clusters; nothing else needs to be running.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
if ! command -v cargo >/dev/null 2>&1; then
  echo "test.sh: cargo not found: install a Rust toolchain (https://rustup.rs) first" >&2
  exit 2
fi
cargo test "$@"
