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
# fails the run. Replay one with fuzz/target/<host triple>/release/<target> <file>.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
secs=${1:-10}
shift || true

# The build cargo-fuzz does for `--sanitizer none`, without needing
# cargo-fuzz: libFuzzer's coverage instrumentation through stable -C flags,
# for the host triple only (so build scripts stay uninstrumented), release
# with line tables. One binary per target in fuzz/target/<triple>/release.
triple=$(rustc -vV | sed -n 's/^host: //p')
instrument="-Cpasses=sancov-module"
for arg in sanitizer-coverage-level=4 sanitizer-coverage-inline-8bit-counters \
    sanitizer-coverage-pc-table sanitizer-coverage-trace-compares \
    sanitizer-coverage-stack-depth simplifycfg-branch-fold-threshold=0; do
  instrument+=" -Cllvm-args=-$arg"
done
instrument+=" --cfg fuzzing -Cdebug-assertions"

cd fuzz
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(sed -n 's/^name = "\([a-z_]*\)"$/\1/p' Cargo.toml | grep -v '^metacontroller-fuzz$')
fi

echo "==> building ${#targets[@]} fuzz targets"
RUSTFLAGS="$instrument" cargo build --locked --release --bins --target "$triple" \
  --config 'profile.release.debug="line-tables-only"'
bin="$root/fuzz/target/$triple/release"

printf '%-20s %12s %8s\n' target executions seconds
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  log=$(mktemp)
  mkdir -p "artifacts/$t"
  if ! "$bin/$t" "corpus/$t" "seeds/$t" -artifact_prefix="artifacts/$t/" \
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
