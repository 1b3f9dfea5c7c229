#!/usr/bin/env bash
# End-to-end check of the configmap-propagation example, on the embedded API
# server (`metacontroller dev`) or a real control plane: see ../lib.sh for the
# environment (MC_TEST_CLUSTER, METACONTROLLER_BIN, TESTBED_BIN, KUBECTL,
# EXAMPLE_TIMEOUT).
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

start_metacontroller
start_hook

# --- the example -----------------------------------------------------------------

copy_is() { field_is configmap/settings '{.data.log-level}' "$2" -n "$1"; } # copy_is NAMESPACE LOG_LEVEL
no_copy() { gone -n "$1" configmap/settings; }
cmp=configmappropagation/settings

run k apply -f "$here/crd.yaml"
run k wait --for condition=Established --timeout "${timeout_s}s" crd/configmappropagations.propagation.example.com
apply_controller "$here/controller.yaml"
run k apply -f "$here/propagation.yaml"

for ns in team-a team-b; do
  wait_for "copy in $ns" copy_is "$ns" info
done
wait_for "status: 2 copies in team-a and team-b" field_is "$cmp" '{.status.copies} {.status.namespaces}' '2 ["team-a","team-b"]'
check "no copy in the unlabelled namespace team-c" no_copy team-c
check "no copy over the source" field_is configmap/settings '{.metadata.ownerReferences}' '' -n platform
parent_uid=$(k get "$cmp" -o 'jsonpath={.metadata.uid}')
check "the copy in team-a is owned by the propagation" \
  field_is configmap/settings '{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].uid}' \
  "ConfigMapPropagation/$parent_uid" -n team-a

# Labelling a namespace (a related object changes) brings a copy.
run k label namespace team-c propagation.example.com/settings=copy
wait_for "copy in team-c once labelled" copy_is team-c info

# A new labelled namespace gets one too.
run k create namespace team-d
run k label namespace team-d propagation.example.com/settings=copy
wait_for "copy in the new namespace team-d" copy_is team-d info

# Editing the source updates every copy in place.
run k -n platform patch configmap settings --type merge -p '{"data":{"log-level":"debug"}}'
for ns in team-a team-b team-c team-d; do
  wait_for "copy in $ns follows the source" copy_is "$ns" debug
done

# Unlabelling a namespace removes its copy.
run k label namespace team-a propagation.example.com/settings-
wait_for "copy removed from team-a once unlabelled" no_copy team-a
wait_for "status: 3 copies" field_is "$cmp" '{.status.copies}' 3

# Deleting the propagation garbage-collects the copies; the source stays.
run k delete "$cmp" --wait=false
for ns in team-b team-c team-d; do
  wait_for "copy in $ns removed with the propagation" no_copy "$ns"
done
check "the source is untouched" field_is configmap/settings '{.data.log-level}' debug -n platform

pass
