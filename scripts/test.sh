#!/usr/bin/env bash
# The project's test command (README "Run the tests"; .ci/run calls it): installs what the
# tests need (PostgreSQL server + pgvector; Lantern and VectorChord when their sources are at
# hand: $PGVSHIFT_ENGINE_SRC or ../shared/engines, see scripts/engines.sh), then runs every unit
# and integration test. The integration tests start their own throwaway clusters; nothing else
# needs to be running. Without the engines, their tests skip with one line each.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
if ! command -v cargo >/dev/null 2>&1; then
  echo "test.sh: cargo not found: install a Rust toolchain (https://rustup.rs) first" >&2
  exit 2
fi
./scripts/engines.sh --local-only all
cargo test "$@"
