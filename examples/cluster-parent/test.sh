#!/usr/bin/env bash
# End-to-end check of the cluster-parent example on `metacontroller dev`.
#
# Environment: METACONTROLLER_BIN (else the binary is built with cargo),
# KUBECTL (else `kubectl`), EXAMPLE_TIMEOUT (seconds per wait, default 60).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
name=$(basename "$here")
timeout_s=${EXAMPLE_TIMEOUT:-60}
kubectl_bin=${KUBECTL:-kubectl}
started=$SECONDS

# --- harness: private temp dir, background processes, waits -----------------

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mc-example-$name.XXXXXX")
pids=()
reported=

# report MESSAGE: prints the failure and the tails of the logs.
report() {
  echo "FAIL [$name]: $*" >&2
  if [ -s "$tmp/metacontroller.log" ]; then
    echo "--- last lines of the metacontroller log ---" >&2
    tail -n 40 "$tmp/metacontroller.log" >&2
  fi
  if [ -s "$tmp/hook.log" ]; then
    echo "--- last lines of the hook log ---" >&2
    tail -n 20 "$tmp/hook.log" >&2
  fi
  reported=1
}
fail() {
  report "$@"
  exit 1
}
# run CMD...: CMD must succeed (its output is shown).
run() { "$@" || fail "command failed (exit $?): $*"; }

stop() { # stop PID: SIGTERM, SIGKILL after 5 s
  local pid=$1 guard
  kill "$pid" 2>/dev/null || return 0
  (sleep 5 && kill -9 "$pid") >/dev/null 2>&1 &
  guard=$!
  wait "$pid" 2>/dev/null || true
  kill "$guard" 2>/dev/null || true
  wait "$guard" 2>/dev/null || true
}
cleanup() {
  local rc=$? pid
  if [ "$rc" -ne 0 ] && [ -z "$reported" ]; then report "exited with status $rc"; fi
  for pid in ${pids[@]+"${pids[@]}"}; do stop "$pid"; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

alive() { kill -0 "$1" 2>/dev/null && ! grep -qs ') Z' "/proc/$1/stat"; }

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
field() { k get "$1" -o "jsonpath=$2" 2>/dev/null; } # field OBJECT JSONPATH
field_is() { [ "$(field "$1" "$2")" = "$3" ]; }      # field_is OBJECT JSONPATH VALUE
gone() { local out; out=$(k get "$@" --ignore-not-found -o name) && [ -z "$out" ]; }
differ() { [ "$1" != "$2" ]; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# --- metacontroller dev and the hook ------------------------------------------

command -v "$kubectl_bin" >/dev/null || fail "kubectl not found (set KUBECTL)"
command -v python3 >/dev/null || fail "python3 not found"

if [ -n "${METACONTROLLER_BIN:-}" ]; then
  mc=$METACONTROLLER_BIN
else
  echo "building metacontroller (cargo build --release -p metacontroller)"
  (cd "$root" && cargo build --release --quiet -p metacontroller)
  target_dir=$(cd "$root" && cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
  mc=$target_dir/release/metacontroller
fi

NO_COLOR=1 "$mc" dev --port 0 --kubeconfig-out "$tmp/kubeconfig" \
  --metrics-address 0 --health-probe-bind-address 0 \
  >"$tmp/metacontroller.out" 2>"$tmp/metacontroller.log" &
mc_pid=$!
pids+=("$mc_pid")
deadline=$((SECONDS + timeout_s))
KUBECONFIG=
until [ -n "$KUBECONFIG" ]; do
  alive "$mc_pid" || fail "metacontroller dev exited before printing 'export KUBECONFIG='"
  ((SECONDS < deadline)) || fail "no 'export KUBECONFIG=' from metacontroller dev within ${timeout_s}s"
  sleep 0.2
  KUBECONFIG=$(sed -n 's/^export KUBECONFIG=//p' "$tmp/metacontroller.out")
done
export KUBECONFIG
echo "ok: metacontroller dev is up (KUBECONFIG=$KUBECONFIG)"

hook_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 "$here/hook.py" "$hook_port" >"$tmp/hook.log" 2>&1 &
pids+=("$!")
wait_for "hook listening on 127.0.0.1:$hook_port" port_open "$hook_port"

# --- the example -----------------------------------------------------------------

# The child lives in namespace team-a.
cm_field() { k -n team-a get configmap/greeting -o "jsonpath=$1" 2>/dev/null; }
cm_is() { [ "$(cm_field "$1")" = "$2" ]; }
cm_uid_changed() { local uid; uid=$(cm_field '{.metadata.uid}') && [ -n "$uid" ] && [ "$uid" != "$1" ]; }

run k apply -f "$here/crd.yaml"
run k wait --for condition=Established --timeout "${timeout_s}s" crd/sharedconfigs.demo.example.com
sed "s/\${HOOK_PORT}/$hook_port/g" "$here/controller.yaml" >"$tmp/controller.yaml"
run k apply -f "$tmp/controller.yaml"
run k apply -f "$here/shared-config.yaml"

wait_for "ConfigMap team-a/greeting created by the cluster-scoped SharedConfig" \
  k -n team-a get configmap/greeting
check "the ConfigMap holds spec.data" cm_is '{.data.greeting} {.data.audience}' 'hello world'
parent_uid=$(field sharedconfig/greeting '{.metadata.uid}')
check "the ConfigMap is controlled by the SharedConfig (cluster-scoped owner)" \
  cm_is '{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].uid}/{.metadata.ownerReferences[0].controller}' \
  "SharedConfig/$parent_uid/true"
wait_for "SharedConfig status: configMap=team-a/greeting observed=1" \
  field_is sharedconfig/greeting '{.status.configMap}/{.status.observed}' team-a/greeting/1

# A child deleted by hand comes back.
old_uid=$(cm_field '{.metadata.uid}')
run k -n team-a delete configmap/greeting --wait=false
wait_for "the deleted ConfigMap is recreated (new uid)" cm_uid_changed "$old_uid"
check "the recreated ConfigMap holds spec.data" cm_is '{.data.greeting}' hello

# InPlace: a spec change updates the live ConfigMap (same uid).
uid=$(cm_field '{.metadata.uid}')
run k patch sharedconfig greeting --type merge -p '{"spec":{"data":{"greeting":"bonjour"}}}'
wait_for "the ConfigMap is updated in place (greeting=bonjour, same uid)" \
  cm_is '{.data.greeting} {.metadata.uid}' "bonjour $uid"

# Deleting the parent cascades to the namespaced child.
run k delete sharedconfig greeting --wait=false
wait_for "the ConfigMap is garbage-collected with its parent" gone -n team-a configmap/greeting

echo "PASS [$name] in $((SECONDS - started))s"
