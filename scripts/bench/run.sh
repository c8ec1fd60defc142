#!/usr/bin/env bash
# The load benchmark (`just bench`): builds release, runs every loaddriver phase on SQLite and on
# PostgreSQL with the server pinned to CPU 0 and the driver to CPU 1, a pgbench single-row INSERT
# reference at the same concurrency, the floor of a request (a do-nothing HTTP server under the
# same driver), and the growth of GET /config and GET /tenants with the tenant count. Results: JSON lines in $RESULTS, summarised by summarise.py. See docs/benchmarks.md.
#
# Knobs (environment): WEBHOOKS (1: run scripts/bench/webhooks.sh last — delivery throughput,
# latency and the fairness scenario; 0 skips), RUNS (3), N tenants per run (2000), C concurrency (32), DURATION seconds per
# timed phase (5), BACKENDS ("sqlite postgres"), SIZES for growth ("1000 10000 50000 100000", ""
# skips), PG_ADMIN_URL (postgres://postgres@127.0.0.1:5432/postgres), BENCH_RUST_LOG (info),
# RESULTS (bench/results/<UTC time>), PORT (3900), PIN_POSTGRES (1: move the local PostgreSQL's
# processes to CPU 1 for the run, so CPU 0 is the server's alone; restored at exit; 0 leaves it),
# SERVER_BINS ("": the tree's own build) — `label=path` pairs separated by spaces: each run of the
# phases runs every one of these server binaries in turn, tagged `build=<label>`, so an A/B
# comparison is interleaved in one session (e.g. SERVER_BINS="base=/tmp/old head=target/release/
# moltbot-saas" with RUNS=5 SIZES= BACKENDS=postgres), PHASES (the driver's phases of each run:
# health,create,channels,credentials,endpoints,endpoint-updates,keys,reads,config,ingest,list),
# PROFILE (release; `profiling` is
# release without LTO, rebuilt quickly), BUILD (1; 0 uses the binaries already built).
set -euo pipefail

cd "$(dirname "$0")/../.."
RUNS=${RUNS:-3}
N=${N:-2000}
C=${C:-32}
DURATION=${DURATION:-5}
BACKENDS=${BACKENDS:-sqlite postgres}
SIZES=${SIZES-1000 10000 50000 100000}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PORT=${PORT:-3900}
PIN_POSTGRES=${PIN_POSTGRES:-1}
RESULTS=${RESULTS:-bench/results/$(date -u +%Y%m%dT%H%M%SZ)}
SERVER_BINS=${SERVER_BINS:-}
PHASES=${PHASES:-health,create,channels,credentials,endpoints,endpoint-updates,keys,reads,config,ingest,list}
PROFILE=${PROFILE:-release}
TARGET=${CARGO_TARGET_DIR:-target}
export SAAS_ADMIN_TOKEN="bench-operator-token-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export SAAS_GATEWAY_TOKEN="bench-gateway-token-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"

case "$PG_ADMIN_URL" in
  postgres://*@127.0.0.1[:/]*|postgresql://*@127.0.0.1[:/]*) ;;
  *) echo "PG_ADMIN_URL must point at 127.0.0.1" >&2; exit 2 ;;
esac

mkdir -p "$RESULTS"
WORK=$(mktemp -d /tmp/moltbot-bench.XXXXXX)
SERVER_PID=
PG_DBS=()

# The local PostgreSQL's processes (the postmaster and its children: new backends inherit its
# affinity). Left unpinned, its backends, checkpointer and autovacuum also run on CPU 0, taking
# the server's core: throughput falls and the server's CPU per request rises with it (fewer
# requests per wake-up, colder caches), by up to 2x in the ingest phase (docs/benchmarks.md).
postgres_pids() { pgrep -x postgres || true; }
pin_postgres() {
  local cpus=$1 pid
  for pid in $(postgres_pids); do taskset -a -cp "$cpus" "$pid" >/dev/null 2>&1 || true; done
}

cleanup() {
  stop_server
  if [ "$PIN_POSTGRES" = 1 ]; then pin_postgres "0-$(($(nproc) - 1))"; fi
  for db in "${PG_DBS[@]}"; do
    psql -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

log() { echo "[bench $(date -u +%H:%M:%S)] $*" >&2; }

need_pgbench() {
  if ! command -v pgbench >/dev/null; then
    log "installing pgbench (postgresql-client)"
    apt-get install -y -q postgresql-client >/dev/null
  fi
}

if [ "${BUILD:-1}" = 1 ]; then
  log "building $PROFILE binaries into $TARGET"
  nice cargo build --profile "$PROFILE" -q -p tenant-server --bin moltbot-saas
  if [ -n "$SIZES" ]; then nice cargo build --profile "$PROFILE" -q -p tenant-service --example seed; fi
  nice cargo build --profile "$PROFILE" -q -p loaddriver --bins
fi
SERVER_BIN="$TARGET/$PROFILE/moltbot-saas"
SEED_BIN="$TARGET/$PROFILE/examples/seed"
DRIVER_BIN="$TARGET/$PROFILE/loaddriver"
FLOOR_BIN="$TARGET/$PROFILE/floor"

{
  echo "date: $(date -u +%FT%TZ)"
  echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (dirty)')"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) x $(nproc)"
  echo "memory: $(grep MemTotal /proc/meminfo | awk '{print $2/1024/1024 " GiB"}')"
  echo "kernel: $(uname -r)"
  echo "os: $(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "rustc: $(rustc --version)"
  echo "postgres: $(psql -tA "$PG_ADMIN_URL" -c 'SHOW server_version' 2>/dev/null || echo unavailable)"
  echo "sqlite: bundled (libsqlite3-sys), WAL, synchronous=NORMAL"
  echo "settings: RUNS=$RUNS N=$N C=$C DURATION=$DURATION SIZES='$SIZES' RUST_LOG=${BENCH_RUST_LOG:-info} PIN_POSTGRES=$PIN_POSTGRES PROFILE=$PROFILE PHASES=$PHASES${SERVER_BINS:+ SERVER_BINS='$SERVER_BINS'}"
} > "$RESULTS/machine.txt"
cat "$RESULTS/machine.txt" >&2

# A fresh database URL for a backend: a temporary SQLite file or a new PostgreSQL database.
fresh_db() {
  local backend=$1 name=$2
  if [ "$backend" = sqlite ]; then
    echo "sqlite://$WORK/$name.db"
  else
    local db="bench_${name//[^a-z0-9]/_}_$$"
    psql -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
    PG_DBS+=("$db")
    echo "${PG_ADMIN_URL%/*}/$db"
  fi
}

start_server() {
  local url=$1 tag=$2 bin=${3:-$SERVER_BIN}
  DATABASE_URL="$url" SAAS_API_PORT=$PORT SAAS_WORKERS=1 SAAS_MIGRATE_ON_START=true \
    SAAS_DATA_DIR="$WORK" RUST_LOG="${BENCH_RUST_LOG:-info}" SAAS_LOG_FORMAT=json \
    taskset -c 0 "$bin" >"$RESULTS/server-$tag.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 300); do
    if curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      log "server exited; see $RESULTS/server-$tag.log"; exit 1
    fi
    sleep 0.1
  done
  log "server did not answer /health within 30 s"; exit 1
}

stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
}

drive() {
  taskset -c 1 "$DRIVER_BIN" --base-url "http://127.0.0.1:$PORT" --server-pid "$SERVER_PID" \
    --phase-timeout 600 "$@" >> "$RESULTS/results.jsonl"
}

pgbench_reference() {
  local run=$1 url
  need_pgbench
  url=$(fresh_db postgres "pgbench_$run")
  psql -q "$url" -f scripts/bench/pgbench-schema.sql >/dev/null
  local out tps load
  load=$(cut -d' ' -f1 /proc/loadavg)
  # The reference is what PostgreSQL commits at its best: on every CPU (not pinned away from the
  # server's core as for the server's runs), with pgbench where the driver runs.
  if [ "$PIN_POSTGRES" = 1 ]; then pin_postgres "0-$(($(nproc) - 1))"; fi
  out=$(taskset -c 1 pgbench -n -c "$C" -j 1 -T "$DURATION" -f scripts/bench/pgbench-insert.sql "$url" 2>&1)
  if [ "$PIN_POSTGRES" = 1 ]; then pin_postgres 1; fi
  tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)
  echo "{\"phase\":\"pgbench_insert\",\"scenario\":\"phases\",\"backend\":\"postgres\",\"run\":$run,\"concurrency\":$C,\"rps\":${tps:-0},\"errors\":0,\"load_avg_1m\":$load}" \
    >> "$RESULTS/results.jsonl"
  log "pgbench run $run: $tps tps"
}

if [ "$PIN_POSTGRES" = 1 ] && [[ " $BACKENDS " == *" postgres "* ]]; then
  if [ -n "$(postgres_pids)" ]; then
    log "pinning the local PostgreSQL's processes to CPU 1 (PIN_POSTGRES=0 leaves them)"
    pin_postgres 1
  fi
fi

# 0. The floor: the driver's health phase against the smallest HTTP server (bench/loaddriver/
# src/bin/floor.rs, a fixed answer, no work), pinned like the server. What it costs per request is
# what loopback TCP, epoll and the wake-ups cost here, below any server's own work.
for run in $(seq 1 "$RUNS"); do
  taskset -c 0 "$FLOOR_BIN" "127.0.0.1:$PORT" >"$RESULTS/floor-$run.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 50); do
    if curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1; then break; fi
    sleep 0.1
  done
  log "floor, run $run"
  drive --phases health -c "$C" -d "$DURATION" \
    --tag scenario=floor --tag backend=none --tag run="$run"
  stop_server
done

# 1. Every phase on each backend, RUNS times, each on a fresh database (and, with SERVER_BINS,
# once per binary, interleaved).
builds=${SERVER_BINS:-"=$SERVER_BIN"}
for run in $(seq 1 "$RUNS"); do
  for backend in $BACKENDS; do
    for build in $builds; do
      label=${build%%=*} bin=${build#*=}
      tags=(--tag scenario=phases --tag backend="$backend" --tag run="$run" --tag tenants="$N")
      if [ -n "$label" ]; then tags+=(--tag build="$label"); fi
      url=$(fresh_db "$backend" "phases_${backend}_${run}${label:+_$label}")
      start_server "$url" "phases-$backend-$run${label:+-$label}" "$bin"
      log "phases on $backend, run $run${label:+, build $label}"
      drive --phases "$PHASES" -n "$N" -c "$C" -d "$DURATION" \
        "${tags[@]}"
      stop_server
    done
    if [ "$backend" = postgres ]; then pgbench_reference "$run"; fi
  done
done

# 2. Growth: GET /config and GET /tenants at each size (SQLite, seeded through the store).
for size in $SIZES; do
  url=$(fresh_db sqlite "growth_$size")
  log "seeding $size tenants"
  "$SEED_BIN" "$url" "$size" >&2
  for run in $(seq 1 "$RUNS"); do
    start_server "$url" "growth-$size-$run"
    log "growth at $size tenants, run $run"
    drive --phases config,list -n "$size" -c 4 --config-concurrency 1 -d "$DURATION" --timeout 120 \
      --tag scenario=growth --tag backend=sqlite --tag run="$run" --tag tenants="$size"
    stop_server
  done
done

# 3. Webhook delivery: throughput, latency, and fairness beside hanging tenants (own results file).
if [ "${WEBHOOKS:-1}" = 1 ]; then
  stop_server
  RUNS=$RUNS BACKENDS=$BACKENDS PG_ADMIN_URL=$PG_ADMIN_URL RESULTS=$RESULTS scripts/bench/webhooks.sh
fi

log "results in $RESULTS"
python3 scripts/bench/summarise.py "$RESULTS/results.jsonl"
