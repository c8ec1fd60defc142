#!/usr/bin/env bash
# check-fixtures.sh - render the fixture configs (every channel kind, secrets mode, dialect, the
# combined and per-tenant documents, an operator base) and validate each one with the real gateway
# release of its dialect. This is what CI runs.
#
#   scripts/openclaw/check-fixtures.sh [OUT_DIR]
#
# OUT_DIR (default: a temporary directory, removed afterwards) receives OUT_DIR/current/... and
# OUT_DIR/legacy/... as written by `cargo run -p tenant-configgen --example render-fixtures`.
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

rm -rf "$OUT/current" "$OUT/legacy"
cargo run --locked --quiet -p tenant-configgen --example render-fixtures -- "$OUT"

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
if [ "$status" = 0 ]; then
  echo "check-fixtures: every rendered config is valid, with no warnings, in both dialects"
else
  echo "check-fixtures: FAILED" >&2
fi
exit "$status"
