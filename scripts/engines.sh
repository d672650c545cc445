#!/usr/bin/env bash
# Builds and installs the real vector engines the target profiles are tested against, Lantern
# and VectorChord, into the local PostgreSQL (scripts/test.sh runs it before the tests).
#
#   ./scripts/engines.sh [--local-only] [lantern|vectorchord|all]      (default: all)
#
# Sources, in this order: the tarballs in $PGVSHIFT_ENGINE_SRC; else in ../shared/engines (next
# to the repository, on machines without GitHub access); else the same tags downloaded from
# GitHub (--local-only: never download; without local sources, say so in one line and exit 0:
# the real-engine tests then skip). Idempotent: an engine already installed at its version is skipped. Quiet: one line per
# engine; the build's output is shown only when it fails. Build dependencies come from apt.
#
# VectorChord is a Rust (pgrx) build of ~3.5 min on 2 cores: its cargo target directory is kept
# in ${XDG_CACHE_HOME:-~/.cache}/pgvshift/vchord-target (override: PGVSHIFT_VCHORD_TARGET_DIR),
# so a rebuild on the same machine is fast. It is never the project's own target directory.
set -euo pipefail

LANTERN_VERSION=0.2.7
LANTERN_TAG=v0.2.7
# Lantern's v0.2.7 records usearch f2b8c616, which is gone upstream; fa89c467 is the same-day
# upstream fix and compiles unchanged. usearch's own submodule fp16 is at 0a92994d.
LANTERN_USEARCH=fa89c467
LANTERN_FP16=0a92994d
VCHORD_VERSION=1.1.1
VCHORD_TAG=1.1.1

ROOT=$(cd "$(dirname "$0")/.." && pwd)
LOCAL_ONLY=0
if [ "${1:-}" = "--local-only" ]; then LOCAL_ONLY=1; shift; fi
WHAT="${1:-all}"
case "$WHAT" in
  lantern|vectorchord|all) ;;
  *) echo "usage: $0 [--local-only] [lantern|vectorchord|all]" >&2; exit 2 ;;
esac

log() { printf 'engines: %s\n' "$*" >&2; }
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

PG_MAJOR="${PG_MAJOR:-$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -n1 || true)}"
PG_CONFIG="${PG_CONFIG:-/usr/lib/postgresql/$PG_MAJOR/bin/pg_config}"
if [ ! -x "$PG_CONFIG" ]; then
  log "no PostgreSQL server found (pg_config $PG_CONFIG): run ./scripts/setup.sh first"
  exit 2
fi
PKGLIBDIR=$("$PG_CONFIG" --pkglibdir)
SHAREDIR=$("$PG_CONFIG" --sharedir)
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/pgvshift"

if [ -n "${PGVSHIFT_ENGINE_SRC:-}" ]; then
  SRC="$PGVSHIFT_ENGINE_SRC"
  if [ ! -d "$SRC" ]; then log "PGVSHIFT_ENGINE_SRC=$SRC is not a directory"; exit 2; fi
else
  SRC=""  # download
  # ../shared/engines next to this checkout, or next to the main checkout of a git worktree.
  for base in "$ROOT" "$(dirname "$(git -C "$ROOT" rev-parse --path-format=absolute --git-common-dir 2>/dev/null || echo "$ROOT")")"; do
    if [ -d "$base/../shared/engines" ]; then SRC=$(cd "$base/../shared/engines" && pwd); break; fi
  done
fi

# Installed at this version: the control file's default_version and the library are there.
installed() { # name version
  [ -f "$PKGLIBDIR/$1.so" ] &&
    grep -qx "default_version = '$2'" "$SHAREDIR/extension/$1.control" 2>/dev/null
}

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# Runs "$@" with its output in a log; on failure shows the log's tail and exits.
quietly() { # what command...
  local what="$1"; shift
  if ! "$@" >"$WORK/build.log" 2>&1; then
    log "$what failed; the last lines of its output:"
    tail -n 60 "$WORK/build.log" >&2
    exit 1
  fi
}

apt_updated=0
need_packages() { # package...
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$apt_updated" = 0 ]; then quietly "apt-get update" $SUDO apt-get update -qq; apt_updated=1; fi
  quietly "installing ${missing[*]}" $SUDO env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# Unpacks the tarball <name>-<version>-src.tar.gz from $SRC into <dir> (its top directory is
# <name>-<version>), or downloads the tag when there is no $SRC.
unpack() { # name version dir
  local tarball="$SRC/$1-$2-src.tar.gz"
  if [ -n "$SRC" ]; then
    if [ ! -f "$tarball" ]; then log "$tarball not found"; exit 2; fi
    mkdir -p "$3"
    tar -xzf "$tarball" -C "$3"
    return
  fi
  need_packages git ca-certificates curl
  mkdir -p "$3"
  case "$1" in
    lantern)
      local d="$3/lantern-$2"
      quietly "downloading Lantern $LANTERN_TAG" sh -c "
        git clone -q --depth 1 --branch $LANTERN_TAG https://github.com/lanterndata/lantern '$d' &&
        rm -rf '$d/third_party/usearch' &&
        git clone -q https://github.com/unum-cloud/usearch '$d/third_party/usearch' &&
        git -C '$d/third_party/usearch' checkout -q $LANTERN_USEARCH &&
        rm -rf '$d/third_party/usearch/fp16' &&
        git clone -q https://github.com/Maratyszcza/FP16 '$d/third_party/usearch/fp16' &&
        git -C '$d/third_party/usearch/fp16' checkout -q $LANTERN_FP16"
      ;;
    vchord)
      quietly "downloading VectorChord $VCHORD_TAG" sh -c "
        curl -fsSL https://github.com/tensorchord/VectorChord/archive/refs/tags/$VCHORD_TAG.tar.gz |
          tar -xz -C '$3' && mv '$3/VectorChord-$VCHORD_TAG' '$3/vchord-$2'"
      ;;
  esac
}

build_lantern() {
  if installed lantern "$LANTERN_VERSION"; then return; fi
  local started=$SECONDS
  need_packages cmake build-essential "postgresql-server-dev-$PG_MAJOR"
  unpack lantern "$LANTERN_VERSION" "$WORK/src"
  local dir="$WORK/src/lantern-$LANTERN_VERSION"
  mkdir -p "$dir/build"
  # MARCH_NATIVE=OFF: a portable .so; BUILD_FOR_DISTRIBUTING=ON: version '0.2.7', not 'latest'.
  quietly "configuring Lantern" cmake -S "$dir" -B "$dir/build" -DPG_CONFIG="$PG_CONFIG" \
    -DMARCH_NATIVE=OFF -DCMAKE_BUILD_TYPE=Release -DBUILD_FOR_DISTRIBUTING=ON -DFAILURE_POINTS=OFF
  quietly "building Lantern" make -C "$dir/build" -j"$(nproc)"
  quietly "installing Lantern" $SUDO make -C "$dir/build" install
  log "Lantern $LANTERN_VERSION installed into PostgreSQL $PG_MAJOR ($((SECONDS - started)) s)"
}

build_vchord() {
  if installed vchord "$VCHORD_VERSION"; then return; fi
  local started=$SECONDS
  need_packages clang libclang-dev build-essential "postgresql-server-dev-$PG_MAJOR"
  if ! command -v cargo >/dev/null 2>&1; then
    log "VectorChord needs a Rust toolchain (stable >= 1.88): https://rustup.rs"
    exit 2
  fi
  # Unpacked at a stable path, so cargo's fingerprints in the cached target dir stay valid.
  rm -rf "$CACHE/src/vchord-$VCHORD_VERSION"
  unpack vchord "$VCHORD_VERSION" "$CACHE/src"
  local dir="$CACHE/src/vchord-$VCHORD_VERSION"
  local target="${PGVSHIFT_VCHORD_TARGET_DIR:-$CACHE/vchord-target}"
  # Upstream's `make build`, with the pinned lock file and a private target directory.
  quietly "building VectorChord" env -C "$dir" CARGO_TARGET_DIR="$target" PG_CONFIG="$PG_CONFIG" \
    cargo run --locked -q -p xtask -- build --profile release
  # Upstream's `make install`: the files xtask put under build/.
  quietly "installing VectorChord" sh -c "
    $SUDO mkdir -p '$PKGLIBDIR' '$SHAREDIR' &&
    $SUDO cp -r '$dir/build/pkglibdir/.' '$PKGLIBDIR' &&
    $SUDO cp -r '$dir/build/sharedir/.' '$SHAREDIR'"
  log "VectorChord $VCHORD_VERSION installed into PostgreSQL $PG_MAJOR ($((SECONDS - started)) s)"
}

if [ -z "$SRC" ] && [ "$LOCAL_ONLY" = 1 ]; then
  case "$WHAT" in
    lantern) installed lantern "$LANTERN_VERSION" && exit 0 ;;
    vectorchord) installed vchord "$VCHORD_VERSION" && exit 0 ;;
    all) installed lantern "$LANTERN_VERSION" && installed vchord "$VCHORD_VERSION" && exit 0 ;;
  esac
  log "no engine sources (PGVSHIFT_ENGINE_SRC or ../shared/engines): the Lantern/VectorChord tests will skip (./scripts/engines.sh downloads and builds them)"
  exit 0
fi

case "$WHAT" in
  lantern) build_lantern ;;
  vectorchord) build_vchord ;;
  all) build_lantern; build_vchord ;;
esac
