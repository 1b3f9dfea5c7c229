#!/usr/bin/env bash
# End-to-end check of the service-per-pod example against `metacontroller dev`.
#
# Environment:
#   METACONTROLLER_BIN  the metacontroller binary (default: built from this
#                       repository with `cargo build --release`)
#   KUBECTL             the kubectl to use (default: kubectl)
#   EXAMPLE_TIMEOUT     seconds allowed for each wait (default: 60)
# Exits 0 when every check passes, non-zero with a message otherwise.
set -euo pipefail

example_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$example_dir/../.." && pwd)
example=service-per-pod
limit=${EXAMPLE_TIMEOUT:-60}
kubectl=${KUBECTL:-kubectl}
t0=$SECONDS

work=$(mktemp -d "${TMPDIR:-/tmp}/$example.XXXXXX")
children=()

shutdown() {
  local pid
  for pid in ${children[@]+"${children[@]}"}; do
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap shutdown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

die() {
  echo "FAIL [$example]: $*" >&2
  for log in metacontroller.err hook.err; do
    if [ -s "$work/$log" ]; then
      echo "----- tail of $log -----" >&2
      tail -n 30 "$work/$log" >&2
    fi
  done
  exit 1
}

# eventually WHAT CMD...: retry CMD every 0.5 s until it succeeds, at most
# $limit seconds.
eventually() {
  local what=$1 until=$((SECONDS + limit))
  shift
  while ! "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$until" ] || die "gave up after ${limit}s waiting for: $what"
    sleep 0.5
  done
  echo "  ok  $what"
}

kc() { "$kubectl" --kubeconfig "$KUBECONFIG" --cache-dir "$work/cache" "$@"; }
absent() { [ -z "$(kc get "$@" --ignore-not-found -o name)" ]; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

command -v "$kubectl" >/dev/null || die "kubectl not found (set KUBECTL)"
command -v python3 >/dev/null || die "python3 not found"

# --- metacontroller dev ------------------------------------------------------

if [ -n "${METACONTROLLER_BIN:-}" ]; then
  mc_bin=$METACONTROLLER_BIN
else
  echo "building metacontroller (release)"
  (cd "$repo_root" && cargo build --release --quiet -p metacontroller) || die "cargo build failed"
  target=$(cd "$repo_root" && cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
  mc_bin=$target/release/metacontroller
fi
[ -x "$mc_bin" ] || die "metacontroller binary not found at $mc_bin"

"$mc_bin" dev --port 0 --kubeconfig-out "$work/kubeconfig" \
  --metrics-address 0 --health-probe-bind-address 0 \
  >"$work/metacontroller.out" 2>"$work/metacontroller.err" &
mc_pid=$!
children+=("$mc_pid")
KUBECONFIG=
until=$((SECONDS + limit))
while [ -z "$KUBECONFIG" ]; do
  kill -0 "$mc_pid" 2>/dev/null || die "metacontroller dev exited early"
  [ "$SECONDS" -lt "$until" ] || die "metacontroller dev printed no 'export KUBECONFIG=' line"
  sleep 0.2
  KUBECONFIG=$(sed -n 's/^export KUBECONFIG=//p' "$work/metacontroller.out" | head -n 1)
done
export KUBECONFIG
echo "  ok  metacontroller dev is up"

# --- the hooks -------------------------------------------------------------------

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 "$example_dir/hook.py" "$port" >"$work/hook.out" 2>"$work/hook.err" &
children+=("$!")
eventually "hooks listening on port $port" listening "$port"

# --- the example -------------------------------------------------------------------

sed "s/\${HOOK_PORT}/$port/g" "$example_dir/decorators.yaml" | kc apply -f -
kc apply -f "$example_dir/statefulset.yaml"
ns=(-n web-demo)
kcn() { kc "${ns[@]}" "$@"; }
nis() { [ "$(kcn get "$1" -o "jsonpath=$2" 2>/dev/null)" = "$3" ]; }  # nis OBJECT JSONPATH VALUE
check() { local what=$1; shift; "$@" >/dev/null 2>&1 || die "check failed: $what"; echo "  ok  $what"; }
svc() { echo "service/web-$1"; }
sts_uid=$(kc "${ns[@]}" get statefulset web -o 'jsonpath={.metadata.uid}')

# There is no StatefulSet controller or kubelet here: create the Pods the
# StatefulSet would have, from its template.
make_pod() {
  cat <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: web-$1
  namespace: web-demo
  labels:
    app: web
  annotations:
    pod-name-label.example.com/label: pod-name
  ownerReferences:
    - apiVersion: apps/v1
      kind: StatefulSet
      name: web
      uid: $sts_uid
      controller: true
spec:
  containers:
    - name: web
      image: nginx
EOF
}
for i in 0 1 2; do make_pod "$i"; echo "---"; done | kc apply -f -

for i in 0 1 2; do
  eventually "Service web-$i exists" kc "${ns[@]}" get "$(svc "$i")"
done

check "web-1 selects the Pod named web-1" nis "$(svc 1)" '{.spec.selector.pod-name}' web-1
check "web-1 forwards port 80 to 8080" nis "$(svc 1)" '{.spec.ports[*].port}/{.spec.ports[*].targetPort}' 80/8080
check "web-1 is owned by the StatefulSet" \
  nis "$(svc 1)" '{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].uid}' "StatefulSet/$sts_uid"
check "web-1 is marked as created by the decorator" \
  nis "$(svc 1)" '{.metadata.annotations.metacontroller\.k8s\.io/decorator-controller}' service-per-pod
for i in 0 1 2; do
  eventually "Pod web-$i labelled pod-name=web-$i" nis "pod/web-$i" '{.metadata.labels.pod-name}' "web-$i"
done
eventually "the StatefulSet carries the finalizer" \
  nis statefulset/web '{.metadata.finalizers[0]}' metacontroller.io/decoratorcontroller-service-per-pod
eventually "the StatefulSet is annotated with its Service count" \
  nis statefulset/web '{.metadata.annotations.service-per-pod\.example\.com/services}' 3

# Scale down: the Service of the last ordinal goes away.
kcn patch statefulset web --type merge -p '{"spec":{"replicas":2}}'
eventually "Service web-2 removed after scaling to 2" absent "${ns[@]}" "$(svc 2)"
check "Service web-1 kept" kcn get "$(svc 1)"

# A port added to the annotation reaches the live Services (InPlace).
kcn annotate statefulset web --overwrite 'service-per-pod.example.com/ports=80:8080,443:8443'
eventually "Service web-0 updated in place with port 443" \
  nis "$(svc 0)" '{.spec.ports[*].port}' '80 443'

# A Service deleted by hand comes back.
old_uid=$(kcn get "$(svc 0)" -o 'jsonpath={.metadata.uid}')
kcn delete "$(svc 0)" --wait=false
recreated() { local uid; uid=$(kcn get "$(svc 0)" -o 'jsonpath={.metadata.uid}') && [ -n "$uid" ] && [ "$uid" != "$old_uid" ]; }
eventually "Service web-0 recreated after a manual delete" recreated

# Opt out: without the ports annotation the finalize hook cleans up and the
# finalizer is removed; the StatefulSet itself stays.
kcn annotate statefulset web 'service-per-pod.example.com/ports-'
eventually "every Service removed after opting out" absent "${ns[@]}" service -l app.kubernetes.io/part-of=web
unfinalized() {
  local finalizers
  finalizers=$(kcn get statefulset/web -o 'jsonpath={.metadata.finalizers}') || return 1
  case "$finalizers" in *decoratorcontroller-service-per-pod*) return 1 ;; esac
}
eventually "finalizer removed after opting out" unfinalized
eventually "Service count annotation removed" \
  nis statefulset/web '{.metadata.annotations.service-per-pod\.example\.com/services}' ''
check "the StatefulSet still exists" kcn get statefulset/web

# Opt back in, then delete: finalize runs before the StatefulSet goes.
kcn annotate statefulset web 'service-per-pod.example.com/ports=80:8080'
eventually "Services back after opting in again" kcn get "$(svc 1)"
kcn delete statefulset web --wait=false
eventually "the StatefulSet is gone" absent "${ns[@]}" statefulset/web
check "no Service left behind" absent "${ns[@]}" service -l app.kubernetes.io/part-of=web

echo "PASS [$example] in $((SECONDS - t0))s"
