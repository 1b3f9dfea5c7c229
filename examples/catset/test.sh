#!/usr/bin/env bash
# End-to-end run of the catset example on `metacontroller dev`.
#
# There is no kubelet on the embedded API server, so this script plays one:
# it marks each CatSet Pod Running and Ready (PATCH of the Pod's status
# subresource with kubectl), one pass at a time, and prints what it sees, so
# the ordered start-up, the rolling update and the scale-down can be followed
# step by step.
#
# Environment: METACONTROLLER_BIN (else the binary is built with
# `cargo build --release -p metacontroller`), KUBECTL (else `kubectl`),
# EXAMPLE_TIMEOUT (seconds per wait, default 60).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
name=$(basename "$here")
timeout_s=${EXAMPLE_TIMEOUT:-60}
kubectl_bin=${KUBECTL:-kubectl}
started=$SECONDS

# --- processes, temporary files, failure reports -------------------------------

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mc-example-$name.XXXXXX")
pids=()

terminate() { # terminate PID: SIGTERM, then SIGKILL if still there after 5 s
  local pid=$1 waited=0
  kill "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null && ((waited < 50)); do
    sleep 0.1
    waited=$((waited + 1))
  done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local pid
  for pid in ${pids[@]+"${pids[@]}"}; do terminate "$pid"; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
  echo "FAIL [$name]: $*" >&2
  local log
  for log in metacontroller.log hook.log; do
    if [ -s "$tmp/$log" ]; then
      echo "--- last lines of $log ---" >&2
      tail -n 30 "$tmp/$log" >&2
    fi
  done
  exit 1
}

k() { "$kubectl_bin" --kubeconfig "$KUBECONFIG" --cache-dir "$tmp/kube-cache" "$@"; }
field() { k get "$1" -o "jsonpath=$2" 2>/dev/null; } # field OBJECT JSONPATH
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# --- the fake kubelet and what it observes --------------------------------------

# state: one line about the CatSet and its Pods, computed from `kubectl get -o
# json`. Prints "<unavailable> <pods> <images> <updated condition>"; the
# first field counts the ordinals below spec.replicas without a ready Pod.
state() {
  {
    k get catset nginx-backend -o json 2>/dev/null || echo '{}'
    k get pods -l app=nginx -o json 2>/dev/null || echo '{"items": []}'
  } | python3 -c '
import json, sys
decoder, text, docs = json.JSONDecoder(), sys.stdin.read(), []
pos = 0
while pos < len(text):
    while pos < len(text) and text[pos].isspace():
        pos += 1
    if pos < len(text):
        doc, pos = decoder.raw_decode(text, pos)
        docs.append(doc)
catset, pods = docs[0], docs[1]["items"]
def ready(p):
    s = p.get("status") or {}
    return s.get("phase") == "Running" and not p["metadata"].get("deletionTimestamp") and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in s.get("conditions") or [])
byname = {p["metadata"]["name"]: p for p in pods}
replicas = (catset.get("spec") or {}).get("replicas", 0)
unavailable = [i for i in range(replicas) if not ready(byname.get("nginx-backend-%d" % i, {"metadata": {}}))]
listing = ",".join("%s=%s%s" % (n.rsplit("-", 1)[1], byname[n]["spec"]["containers"][0]["image"].split(":")[-1],
    "" if ready(byname[n]) else "(not ready)") for n in sorted(byname))
cond = [c for c in ((catset.get("status") or {}).get("conditions") or []) if c.get("type") == "Updated"]
cond = "%s/%s: %s" % (cond[0].get("status"), cond[0].get("reason"), cond[0].get("message")) if cond else "-"
print(len(unavailable), len(pods), listing or "-", cond)
'
}

last_state=
# kubelet_pass [MAX_UNAVAILABLE]: prints the state when it changed, checks
# that at most MAX_UNAVAILABLE ordinals lack a ready Pod (when given), then
# marks every Pod that is not Running and Ready.
kubelet_pass() {
  local limit=${1:-} line unavailable pod
  line=$(state) || fail "can't read the CatSet state"
  if [ "$line" != "$last_state" ]; then
    echo "    pods: ${line#* * }"
    last_state=$line
  fi
  unavailable=${line%% *}
  if [ -n "$limit" ] && ((unavailable > limit)); then
    fail "$unavailable Pods unavailable at once during the rollout (at most $limit allowed): $line"
  fi
  for pod in $(k get pods -l app=nginx -o jsonpath='{range .items[*]}{.metadata.name}{"="}{.status.phase}{"/"}{.status.conditions[?(@.type=="Ready")].status}{" "}{end}' 2>/dev/null); do
    case $pod in
    *=Running/True) ;;
    *)
      pod=${pod%%=*}
      k patch pod "$pod" --subresource=status --type=merge \
        -p '{"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}}' >/dev/null 2>&1 &&
        echo "    kubelet: $pod is Running and Ready"
      ;;
    esac
  done
}

# run_until WHAT MAX_UNAVAILABLE CMD...: kubelet passes until CMD succeeds
# (bounded by EXAMPLE_TIMEOUT); MAX_UNAVAILABLE may be empty (no check).
run_until() {
  local what=$1 limit=$2 deadline=$((SECONDS + timeout_s))
  shift 2
  echo "waiting: $what"
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "timed out after ${timeout_s}s waiting for: $what (state: $(state 2>/dev/null))"
    kubelet_pass "$limit"
    sleep 0.3
  done
  echo "ok: $what"
}

check() { # check WHAT CMD...: CMD must succeed now
  local what=$1
  shift
  "$@" >/dev/null 2>&1 || fail "check failed: $what"
  echo "ok: $what"
}

ready_replicas() { # ready_replicas N: status says N Pods, all ready
  [ "$(field catset/nginx-backend '{.status.replicas}/{.status.readyReplicas}')" = "$1/$1" ]
}
updated_reason() { # updated_reason REASON
  [ "$(field catset/nginx-backend '{.status.conditions[?(@.type=="Updated")].reason}')" = "$1" ]
}
all_images() { # all_images IMAGE COUNT: COUNT Pods, all with IMAGE
  local images
  images=$(field pods '{range .items[*]}{.spec.containers[0].image}{"\n"}{end}')
  [ "$(grep -c . <<<"$images")" = "$2" ] && ! grep -qv "^$1\$" <<<"$images"
}
revisions() { field controllerrevisions.metacontroller.k8s.io '{range .items[*]}{.metadata.name}{"\n"}{end}'; }
count_is() { # count_is N RESOURCE: N objects
  [ "$(field "$2" '{range .items[*]}{.metadata.name}{"\n"}{end}' | grep -c .)" = "$1" ]
}
gone() { local out; out=$(k get "$@" --ignore-not-found -o name) && [ -z "$out" ]; }

# --- metacontroller dev and the hook --------------------------------------------

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

"$mc" dev --port 0 --kubeconfig-out "$tmp/kubeconfig" \
  --metrics-address 0 --health-probe-bind-address 0 \
  >"$tmp/metacontroller.out" 2>"$tmp/metacontroller.log" &
mc_pid=$!
pids+=("$mc_pid")
deadline=$((SECONDS + timeout_s))
KUBECONFIG=
until [ -n "$KUBECONFIG" ]; do
  kill -0 "$mc_pid" 2>/dev/null || fail "metacontroller dev exited before printing 'export KUBECONFIG='"
  ((SECONDS < deadline)) || fail "no 'export KUBECONFIG=' from metacontroller dev within ${timeout_s}s"
  sleep 0.2
  KUBECONFIG=$(sed -n 's/^export KUBECONFIG=//p' "$tmp/metacontroller.out")
done
export KUBECONFIG
echo "ok: metacontroller dev is up (KUBECONFIG=$KUBECONFIG)"

hook_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 "$here/hook.py" "$hook_port" >"$tmp/hook.log" 2>&1 &
pids+=("$!")
deadline=$((SECONDS + timeout_s))
until port_open "$hook_port"; do
  ((SECONDS < deadline)) || fail "the hook is not listening on 127.0.0.1:$hook_port"
  sleep 0.2
done
echo "ok: hook listening on 127.0.0.1:$hook_port"

# --- the example -------------------------------------------------------------------

k apply -f "$here/crd.yaml"
k wait --for condition=Established --timeout "${timeout_s}s" crd/catsets.ctl.example.com
sed "s/\${HOOK_PORT}/$hook_port/g" "$here/controller.yaml" | k apply -f -
k apply -f "$here/catset.yaml"

echo "--- start: 3 Pods, one at a time (each waits for the previous to be Ready)"
run_until "3 ready replicas" "" ready_replicas 3
run_until "Updated=True (OnLatestRevision)" "" updated_reason OnLatestRevision
first=$(revisions)
check "one ControllerRevision, named catsets.ctl.example.com-<sha1>" \
  grep -qE '^catsets\.ctl\.example\.com-[0-9a-f]{40}$' <<<"$first"
echo "    revision: $first"
check "3 PersistentVolumeClaims" count_is 3 pvc

echo "--- scale up to 4"
k patch catset nginx-backend --type merge -p '{"spec":{"replicas":4}}'
run_until "4 ready replicas" "" ready_replicas 4
check "scaling made no new ControllerRevision" bash -c '[ "$1" = "$2" ]' _ "$first" "$(revisions)"

echo "--- rolling update to nginx:1.27: one Pod at a time, highest ordinal first"
k patch catset nginx-backend --type json \
  -p '[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"nginx:1.27"}]'
rolled() { all_images nginx:1.27 4 && ready_replicas 4 && updated_reason OnLatestRevision; }
run_until "every Pod replaced by an nginx:1.27 Pod, never more than one unavailable" 1 rolled
second=$(revisions)
check "the old ControllerRevision is gone, a new one took over" \
  bash -c '[ "$1" != "$2" ] && grep -qE "^catsets\.ctl\.example\.com-[0-9a-f]{40}$" <<<"$2"' _ "$first" "$second"
check "Updated names the new revision" \
  bash -c '[ "$1" = "latest ControllerRevision: $2" ]' _ \
  "$(field catset/nginx-backend '{.status.conditions[?(@.type=="Updated")].message}')" "$second"

echo "--- scale down to 2: the highest ordinals go first; their claims stay"
k patch catset nginx-backend --type merge -p '{"spec":{"replicas":2}}'
scaled_down() { ready_replicas 2 && count_is 2 pods; }
run_until "2 ready replicas" "" scaled_down
check "Pods nginx-backend-0 and nginx-backend-1 remain" \
  bash -c '[ "$1" = "nginx-backend-0 nginx-backend-1" ]' _ "$(field pods '{.items[*].metadata.name}' | tr ' ' '\n' | sort | xargs)"
check "4 PersistentVolumeClaims are kept" count_is 4 pvc

echo "--- delete: the finalize hook scales to zero before the CatSet goes"
k delete catset nginx-backend --wait=false
run_until "the CatSet is gone" "" gone catset nginx-backend
check "no Pod left" count_is 0 pods
collected() { count_is 0 pvc && count_is 0 controllerrevisions.metacontroller.k8s.io; }
run_until "its claims and revisions are garbage-collected" "" collected

echo "PASS [$name] in $((SECONDS - started))s"
