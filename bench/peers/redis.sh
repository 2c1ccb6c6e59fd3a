#!/usr/bin/env bash
# Redis peer for tarn-bench: a private redis-server on loopback, own config and temp dir.
#
#   bench/peers/redis.sh start|stop|status|version
#
# Environment:
#   REDIS_PORT     port on 127.0.0.1 (default 16379)
#   REDIS_PERSIST  none | always | everysec | no   (none = no AOF, no RDB; otherwise
#                  --appendonly yes --appendfsync $REDIS_PERSIST). Default none.
#   REDIS_CPU      pin redis-server (all its threads) to this CPU with taskset (optional)
#   REDIS_DIR      state dir (default /tmp/tarn-bench-redis-$REDIS_PORT); removed on stop
set -euo pipefail

PORT="${REDIS_PORT:-16379}"
PERSIST="${REDIS_PERSIST:-none}"
DIR="${REDIS_DIR:-/tmp/tarn-bench-redis-$PORT}"
PIDFILE="$DIR/redis.pid"

ensure_installed() {
    if ! command -v redis-server >/dev/null 2>&1; then
        echo "redis.sh: installing redis-server from Debian packages" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y redis-server >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y redis-server >/dev/null; }
    fi
    # The Debian package may have started its own service on 6379; ours never uses it.
}

running_pid() {
    [[ -f "$PIDFILE" ]] || return 1
    local pid
    pid="$(cat "$PIDFILE")"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

start() {
    ensure_installed
    if running_pid >/dev/null; then
        echo "redis.sh: already running on port $PORT (pid $(running_pid)); stopping it first" >&2
        stop
    fi
    mkdir -p "$DIR/data"
    local args=(--port "$PORT" --bind 127.0.0.1 --protected-mode yes --dir "$DIR/data"
        --save '' --daemonize yes --pidfile "$PIDFILE" --logfile "$DIR/redis.log"
        --io-threads 1 --databases 1)
    case "$PERSIST" in
        none) args+=(--appendonly no) ;;
        always | everysec | no) args+=(--appendonly yes --appendfsync "$PERSIST") ;;
        *) echo "redis.sh: REDIS_PERSIST must be none|always|everysec|no" >&2; exit 2 ;;
    esac
    local pin=()
    [[ -n "${REDIS_CPU:-}" ]] && pin=(taskset -c "$REDIS_CPU")
    "${pin[@]}" redis-server "${args[@]}"
    for _ in $(seq 1 100); do
        if [[ "$(redis-cli -p "$PORT" ping 2>/dev/null)" == "PONG" ]]; then
            echo "redis.sh: $(version) on 127.0.0.1:$PORT persist=$PERSIST pid=$(running_pid) cpu=${REDIS_CPU:-any} dir=$DIR"
            return 0
        fi
        sleep 0.1
    done
    echo "redis.sh: redis-server did not come up; log:" >&2
    tail -20 "$DIR/redis.log" >&2 || true
    exit 1
}

stop() {
    local pid
    if pid="$(running_pid)"; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "redis.sh: pid $pid ignored SIGTERM; sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
        echo "redis.sh: stopped (pid $pid)"
    fi
    rm -rf "$DIR"
}

version() {
    redis-server --version | sed -E 's/.*v=([0-9.]+).*/Redis \1/'
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) if pid="$(running_pid)"; then echo "running pid $pid port $PORT"; else echo "not running"; exit 1; fi ;;
    version) ensure_installed; version ;;
    *) echo "usage: $0 start|stop|status|version" >&2; exit 2 ;;
esac
