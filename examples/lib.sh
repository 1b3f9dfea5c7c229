# The harness shared by every examples/<name>/test.sh: a private API server
# with Metacontroller running against it, the example's hook, kubectl, bounded
# waits and failure reports. A script sources this file, then calls
# `start_metacontroller` and `start_hook`, and ends with `pass`.
#
# Environment:
#   MC_TEST_CLUSTER     `embedded` (default): `metacontroller dev`, the
#                       embedded API server with the controllers in-process;
#                       `real`: a fresh Kubernetes control plane from
#                       `metacontroller-testbed up` (etcd, kube-apiserver,
#                       kube-controller-manager), Metacontroller's CRDs from
#                       manifests/, and `metacontroller run` against it
#   METACONTROLLER_BIN  the metacontroller binary (default: built from this
#                       repository with `cargo build --release`)
#   TESTBED_BIN         the metacontroller-testbed binary, for `real`
#                       (default: built the same way)
#   KUBECTL             the kubectl to use (default: kubectl)
#   EXAMPLE_TIMEOUT     seconds allowed for each wait (default: 60 embedded,
#                       120 real: the real garbage collector notices a new
#                       CRD's objects only at its next discovery pass, ~30 s)
#   EXAMPLE_KEEP        when set, a failed run keeps its private folder (logs
#                       of every process; the real cluster's files too)
#
# What a script gets: $here (its folder), $root (the repository), $name (the
# example), $tmp (a private folder, removed at exit), $timeout_s, $cluster
# (`embedded` or `real`), $hook_port after start_hook, KUBECONFIG after
# start_metacontroller, and the functions below.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)
root=$(cd "$here/../.." && pwd)
name=$(basename "$here")
cluster=${MC_TEST_CLUSTER:-embedded}
case $cluster in
embedded) timeout_s=${EXAMPLE_TIMEOUT:-60} ;;
real) timeout_s=${EXAMPLE_TIMEOUT:-120} ;;
*)
  echo "FAIL [$name]: MC_TEST_CLUSTER=$cluster: expected 'embedded' or 'real'" >&2
  exit 2
  ;;
esac
kubectl_bin=${KUBECTL:-kubectl}
started=$SECONDS

# --- private folder, background processes, failure reports --------------------

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mc-example-$name.XXXXXX")
pids=()
reported=

# report MESSAGE: prints the failure and the tails of the logs.
report() {
  echo "FAIL [$name] ($cluster): $*" >&2
  local log lines
  for log in metacontroller.log hook.log testbed.log; do
    if [ -s "$tmp/$log" ]; then
      lines=40
      [ "$log" = metacontroller.log ] || lines=20
      echo "--- last lines of $log ---" >&2
      tail -n "$lines" "$tmp/$log" >&2
    fi
  done
  reported=1
}
fail() {
  report "$@"
  exit 1
}
# run CMD...: CMD must succeed (its output is shown).
run() { "$@" || fail "command failed (exit $?): $*"; }

stop() { # stop PID: SIGTERM, SIGKILL after 10 s
  local pid=$1 guard
  kill "$pid" 2>/dev/null || return 0
  (sleep 10 && kill -9 "$pid") >/dev/null 2>&1 &
  guard=$!
  wait "$pid" 2>/dev/null || true
  kill "$guard" 2>/dev/null || true
  wait "$guard" 2>/dev/null || true
}
cleanup() {
  local rc=$? i
  if [ "$rc" -ne 0 ] && [ -z "$reported" ]; then report "exited with status $rc"; fi
  # Last started, first stopped: the hook, Metacontroller, then the server.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop "${pids[i]}"; done
  if [ "$rc" -ne 0 ] && [ -n "${EXAMPLE_KEEP:-}" ]; then
    echo "files kept in $tmp" >&2
  else
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

alive() { kill -0 "$1" 2>/dev/null && ! grep -qs ') Z' "/proc/$1/stat"; }

# --- waits and checks ----------------------------------------------------------

# wait_for WHAT CMD...: runs CMD every 0.5 s until it succeeds (bounded).
wait_for() {
  local what=$1 deadline=$((SECONDS + timeout_s))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "timed out after ${timeout_s}s waiting for: $what"
    sleep 0.5
  done
  echo "ok: $what"
}

# check WHAT CMD...: CMD must succeed now.
check() {
  local what=$1
  shift
  "$@" >/dev/null 2>&1 || fail "check failed: $what"
  echo "ok: $what"
}

k() { "$kubectl_bin" --kubeconfig "$KUBECONFIG" --cache-dir "$tmp/kube-cache" "$@"; }
field() { k get "$1" -o "jsonpath=$2" "${@:3}" 2>/dev/null; } # field OBJECT JSONPATH [FLAGS...]
field_is() { [ "$(field "$1" "$2" "${@:4}")" = "$3" ]; }       # field_is OBJECT JSONPATH VALUE [FLAGS...]
gone() { local out; out=$(k get "$@" --ignore-not-found -o name) && [ -z "$out" ]; }
differ() { [ "$1" != "$2" ]; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# uid_changed OBJECT OLD_UID [FLAGS...]: the object exists with another uid.
uid_changed() { local uid; uid=$(field "$1" '{.metadata.uid}' "${@:3}") && [ -n "$uid" ] && [ "$uid" != "$2" ]; }

# namespace_ready NAMESPACE: Pods can be created in it. A real API server's
# ServiceAccount admission rejects Pods until the namespace's `default`
# ServiceAccount exists (kube-controller-manager creates it).
namespace_ready() {
  [ "$cluster" = embedded ] && return 0
  wait_for "ServiceAccount $1/default exists" k -n "$1" get serviceaccount default
}

# --- the binaries ------------------------------------------------------------------

command -v "$kubectl_bin" >/dev/null || fail "kubectl not found (set KUBECTL)"
command -v python3 >/dev/null || fail "python3 not found"

# release_binary PACKAGE: builds PACKAGE with cargo and prints its binary.
release_binary() {
  echo "building $1 (cargo build --release -p $1)" >&2
  (cd "$root" && cargo build --release --quiet -p "$1") || fail "cargo build -p $1 failed"
  local target_dir
  target_dir=$(cd "$root" && cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
  echo "$target_dir/release/$1"
}

# wait_for_kubeconfig PID OUTPUT WHAT LIMIT: sets KUBECONFIG from the
# `export KUBECONFIG=` line process PID prints to OUTPUT.
wait_for_kubeconfig() {
  local pid=$1 out=$2 what=$3 deadline=$((SECONDS + $4))
  KUBECONFIG=
  until [ -n "$KUBECONFIG" ]; do
    alive "$pid" || fail "$what exited before printing 'export KUBECONFIG='"
    ((SECONDS < deadline)) || fail "no 'export KUBECONFIG=' from $what within ${4}s"
    sleep 0.2
    KUBECONFIG=$(sed -n 's/^export KUBECONFIG=//p' "$out" | head -n 1)
  done
  export KUBECONFIG
}

# --- the server and Metacontroller ------------------------------------------------

# start_metacontroller: an API server with Metacontroller running against it;
# sets KUBECONFIG. Metacontroller's log is $tmp/metacontroller.log.
start_metacontroller() {
  local mc=${METACONTROLLER_BIN:-}
  [ -n "$mc" ] || mc=$(release_binary metacontroller)
  [ -x "$mc" ] || fail "metacontroller binary not found at $mc"
  case $cluster in
  embedded)
    NO_COLOR=1 "$mc" dev --port 0 --kubeconfig-out "$tmp/kubeconfig" \
      --metrics-address 0 --health-probe-bind-address 0 \
      >"$tmp/metacontroller.out" 2>"$tmp/metacontroller.log" &
    pids+=("$!")
    wait_for_kubeconfig "$!" "$tmp/metacontroller.out" "metacontroller dev" "$timeout_s"
    echo "ok: metacontroller dev is up (KUBECONFIG=$KUBECONFIG)"
    ;;
  real)
    start_real_cluster
    NO_COLOR=1 detached "$mc" run --kubeconfig "$KUBECONFIG" \
      --metrics-address 0 --health-probe-bind-address 0 \
      >"$tmp/metacontroller.out" 2>"$tmp/metacontroller.log" &
    pids+=("$!")
    sleep 0.5
    alive "${pids[-1]}" || fail "metacontroller run exited at start"
    echo "ok: metacontroller run is up"
    ;;
  esac
}

# start_real_cluster: a fresh control plane from `metacontroller-testbed up`
# with Metacontroller's CRDs installed; sets KUBECONFIG. The testbed stops
# when its standard input closes, so it cannot outlive this script even if
# the script is killed: its stdin is a pipe whose only writer is this shell
# (background processes started later close it: see `detached`).
testbed_stdin=
start_real_cluster() {
  local tb=${TESTBED_BIN:-} crd
  [ -n "$tb" ] || tb=$(release_binary metacontroller-testbed)
  [ -x "$tb" ] || fail "metacontroller-testbed binary not found at $tb"
  local pid
  mkfifo "$tmp/testbed.stdin"
  "$tb" up --stop-on-eof --dir "$tmp/cluster" \
    <"$tmp/testbed.stdin" >"$tmp/testbed.out" 2>"$tmp/testbed.log" &
  pid=$!
  pids+=("$pid")
  exec {testbed_stdin}>"$tmp/testbed.stdin"
  # Startup takes 10-20 s (longer on a loaded machine).
  wait_for_kubeconfig "$pid" "$tmp/testbed.out" "metacontroller-testbed up" $((timeout_s > 180 ? timeout_s : 180))
  echo "ok: a real control plane is up (KUBECONFIG=$KUBECONFIG)"
  run k create -f "$root/manifests/metacontroller-crds-v1.yaml" >/dev/null
  for crd in compositecontrollers decoratorcontrollers controllerrevisions; do
    run k wait --for condition=Established --timeout "${timeout_s}s" "crd/$crd.metacontroller.k8s.io" >/dev/null
  done
  echo "ok: Metacontroller's CRDs are installed"
  namespace_ready default
}

# detached CMD...: runs CMD without the testbed's stdin pipe.
detached() {
  if [ -n "$testbed_stdin" ]; then
    exec "$@" {testbed_stdin}>&-
  else
    exec "$@"
  fi
}

# start_hook: the example's hook.py on a free port; sets hook_port.
start_hook() {
  hook_port=$(free_port)
  detached python3 "$here/hook.py" "$hook_port" >"$tmp/hook.log" 2>&1 &
  pids+=("$!")
  wait_for "hook listening on 127.0.0.1:$hook_port" port_open "$hook_port"
}

# apply_controller FILE: applies FILE with ${HOOK_PORT} replaced by the hook's port.
apply_controller() {
  sed "s/\${HOOK_PORT}/$hook_port/g" "$1" >"$tmp/$(basename "$1")"
  run k apply -f "$tmp/$(basename "$1")"
}

pass() { echo "PASS [$name] ($cluster) in $((SECONDS - started))s"; }
