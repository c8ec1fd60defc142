#!/usr/bin/env bash
# check-fixtures.sh - render the fixture configs (every channel kind, secrets mode, dialect, the
# combined and per-tenant documents, an operator base, the bridge plugin enabled) and validate
# each one with the real gateway release of its dialect. This is what CI runs.
#
#   scripts/openclaw/check-fixtures.sh [OUT_DIR]
#
# OUT_DIR (default: a temporary directory, removed afterwards) receives OUT_DIR/current/... and
# OUT_DIR/legacy/... as written by `cargo run -p tenant-configgen --example render-fixtures`, and
# OUT_DIR/bridge, the bridge plugin as `moltbot-saas gateway install-bridge` installs it (the
# validator loads the plugin's manifest from there to check its config).
# The two dialects are validated in parallel; see validate.sh for the cache and versions.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ $# -gt 0 ]; then
  OUT="$1"; mkdir -p "$OUT"; CLEAN=""
else
  OUT="$(mktemp -d "${TMPDIR:-/tmp}/openclaw-fixtures.XXXXXX")"; CLEAN="$OUT"
fi
LOGS="$(mktemp -d "${TMPDIR:-/tmp}/openclaw-fixture-logs.XXXXXX")"
trap 'rm -rf "$LOGS" ${CLEAN:+"$CLEAN"}' EXIT

rm -rf "$OUT/current" "$OUT/legacy" "$OUT/bridge"
OUT="$(cd "$OUT" && pwd -P)"
cargo run --locked --quiet -p tenant-server --bin moltbot-saas -- gateway install-bridge "$OUT/bridge"
cargo run --locked --quiet -p tenant-configgen --example render-fixtures -- "$OUT" "$OUT/bridge"

# Install both runtimes first, one after the other (npm does not like parallel installs into
# one cache), then validate both dialects at once.
scripts/openclaw/validate.sh --dialect current --setup-only
scripts/openclaw/validate.sh --dialect legacy --setup-only

pids=()
for dialect in current legacy; do
  mapfile -t files < <(find "$OUT/$dialect" -name '*.json' | sort)
  [ ${#files[@]} -gt 0 ] || { echo "check-fixtures: no $dialect fixtures rendered" >&2; exit 2; }
  scripts/openclaw/validate.sh --dialect "$dialect" "${files[@]}" >"$LOGS/$dialect.log" 2>&1 &
  pids+=($!)
done
status=0
for i in 0 1; do
  wait "${pids[$i]}" || status=1
done
cat "$LOGS/current.log" "$LOGS/legacy.log"

# The check can fail: the validator reads the bridge plugin's manifest, so a bridge config its
# schema forbids is an error in both dialects.
for dialect in current legacy; do
  bad="$LOGS/bridge-bad-$dialect.json"
  python3 - "$OUT/$dialect/combined-bridge-inline.json" "$bad" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
doc["plugins"]["entries"]["moltbot-saas-bridge"]["config"]["spoolBytes"] = 1
json.dump(doc, open(sys.argv[2], "w"))
PY
  if scripts/openclaw/validate.sh --dialect "$dialect" "$bad" >"$LOGS/bad.log" 2>&1; then
    echo "check-fixtures: the $dialect validator accepted a bridge config its schema forbids" >&2
    status=1
  elif ! grep -q 'plugins.entries.moltbot-saas-bridge.config' "$LOGS/bad.log"; then
    echo "check-fixtures: the $dialect validator rejected the broken bridge config for another reason:" >&2
    cat "$LOGS/bad.log" >&2
    status=1
  else
    echo "ok    the $dialect validator refuses a bridge config the plugin's schema forbids"
  fi
done

if [ "$status" = 0 ]; then
  echo "check-fixtures: every rendered config is valid, with no warnings, in both dialects"
else
  echo "check-fixtures: FAILED" >&2
fi
exit "$status"
