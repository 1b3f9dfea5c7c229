"""kopf contender of the controller benchmark.

The same logic as every other contender: a Bench parent (bench.example.com/v1)
asks for spec.replicas ConfigMaps named <parent>-<i>, owned by it and labelled
bench.example.com/parent=<parent>; its status becomes {ready: replicas}. The
handler creates missing children, deletes extra ones and recreates a child
whose deletion it sees. Children go away with their parent through owner
references (no finalizer, no delete handler).

Run: kopf run --standalone --all-namespaces handler.py   (KUBECONFIG set)
"""

import logging

import kopf
import kubernetes
from kubernetes.client.rest import ApiException

GROUP, VERSION, PLURAL = "bench.example.com", "v1", "benches"
LABEL = "bench.example.com/parent"
WORKERS = 16

core = None
custom = None


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_):
    global core, custom
    # Success events would add one write per handled object; the other
    # contenders only post events on errors.
    settings.posting.level = logging.WARNING
    settings.execution.max_workers = WORKERS
    kubernetes.config.load_kube_config()
    config = kubernetes.client.Configuration.get_default_copy()
    config.connection_pool_maxsize = WORKERS
    client = kubernetes.client.ApiClient(config)
    core = kubernetes.client.CoreV1Api(client)
    custom = kubernetes.client.CustomObjectsApi(client)


def child(name, namespace, uid, i):
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "%s-%d" % (name, i),
            "namespace": namespace,
            "labels": {LABEL: name},
            "ownerReferences": [
                {
                    "apiVersion": "%s/%s" % (GROUP, VERSION),
                    "kind": "Bench",
                    "name": name,
                    "uid": uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "data": {"index": str(i)},
    }


def ensure_children(name, namespace, uid, replicas):
    listed = core.list_namespaced_config_map(namespace, label_selector="%s=%s" % (LABEL, name))
    existing = {cm.metadata.name for cm in listed.items}
    desired = {"%s-%d" % (name, i): i for i in range(replicas)}
    for child_name, i in sorted(desired.items()):
        if child_name in existing:
            continue
        try:
            core.create_namespaced_config_map(namespace, child(name, namespace, uid, i))
        except ApiException as err:
            if err.status != 409:
                raise
    for child_name in sorted(existing - set(desired)):
        try:
            core.delete_namespaced_config_map(child_name, namespace)
        except ApiException as err:
            if err.status != 404:
                raise


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
def reconcile(name, namespace, uid, spec, status, patch, **_):
    replicas = int(spec.get("replicas", 0))
    ensure_children(name, namespace, uid, replicas)
    if status.get("ready") != replicas:
        patch.status["ready"] = replicas


@kopf.on.event("", "v1", "configmaps", labels={LABEL: kopf.PRESENT})
def child_event(type, body, **_):
    if type != "DELETED":
        return
    meta = body.get("metadata", {})
    parent_name = meta.get("labels", {}).get(LABEL)
    namespace = meta.get("namespace")
    try:
        parent = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, parent_name)
    except ApiException as err:
        if err.status == 404:
            return
        raise
    if parent["metadata"].get("deletionTimestamp"):
        return
    replicas = int(parent.get("spec", {}).get("replicas", 0))
    ensure_children(parent_name, namespace, parent["metadata"]["uid"], replicas)
