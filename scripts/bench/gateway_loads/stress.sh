#!/usr/bin/env bash
# The gateway_loads triggers under concurrent writers on PostgreSQL (pgbench, 10 connections):
# opposite moves under the fleet lock, placement rows changed by hand (no lock taken first),
# move stamps, transactions writing two tenants' channels in both orders, deletes and restores,
# creates and purges. Prints pgbench's failure counts (deadlocks included) and the gateways whose
# stored count differs from a recount (none expected). docs/fleet.md, "Concurrency on PostgreSQL".
#
# Usage: scripts/bench/gateway_loads/stress.sh [SECONDS]
# Knobs: PG_ADMIN_URL (postgres://postgres@127.0.0.1:5432/postgres), MIGRATIONS (migrations/postgres;
# point it at a tree with another gateway_loads migration to compare).
set -euo pipefail
cd "$(dirname "$0")/../../.."
SECS=${1:-30}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
MIGRATIONS=${MIGRATIONS:-migrations/postgres}
DB="gateway_loads_stress_$$"
URL="${PG_ADMIN_URL%/*}/$DB"
trap 'psql -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
psql -q "$PG_ADMIN_URL" -c "CREATE DATABASE $DB" >/dev/null
for d in "$MIGRATIONS"/*/; do psql -q "$URL" -v ON_ERROR_STOP=1 -1 -f "$d/up.sql" >/dev/null; done
psql -q "$URL" -v ON_ERROR_STOP=1 -f scripts/bench/gateway_loads/stress/setup.sql >/dev/null
S=scripts/bench/gateway_loads/stress
pgbench -n -c 10 -j 2 -T "$SECS" --failures-detailed \
  -f $S/move.sql@3 -f $S/manualmove.sql@1 -f $S/stamp.sql@1 -f $S/chan.sql@6 -f $S/tdel.sql@2 \
  -f $S/churn.sql@2 "$URL" 2>&1 | grep -E "^(number of|tps)"
echo "stored vs recounted (rows are mismatches):"
psql -q "$URL" -c "SELECT * FROM mismatch" -c "SELECT * FROM stored"
