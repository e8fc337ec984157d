#!/usr/bin/env bash
# A PostgreSQL server for the tests: Debian's packages (installed when missing), a cluster of its
# own (trust authentication, listening on 127.0.0.1 only), started when it is not running.
# Prints the URL the tests take from AETHER_TEST_PG_URL. Usage: scripts/pg-test-server.sh [start|stop]
set -euo pipefail

PORT="${AETHER_TEST_PG_PORT:-55432}"
DATA="${AETHER_TEST_PG_DATA:-/var/tmp/aether-test-pg}"
URL="postgres://postgres@127.0.0.1:${PORT}/postgres"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

if [ -z "$(bindir)" ] || [ ! -x "$(bindir)/postgres" ]; then
  echo "pg-test-server: installing PostgreSQL from Debian's packages" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
BIN="$(bindir)"

# initdb and postgres refuse to run as root: as root, the cluster belongs to the postgres user.
if [ "$(id -u)" = 0 ]; then run() { runuser -u postgres -- "$@"; }; OWNER=postgres; else run() { "$@"; }; OWNER="$(id -un)"; fi

if [ "${1:-start}" = stop ]; then
  [ -f "$DATA/postmaster.pid" ] && run "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >&2
  exit 0
fi

if ! "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
  if [ ! -f "$DATA/PG_VERSION" ]; then
    as_root mkdir -p "$DATA"
    as_root chown "$OWNER" "$DATA"
    chmod 700 "$DATA"
    run "$BIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  # Loopback only; the socket directory is the data directory, so no system directory is needed.
  run "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -c unix_socket_directories=$DATA -c max_connections=200" start >&2
fi
echo "$URL"
