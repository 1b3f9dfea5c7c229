//! DecoratorController helpers shared by the decorator suites.

use kube::core::ApiResource;
use serde_json::{Value, json};

use super::{Harness, core, dc_resource};

/// The annotation naming the DecoratorController on its attachments.
pub const DC_ANNOTATION: &str = "metacontroller.k8s.io/decorator-controller";

/// Pods.
pub fn pods() -> ApiResource {
    core("Pod", "pods")
}

/// A DecoratorController manifest: `resources` and `attachments` are the
/// JSON rule lists.
pub fn decorator_controller(
    name: &str,
    resources: Value,
    attachments: Value,
    sync_url: &str,
) -> Value {
    json!({
        "apiVersion": "metacontroller.k8s.io/v1alpha1",
        "kind": "DecoratorController",
        "metadata": {"name": name},
        "spec": {
            "resources": resources,
            "attachments": attachments,
            "hooks": {"sync": {"webhook": {"url": sync_url}}}
        }
    })
}

/// A resource rule for `ar`.
pub fn rule(ar: &ApiResource) -> Value {
    json!({"apiVersion": ar.api_version, "resource": ar.plural})
}

/// Creates a DecoratorController.
pub async fn create_dc(h: &Harness, dc: Value) -> Value {
    h.create(&dc_resource(), None, dc).await
}

/// An object of `ar` with labels and spec.
pub fn object(ar: &ApiResource, name: &str, labels: Value, spec: Value) -> Value {
    json!({
        "apiVersion": ar.api_version,
        "kind": ar.kind,
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
    })
}

/// A Pod with labels and annotations.
pub fn pod(name: &str, labels: Value, annotations: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}
    })
}

/// The UID in the controller reference.
pub fn controller_uid_of(obj: &Value) -> Option<&str> {
    obj["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)?["uid"]
        .as_str()
}
