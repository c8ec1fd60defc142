#!/usr/bin/env bash
# Runs the cargo fuzz targets of fuzz/ (libFuzzer with AddressSanitizer, on nightly) for
# FUZZ_SECONDS each (default 60): a panic, a sanitizer report, an allocation over
# FUZZ_MALLOC_LIMIT_MB (default 512) or a timeout fails the run and leaves the input in
# fuzz/artifacts/<target>/. Targets: the arguments, or all of them (`cargo fuzz list`).
#
# The corpus grows under ~/.cache/moltbot-saas/fuzz-corpus/<target> (seeded from
# fuzz/seeds/<target>), the build under ~/.cache/moltbot-saas/target-fuzz. Needs the nightly
# toolchain (`rustup toolchain install nightly`); installs cargo-fuzz from crates.io if missing.
set -euo pipefail
cd "$(dirname "$0")/../../fuzz"

secs="${FUZZ_SECONDS:-60}"
malloc_mb="${FUZZ_MALLOC_LIMIT_MB:-512}"
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/moltbot-saas/target-fuzz}"
corpus_root="${FUZZ_CORPUS:-$HOME/.cache/moltbot-saas/fuzz-corpus}"

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "fuzz: the nightly toolchain is not installed (rustup toolchain install nightly)" >&2
  exit 1
fi
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
cargo +nightly fuzz build -O
for target in "${targets[@]}"; do
  corpus="$corpus_root/$target"
  mkdir -p "$corpus"
  echo "== fuzz $target for ${secs}s"
  cargo +nightly fuzz run -O "$target" "$corpus" "seeds/$target" -- \
    -max_total_time="$secs" -max_len=65536 -malloc_limit_mb="$malloc_mb" -rss_limit_mb=2048 \
    -timeout=10 -print_final_stats=1 2>&1 | grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==|thread .* panicked|SUMMARY|Done)' || true
  # libFuzzer leaves a crash-/leak-/oom-/timeout- file for every failure it finds.
  if compgen -G "artifacts/$target/*" >/dev/null; then
    echo "fuzz: $target failed; inputs in fuzz/artifacts/$target/" >&2
    exit 1
  fi
done
echo "fuzz: ${#targets[@]} targets ran ${secs}s each without a failure"
