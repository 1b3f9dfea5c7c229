#!/usr/bin/env bash
# End-to-end check of the indexed-job example on `metacontroller dev`.
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

# set_phase POD PHASE: there is no kubelet, so the test plays its part.
set_phase() {
  k patch pod "$1" --subresource=status --type=merge -p "{\"status\":{\"phase\":\"$2\"}}" >/dev/null
}
# uid_changed OBJECT OLD_UID: the object exists with another uid.
uid_changed() { local uid; uid=$(field "$1" '{.metadata.uid}') && [ -n "$uid" ] && [ "$uid" != "$2" ]; }
job_status() { field_is indexedjob/print-index '{.status.succeeded}/{.status.active}/{.status.completed}' "$1"; }

run k apply -f "$here/crd.yaml"
run k wait --for condition=Established --timeout "${timeout_s}s" crd/indexedjobs.demo.example.com
sed "s/\${HOOK_PORT}/$hook_port/g" "$here/controller.yaml" >"$tmp/controller.yaml"
run k apply -f "$tmp/controller.yaml"
run k apply -f "$here/job.yaml"

for i in 0 1 2; do
  wait_for "Pod print-index-$i created" k get pod "print-index-$i"
  check "Pod print-index-$i has JOB_COMPLETION_INDEX=$i and the template's label" \
    field_is "pod/print-index-$i" \
    '{.spec.containers[0].env[?(@.name=="JOB_COMPLETION_INDEX")].value}/{.metadata.labels.app}' "$i/print-index"
done
wait_for "status succeeded=0 active=3 completed=false" job_status 0/3/false

# A failed index is retried: its Pod is deleted and created again.
old_uid=$(field pod/print-index-1 '{.metadata.uid}')
run set_phase print-index-1 Failed
wait_for "failed Pod print-index-1 replaced by a new one" uid_changed pod/print-index-1 "$old_uid"
check "the new print-index-1 is not Failed" differ Failed "$(field pod/print-index-1 '{.status.phase}')"

run set_phase print-index-0 Succeeded
wait_for "status succeeded=1 active=2 completed=false" job_status 1/2/false
run set_phase print-index-1 Succeeded
run set_phase print-index-2 Succeeded
wait_for "status succeeded=3 active=0 completed=true" job_status 3/0/true
check "exactly 3 Pods" field_is indexedjob/print-index '{.spec.completions}' \
  "$(k get pods -l app=print-index -o name | wc -l | tr -d ' ')"

# Complete for good: a Pod deleted now is not created again.
run k delete pod print-index-0 --wait=false
wait_for "status after deleting print-index-0: succeeded=2 active=0 completed=true" job_status 2/0/true
check "print-index-0 was not created again" gone pod print-index-0

run k delete indexedjob print-index --wait=false
wait_for "the job's Pods are garbage-collected with it" gone pods -l app=print-index

echo "PASS [$name] in $((SECONDS - started))s"
