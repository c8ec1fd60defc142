#!/usr/bin/env bash
# Runs the cargo fuzz targets of fuzz/ (libFuzzer, on nightly) for FUZZ_SECONDS each: a panic
# (debug assertions and overflow checks on), a crash or stack overflow, a sanitizer report, one
# allocation over FUZZ_MALLOC_LIMIT_MB, a resident size over FUZZ_RSS_LIMIT_MB or an input taking
# longer than FUZZ_TIMEOUT seconds fails the run and leaves the input in fuzz/artifacts/<target>/
# (replay it with `cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>`). Targets:
# the arguments, or all of them (`cargo fuzz list`). Prints one line of figures per target.
#
# Knobs (environment):
#   FUZZ_SECONDS          seconds per target (default 60)
#   FUZZ_SANITIZER        none (default) or address, leak, memory, thread (cargo fuzz -s;
#                         AddressSanitizer builds the tree far more slowly)
#   FUZZ_MALLOC_LIMIT_MB  largest single allocation (default 512)
#   FUZZ_RSS_LIMIT_MB     largest resident size (default 2048)
#   FUZZ_TIMEOUT          seconds one input may take (default 10)
#   FUZZ_MAX_LEN          longest input in bytes (default 65536)
#   FUZZ_CODEGEN_UNITS    codegen units (default 16, where cargo fuzz's own is 1: a faster
#                         build, a somewhat slower run)
#   FUZZ_RUSTFLAGS        added to cargo fuzz's own flags (default: line tables only for debug
#                         info, enough for a panic's backtrace)
#   FUZZ_TARGET_DIR       the build (default ~/.cache/moltbot-saas/fuzz-target-<sanitizer>)
#   FUZZ_CORPUS           the growing corpus (default ~/.cache/moltbot-saas/fuzz-corpus/<target>,
#                         seeded from the committed fuzz/seeds/<target>)
#   FUZZ_REPORT           a file to append the per-target figures to (tab-separated)
#   FUZZ_NICE             niceness of the build and the runs (default 10)
#
# Needs the nightly toolchain (`rustup toolchain install nightly`); installs the pinned
# cargo-fuzz from crates.io into ~/.cache/moltbot-saas/cargo-fuzz-<version> if missing.
set -euo pipefail
cd "$(dirname "$0")/../../fuzz"

CARGO_FUZZ_VERSION=0.13.2
secs="${FUZZ_SECONDS:-60}"
sanitizer="${FUZZ_SANITIZER:-none}"
malloc_mb="${FUZZ_MALLOC_LIMIT_MB:-512}"
rss_mb="${FUZZ_RSS_LIMIT_MB:-2048}"
timeout="${FUZZ_TIMEOUT:-10}"
max_len="${FUZZ_MAX_LEN:-65536}"
cache="$HOME/.cache/moltbot-saas"
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$cache/fuzz-target-$sanitizer}"
corpus_root="${FUZZ_CORPUS:-$cache/fuzz-corpus}"
nice=(nice -n "${FUZZ_NICE:-10}")

die() { echo "fuzz: $*" >&2; exit 1; }

rustup run nightly rustc --version >/dev/null 2>&1 \
  || die "the nightly toolchain is not installed (rustup toolchain install nightly)"
tools="$cache/cargo-fuzz-$CARGO_FUZZ_VERSION"
if ! "$tools/bin/cargo-fuzz" --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  echo "== installing cargo-fuzz $CARGO_FUZZ_VERSION into $tools"
  "${nice[@]}" cargo install --locked --quiet cargo-fuzz --version "$CARGO_FUZZ_VERSION" --root "$tools"
fi
export PATH="$tools/bin:$PATH"

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
# Debug assertions (and with them overflow checks) on: an overflow is a finding too.
build=(--release --debug-assertions --sanitizer "$sanitizer" --codegen-units "${FUZZ_CODEGEN_UNITS:-16}")
export RUSTFLAGS="${FUZZ_RUSTFLAGS--Cdebuginfo=line-tables-only}"
echo "== building ${#targets[@]} targets (sanitizer: $sanitizer) in $CARGO_TARGET_DIR"
start=$(date +%s)
"${nice[@]}" cargo +nightly fuzz build "${build[@]}"
echo "== built in $(( $(date +%s) - start ))s"

failed=()
for target in "${targets[@]}"; do
  corpus="$corpus_root/$target"
  mkdir -p "$corpus" "artifacts/$target"
  log="$(mktemp -t "fuzz-$target.XXXXXX.log")"
  echo "== fuzz $target for ${secs}s"
  status=0
  began=$(date +%s)
  marker="$(mktemp)"
  "${nice[@]}" cargo +nightly fuzz run "${build[@]}" "$target" "$corpus" "seeds/$target" -- \
    -max_total_time="$secs" -max_len="$max_len" -malloc_limit_mb="$malloc_mb" \
    -rss_limit_mb="$rss_mb" -timeout="$timeout" -print_final_stats=1 >"$log" 2>&1 || status=$?
  took=$(( $(date +%s) - began ))
  # The last status line: "#<execs> DONE cov: <edges> ft: <features> corp: <n>/<size> ...".
  last="$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)"
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
  rss="$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -n 1)"
  cov="$(printf '%s' "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')"
  ft="$(printf '%s' "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')"
  corp="$(printf '%s' "$last" | sed -n 's/.* corp: \([^ ]*\).*/\1/p')"
  # Only what this run wrote: older findings stay for replaying, but do not fail it.
  findings="$(find "artifacts/$target" -type f -newer "$marker" | wc -l)"
  rm -f "$marker"
  printf '%s: %s execs in %ss, cov %s, ft %s, corpus %s, peak rss %s MB, findings %s\n' \
    "$target" "${execs:-?}" "$took" "${cov:-?}" "${ft:-?}" "${corp:-?}" "${rss:-?}" "$findings"
  if [ -n "${FUZZ_REPORT:-}" ]; then
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$target" "$sanitizer" "${execs:-?}" \
      "$took" "${cov:-?}" "${ft:-?}" "${corp:-?}" "${rss:-?}" "$findings" >>"$FUZZ_REPORT"
  fi
  if [ "$status" -ne 0 ] || [ "$findings" -gt 0 ]; then
    # What libFuzzer said about the failure: the panic or the report, and the input's file.
    grep -E -A12 'panicked at|==[0-9]+==|ERROR: libFuzzer|SUMMARY|out-of-memory|Test unit written' "$log" \
      | head -n 60 >&2 || tail -n 40 "$log" >&2
    echo "fuzz: $target failed (exit $status); the input is in fuzz/artifacts/$target/, the log in $log" >&2
    failed+=("$target")
  else
    rm -f "$log"
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  die "${#failed[@]} of ${#targets[@]} targets failed: ${failed[*]}"
fi
echo "fuzz: ${#targets[@]} targets ran ${secs}s each (sanitizer: $sanitizer) without a finding"
