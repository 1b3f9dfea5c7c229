#!/usr/bin/env bash
# End-to-end check of the indexed-job example, on the embedded API server
# (`metacontroller dev`) or a real control plane: see ../lib.sh for the
# environment (MC_TEST_CLUSTER, METACONTROLLER_BIN, TESTBED_BIN, KUBECTL,
# EXAMPLE_TIMEOUT).
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

start_metacontroller
start_hook

# --- the example -----------------------------------------------------------------

# set_phase POD PHASE: there is no kubelet (on either server), so the test
# plays its part.
set_phase() {
  k patch pod "$1" --subresource=status --type=merge -p "{\"status\":{\"phase\":\"$2\"}}" >/dev/null
}
job_status() { field_is indexedjob/print-index '{.status.succeeded}/{.status.active}/{.status.completed}' "$1"; }

run k apply -f "$here/crd.yaml"
run k wait --for condition=Established --timeout "${timeout_s}s" crd/indexedjobs.demo.example.com
apply_controller "$here/controller.yaml"
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

pass
