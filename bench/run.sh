#!/usr/bin/env bash
# Tarn benchmark suites: Tarn and its peers measured in the same run on the same machine.
#
#   bench/run.sh floors|get|throughput|durable|features|all
#   bench/run.sh ann [ann options]   (vector search: Tarn HNSW next to hnswlib and faiss; see bench/src/bin/ann.rs)
#   bench/run.sh ann-server [ann_server options]   (the same through tarnd --shards 1 on SERVER_CPU,
#                                    client on CLIENT_CPU; see bench/src/bin/ann_server.rs)
#   bench/run.sh fraud-check [fraud_check options]   (issue 9: the fraud_check CONTEXT through
#                                    tarnd --shards 2 on SERVER_CPU next to Redis 7 in pipelined
#                                    hops, from the Rust engine and the Go client; see
#                                    bench/src/bin/fraud_check.rs)
#   bench/run.sh index-restart [index_restart options]   (tarnd restart with a saved HNSW graph:
#                                    graceful stop, kill -9 with a log tail, vs the build from the
#                                    rows; see bench/src/bin/index_restart.rs)
#
# Writes bench/results/<suite>-<date>.md (raw logs and JSONL under bench/results/raw/).
# Every daemon started here is stopped on exit (trap). See bench/README.md.
#
# Environment (defaults in brackets):
#   BENCH_SECONDS [10]  measured seconds per workload    BENCH_WARMUP [2]  warm-up seconds
#   BENCH_KEYS [1000000] distinct keys                    BENCH_VALUE_SIZE [100]
#   SERVER_CPU [0]  CPU for tarnd / Redis / PostgreSQL    CLIENT_CPU [1]  CPU for the load generator
#   BENCH_CONNS [32]  connections (throughput, durable)   DURABLE_DEPTH [1]
#   THROUGHPUT_RATE [50000]  open-loop rate (req/s) for the throughput suite's latency rows
#   DURABLE_RATE [2000]      open-loop rate (req/s) for the durable suite's latency rows
#   TARND_ARGS        extra tarnd flags for every start      TARND_SPIN_ARGS  extra flags for --spin runs
#   BENCH_BUILD [1]   build tarn-bench;  BENCH_BUILD_TARND [1]  also build tarnd (failure = Tarn skipped)
#   BENCH_SKIP_TARN / BENCH_SKIP_REDIS / BENCH_SKIP_PG  set to 1 to leave a system out
#   REDIS_DURABLE_PERSIST [always]  appendfsync for the durable suite
#   TARND_BIN [target/release/tarnd]  server binary (a debug build is flagged in the report)
#   BENCH_RESULTS_DIR [bench/results]  where the report and raw/ go
#   BENCH_IDLE_WAIT [60]  seconds to wait for the machine to go quiet (<10% busy) before each suite
# features suite (fraud stream into 3 feature views vs Redis per-bucket hashes + HLLs):
#   FEATURES_CARDS [1000000]  distinct cards (account = card/4); also the memory load's key count
#   FEATURES_DEVICES [300000]  FEATURES_BATCH [100] events per batch  FEATURES_DEPTH [1]
#   FEATURES_CONNS [$BENCH_CONNS]  ingest connections (Tarn and Redis alike)
#   FEATURES_READ_KEYS [10000]  cards read by the FEATURES row (each given FEATURES_READ_BUCKETS [60]
#                               events, one per 10-second bucket of the window); the GET row reads as many
#                               keys of a table of FEATURES_CARDS rows
#   FEATURES_FRESH_SECONDS [5]  FEATURES_FRESH_RATE [20000] background events/s during the probe
#   FEATURES_FRESH_INTERVAL_US [1000]  pause between probes
#   FEATURES_MEM_BASELINES [1]  also load FEATURES_CARDS events into a tarnd with the stream only and
#                               with the card view only (per-view memory)
#   FEATURES_REDIS_PERSIST [everysec]  the second Redis row's appendfsync (the first has no persistence)
#   FEATURES_REDIS_PRELOAD [1]  load FEATURES_CARDS events into each Redis before measuring (as Tarn)
set -euo pipefail

SUITE="${1:-}"
case "$SUITE" in
    floors | get | throughput | durable | features | all | ann | ann-server | index-restart | fraud-check) ;;
    *) echo "usage: $0 floors|get|throughput|durable|features|all|ann|ann-server|index-restart|fraud-check" >&2; exit 2 ;;
esac

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
if [[ "$SUITE" == ann ]]; then
    # In-process on both sides, one thread each, the same CPU one after the other.
    shift
    cd "$ROOT"
    cargo build --release -p tarn-bench --bin ann >&2
    exec "$ROOT/target/release/ann" --cpu "${SERVER_CPU:-0}" --peer-cpu "${SERVER_CPU:-0}" "$@"
fi
if [[ "$SUITE" == fraud-check ]]; then
    # Starts and stops its own tarnd (taskset SERVER_CPU, --shards 2) and Redis
    # (bench/peers/redis.sh, same CPU); the Go tool runs pinned to CLIENT_CPU.
    shift
    cd "$ROOT"
    if [[ "${BENCH_BUILD:-1}" == 1 ]]; then
        cargo build --release --bin tarnd --bin tarn >&2
        cargo build --release -p tarn-bench --bin fraud_check >&2
    fi
    go_args=()
    if GO="$(command -v go || ls /usr/lib/go-*/bin/go 2>/dev/null | head -1)" && [[ -n "$GO" ]]; then
        mkdir -p target/go
        (cd clients/go && "$GO" build -o ../../target/go/tarn-go-bench ./cmd/tarn-go-bench) >&2
        go_args=(--go-bench target/go/tarn-go-bench)
    else
        echo "run.sh: no Go toolchain: the Go client's rows are left out" >&2
    fi
    exec "$ROOT/target/release/fraud_check" --tarnd "${TARND_BIN:-$ROOT/target/release/tarnd}" \
        --server-cpu "${SERVER_CPU:-0}" --client-cpu "${CLIENT_CPU:-1}" "${go_args[@]}" "$@"
fi
if [[ "$SUITE" == ann-server || "$SUITE" == index-restart ]]; then
    # Each binary starts (taskset SERVER_CPU), drives and stops its own tarnd. ann_server: the
    # peers run on SERVER_CPU after it stopped; report bench/results/ann-server-<date>.md.
    # index_restart: stops, kills -9 and restarts its tarnd on one data directory; report
    # bench/results/index-restart-<date>.md.
    bin="${SUITE//-/_}"
    shift
    cd "$ROOT"
    if [[ "${BENCH_BUILD:-1}" == 1 ]]; then
        cargo build --release --bin tarnd >&2
        cargo build --release -p tarn-bench --bin "$bin" >&2
    fi
    extra=()
    for a in ${TARND_ARGS:-}; do extra+=("--tarnd-arg=$a"); done
    exec "$ROOT/target/release/$bin" --tarnd "${TARND_BIN:-$ROOT/target/release/tarnd}" \
        --server-cpu "${SERVER_CPU:-0}" --client-cpu "${CLIENT_CPU:-1}" "${extra[@]}" "$@"
fi
SECS="${BENCH_SECONDS:-10}"
WARM="${BENCH_WARMUP:-2}"
KEYS="${BENCH_KEYS:-1000000}"
VSIZE="${BENCH_VALUE_SIZE:-100}"
SERVER_CPU="${SERVER_CPU:-0}"
CLIENT_CPU="${CLIENT_CPU:-1}"
CONNS="${BENCH_CONNS:-32}"
DURABLE_DEPTH="${DURABLE_DEPTH:-1}"
THROUGHPUT_RATE="${THROUGHPUT_RATE:-50000}"
DURABLE_RATE="${DURABLE_RATE:-2000}"
TARND_ARGS="${TARND_ARGS:-}"
TARND_SPIN_ARGS="${TARND_SPIN_ARGS---spin-us 200}"
PGBIN="/usr/lib/postgresql/15/bin"
FEATURES_CARDS="${FEATURES_CARDS:-1000000}"
FEATURES_DEVICES="${FEATURES_DEVICES:-300000}"
FEATURES_BATCH="${FEATURES_BATCH:-100}"
FEATURES_DEPTH="${FEATURES_DEPTH:-1}"
FEATURES_CONNS="${FEATURES_CONNS:-$CONNS}"
FEATURES_READ_KEYS="${FEATURES_READ_KEYS:-10000}"
FEATURES_READ_BUCKETS="${FEATURES_READ_BUCKETS:-60}"
FEATURES_FRESH_SECONDS="${FEATURES_FRESH_SECONDS:-5}"
FEATURES_FRESH_RATE="${FEATURES_FRESH_RATE:-20000}"
FEATURES_FRESH_INTERVAL_US="${FEATURES_FRESH_INTERVAL_US:-1000}"
FEATURES_MEM_BASELINES="${FEATURES_MEM_BASELINES:-1}"
FEATURES_REDIS_PERSIST="${FEATURES_REDIS_PERSIST:-everysec}"
FEATURES_REDIS_PRELOAD="${FEATURES_REDIS_PRELOAD:-1}"

STAMP="$(date +%Y-%m-%d-%H%M%S)"
RESULTS="${BENCH_RESULTS_DIR:-$HERE/results}"
RAW="$RESULTS/raw/$SUITE-$STAMP"
OUT="$RESULTS/$SUITE-$STAMP.md"
JSONL="$RAW/results.jsonl"
mkdir -p "$RAW"
: >"$JSONL"
BENCH="$ROOT/target/release/tarn-bench"
TARND="${TARND_BIN:-$ROOT/target/release/tarnd}"
SKIPS=()
log() { echo "[run.sh $(date +%H:%M:%S)] $*" >&2; }
skip() {
    log "SKIP: $*"
    local s
    for s in "${SKIPS[@]}"; do [[ "$s" == "$*" ]] && return 0; done
    SKIPS+=("$*")
}

# ---------------------------------------------------------------- lifecycle
TARND_PID=""
TARND_DATA=""
REDIS_PORT_USED=""
PG_PORT_USED=""
cleanup() {
    set +e
    stop_tarnd
    stop_redis
    stop_pg
    [[ "$TARND" == "$RAW/tarnd" ]] && rm -f "$RAW/tarnd"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
    local p
    for _ in $(seq 1 200); do
        p=$((20000 + RANDOM % 20000))
        port_in_use "$p" || { echo "$p"; return 0; }
    done
    echo "no free port found" >&2
    return 1
}

build() {
    if [[ "${BENCH_BUILD:-1}" == 1 ]]; then
        log "building tarn-bench (release)"
        (cd "$ROOT" && cargo build --release -p tarn-bench) >"$RAW/build-bench.log" 2>&1 ||
            { tail -30 "$RAW/build-bench.log" >&2; exit 1; }
        if [[ "${BENCH_BUILD_TARND:-1}" == 1 && "${BENCH_SKIP_TARN:-0}" != 1 ]]; then
            log "building tarnd (release)"
            (cd "$ROOT" && cargo build --release --bin tarnd) >"$RAW/build-tarnd.log" 2>&1 ||
                log "tarnd did not build (see $RAW/build-tarnd.log); Tarn rows will be skipped"
        fi
    fi
    [[ -x "$BENCH" ]] || { echo "missing $BENCH" >&2; exit 1; }
    # Freeze the server binary for the whole run (others may rebuild target/ meanwhile).
    if [[ -x "$TARND" ]]; then
        TARND_ORIG="$TARND"
        cp "$TARND" "$RAW/tarnd"
        TARND="$RAW/tarnd"
    fi
}
TARND_ORIG="$TARND"

# start_tarnd SHARDS DURABILITY [extra flags...]: sets TARN_ADDR, or returns 1 (skipped).
TARN_ADDR=""
start_tarnd() {
    local shards="$1" durability="$2"
    shift 2
    TARN_ADDR=""
    if [[ "${BENCH_SKIP_TARN:-0}" == 1 ]]; then
        return 1
    fi
    if [[ ! -x "$TARND" ]]; then
        skip "tarnd not built ($TARND missing): Tarn rows skipped"
        return 1
    fi
    local port dir
    port="$(free_port)"
    dir="$(mktemp -d "$RAW/tarnd-data.XXXX")"
    TARND_DATA="$dir"
    # shellcheck disable=SC2086
    taskset -c "$SERVER_CPU" "$TARND" --listen "127.0.0.1:$port" --data-dir "$dir" \
        --shards "$shards" --durability "$durability" $TARND_ARGS "$@" \
        >"$dir.log" 2>&1 &
    TARND_PID=$!
    for _ in $(seq 1 200); do
        if ! kill -0 "$TARND_PID" 2>/dev/null; then
            skip "tarnd exited during startup (shards=$shards durability=$durability $*): $(tail -3 "$dir.log" | tr '\n' ' ')"
            TARND_PID=""
            return 1
        fi
        if port_in_use "$port"; then
            TARN_ADDR="127.0.0.1:$port"
            log "tarnd pid $TARND_PID on $TARN_ADDR (shards=$shards durability=$durability cpu=$SERVER_CPU $TARND_ARGS $*)"
            return 0
        fi
        sleep 0.1
    done
    skip "tarnd did not listen within 20 s: $(tail -3 "$dir.log" | tr '\n' ' ')"
    stop_tarnd
    return 1
}

stop_tarnd() {
    if [[ -n "$TARND_PID" ]]; then
        kill -TERM "$TARND_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$TARND_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$TARND_PID" 2>/dev/null || true
        wait "$TARND_PID" 2>/dev/null || true
        log "tarnd stopped"
    fi
    # Keep the log ($dir.log), drop the data (a 1M-key preload is hundreds of MB).
    [[ -z "$TARND_DATA" ]] || rm -rf "$TARND_DATA"
    TARND_DATA=""
    TARND_PID=""
    TARN_ADDR=""
}

REDIS_ADDR=""
start_redis() { # PERSIST
    REDIS_ADDR=""
    [[ "${BENCH_SKIP_REDIS:-0}" == 1 ]] && return 1
    local port
    port="$(free_port)"
    if REDIS_PORT="$port" REDIS_PERSIST="$1" REDIS_CPU="$SERVER_CPU" REDIS_DIR="$RAW/redis-$port" \
        "$HERE/peers/redis.sh" start >&2; then
        REDIS_PORT_USED="$port"
        REDIS_ADDR="127.0.0.1:$port"
    else
        skip "redis did not start (persist=$1)"
        return 1
    fi
}
stop_redis() {
    [[ -z "$REDIS_PORT_USED" ]] || REDIS_PORT="$REDIS_PORT_USED" REDIS_DIR="$RAW/redis-$REDIS_PORT_USED" "$HERE/peers/redis.sh" stop >&2
    REDIS_PORT_USED=""
    REDIS_ADDR=""
}

PG_PORT=""
start_pg() {
    [[ "${BENCH_SKIP_PG:-0}" == 1 ]] && return 1
    PG_PORT="$(free_port)"
    if PG_PORT="$PG_PORT" PG_CPU="$SERVER_CPU" "$HERE/peers/postgres.sh" start >&2; then
        PG_PORT_USED="$PG_PORT"
        PG_PORT="$PG_PORT" PG_VALUE_SIZE="$VSIZE" "$HERE/peers/postgres.sh" preload "$KEYS" >&2
    else
        skip "postgresql did not start"
        PG_PORT=""
        return 1
    fi
}
stop_pg() {
    [[ -z "$PG_PORT_USED" ]] || PG_PORT="$PG_PORT_USED" "$HERE/peers/postgres.sh" stop >&2
    PG_PORT_USED=""
    PG_PORT=""
}

# ---------------------------------------------------------------- measurements
# load SUITE LABEL TARGET ADDR [tarn-bench run flags...]
# A first attempt is discarded (exit 3) if other processes took >5% of the client CPU; then
# we wait for the machine to go quiet and measure again, keeping the second result (its notes
# carry a WARNING if it was disturbed too).
load() {
    local suite="$1" label="$2" target="$3" addr="$4"
    shift 4
    local attempt rc extra
    for attempt in 1 2; do
        extra=()
        ((attempt == 1)) && extra=(--max-interference 5)
        log "$suite: $label $* (attempt $attempt)"
        set +e
        "$BENCH" run --target "$target" --addr "$addr" --suite "$suite" --label "$label" \
            --cpu "$CLIENT_CPU" --seconds "$SECS" --warmup "$WARM" --keys "$KEYS" \
            --value-size "$VSIZE" --json "$JSONL" "${extra[@]}" "$@" 2>&1 | tee -a "$RAW/runs.log" >&2
        rc="${PIPESTATUS[0]}"
        set -e
        if ((rc == 3 && attempt == 1)); then
            wait_idle "$suite"
            continue
        fi
        ((rc == 0)) || skip "$suite: $label $* failed (exit $rc, see $RAW/runs.log)"
        return 0
    done
}

preload() { # TARGET ADDR
    log "preloading $KEYS keys into $1 at $2"
    "$BENCH" preload --target "$1" --addr "$2" --keys "$KEYS" --value-size "$VSIZE" 2>&1 |
        tee -a "$RAW/runs.log" >&2
}

floor_ping() { # SUITE MODES [extra tarn-bench flags...]
    local suite="$1" modes="$2"
    shift 2
    log "$suite: loopback ping-pong floor ($modes)"
    "$BENCH" floor-pingpong --suite "$suite" --modes "$modes" --cpu-a "$CLIENT_CPU" --cpu-b "$SERVER_CPU" \
        --seconds 3 --warmup 0.5 --json "$JSONL" "$@" 2>&1 | tee -a "$RAW/runs.log" >&2
}

floor_fsync() { # SUITE
    log "$1: fdatasync floor in $RAW"
    "$BENCH" floor-fsync --suite "$1" --dir "$RAW" --seconds 3 --warmup 0.5 \
        --json "$JSONL" 2>&1 | tee -a "$RAW/runs.log" >&2
}

pgbench_run() { # SUITE MODE-LABEL [pgbench flags...]
    local suite="$1" mode="$2"
    shift 2
    local dir
    dir="$(mktemp -d "$RAW/pgbench.XXXX")"
    local value
    value="$(head -c "$VSIZE" /dev/zero | tr '\0' 'v')"
    cat >"$dir/upsert.sql" <<SQL
\set k random(0, $((KEYS - 1)))
INSERT INTO kv (k, v) VALUES ('key:' || lpad(:k::text, 8, '0'), '$value') ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v;
SQL
    log "$suite: pgbench $mode -c $CONNS -j 1 -T $((WARM + SECS)) $*"
    if taskset -c "$CLIENT_CPU" "$PGBIN/pgbench" -n -M prepared -c "$CONNS" -j 1 -T "$((WARM + SECS))" \
        -f "$dir/upsert.sql" -l --log-prefix="$dir/pg" "$@" \
        -h 127.0.0.1 -p "$PG_PORT" -U postgres bench >"$dir/pgbench.out" 2>&1; then
        "$BENCH" pgbench-log "$dir"/pg.* --suite "$suite" --label "postgresql (synchronous_commit=on)" \
            --workload-label "INSERT .. ON CONFLICT DO UPDATE (1 row/txn)" --mode "$mode" \
            --conns "$CONNS" --warmup "$WARM" --seconds "$SECS" --notes "pgbench on CPU $CLIENT_CPU" --json "$JSONL" 2>&1 | tee -a "$RAW/runs.log" >&2
        rm -f "$dir"/pg.*
    else
        skip "$suite: pgbench $mode failed: $(tail -3 "$dir/pgbench.out" | tr '\n' ' ')"
    fi
}

# Busy % of the whole machine over one second (from /proc/stat).
machine_busy_pct() {
    local a b
    a="$(head -1 /proc/stat)"
    sleep 1
    b="$(head -1 /proc/stat)"
    awk -v a="$a" -v b="$b" 'BEGIN {
        split(a, x, " "); split(b, y, " ");
        busy = (y[2]+y[3]+y[4]+y[7]+y[8]+y[9]) - (x[2]+x[3]+x[4]+x[7]+x[8]+x[9]);
        tot = busy + (y[5]+y[6]) - (x[5]+x[6]);
        printf "%d", (tot > 0 ? 100 * busy / tot : 0) }'
}

# Wait (up to BENCH_IDLE_WAIT seconds, default 60) until the machine is quiet, so that
# concurrent builds do not end up in the figures; measure anyway after that, with a note.
wait_idle() {
    local max="${BENCH_IDLE_WAIT:-60}" waited=0 busy
    while :; do
        busy="$(machine_busy_pct)"
        ((busy < 10)) && return 0
        if ((waited >= max)); then
            skip "machine was ${busy}% busy before suite '$1' even after waiting ${max}s; figures may include interference (see WARNING notes)"
            return 0
        fi
        ((waited == 0)) && log "machine is ${busy}% busy; waiting up to ${max}s for it to settle"
        sleep 4
        waited=$((waited + 5))
    done
}

# ---------------------------------------------------------------- suites
suite_floors() {
    floor_ping floors "same-core,parked,spin"
    floor_fsync floors
}

suite_get() {
    local s=get
    floor_ping "$s" "parked,spin"
    if start_tarnd 1 async; then
        preload tarn "$TARN_ADDR" || skip "$s: tarn preload failed"
        load "$s" "tarn (1 shard)" tarn "$TARN_ADDR" --conns 1 --depth 1
        if [[ -n "$TARND_SPIN_ARGS" ]]; then
            stop_tarnd
            start_tarnd 1 async $TARND_SPIN_ARGS && preload tarn "$TARN_ADDR"
        fi
        [[ -n "$TARN_ADDR" ]] && load "$s" "tarn (1 shard${TARND_SPIN_ARGS:+, $TARND_SPIN_ARGS})" tarn "$TARN_ADDR" --conns 1 --depth 1 --spin
        stop_tarnd
    fi
    if start_redis none; then
        preload redis "$REDIS_ADDR"
        load "$s" "redis (no persistence)" redis "$REDIS_ADDR" --conns 1 --depth 1
        load "$s" "redis (no persistence)" redis "$REDIS_ADDR" --conns 1 --depth 1 --spin
        stop_redis
    fi
}

throughput_rows() { # LABEL TARGET ADDR
    local s=throughput
    for depth in 1 16; do
        load "$s" "$1" "$2" "$3" --conns "$CONNS" --depth "$depth" --write-ratio 0
        load "$s" "$1" "$2" "$3" --conns "$CONNS" --depth "$depth" --write-ratio 1
    done
    load "$s" "$1" "$2" "$3" --conns "$CONNS" --depth 16 --rate "$THROUGHPUT_RATE" --write-ratio 0
    load "$s" "$1" "$2" "$3" --conns "$CONNS" --depth 16 --rate "$THROUGHPUT_RATE" --write-ratio 1
}

suite_throughput() {
    if start_tarnd 1 async; then
        preload tarn "$TARN_ADDR" || skip "throughput: tarn preload failed"
        throughput_rows "tarn (1 shard, async)" tarn "$TARN_ADDR"
        stop_tarnd
    fi
    if start_redis none; then
        preload redis "$REDIS_ADDR"
        throughput_rows "redis (no persistence)" redis "$REDIS_ADDR"
        stop_redis
    fi
}

suite_durable() {
    local s=durable
    floor_fsync "$s"
    if start_tarnd 1 sync; then
        preload tarn "$TARN_ADDR" || skip "$s: tarn preload failed"
        load "$s" "tarn (1 shard, sync)" tarn "$TARN_ADDR" --conns "$CONNS" --depth "$DURABLE_DEPTH" --write-ratio 1
        load "$s" "tarn (1 shard, sync)" tarn "$TARN_ADDR" --conns "$CONNS" --depth "$DURABLE_DEPTH" --write-ratio 1 --rate "$DURABLE_RATE"
        stop_tarnd
    fi
    local persist="${REDIS_DURABLE_PERSIST:-always}"
    if start_redis "$persist"; then
        preload redis "$REDIS_ADDR"
        load "$s" "redis (appendfsync $persist)" redis "$REDIS_ADDR" --conns "$CONNS" --depth "$DURABLE_DEPTH" --write-ratio 1
        load "$s" "redis (appendfsync $persist)" redis "$REDIS_ADDR" --conns "$CONNS" --depth "$DURABLE_DEPTH" --write-ratio 1 --rate "$DURABLE_RATE"
        stop_redis
    fi
    if start_pg; then
        pgbench_run "$s" "closed"
        pgbench_run "$s" "open ${DURABLE_RATE}/s" --rate "$DURABLE_RATE"
        stop_pg
    fi
}

# features suite helpers. The fraud-stream shape is passed to every tarn-bench call alike.
feat_shape() { echo --cards "$FEATURES_CARDS" --devices "$FEATURES_DEVICES"; }

# feat_run LABEL [tarn-bench features-* subcommand and flags...]: log, run, keep going on failure.
feat_run() {
    local what="$1"
    shift
    log "features: $what"
    set +e
    "$BENCH" "$@" 2>&1 | tee -a "$RAW/runs.log" >&2
    local rc="${PIPESTATUS[0]}"
    set -e
    ((rc == 0)) || { skip "features: $what failed (exit $rc, see $RAW/runs.log)"; return 1; }
}

# feat_tarn DURABILITY: one fresh tarnd: schema, RSS before/after loading FEATURES_CARDS cards,
# (async only) the read rows, then ingest throughput and freshness.
feat_tarn() {
    local dur="$1" s=features label="tarn (1 shard, $1)"
    start_tarnd 1 "$dur" || return 0
    # shellcheck disable=SC2046
    if feat_run "$dur: create stream + 3 views" features-setup --addr "$TARN_ADDR" &&
        feat_run "$dur: memory: load $FEATURES_CARDS cards (1 event each)" features-load \
            --addr "$TARN_ADDR" $(feat_shape) --pid "$TARND_PID" --cpu "$CLIENT_CPU" \
            --suite "$s" --label "$label" --tag "mem:$([[ $dur == async ]] && echo all || echo "all:$dur")" \
            --json "$JSONL"; then
        if [[ "$dur" == async ]]; then
            # shellcheck disable=SC2046
            feat_run "read keys: $FEATURES_READ_KEYS cards x $FEATURES_READ_BUCKETS buckets" features-load \
                --addr "$TARN_ADDR" $(feat_shape) --load-cards "$FEATURES_READ_KEYS" \
                --buckets "$FEATURES_READ_BUCKETS" --seed 11 --cpu "$CLIENT_CPU" &&
                KEYS="$FEATURES_READ_KEYS" load "$s" "$label" tarn "$TARN_ADDR" --conns 1 --depth 1 \
                    --fraud read --view card --tag read:features \
                    --notes "uniform over $FEATURES_READ_KEYS cards with $FEATURES_READ_BUCKETS buckets each, view holds $FEATURES_CARDS cards"
            # The point GET of the same process: a table of FEATURES_CARDS 100-byte rows, reads
            # uniform over the first FEATURES_READ_KEYS of them (same key count as the view read).
            if KEYS="$FEATURES_CARDS" preload tarn "$TARN_ADDR"; then
                KEYS="$FEATURES_READ_KEYS" load "$s" "$label" tarn "$TARN_ADDR" --conns 1 --depth 1 \
                    --tag read:get --notes "uniform over $FEATURES_READ_KEYS of $FEATURES_CARDS rows"
            else
                skip "features: GET table preload failed"
            fi
        fi
        # shellcheck disable=SC2046
        load "$s" "$label" tarn "$TARN_ADDR" --fraud ingest $(feat_shape) --batch "$FEATURES_BATCH" \
            --conns "$FEATURES_CONNS" --depth "$FEATURES_DEPTH" --tag "ingest:tarn:$dur"
        # shellcheck disable=SC2046
        feat_run "$dur: freshness" features-fresh --addr "$TARN_ADDR" $(feat_shape) \
            --seconds "$FEATURES_FRESH_SECONDS" --warmup 1 --bg-rate "$FEATURES_FRESH_RATE" \
            --interval-us "$FEATURES_FRESH_INTERVAL_US" --cpu "$CLIENT_CPU" \
            --suite "$s" --label "$label" --tag "fresh:tarn:$dur" --json "$JSONL" || true
    fi
    stop_tarnd
}

suite_features() {
    local s=features
    floor_ping "$s" parked --tag read:floor
    feat_tarn async
    feat_tarn sync
    if [[ "$FEATURES_MEM_BASELINES" == 1 ]]; then
        local views
        for views in none card; do
            start_tarnd 1 async || continue
            # shellcheck disable=SC2046
            feat_run "memory baseline ($views)" features-setup --addr "$TARN_ADDR" --views "$views" &&
                feat_run "memory baseline ($views): load $FEATURES_CARDS cards" features-load \
                    --addr "$TARN_ADDR" $(feat_shape) --views "$views" --pid "$TARND_PID" \
                    --cpu "$CLIENT_CPU" --suite "$s" --label "tarn (1 shard, async)" \
                    --tag "mem:$views" --json "$JSONL" || true
            stop_tarnd
        done
    fi
    local persist label
    for persist in none "$FEATURES_REDIS_PERSIST"; do
        [[ "$persist" == none ]] && label="redis (no persistence)" || label="redis (appendfsync $persist)"
        start_redis "$persist" || continue
        if [[ "$FEATURES_REDIS_PRELOAD" == 1 ]]; then
            # shellcheck disable=SC2046
            feat_run "redis ($persist): load $FEATURES_CARDS cards" features-load --target redis \
                --addr "$REDIS_ADDR" $(feat_shape) --cpu "$CLIENT_CPU" || true
        fi
        # shellcheck disable=SC2046
        load "$s" "$label" redis "$REDIS_ADDR" --fraud ingest $(feat_shape) --batch "$FEATURES_BATCH" \
            --conns "$FEATURES_CONNS" --depth "$FEATURES_DEPTH" --tag "ingest:redis:$persist"
        stop_redis
    done
}

# ---------------------------------------------------------------- report
machine_md() {
    local model disk_dev
    model="$(lscpu | sed -n 's/^Model name: *//p' | head -1)"
    disk_dev="$(df --output=source "$RAW" | tail -1)"
    echo "## Machine"
    echo
    echo "- CPU: ${model:-unknown}; nproc $(nproc); $(lscpu | sed -n 's/^Hypervisor vendor: */hypervisor /p' | head -1)"
    echo "- Memory: $(free -h | awk '/^Mem:/ {print $2}') total"
    echo "- Kernel: $(uname -srm); $(. /etc/os-release && echo "$PRETTY_NAME")"
    echo "- Disk (results/data dir): $(df -hT "$RAW" | tail -1 | awk '{print $1" "$2", "$3" total, "$5" free"}'); lsblk: $(lsblk -dno NAME,SIZE,ROTA,TYPE 2>/dev/null | grep -v zram | tr -s ' ' | paste -sd ';' -) (device $disk_dev)"
    echo "- Redis: $("$HERE/peers/redis.sh" version 2>/dev/null || echo n/a); PostgreSQL: $("$PGBIN/postgres" --version 2>/dev/null | awk '{print $3}' || echo n/a); pgbench -j 1"
    local commit
    commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "no commit yet")"
    echo "- tarnd: commit $commit$(git -C "$ROOT" status --porcelain 2>/dev/null | grep -q . && echo " (work tree has uncommitted changes)"); binary $( [[ -x "$TARND_ORIG" ]] && date -r "$TARND_ORIG" +'built %F %T' || echo 'not built')"
    if [[ "$TARND_ORIG" == */debug/* ]]; then
        echo "- **tarnd is a DEBUG build ($TARND_ORIG): Tarn figures are not representative**"
    fi
    echo "- Load average at start: $LOAD_START; at end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    echo "## Setup"
    echo
    echo "- Server (tarnd / Redis / PostgreSQL) pinned with taskset to CPU $SERVER_CPU; load generator pinned to CPU $CLIENT_CPU (one thread, epoll, non-blocking sockets)."
    echo "- ${SECS} s measured after ${WARM} s warm-up per workload; keys key:%08d uniform over $KEYS preloaded keys; values $VSIZE bytes."
    echo "- closed = each connection keeps \`depth\` requests in flight, latency from send; CO-corrected column = hdrhistogram record_correct with the mean warm-up latency as expected interval."
    echo "- open R/s = fixed-rate schedule, latency from the intended send time (coordinated-omission corrected); pgbench --rate likewise (its latency includes schedule lag)."
    echo "- spin = generator busy-polls (epoll_wait timeout 0) instead of parking; floors are measured in this same run."
    echo "- TARND_ARGS='${TARND_ARGS}' TARND_SPIN_ARGS='${TARND_SPIN_ARGS}'"
    if [[ " ${SUITES[*]} " == *" features "* ]]; then
        echo "- features: stream \`tx\` (ts, card_id, account_id, device_id, amount, merchant, ip), views card_10m (10 aggregates), account_10m and device_10m (4 each), window 10 min of 60 × 10 s buckets; $FEATURES_CARDS cards (card:%07d, uniform), account = card/4, $FEATURES_DEVICES devices, 1000 merchants, 10k IPs; ts = now."
        echo "- features ingest: $FEATURES_CONNS conns × depth $FEATURES_DEPTH, $FEATURES_BATCH events per batch (Tarn: one producer-tagged INGEST of typed rows; Redis: 17 commands per event in one pipelined write: HINCRBY txns, HINCRBYFLOAT spend, PFADD merchants/ips (card) or cards (account, device), EXPIRE 600 on every key; Redis keeps no max/min/stddev/filtered count/last(ip)). Each tarnd and Redis first gets one event for each of the $FEATURES_CARDS cards (the memory load); latency = per-batch ack."
        echo "- features read: FEATURES card_10m of 1 key, 1 conn, closed loop, parked, uniform over $FEATURES_READ_KEYS cards holding $FEATURES_READ_BUCKETS buckets each; GET: same tarnd, 100-byte rows, uniform over $FEATURES_READ_KEYS of $FEATURES_CARDS rows."
        echo "- features freshness: one tagged event per probe on conn A; on its ack, FEATURES on conn B until the count includes it; latency = ack received → reply of the first read that shows it (includes that read's round trip); background open-loop ingest $FEATURES_FRESH_RATE events/s on 8 other conns."
        echo "- features memory: VmRSS of tarnd (/proc/<pid>/status) after creating the schema and 1 s after loading one event per card (1000-event batches); a fresh tarnd per configuration."
    fi
}

LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
build
case "$SUITE" in
    all) SUITES=(floors get throughput durable features) ;;
    *) SUITES=("$SUITE") ;;
esac
for s in "${SUITES[@]}"; do
    wait_idle "$s"
    "suite_$s"
done
cleanup

{
    echo "# tarn-bench: $SUITE ($STAMP)"
    echo
    machine_md
    echo
    echo "## Results"
    "$BENCH" report "$JSONL"
    echo
    if ((${#SKIPS[@]})); then
        echo "## Skipped / failed"
        echo
        for s in "${SKIPS[@]}"; do echo "- $s"; done
        echo
    fi
    echo "Raw logs and JSONL: \`${RAW#"$ROOT"/}\`"
} >"$OUT"
rm -f "$RAW/tarnd"
log "wrote $OUT"
cat "$OUT"
