#!/usr/bin/env bash
# PostgreSQL peer for tarn-bench: a private cluster (initdb in a temp dir) on loopback,
# fsync=on, synchronous_commit=on, unix socket in the temp dir, run as user postgres.
#
#   bench/peers/postgres.sh start|stop|status|version|preload [KEYS]|psql [ARGS...]
#
# Environment:
#   PG_PORT   TCP port on 127.0.0.1 (default 15432)
#   PG_CPU    pin the postmaster (and so every backend) to this CPU with taskset (optional)
#   PG_DIR    state dir (default /tmp/tarn-bench-pg-$PG_PORT); removed on stop
#   PG_VALUE_SIZE  bytes per value for preload (default 100)
set -euo pipefail

PORT="${PG_PORT:-15432}"
DIR="${PG_DIR:-/tmp/tarn-bench-pg-$PORT}"
DATA="$DIR/data"
PGVER="${PG_VERSION:-15}"
BIN="/usr/lib/postgresql/$PGVER/bin"

ensure_installed() {
    if [[ ! -x "$BIN/postgres" || ! -x "$BIN/pgbench" ]]; then
        echo "postgres.sh: installing postgresql-$PGVER from Debian packages" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y "postgresql-$PGVER" "postgresql-client-$PGVER" >/dev/null 2>&1 ||
            { apt-get update -qq && apt-get install -y "postgresql-$PGVER" "postgresql-client-$PGVER" >/dev/null; }
    fi
    id postgres >/dev/null 2>&1 || useradd --system --home "$DIR" --shell /bin/bash postgres
}

as_pg() { runuser -u postgres -- "$@"; }

is_running() { [[ -f "$DATA/postmaster.pid" ]] && as_pg "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

start() {
    ensure_installed
    if is_running; then
        echo "postgres.sh: already running on port $PORT; stopping it first" >&2
        stop
    fi
    rm -rf "$DIR"
    mkdir -p "$DIR"
    chown postgres:postgres "$DIR"
    chmod 700 "$DIR"
    as_pg "$BIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 ||
        as_pg "$BIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C >"$DIR/initdb.log" 2>&1
    cat >>"$DATA/postgresql.conf" <<CONF
# tarn-bench peer configuration
port = $PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DIR'
fsync = on
synchronous_commit = on
full_page_writes = on
wal_sync_method = fdatasync
shared_buffers = 1GB
max_connections = 100
max_wal_size = 8GB
checkpoint_timeout = 30min
autovacuum = off
CONF
    local pin=()
    [[ -n "${PG_CPU:-}" ]] && pin=(taskset -c "$PG_CPU")
    as_pg "${pin[@]}" "$BIN/pg_ctl" -D "$DATA" -l "$DIR/postgres.log" -w -t 60 start >/dev/null
    as_pg "$BIN/psql" -h "$DIR" -p "$PORT" -U postgres -qAt -c "CREATE DATABASE bench" >/dev/null
    echo "postgres.sh: $(version) on 127.0.0.1:$PORT (socket $DIR) cpu=${PG_CPU:-any} fsync=on synchronous_commit=on"
}

stop() {
    if is_running; then
        as_pg "$BIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null && echo "postgres.sh: stopped"
    fi
    rm -rf "$DIR"
}

version() { "$BIN/postgres" --version | sed -E 's/.*\) //; s/^/PostgreSQL /'; }

psql_() { as_pg "$BIN/psql" -h "$DIR" -p "$PORT" -U postgres -d bench -v ON_ERROR_STOP=1 -qAt "$@"; }

preload() {
    local keys="${1:-1000000}" vs="${PG_VALUE_SIZE:-100}"
    psql_ <<SQL
SET client_min_messages = warning;
DROP TABLE IF EXISTS kv;
CREATE TABLE kv (k text PRIMARY KEY, v text NOT NULL);
INSERT INTO kv SELECT 'key:' || lpad(i::text, 8, '0'), repeat('v', $vs) FROM generate_series(0, $keys - 1) AS i;
VACUUM ANALYZE kv;
CHECKPOINT;
SQL
    echo "postgres.sh: preloaded $keys rows into kv"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) if is_running; then echo "running on port $PORT"; else echo "not running"; exit 1; fi ;;
    version) ensure_installed; version ;;
    preload) shift; preload "$@" ;;
    psql) shift; psql_ "$@" ;;
    *) echo "usage: $0 start|stop|status|version|preload [KEYS]|psql [ARGS...]" >&2; exit 2 ;;
esac
