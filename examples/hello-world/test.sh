#!/usr/bin/env bash
# End-to-end check of the hello-world example, on the embedded API server
# (`metacontroller dev`) or a real control plane: see ../lib.sh for the
# environment (MC_TEST_CLUSTER, METACONTROLLER_BIN, TESTBED_BIN, KUBECTL,
# EXAMPLE_TIMEOUT).
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

start_metacontroller
start_hook

# --- the example -----------------------------------------------------------------

run k apply -f "$here/crd.yaml"
run k wait --for condition=Established --timeout "${timeout_s}s" crd/helloworlds.demo.example.com
apply_controller "$here/controller.yaml"
run k apply -f "$here/hello.yaml"

wait_for "Pod hello-greeter created" k get pod hello-greeter
check "the Pod says 'Hello, World!'" \
  field_is pod/hello-greeter '{.spec.containers[0].command[1]}' 'Hello, World!'
parent_uid=$(field helloworld/hello '{.metadata.uid}')
check "the Pod is controlled by the HelloWorld" \
  field_is pod/hello-greeter '{.metadata.ownerReferences[0].uid}/{.metadata.ownerReferences[0].controller}' "$parent_uid/true"
check "the Pod is labelled controller-uid=<parent uid> (generateSelector)" \
  field_is pod/hello-greeter '{.metadata.labels.controller-uid}' "$parent_uid"
wait_for "HelloWorld status: pods=1, observedGeneration=1" \
  field_is helloworld/hello '{.status.pods}/{.status.observedGeneration}' 1/1

# Recreate: a changed Pod is deleted and created again from the new spec.
pod_uid=$(field pod/hello-greeter '{.metadata.uid}')
run k patch helloworld hello --type merge -p '{"spec":{"who":"Rust"}}'
wait_for "the Pod is recreated saying 'Hello, Rust!'" \
  field_is pod/hello-greeter '{.spec.containers[0].command[1]}' 'Hello, Rust!'
check "the new Pod has a new uid" differ "$pod_uid" "$(field pod/hello-greeter '{.metadata.uid}')"
wait_for "HelloWorld status: pods=1, observedGeneration=2" \
  field_is helloworld/hello '{.status.pods}/{.status.observedGeneration}' 1/2

# Deleting the parent garbage-collects its Pod.
run k delete helloworld hello --wait=false
wait_for "the Pod is garbage-collected with its parent" gone pod hello-greeter

pass
