#!/usr/bin/env bash
# End-to-end check of the cluster-parent example, on the embedded API server
# (`metacontroller dev`) or a real control plane: see ../lib.sh for the
# environment (MC_TEST_CLUSTER, METACONTROLLER_BIN, TESTBED_BIN, KUBECTL,
# EXAMPLE_TIMEOUT).
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

start_metacontroller
start_hook

# --- the example -----------------------------------------------------------------

# The child lives in namespace team-a.
cm_field() { field configmap/greeting "$1" -n team-a; }
cm_is() { field_is configmap/greeting "$1" "$2" -n team-a; }

run k apply -f "$here/crd.yaml"
run k wait --for condition=Established --timeout "${timeout_s}s" crd/sharedconfigs.demo.example.com
apply_controller "$here/controller.yaml"
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
wait_for "the deleted ConfigMap is recreated (new uid)" uid_changed configmap/greeting "$old_uid" -n team-a
check "the recreated ConfigMap holds spec.data" cm_is '{.data.greeting}' hello

# InPlace: a spec change updates the live ConfigMap (same uid).
uid=$(cm_field '{.metadata.uid}')
run k patch sharedconfig greeting --type merge -p '{"spec":{"data":{"greeting":"bonjour"}}}'
wait_for "the ConfigMap is updated in place (greeting=bonjour, same uid)" \
  cm_is '{.data.greeting} {.metadata.uid}' "bonjour $uid"

# Deleting the parent cascades to the namespaced child.
run k delete sharedconfig greeting --wait=false
wait_for "the ConfigMap is garbage-collected with its parent" gone -n team-a configmap/greeting

pass
