"""The official Python `kubernetes` client against the embedded API server.

Usage: client_test.py KUBECONFIG. Exits non-zero on the first failure.
"""
import sys
import threading

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException


def main(kubeconfig):
    config.load_kube_config(config_file=kubeconfig)
    core = client.CoreV1Api()
    apps = client.AppsV1Api()
    ext = client.ApiextensionsV1Api()
    custom = client.CustomObjectsApi()

    # Create and read back.
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="py")))
    cm = core.create_namespaced_config_map(
        "py", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c1", labels={"app": "py"}), data={"a": "1"})
    )
    assert cm.metadata.uid and cm.metadata.resource_version, cm
    got = core.read_namespaced_config_map("c1", "py")
    assert got.data == {"a": "1"}, got.data

    # List with a label selector.
    core.create_namespaced_config_map("py", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c2"), data={}))
    items = core.list_namespaced_config_map("py", label_selector="app=py").items
    assert [i.metadata.name for i in items] == ["c1"], items

    # Watch sees a change made after it started.
    rv = core.list_namespaced_config_map("py").metadata.resource_version
    seen = []

    def run_watch():
        w = watch.Watch()
        for ev in w.stream(core.list_namespaced_config_map, "py", resource_version=rv, timeout_seconds=10):
            seen.append((ev["type"], ev["object"].metadata.name))
            if ev["type"] == "MODIFIED":
                w.stop()

    t = threading.Thread(target=run_watch)
    t.start()
    core.patch_namespaced_config_map("c1", "py", {"data": {"a": "2"}})
    t.join(20)
    assert ("MODIFIED", "c1") in seen, seen

    # Strategic merge patch on a Deployment (the client's default for dicts).
    dep = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="d"),
        spec=client.V1DeploymentSpec(
            replicas=1,
            selector=client.V1LabelSelector(match_labels={"app": "d"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "d"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="i:1")]),
            ),
        ),
    )
    apps.create_namespaced_deployment("py", dep)
    apps.patch_namespaced_deployment(
        "d", "py", {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i:2"}]}}}}
    )
    d = apps.read_namespaced_deployment("d", "py")
    assert d.spec.template.spec.containers[0].image == "i:2"
    assert d.metadata.generation == 2, d.metadata.generation

    # Optimistic concurrency: a stale update is a 409.
    stale = core.read_namespaced_config_map("c2", "py")
    core.patch_namespaced_config_map("c2", "py", {"data": {"x": "y"}})
    stale.data = {"z": "z"}
    try:
        core.replace_namespaced_config_map("c2", "py", stale)
        raise AssertionError("stale update accepted")
    except ApiException as e:
        assert e.status == 409, e

    # Custom resources.
    ext.create_custom_resource_definition(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "gadgets.example.com"},
            "spec": {
                "group": "example.com",
                "scope": "Namespaced",
                "names": {"plural": "gadgets", "kind": "Gadget"},
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "subresources": {"status": {}},
                        "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                    }
                ],
            },
        }
    )
    custom.create_namespaced_custom_object(
        "example.com", "v1", "py", "gadgets", {"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}, "spec": {"n": 1}}
    )
    custom.patch_namespaced_custom_object_status("example.com", "v1", "py", "gadgets", "g", {"status": {"ok": True}})
    g = custom.get_namespaced_custom_object("example.com", "v1", "py", "gadgets", "g")
    assert g["status"] == {"ok": True} and g["spec"] == {"n": 1}, g

    # Delete; a missing object is a 404.
    core.delete_namespaced_config_map("c1", "py")
    try:
        core.read_namespaced_config_map("c1", "py")
        raise AssertionError("deleted object still readable")
    except ApiException as e:
        assert e.status == 404, e
    custom.delete_namespaced_custom_object("example.com", "v1", "py", "gadgets", "g")
    print("python client: all checks passed")


if __name__ == "__main__":
    main(sys.argv[1])
