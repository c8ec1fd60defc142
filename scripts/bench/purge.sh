#!/usr/bin/env bash
# The data-lifecycle measurement (alone: scripts/bench/purge.sh): on a fresh database per backend,
# N events of a typical gateway payload for one tenant, each with one delivered delivery and its
# attempt; prints the storage per event (SQLite: file + WAL; PostgreSQL: the three tables with
# their indexes and TOAST), then times `moltbot-saas purge --once` removing all of them (rows/s)
# and prints the SQLite file after the purge (incremental auto-vacuum). See docs/operations.md and
# docs/benchmarks.md#purge.
#
# Knobs (environment): N (100000), BACKENDS ("sqlite postgres"), BIN (the moltbot-saas binary,
# $CARGO_TARGET_DIR/release/moltbot-saas), PG_ADMIN_URL (postgres://postgres@127.0.0.1:5432/postgres).
set -euo pipefail

cd "$(dirname "$0")/../.."
N=${N:-100000}
BACKENDS=${BACKENDS:-sqlite postgres}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/moltbot-saas}
case "$PG_ADMIN_URL" in
  postgres://*@127.0.0.1[:/]*|postgresql://*@127.0.0.1[:/]*) ;;
  *) echo "PG_ADMIN_URL must point at 127.0.0.1" >&2; exit 2 ;;
esac
WORK=$(mktemp -d /tmp/moltbot-purgebench.XXXXXX)
PG_DB=
cleanup() {
  if [ -n "$PG_DB" ]; then
    psql -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

PAYLOAD='{"type":"message.received","timestamp":"2026-12-05T12:00:00.000Z","data":{"tenantId":"TENANT","channel":"telegram","accountId":"tenant-0a1b2c3d","sessionKey":"agent:agent-0a1b2c3d:telegram:direct:123456789","peerId":"123456789","chatType":"direct","text":"Hello, can you tell me when my order ships?","messageId":"4711"}}'

export SAAS_ENV=development SAAS_DATA_DIR="$WORK" SAAS_WEBHOOK_DISPATCHER=false
for backend in $BACKENDS; do
  if [ "$backend" = sqlite ]; then
    export DATABASE_URL="sqlite://$WORK/bench.db"
  else
    PG_DB="purgebench_$$"
    psql -q "$PG_ADMIN_URL" -c "CREATE DATABASE $PG_DB" >/dev/null
    export DATABASE_URL="${PG_ADMIN_URL%/*}/$PG_DB"
    "$BIN" migrate >/dev/null 2>&1
  fi
  tenant=$("$BIN" tenants create --name "Purge Bench" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  endpoint=$(python3 -c 'import uuid; print(uuid.uuid4())')
  payload=${PAYLOAD//TENANT/$tenant}
  if [ "$backend" = sqlite ]; then
    q() { sqlite3 "$WORK/bench.db" "$1"; }
    series="WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $N)"
    from="FROM s"; old="'2026-01-01 00:00:00'"
  else
    q() { psql -qAt "$DATABASE_URL" -c "$1"; }
    series=""; from="FROM generate_series(1, $N) AS s(i)"; old="'2026-01-01 00:00:00'::timestamp"
  fi
  q "INSERT INTO webhook_endpoints (id, tenant_id, url, event_types, secret, enabled, created_at, updated_at) VALUES ('$endpoint', '$tenant', 'https://example.com/hook', '[]', 'sealed', true, $old, $old)"
  q "$series INSERT INTO events (id, tenant_id, source, source_id, event_type, payload, created_at) SELECT 'e-' || i, '$tenant', 'gateway', 'gw-' || i, 'message.received', '$payload', $old $from"
  q "$series INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, event_id, status, attempts, next_attempt_at, created_at, updated_at, completed_at) SELECT 'd-' || i, '$tenant', '$endpoint', 'e-' || i, 'succeeded', 1, $old, $old, $old, $old $from"
  q "$series INSERT INTO webhook_attempts (id, delivery_id, attempt, outcome, status_code, latency_ms, created_at) SELECT 'a-' || i, 'd-' || i, 1, 'success', 200, 42, $old $from"
  if [ "$backend" = sqlite ]; then
    q "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
    bytes=$(stat -c %s "$WORK/bench.db")
  else
    q "VACUUM ANALYZE" >/dev/null
    bytes=$(q "SELECT sum(pg_total_relation_size(t)) FROM unnest(ARRAY['events','webhook_deliveries','webhook_attempts']::regclass[]) AS t")
  fi
  echo "$backend: $N events with a delivery and an attempt: $bytes bytes, $((bytes / N)) bytes an event"
  start=$(date +%s.%N)
  SAAS_RETENTION_EVENTS=1s SAAS_RETENTION_DELIVERIES=1s "$BIN" purge --once 2>/dev/null
  end=$(date +%s.%N)
  python3 -c "import sys; n=3*$N; t=$end-$start; print(f'$backend: purged {n} rows (events, deliveries, attempts) in {t:.1f} s: {n/t:.0f} rows/s')"
  if [ "$backend" = sqlite ]; then
    q "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
    echo "sqlite: file after the purge: $(stat -c %s "$WORK/bench.db") bytes (auto_vacuum=$(q 'PRAGMA auto_vacuum'))"
  fi
done
