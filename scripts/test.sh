#!/usr/bin/env bash
# Runs every check of the project: formatting, lints, and all tests (unit,
# integration, conformance with kubectl, kube-rs and the Python kubernetes
# client), first on the embedded API server, then the behaviour suites, the
# kubectl conformance script and the examples again on a real control plane
# (etcd, kube-apiserver, kube-controller-manager, built from their Go modules
# and cached in ~/.cache/metacontroller-rs/kube; helm likewise in .../helm,
# for the chart test), and runs every fuzz target for a few seconds. Installs or builds
# what the tests need.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# Each step's heading says how long the run has taken so far.
log() { printf '\n==> [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }

# Python venv with the official kubernetes client (for the client conformance test).
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import kubernetes' 2>/dev/null; then
  log "creating .venv with the Python kubernetes client"
  python3 -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check 'kubernetes>=29'
fi
export MC_PYTHON="$root/.venv/bin/python"
export MC_REQUIRE_PYTHON_CLIENT=1

# kubectl: the newest and the oldest found (machine images carry several
# versions side by side); otherwise whatever is on PATH; otherwise Debian's.
kubectls=()
for dir in /usr/lib/google-cloud-sdk/bin /usr/local/bin /usr/bin; do
  for k in "$dir"/kubectl.1.*; do [ -x "$k" ] && kubectls+=("$k"); done
done
if [ ${#kubectls[@]} -gt 0 ]; then
  mapfile -t sorted < <(printf '%s\n' "${kubectls[@]}" | sort -t. -k3,3n | uniq)
  newest=${sorted[${#sorted[@]}-1]}
  oldest=${sorted[0]}
  export MC_KUBECTLS="$newest:$oldest"
  export MC_KUBECTL_DIR=$(dirname "$newest")
else
  if ! command -v kubectl >/dev/null 2>&1; then
    log "installing kubectl (Debian kubernetes-client)"
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kubernetes-client >/dev/null
    else
      sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kubernetes-client >/dev/null
    fi
  fi
  export MC_KUBECTLS=$(command -v kubectl)
fi
export MC_REQUIRE_KUBECTL=1
log "kubectl under test: ${MC_KUBECTLS//:/ }"

# Headless Chromium for the live view's browser test (Debian's package).
if ! command -v chromium >/dev/null 2>&1; then
  log "installing chromium (Debian)"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
fi
export MC_CHROMIUM=$(command -v chromium)

log "cargo fmt --check"
cargo fmt --all -- --check

# Licences, banned crates and sources (deny.toml); advisories need the
# RustSec database from GitHub and are a release step (README).
tools="${XDG_CACHE_HOME:-$HOME/.cache}/metacontroller-rs/tools"
if [ ! -x "$tools/bin/cargo-deny" ] || ! "$tools/bin/cargo-deny" --version | grep -q ' 0\.20\.2$'; then
  log "installing cargo-deny 0.20.2 into $tools"
  cargo install --locked --quiet --root "$tools" cargo-deny@0.20.2
fi
log "cargo deny check licenses bans sources"
# cargo-deny reads the metadata of every platform's dependencies offline;
# a build downloads only the host's, so fetch the rest first.
cargo fetch --locked --quiet
"$tools/bin/cargo-deny" --offline check licenses bans sources

# The real control plane: Go builds it once per pinned version.
command -v go >/dev/null 2>&1 || {
  echo "Go (1.26 or newer) is needed to build the Kubernetes control plane" >&2
  exit 1
}
log "Kubernetes control plane binaries and helm ($(go version | cut -d' ' -f3); cached in ~/.cache/metacontroller-rs)"
cargo build --locked --quiet -p metacontroller-testbed
target_dir=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
build_started=$SECONDS
"$target_dir/debug/metacontroller-testbed" build
echo "(took $((SECONDS - build_started)) s)"

log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "cargo test on the embedded API server"
MC_TEST_CLUSTER=embedded cargo test --workspace --locked -- --test-threads 2

log "fuzzing: every target, seed 1, up to 100000 inputs or ${MC_FUZZ_SECONDS:-10} s (fuzz/README.md)"
MC_TEST_CLUSTER= MC_FUZZ_SEED=${MC_FUZZ_SEED:-1} MC_FUZZ_RUNS=${MC_FUZZ_RUNS:-100000} \
  ./scripts/fuzz.sh "${MC_FUZZ_SECONDS:-10}"

log "behaviour suites on the real control plane"
export MC_TEST_CLUSTER=real
# The examples test would build the testbed binary with `cargo build -p
# metacontroller-testbed`, whose features differ from the test builds' (dev
# dependencies): the dependencies would be built twice over. The binary built
# above does the same job.
export TESTBED_BIN="$target_dir/debug/metacontroller-testbed"
# Four at a time: each test starts its own control plane, then mostly waits
# (for the garbage collector's discovery pass above all), which costs no CPU.
cargo test --locked -p metacontroller-engine --tests -- --test-threads 4
cargo test --locked -p metacontroller-testbed -- --test-threads 2
cargo test --locked -p metacontroller --test examples
cargo test --locked -p metacontroller --test render --test render_rollout --test render_ssa
cargo test --locked -p metacontroller --test leader_election
cargo test --locked -p metacontroller --test metrics
cargo test --locked -p metacontroller --test process_faults
cargo test --locked -p metacontroller-bench --test quick
log "all checks passed"
