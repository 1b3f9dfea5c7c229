#!/usr/bin/env bash
# End-to-end run of the catset example, on the embedded API server
# (`metacontroller dev`) or a real control plane: see ../lib.sh for the
# environment (MC_TEST_CLUSTER, METACONTROLLER_BIN, TESTBED_BIN, KUBECTL,
# EXAMPLE_TIMEOUT).
#
# Neither server runs a kubelet, so this script plays one: it marks each
# CatSet Pod Running and Ready (PATCH of the Pod's status subresource with
# kubectl), one pass at a time, and prints what it sees, so the ordered
# start-up, the rolling update and the scale-down can be followed step by
# step. On the real control plane it also plays the PVC protection
# controller, which kube-controller-manager does not run there: the
# StorageObjectInUseProtection admission plugin puts the
# kubernetes.io/pvc-protection finalizer on every claim, and a claim being
# deleted keeps it until that controller sees no Pod using it
# (pkg/controller/volume/pvcprotection/pvc_protection_controller.go).
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

# --- the fake kubelet and PVC protection, and what they observe ------------------

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
# release_claims: removes the kubernetes.io/pvc-protection finalizer from
# every claim being deleted that no Pod uses any more.
release_claims() {
  local claim used
  used=" $(field pods '{.items[*].spec.volumes[*].persistentVolumeClaim.claimName}') "
  for claim in $(field pvc '{range .items[?(@.metadata.deletionTimestamp)]}{.metadata.name}{" "}{end}'); do
    case $used in *" $claim "*) continue ;; esac
    k patch pvc "$claim" --type=json \
      -p '[{"op":"test","path":"/metadata/finalizers","value":["kubernetes.io/pvc-protection"]},{"op":"remove","path":"/metadata/finalizers"}]' \
      >/dev/null 2>&1 && echo "    pvc-protection: $claim is no longer in use"
  done
}

# kubelet_pass [MAX_UNAVAILABLE]: prints the state when it changed, checks
# that at most MAX_UNAVAILABLE ordinals lack a ready Pod (when given), marks
# every Pod that is not Running and Ready, and releases unused claims.
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
  release_claims
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

start_metacontroller
start_hook

# --- the example -------------------------------------------------------------------

run k apply -f "$here/crd.yaml"
run k wait --for condition=Established --timeout "${timeout_s}s" crd/catsets.ctl.example.com
apply_controller "$here/controller.yaml"
run k apply -f "$here/catset.yaml"

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

pass
