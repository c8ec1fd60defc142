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
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/moltbot-saas}
# shellcheck source=scripts/bench/lifecycle-common.sh
. scripts/bench/lifecycle-common.sh

export SAAS_ENV=development SAAS_DATA_DIR="$WORK" SAAS_WEBHOOK_DISPATCHER=false
for backend in $BACKENDS; do
  bench_database "$backend" purgebench
  q() { bench_sql "$DATABASE_URL" "$1"; }
  tenant=$("$BIN" tenants create --name "Purge Bench" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  seed_history "$DATABASE_URL" "$tenant" "$N"
  if [ "$backend" = sqlite ]; then
    bytes=$(stat -c %s "${DATABASE_URL#sqlite://}")
  else
    bytes=$(q "SELECT sum(pg_total_relation_size(t)) FROM unnest(ARRAY['events','webhook_deliveries','webhook_attempts']::regclass[]) AS t")
  fi
  echo "$backend: $N events with a delivery and an attempt: $bytes bytes, $((bytes / N)) bytes an event"
  start=$(date +%s.%N)
  SAAS_RETENTION_EVENTS=1s SAAS_RETENTION_DELIVERIES=1s "$BIN" purge --once 2>/dev/null
  end=$(date +%s.%N)
  python3 -c "import sys; n=3*$N; t=$end-$start; print(f'$backend: purged {n} rows (events, deliveries, attempts) in {t:.1f} s: {n/t:.0f} rows/s')"
  if [ "$backend" = sqlite ]; then
    q "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
    echo "sqlite: file after the purge: $(stat -c %s "${DATABASE_URL#sqlite://}") bytes (auto_vacuum=$(q 'PRAGMA auto_vacuum'))"
  fi
done
