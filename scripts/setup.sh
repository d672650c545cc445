#!/usr/bin/env bash
# Installs what pgvshift's demo and tests need on Debian/Ubuntu: PostgreSQL server + dev headers
# from the OS packages, openssl (for the TLS tests' certificates), and pgvector (from the OS
# package when one exists, otherwise built from Debian trixie's *source* package). Idempotent:
# a second run only checks and exits.
set -euo pipefail

PG_MAJOR="${PG_MAJOR:-}"
log() { printf 'setup: %s\n' "$*" >&2; }
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then $SUDO apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# 1. PostgreSQL server (any installed major; else the distribution's default).
if [ -z "$PG_MAJOR" ]; then
  PG_MAJOR=$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -n1 || true)
fi
if [ -z "$PG_MAJOR" ] || [ ! -x "/usr/lib/postgresql/$PG_MAJOR/bin/initdb" ]; then
  log "installing the PostgreSQL server"
  apt_install postgresql postgresql-contrib
  PG_MAJOR=$(ls /usr/lib/postgresql | sort -n | tail -n1)
fi
PGBIN="/usr/lib/postgresql/$PG_MAJOR/bin"

# 1b. openssl: the TLS tests make self-signed server certificates with it (usually present
#     already, as a dependency of postgresql-common; installed here in case it is not).
if ! command -v openssl >/dev/null 2>&1; then
  log "installing openssl"
  apt_install openssl
fi
SHAREDIR=$("$PGBIN/pg_config" --sharedir 2>/dev/null || echo "/usr/share/postgresql/$PG_MAJOR")

# 2. pgvector.
if [ -f "$SHAREDIR/extension/vector.control" ]; then
  log "PostgreSQL $PG_MAJOR with pgvector $(sed -n "s/^default_version = '\(.*\)'/\1/p" "$SHAREDIR/extension/vector.control") is ready"
  exit 0
fi
if [ "$apt_updated" = 0 ]; then $SUDO apt-get update -qq; apt_updated=1; fi
if apt-cache show "postgresql-$PG_MAJOR-pgvector" >/dev/null 2>&1; then
  log "installing postgresql-$PG_MAJOR-pgvector"
  apt_install "postgresql-$PG_MAJOR-pgvector"
else
  log "no pgvector package for PostgreSQL $PG_MAJOR: building it from Debian trixie's source package"
  apt_install "postgresql-server-dev-$PG_MAJOR" build-essential dpkg-dev ca-certificates debian-archive-keyring
  # Reuse the mirror this machine already uses; fall back to deb.debian.org.
  # deb822 files ("URIs: ...") and one-line files ("deb URL suite ..."); comments ignored.
  MIRROR=$( { grep -rhE '^[[:space:]]*URIs:' /etc/apt/sources.list.d/ 2>/dev/null | awk '{print $2}';
              grep -rhE '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
                | sed -E 's/\[[^]]*\]//' | awk '{print $2}'; } \
            | grep -E '/debian/?$' | grep -v security | head -n1 || true)
  MIRROR="${MIRROR:-http://deb.debian.org/debian}"
  WORK=$(mktemp -d)
  trap 'rm -rf "$WORK"' EXIT
  # A private apt directory, so the machine's own sources are never changed.
  mkdir -p "$WORK/apt/lists/partial" "$WORK/apt/archives/partial" "$WORK/src"
  echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR trixie main" > "$WORK/apt/sources.list"
  APT_OPTS=(-o "Dir::Etc::SourceList=$WORK/apt/sources.list" -o "Dir::Etc::SourceParts=-"
            -o "Dir::State::Lists=$WORK/apt/lists" -o "Dir::Cache::Archives=$WORK/apt/archives"
            -o "APT::Sandbox::User=root")
  apt-get "${APT_OPTS[@]}" update -qq
  (cd "$WORK/src" && apt-get "${APT_OPTS[@]}" source --download-only -qq pgvector)
  (cd "$WORK/src" && dpkg-source -x ./pgvector_*.dsc pgvector >/dev/null 2>&1)
  make -s -C "$WORK/src/pgvector" PG_CONFIG="$PGBIN/pg_config" >/dev/null
  $SUDO make -s -C "$WORK/src/pgvector" PG_CONFIG="$PGBIN/pg_config" install >/dev/null
  log "pgvector installed into PostgreSQL $PG_MAJOR"
fi
