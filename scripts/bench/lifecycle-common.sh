#!/usr/bin/env bash
# Sourced by the data-lifecycle benchmarks (purge.sh, purge-load.sh, export-rss.sh; BIN set): a fresh
# database per backend, and bulk history for one tenant written straight in the database with
# one statement per table (seconds for a million rows, where the ingest API would take minutes).
# Sets WORK (a temporary directory) and PG_ADMIN_URL, and removes both what it made and the
# server started as SERVER_PID on exit.
#
#   bench_database sqlite|postgres NAME exports DATABASE_URL: a new database, migrated
#   bench_start_server LOG [VAR=value…] starts `$BIN serve` on PORT as SERVER_PID, logging to
#                                       LOG, and waits until it answers (or fails, quoting LOG)
#   bench_stop_server                   stops SERVER_PID, if any
#   bench_sql DATABASE_URL SQL          runs SQL on a sqlite:// or postgres:// database
#   seed_history DATABASE_URL TENANT EVENTS [STATUS] [PREFIX]
#       EVENTS events of a typical `message.received` body for TENANT, created 2026-01-01, each
#       with one delivery to a new endpoint of the tenant (STATUS: succeeded, the default, and
#       completed then too; or pending) and, unless pending, its attempt: 3 × EVENTS rows
#       (2 × EVENTS when pending). Ids are `e-N`, `d-N`, `a-N` after PREFIX (give each tenant
#       its own to seed several in one database).

PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
case "$PG_ADMIN_URL" in
  postgres://*@127.0.0.1[:/]*|postgresql://*@127.0.0.1[:/]*) ;;
  *) echo "PG_ADMIN_URL must point at 127.0.0.1" >&2; exit 2 ;;
esac
WORK=$(mktemp -d /tmp/moltbot-lifecycle-bench.XXXXXX)
SERVER_PID=
BENCH_PG_DBS=()

bench_stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
}

bench_start_server() {
  local log=$1
  shift
  env SAAS_API_PORT="$PORT" "$@" "$BIN" serve >"$log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && return 0
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "the server did not start; the end of its log ($log):" >&2
  tail -20 "$log" >&2
  exit 1
}

bench_cleanup() {
  bench_stop_server
  local db
  for db in "${BENCH_PG_DBS[@]}"; do
    psql -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  done
  rm -rf "$WORK"
}
trap bench_cleanup EXIT

bench_database() {
  local backend=$1 name="${2}_$$"
  if [ "$backend" = sqlite ]; then
    rm -f "$WORK/$name".db*
    export DATABASE_URL="sqlite://$WORK/$name.db"
  else
    psql -q "$PG_ADMIN_URL" -c "CREATE DATABASE $name" >/dev/null
    BENCH_PG_DBS+=("$name")
    export DATABASE_URL="${PG_ADMIN_URL%/*}/$name"
  fi
  "$BIN" migrate >/dev/null 2>&1
}

bench_sql() {
  case "$1" in
    sqlite://*) sqlite3 -bail "${1#sqlite://}" "$2" ;;
    *) psql -qAt -v ON_ERROR_STOP=1 "$1" -c "$2" ;;
  esac
}

BENCH_PAYLOAD='{"type":"message.received","timestamp":"2026-01-01T12:00:00.000Z","data":{"tenantId":"TENANT","channel":"telegram","accountId":"tenant-0a1b2c3d","sessionKey":"agent:agent-0a1b2c3d:telegram:direct:123456789","peerId":"123456789","chatType":"direct","text":"Hello, can you tell me when my order ships?","messageId":"4711"}}'

seed_history() {
  local url=$1 tenant=$2 n=$3 status=${4:-succeeded} p=${5:-}
  local endpoint series from old completed
  endpoint=$(python3 -c 'import uuid; print(uuid.uuid4())')
  case "$url" in
    sqlite://*)
      series="WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $n)"
      from="FROM s"; old="'2026-01-01 00:00:00'" ;;
    *)
      series=""; from="FROM generate_series(1, $n) AS s(i)"; old="'2026-01-01 00:00:00'::timestamp" ;;
  esac
  completed=$old
  if [ "$status" = pending ]; then completed=NULL; fi
  bench_sql "$url" "INSERT INTO webhook_endpoints (id, tenant_id, url, event_types, secret, enabled, created_at, updated_at) VALUES ('$endpoint', '$tenant', 'https://example.com/hook', '[]', 'whsec_bench0123456789abcdef', true, $old, $old)"
  bench_sql "$url" "$series INSERT INTO events (id, tenant_id, source, source_id, event_type, payload, created_at) SELECT '${p}e-' || i, '$tenant', 'gateway', '${p}gw-' || i, 'message.received', '${BENCH_PAYLOAD//TENANT/$tenant}', $old $from"
  bench_sql "$url" "$series INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, event_id, status, attempts, next_attempt_at, created_at, updated_at, completed_at) SELECT '${p}d-' || i, '$tenant', '$endpoint', '${p}e-' || i, '$status', 1, $old, $old, $old, $completed $from"
  if [ "$status" != pending ]; then
    bench_sql "$url" "$series INSERT INTO webhook_attempts (id, delivery_id, attempt, outcome, status_code, latency_ms, created_at) SELECT '${p}a-' || i, '${p}d-' || i, 1, 'success', 200, 42, $old $from"
  fi
  case "$url" in
    sqlite://*) bench_sql "$url" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null ;;
    *) bench_sql "$url" "VACUUM ANALYZE" >/dev/null ;;
  esac
}
