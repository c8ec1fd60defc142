#!/usr/bin/env bash
# Peak memory of a tenant export (issue 27, docs/benchmarks.md#purge): per backend, a small
# tenant (SMALL events) and a big one (BIG events), each event with a delivered delivery and its
# attempt, written straight in the database; then
#   - the server: its peak RSS (VmHWM of /proc/<pid>/status) after start, after
#     `GET /tenants/{small}/export` and after `GET /tenants/{big}/export` (each read to its end);
#   - the CLI: `moltbot-saas tenants export ID --out FILE` under `/usr/bin/time -v` (maximum
#     resident set size), for each tenant.
# Memory that does not grow from the small export to the big one is the "constant memory" the
# export promises. Also checks that every line parses and counts the lines by type. Memory does
# not depend on the machine's load, unlike time.
#
# Knobs: SMALL (1000), BIG (100000), BACKENDS ("sqlite postgres"), BIN
# ($CARGO_TARGET_DIR/release/moltbot-saas), PORT (3970), PG_ADMIN_URL.
set -euo pipefail
cd "$(dirname "$0")/../.."
SMALL=${SMALL:-1000}
BIG=${BIG:-100000}
BACKENDS=${BACKENDS:-sqlite postgres}
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/moltbot-saas}
PORT=${PORT:-3970}
# shellcheck source=scripts/bench/lifecycle-common.sh
. scripts/bench/lifecycle-common.sh
export SAAS_ADMIN_TOKEN="bench-operator-token-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"

hwm() { awk '/^VmHWM/ {print $2}' "/proc/$SERVER_PID/status"; }
# lines FILE: "N lines (type: n, …)", failing on a line that does not parse.
lines() {
  python3 - "$1" <<'PY'
import collections, json, sys
types = collections.Counter(json.loads(l)["type"] for l in open(sys.argv[1]) if l.strip())
print(f"{sum(types.values())} lines ({', '.join(f'{t}: {n}' for t, n in sorted(types.items()))})")
PY
}

export SAAS_ENV=development SAAS_DATA_DIR="$WORK" SAAS_WEBHOOK_DISPATCHER=false
for backend in $BACKENDS; do
  bench_database "$backend" exportrss
  declare -A ids=()
  for size in small big; do
    ids[$size]=$("$BIN" tenants create --name "Export $size" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  done
  seed_history "$DATABASE_URL" "${ids[small]}" "$SMALL" succeeded s
  seed_history "$DATABASE_URL" "${ids[big]}" "$BIG" succeeded b

  bench_start_server "$WORK/server.log" SAAS_PURGE_INTERVAL=1d RUST_LOG=warn
  curl -sf -H "Authorization: Bearer $SAAS_ADMIN_TOKEN" "http://127.0.0.1:$PORT/tenants/${ids[small]}" >/dev/null
  echo "$backend: server peak RSS after start: $(hwm) kB"
  for size in small big; do
    curl -sf -H "Authorization: Bearer $SAAS_ADMIN_TOKEN" \
      "http://127.0.0.1:$PORT/tenants/${ids[$size]}/export" -o "$WORK/http-$size.ndjson"
    echo "$backend: server peak RSS after the $size export ($(stat -c %s "$WORK/http-$size.ndjson") bytes, $(lines "$WORK/http-$size.ndjson")): $(hwm) kB"
  done
  bench_stop_server
  for size in small big; do
    /usr/bin/time -v "$BIN" tenants export "${ids[$size]}" --out "$WORK/cli-$size.ndjson" 2>"$WORK/time.txt" >/dev/null
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time.txt")
    echo "$backend: CLI export of the $size tenant ($(lines "$WORK/cli-$size.ndjson")): peak RSS $rss kB"
  done
  rm -f "$WORK"/*.ndjson
done
