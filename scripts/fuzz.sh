#!/usr/bin/env bash
# Runs every libFuzzer target in fuzz/ for a bounded time and prints the
# executions each one ran. Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# MC_FUZZ_SEED and MC_FUZZ_RUNS make a run repeatable: libFuzzer starts from
# that seed and stops after that many inputs (or the time, whichever comes
# first). The test command sets both, so a fresh clone fuzzes the same
# inputs every time; a long run leaves them unset.
#
# The corpus grows in fuzz/corpus/<target> (ignored by git) from the seeds in
# fuzz/seeds/<target>; a crash leaves its input in fuzz/artifacts/<target> and
# fails the run. cargo-fuzz is installed into .cache/tools when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
secs=${1:-10}
shift || true

tools="$root/.cache/tools"
export PATH="$tools/bin:$PATH"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz into $tools"
  cargo install --locked --quiet --root "$tools" cargo-fuzz@0.13.2
fi

# libFuzzer's coverage instrumentation needs unstable compiler flags: a
# nightly toolchain when rustup has one, otherwise the stable compiler with
# RUSTC_BOOTSTRAP.
toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  toolchain=(+nightly)
else
  export RUSTC_BOOTSTRAP=1
fi

cd fuzz
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo "${toolchain[@]}" fuzz list)
fi

echo "==> building ${#targets[@]} fuzz targets"
cargo "${toolchain[@]}" fuzz build --sanitizer none

printf '%-20s %12s %8s\n' target executions seconds
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  log=$(mktemp)
  if ! cargo "${toolchain[@]}" fuzz run --sanitizer none "$t" "corpus/$t" "seeds/$t" -- \
      -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
      ${MC_FUZZ_SEED:+-seed="$MC_FUZZ_SEED"} ${MC_FUZZ_RUNS:+-runs="$MC_FUZZ_RUNS"} >"$log" 2>&1; then
    # The panic message sits above libFuzzer's report.
    grep -m 1 -A 3 "panicked at" "$log" || true
    tail -n 40 "$log"
    echo "fuzz target $t failed; the input is in fuzz/artifacts/$t" >&2
    exit 1
  fi
  runs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1 \2/p' "$log" | tail -n 1)
  printf '%-20s %12s %8s\n' "$t" ${runs:-"? ?"}
  rm -f "$log"
done
