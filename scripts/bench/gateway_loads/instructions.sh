#!/usr/bin/env bash
# What the gateway_loads triggers cost inside PostgreSQL, in instructions (callgrind, so
# independent of the machine's load): representative statements of the write paths (a create
# batch of 50 tenants, channel batches of 50 and single channel writes, a tenant update, a move
# under the fleet lock, a channel batch delete), ten times each, on 1,000 tenants placed on two
# gateways, in a private PostgreSQL cluster in single-user mode (one process, no other client):
# once with the migrations before gateway_loads (base) and once with them all (head). Prints the
# median instructions per statement of each. docs/benchmarks.md, "The triggers' cost".
#
# callgrind dumps the counts before every StartTransactionCommand, so each dump is one statement
# (planning included: single-user mode sends simple queries), the same on both sides.
#
# Usage (as root: the cluster runs as the postgres user): scripts/bench/gateway_loads/instructions.sh
# Knobs: PGBIN (/usr/lib/postgresql/15/bin), WORK (/tmp/gateway-loads-instructions).
set -euo pipefail
cd "$(dirname "$0")/../../.."
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
WORK=${WORK:-/tmp/gateway-loads-instructions}
REPO=$PWD
rm -rf "$WORK" && mkdir -p "$WORK" && cp scripts/bench/gateway_loads/{gen.py,an.py} "$WORK"/
(cd "$WORK" && python3 gen.py && echo "SELECT 1" >> work.sql)
chown -R postgres "$WORK"
as_pg() { runuser -u postgres -- "$@"; }
as_pg "$PGBIN/initdb" -D "$WORK/data" -A trust -U postgres >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$WORK/data" -l "$WORK/log" -w \
  -o "-p 5499 -k $WORK -c listen_addresses='' -c fsync=off" start >/dev/null
P="psql -h $WORK -p 5499 -U postgres -v ON_ERROR_STOP=1 -q"
for db in base head; do
  $P -c "CREATE DATABASE $db"
  for d in "$REPO"/migrations/postgres/*/; do
    case $d in *gateway_loads*) [ $db = head ] || continue ;; esac
    $P -d $db -1 -f "$d/up.sql" >/dev/null
  done
  $P -d $db -f "$WORK/setup.sql" >/dev/null
  $P -d $db -c "VACUUM ANALYZE"
done
as_pg "$PGBIN/pg_ctl" -D "$WORK/data" -w stop >/dev/null
for db in base head; do
  mkdir -p "$WORK/cg/$db" && chown postgres "$WORK/cg/$db"
  as_pg valgrind --tool=callgrind --dump-before=StartTransactionCommand \
    --callgrind-out-file="$WORK/cg/$db/out" "$PGBIN/postgres" --single -D "$WORK/data" \
    -c fsync=off $db < "$WORK/work.sql" > "$WORK/cg/$db.stdout" 2> "$WORK/cg/$db.stderr"
  ! grep -i error "$WORK/cg/$db.stdout"
done
(cd "$WORK" && python3 an.py)
