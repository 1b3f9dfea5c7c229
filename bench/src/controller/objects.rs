//! The objects of the benchmark as JSON: the `Bench` CRD, parents, children,
//! the CompositeController of the `ours` contenders and unrelated
//! ConfigMaps.

use serde_json::{Value, json};

use super::{GROUP, KIND, NAMESPACE, PARENT_LABEL, PLURAL, VERSION, child_name};

/// The `Bench` CustomResourceDefinition (namespaced, `status` subresource).
pub fn bench_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{PLURAL}.{GROUP}")},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": PLURAL, "singular": "bench", "kind": KIND, "listKind": "BenchList"},
            "versions": [{
                "name": VERSION,
                "served": true,
                "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {"type": "object", "properties": {"replicas": {"type": "integer"}}},
                        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                    }
                }}
            }]
        }
    })
}

/// A parent asking for `replicas` children.
pub fn parent(name: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "kind": KIND,
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"replicas": replicas}
    })
}

/// Child `i` of `parent` as a hook or a controller asks for it (without
/// owner reference and namespace).
pub fn desired_child(parent: &str, i: i64) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": child_name(parent, i), "labels": {PARENT_LABEL: parent}},
        "data": {"index": i.to_string()}
    })
}

/// Child `i` of the parent `(name, uid)` with its controller owner
/// reference, as the floor writes it.
pub fn owned_child(parent: &str, uid: &str, i: i64) -> Value {
    let mut child = desired_child(parent, i);
    child["metadata"]["namespace"] = json!(NAMESPACE);
    child["metadata"]["ownerReferences"] = json!([{
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "kind": KIND,
        "name": parent,
        "uid": uid,
        "controller": true,
        "blockOwnerDeletion": true
    }]);
    child
}

/// The sync hook's answer for a parent asking for `replicas` children.
pub fn sync_response(parent: &str, replicas: i64) -> Value {
    let children: Vec<Value> = (0..replicas.max(0))
        .map(|i| desired_child(parent, i))
        .collect();
    json!({"status": {"ready": replicas}, "children": children})
}

/// The finalize hook's answer: no children, done.
pub fn finalize_response() -> Value {
    json!({"children": [], "finalized": true})
}

/// The CompositeController of the `ours` contenders; with `finalize`, a
/// finalize hook too (W6).
pub fn composite_controller(hook_base: &str, finalize: bool) -> Value {
    let mut hooks = json!({"sync": {"webhook": {"url": format!("{hook_base}/sync")}}});
    if finalize {
        hooks["finalize"] = json!({"webhook": {"url": format!("{hook_base}/finalize")}});
    }
    json!({
        "apiVersion": "metacontroller.k8s.io/v1alpha1",
        "kind": "CompositeController",
        "metadata": {"name": "bench"},
        "spec": {
            "generateSelector": true,
            "parentResource": {"apiVersion": format!("{GROUP}/{VERSION}"), "resource": PLURAL},
            "childResources": [{
                "apiVersion": "v1",
                "resource": "configmaps",
                "updateStrategy": {"method": "InPlace"}
            }],
            "hooks": hooks
        }
    })
}

/// An unrelated ConfigMap (W9): no label any contender selects.
pub fn unrelated(i: usize) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": format!("unrelated-{i:06}"), "labels": {"app": "something-else"}},
        "data": {"value": format!("{i:0>64}")}
    })
}

/// A namespace.
pub fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hook_answer_lists_every_child() {
        let r = sync_response("p", 3);
        assert_eq!(r["status"]["ready"], 3);
        assert_eq!(r["children"].as_array().unwrap().len(), 3);
        assert_eq!(r["children"][2]["metadata"]["name"], "p-2");
        let c = owned_child("p", "u", 1);
        assert_eq!(c["metadata"]["ownerReferences"][0]["uid"], "u");
        assert_eq!(c["metadata"]["labels"][PARENT_LABEL], "p");
        let cc = composite_controller("http://h", true);
        assert_eq!(
            cc["spec"]["hooks"]["finalize"]["webhook"]["url"],
            "http://h/finalize"
        );
    }
}
