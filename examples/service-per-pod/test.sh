#!/usr/bin/env bash
# End-to-end check of the service-per-pod example, on the embedded API server
# (`metacontroller dev`) or a real control plane: see ../lib.sh for the
# environment (MC_TEST_CLUSTER, METACONTROLLER_BIN, TESTBED_BIN, KUBECTL,
# EXAMPLE_TIMEOUT).
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

start_metacontroller
start_hook

# --- the example -----------------------------------------------------------------

apply_controller "$here/decorators.yaml"
run k apply -f "$here/statefulset.yaml"
kn() { k -n web-demo "$@"; }
nis() { field_is "$1" "$2" "$3" -n web-demo; } # nis OBJECT JSONPATH VALUE
svc() { echo "service/web-$1"; }
sts_uid=$(field statefulset/web '{.metadata.uid}' -n web-demo)

# Neither server runs a StatefulSet controller or a kubelet: create the Pods
# the StatefulSet would have, from its template.
namespace_ready web-demo
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
for i in 0 1 2; do make_pod "$i"; echo "---"; done | run k apply -f -

for i in 0 1 2; do
  wait_for "Service web-$i exists" kn get "$(svc "$i")"
done

check "web-1 selects the Pod named web-1" nis "$(svc 1)" '{.spec.selector.pod-name}' web-1
check "web-1 forwards port 80 to 8080" nis "$(svc 1)" '{.spec.ports[*].port}/{.spec.ports[*].targetPort}' 80/8080
check "web-1 is owned by the StatefulSet" \
  nis "$(svc 1)" '{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].uid}' "StatefulSet/$sts_uid"
check "web-1 is marked as created by the decorator" \
  nis "$(svc 1)" '{.metadata.annotations.metacontroller\.k8s\.io/decorator-controller}' service-per-pod
for i in 0 1 2; do
  wait_for "Pod web-$i labelled pod-name=web-$i" nis "pod/web-$i" '{.metadata.labels.pod-name}' "web-$i"
done
wait_for "the StatefulSet carries the finalizer" \
  nis statefulset/web '{.metadata.finalizers[0]}' metacontroller.io/decoratorcontroller-service-per-pod
wait_for "the StatefulSet is annotated with its Service count" \
  nis statefulset/web '{.metadata.annotations.service-per-pod\.example\.com/services}' 3

# Scale down: the Service of the last ordinal goes away.
run kn patch statefulset web --type merge -p '{"spec":{"replicas":2}}'
wait_for "Service web-2 removed after scaling to 2" gone -n web-demo "$(svc 2)"
check "Service web-1 kept" kn get "$(svc 1)"

# A port added to the annotation reaches the live Services (InPlace).
run kn annotate statefulset web --overwrite 'service-per-pod.example.com/ports=80:8080,443:8443'
wait_for "Service web-0 updated in place with port 443" \
  nis "$(svc 0)" '{.spec.ports[*].port}' '80 443'

# A Service deleted by hand comes back.
old_uid=$(kn get "$(svc 0)" -o 'jsonpath={.metadata.uid}')
run kn delete "$(svc 0)" --wait=false
recreated() { local uid; uid=$(kn get "$(svc 0)" -o 'jsonpath={.metadata.uid}') && [ -n "$uid" ] && [ "$uid" != "$old_uid" ]; }
wait_for "Service web-0 recreated after a manual delete" recreated

# Opt out: without the ports annotation the finalize hook cleans up and the
# finalizer is removed; the StatefulSet itself stays.
run kn annotate statefulset web 'service-per-pod.example.com/ports-'
wait_for "every Service removed after opting out" gone -n web-demo service -l app.kubernetes.io/part-of=web
unfinalized() {
  local finalizers
  finalizers=$(kn get statefulset/web -o 'jsonpath={.metadata.finalizers}') || return 1
  case "$finalizers" in *decoratorcontroller-service-per-pod*) return 1 ;; esac
}
wait_for "finalizer removed after opting out" unfinalized
wait_for "Service count annotation removed" \
  nis statefulset/web '{.metadata.annotations.service-per-pod\.example\.com/services}' ''
check "the StatefulSet still exists" kn get statefulset/web

# Opt back in, then delete: finalize runs before the StatefulSet goes.
run kn annotate statefulset web 'service-per-pod.example.com/ports=80:8080'
wait_for "Services back after opting in again" kn get "$(svc 1)"
run kn delete statefulset web --wait=false
wait_for "the StatefulSet is gone" gone -n web-demo statefulset/web
check "no Service left behind" gone -n web-demo service -l app.kubernetes.io/part-of=web

pass
