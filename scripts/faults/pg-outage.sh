#!/usr/bin/env bash
# The PostgreSQL fault test (tests/tests/it/faults.rs): a real server under 8 concurrent writers
# while every one of its sessions is terminated, then while its cluster is stopped for 10 s and
# started again. It runs on a PostgreSQL cluster of its own, created here on first use
# (pg_createcluster, port $FAULT_PG_PORT, trust authentication on localhost, not started at boot)
# and started if it is down; the shared cluster on 5432 is never touched. Leaves the cluster
# stopped. Runs as root (pg_ctlcluster), from a clone of the repository.
#
# Knobs: FAULT_PG_PORT (5433), FAULT_PG_CLUSTER (moltbot-faults), FAULT_PG_VERSION (the newest
# installed).
set -euo pipefail
cd "$(dirname "$0")/../.."

PORT=${FAULT_PG_PORT:-5433}
NAME=${FAULT_PG_CLUSTER:-moltbot-faults}
VERSION=${FAULT_PG_VERSION:-$(ls /etc/postgresql | sort -V | tail -n 1)}

if [ "$PORT" = 5432 ]; then
  echo "FAULT_PG_PORT must not be the shared cluster's port 5432" >&2
  exit 2
fi

log() { echo "[faults $(date -u +%H:%M:%S)] $*" >&2; }

if ! pg_lsclusters -h | awk '{print $1 "/" $2}' | grep -qx "$VERSION/$NAME"; then
  log "creating PostgreSQL $VERSION cluster $NAME on port $PORT"
  pg_createcluster --port "$PORT" --start-conf=manual "$VERSION" "$NAME" -- --auth=trust >/dev/null
fi
actual_port=$(pg_lsclusters -h | awk -v v="$VERSION" -v n="$NAME" '$1 == v && $2 == n {print $3}')
if [ "$actual_port" != "$PORT" ]; then
  echo "cluster $VERSION/$NAME listens on $actual_port, not $PORT" >&2
  exit 2
fi

stop_cluster() { pg_ctlcluster --skip-systemctl-redirect "$VERSION" "$NAME" stop -m fast >/dev/null 2>&1 || true; }
trap stop_cluster EXIT

if ! pg_isready -q -h 127.0.0.1 -p "$PORT"; then
  pg_ctlcluster --skip-systemctl-redirect "$VERSION" "$NAME" start
fi
for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p "$PORT" && break; sleep 1; done
pg_isready -h 127.0.0.1 -p "$PORT"

log "fault test on $VERSION/$NAME (port $PORT)"
out=$(mktemp)
trap 'stop_cluster; rm -f "$out"' EXIT
TEST_FAULT_PG_CLUSTER="$VERSION/$NAME" \
TEST_FAULT_PG_URL="postgres://postgres@127.0.0.1:$PORT/postgres" \
  cargo test -p moltbot-saas-tests --test it --locked -- \
  faults::the_server_rides_through_terminated_sessions_and_a_cluster_restart --exact \
  --nocapture --test-threads=1 2>&1 | tee "$out"
# The test skips (and passes) without its environment: make sure it really ran.
grep -q "writes resumed" "$out" || { echo "the fault test did not run" >&2; exit 1; }
log "fault test passed"
