//! Tests of the module as a whole.

use serde_json::Value;
use serde_json::json;

use super::strategic_merge_patch;
use crate::PatchError;
use crate::schema::Schema;
use crate::schema_for;

/// Applies `patch`, checking that `original` is left as it was and that
/// no directive key survives.
fn apply(original: &Value, patch: &Value, schema: Option<&Schema>) -> Result<Value, PatchError> {
    let before = original.clone();
    let result = strategic_merge_patch(original, patch, schema);
    assert_eq!(*original, before, "the original must not change");
    if let Ok(value) = &result {
        assert_no_directives(value);
    }
    result
}

fn assert_no_directives(value: &Value) {
    match value {
        Value::Object(fields) => {
            for (key, value) in fields {
                assert!(!key.starts_with('$'), "directive {key} left in the result");
                assert_no_directives(value);
            }
        }
        Value::Array(items) => items.iter().for_each(assert_no_directives),
        _ => {}
    }
}

fn pod_schema() -> &'static Schema {
    schema_for("", "Pod").expect("built-in")
}

/// (name, original, patch, expected) run against `schema`.
type Case = (&'static str, Value, Value, Value);

fn run(schema: Option<&Schema>, cases: Vec<Case>) {
    for (name, original, patch, expected) in cases {
        let got = apply(&original, &patch, schema).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got, expected, "{name}");
    }
}

#[test]
fn maps() {
    run(
        schema_for("", "ConfigMap"),
        vec![
            (
                "add and replace keys",
                json!({"data": {"a": "1", "b": "2"}}),
                json!({"data": {"b": "3", "c": "4"}}),
                json!({"data": {"a": "1", "b": "3", "c": "4"}}),
            ),
            (
                "null deletes",
                json!({"metadata": {"labels": {"a": "1", "b": "2"}}}),
                json!({"metadata": {"labels": {"a": null}}}),
                json!({"metadata": {"labels": {"b": "2"}}}),
            ),
            (
                "null for an absent key is dropped",
                json!({"data": {}}),
                json!({"data": {"x": null}, "binaryData": null}),
                json!({"data": {}}),
            ),
            (
                "nulls inside a new value are dropped",
                json!({}),
                json!({"metadata": {"labels": {"a": "1", "b": null}}}),
                json!({"metadata": {"labels": {"a": "1"}}}),
            ),
            (
                "a value of another type replaces",
                json!({"data": {"a": {"nested": true}}}),
                json!({"data": {"a": "flat"}}),
                json!({"data": {"a": "flat"}}),
            ),
            (
                "null values already stored are kept",
                json!({"data": {"a": null}}),
                json!({"data": {"b": "1"}}),
                json!({"data": {"a": null, "b": "1"}}),
            ),
            (
                "lists without metadata are replaced",
                json!({"data": {"list": [1, 2, 3]}}),
                json!({"data": {"list": [4]}}),
                json!({"data": {"list": [4]}}),
            ),
        ],
    );
}

#[test]
fn map_directives() {
    run(
        schema_for("", "ConfigMap"),
        vec![
            (
                "$patch: replace replaces the map",
                json!({"data": {"a": "1", "b": "2"}}),
                json!({"data": {"$patch": "replace", "c": "3"}}),
                json!({"data": {"c": "3"}}),
            ),
            (
                "$patch: replace at the top",
                json!({"kind": "ConfigMap", "data": {"a": "1"}}),
                json!({"$patch": "replace", "kind": "ConfigMap"}),
                json!({"kind": "ConfigMap"}),
            ),
            (
                "$patch: delete empties the map",
                json!({"data": {"a": "1"}, "keep": 1}),
                json!({"data": {"$patch": "delete"}}),
                json!({"data": {}, "keep": 1}),
            ),
            (
                "$patch: delete on an absent map adds nothing",
                json!({"keep": 1}),
                json!({"data": {"$patch": "delete"}}),
                json!({"keep": 1}),
            ),
            (
                "directives nested in a replaced map are dropped",
                json!({"data": {"a": "1"}}),
                json!({"data": {"$patch": "replace", "m": {"$retainKeys": ["x"], "x": 1}}}),
                json!({"data": {"m": {"x": 1}}}),
            ),
            (
                "$retainKeys keeps only the listed keys",
                json!({"spec": {"a": 1, "b": 2, "c": 3}}),
                json!({"spec": {"$retainKeys": ["a", "c", "d"], "d": 4}}),
                json!({"spec": {"a": 1, "c": 3, "d": 4}}),
            ),
            (
                "$retainKeys allows nulls for unlisted keys",
                json!({"spec": {"a": 1, "b": 2}}),
                json!({"spec": {"$retainKeys": ["a"], "b": null}}),
                json!({"spec": {"a": 1}}),
            ),
        ],
    );
}

#[test]
fn merge_key_lists() {
    let pod = |containers: Value| json!({"spec": {"containers": containers}});
    run(
        Some(pod_schema()),
        vec![
            (
                "item merged by name, others kept",
                pod(json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}])),
                pod(json!([{"name": "b", "image": "b:2"}])),
                pod(json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:2"}])),
            ),
            (
                // Kubernetes places patch-only items ahead of the live
                // items (see the kubectl patch task page).
                "new item goes first",
                pod(json!([{"name": "a", "image": "a:1"}])),
                pod(json!([{"name": "b", "image": "b:1"}])),
                pod(json!([{"name": "b", "image": "b:1"}, {"name": "a", "image": "a:1"}])),
            ),
            (
                "new item after a patched live item",
                pod(json!([{"name": "a"}, {"name": "b"}])),
                pod(json!([{"name": "a", "image": "x"}, {"name": "c"}])),
                pod(json!([{"name": "a", "image": "x"}, {"name": "c"}, {"name": "b"}])),
            ),
            (
                "patch order wins for items it names",
                pod(json!([{"name": "a"}, {"name": "b"}, {"name": "c"}])),
                pod(json!([{"name": "c", "image": "c"}, {"name": "a", "image": "a"}])),
                pod(
                    json!([{"name": "b"}, {"name": "c", "image": "c"}, {"name": "a", "image": "a"}]),
                ),
            ),
            (
                "$patch: delete removes the item",
                pod(json!([{"name": "a"}, {"name": "b"}, {"name": "a", "dup": true}])),
                pod(json!([{"name": "a", "$patch": "delete"}])),
                pod(json!([{"name": "b"}])),
            ),
            (
                "$patch: delete of a missing item is harmless",
                pod(json!([{"name": "a"}])),
                pod(json!([{"name": "zz", "$patch": "delete"}])),
                pod(json!([{"name": "a"}])),
            ),
            (
                "$patch: replace replaces the list",
                pod(json!([{"name": "a", "image": "a"}, {"name": "b"}])),
                pod(json!([{"$patch": "replace"}, {"name": "c", "image": "c"}])),
                pod(json!([{"name": "c", "image": "c"}])),
            ),
            (
                "$patch: replace alone empties the list",
                pod(json!([{"name": "a"}])),
                pod(json!([{"$patch": "replace"}])),
                pod(json!([])),
            ),
            (
                "nested merge lists merge too",
                pod(json!([{
                    "name": "a",
                    "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}],
                    "ports": [{"containerPort": 80, "name": "http"}],
                    "envFrom": [{"configMapRef": {"name": "one"}}]
                }])),
                pod(json!([{
                    "name": "a",
                    "env": [{"name": "Y", "value": "3"}],
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "envFrom": [{"secretRef": {"name": "two"}}]
                }])),
                pod(json!([{
                    "name": "a",
                    "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "3"}],
                    "ports": [{"containerPort": 80, "name": "http", "protocol": "TCP"}],
                    "envFrom": [{"secretRef": {"name": "two"}}]
                }])),
            ),
            (
                "atomic list is replaced",
                json!({"spec": {"tolerations": [{"key": "a"}, {"key": "b"}]}}),
                json!({"spec": {"tolerations": [{"key": "c"}]}}),
                json!({"spec": {"tolerations": [{"key": "c"}]}}),
            ),
            (
                "directive keys in a replaced list are dropped",
                json!({"spec": {"tolerations": [{"key": "a"}]}}),
                json!({"spec": {"tolerations": [{"key": "c", "$patch": "delete"}]}}),
                json!({"spec": {"tolerations": [{"key": "c"}]}}),
            ),
            (
                "new list with directive items",
                json!({"spec": {}}),
                pod(json!([{"name": "a"}, {"name": "b", "$patch": "delete"}])),
                pod(json!([{"name": "a"}])),
            ),
            (
                "status conditions merge by type",
                json!({"status": {"conditions": [
                    {"type": "Ready", "status": "False"},
                    {"type": "Initialized", "status": "True"}
                ]}}),
                json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
                json!({"status": {"conditions": [
                    {"type": "Ready", "status": "True"},
                    {"type": "Initialized", "status": "True"}
                ]}}),
            ),
            (
                "owner references merge by uid",
                json!({"metadata": {"ownerReferences": [{"uid": "1", "name": "x"}]}}),
                json!({"metadata": {"ownerReferences": [{"uid": "1", "controller": true}]}}),
                json!({"metadata": {"ownerReferences": [{"uid": "1", "name": "x", "controller": true}]}}),
            ),
        ],
    );
}

#[test]
fn primitive_sets() {
    let fin = |list: Value| json!({"metadata": {"finalizers": list}});
    run(
        Some(pod_schema()),
        vec![
            (
                "union keeps live order for known items",
                fin(json!(["a", "b"])),
                fin(json!(["b", "c"])),
                fin(json!(["a", "b", "c"])),
            ),
            (
                "patch-only values go first",
                fin(json!(["a", "b"])),
                fin(json!(["c"])),
                fin(json!(["c", "a", "b"])),
            ),
            (
                "duplicates collapse",
                fin(json!(["a", "a"])),
                fin(json!(["a"])),
                fin(json!(["a"])),
            ),
            (
                "$deleteFromPrimitiveList removes values",
                fin(json!(["a", "b", "c", "b"])),
                json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "x"]}}),
                fin(json!(["a", "c"])),
            ),
            (
                "$deleteFromPrimitiveList on an absent list adds nothing",
                json!({"metadata": {}}),
                json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}}),
                json!({"metadata": {}}),
            ),
            (
                "add and delete in one patch",
                fin(json!(["a", "b"])),
                json!({"metadata": {
                    "finalizers": ["c"],
                    "$deleteFromPrimitiveList/finalizers": ["a"]
                }}),
                fin(json!(["c", "b"])),
            ),
            (
                "$setElementOrder orders a primitive list",
                fin(json!(["a", "b", "c"])),
                json!({"metadata": {"$setElementOrder/finalizers": ["c", "a", "b"]}}),
                fin(json!(["c", "a", "b"])),
            ),
            (
                "$setElementOrder with an addition",
                fin(json!(["a", "b"])),
                json!({"metadata": {
                    "$setElementOrder/finalizers": ["a", "x", "b"],
                    "finalizers": ["x"]
                }}),
                fin(json!(["a", "x", "b"])),
            ),
            (
                "$deleteFromPrimitiveList also works on lists without a strategy",
                json!({"spec": {"plain": [1, 2, 3]}}),
                json!({"spec": {"$deleteFromPrimitiveList/plain": [2]}}),
                json!({"spec": {"plain": [1, 3]}}),
            ),
        ],
    );
}

#[test]
fn retain_keys() {
    run(
        schema_for("apps", "Deployment"),
        vec![
            (
                // kubectl apply switching a Deployment to Recreate
                "deployment strategy",
                json!({"spec": {"strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}
                }}}),
                json!({"spec": {"strategy": {
                    "$retainKeys": ["type"],
                    "type": "Recreate",
                    "rollingUpdate": null
                }}}),
                json!({"spec": {"strategy": {"type": "Recreate"}}}),
            ),
            (
                // kubectl apply turning an emptyDir volume into a configMap one
                "volume source switch",
                json!({"spec": {"template": {"spec": {"volumes": [
                    {"name": "data", "emptyDir": {}},
                    {"name": "other", "secret": {"secretName": "s"}}
                ]}}}}),
                json!({"spec": {"template": {"spec": {"volumes": [
                    {"$retainKeys": ["configMap", "name"], "name": "data", "configMap": {"name": "cfg"}}
                ]}}}}),
                json!({"spec": {"template": {"spec": {"volumes": [
                    {"name": "data", "configMap": {"name": "cfg"}},
                    {"name": "other", "secret": {"secretName": "s"}}
                ]}}}}),
            ),
        ],
    );
}

#[test]
fn deployment_pod_template() {
    let live = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "nginx:1.0",
                            "env": [{"name": "A", "value": "1"}],
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}]
                        },
                        {"name": "sidecar", "image": "envoy:1"}
                    ],
                    "volumes": [{"name": "data", "emptyDir": {}}],
                    "tolerations": [{"key": "k", "operator": "Exists"}]
                }
            }
        }
    });
    let patch = json!({
        "spec": {
            "replicas": 3,
            "template": {
                "metadata": {"annotations": {"restartedAt": "now"}},
                "spec": {
                    "containers": [{
                        "name": "web",
                        "env": [{"name": "B", "value": "2"}],
                        "volumeMounts": [{"name": "cache", "mountPath": "/cache"}]
                    }],
                    "volumes": [{"name": "cache", "emptyDir": {}}],
                    "tolerations": [{"key": "other", "operator": "Exists"}]
                }
            }
        }
    });
    let expected = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}, "annotations": {"restartedAt": "now"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "nginx:1.0",
                            "env": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}],
                            "volumeMounts": [
                                {"name": "cache", "mountPath": "/cache"},
                                {"name": "data", "mountPath": "/data"}
                            ]
                        },
                        {"name": "sidecar", "image": "envoy:1"}
                    ],
                    "volumes": [{"name": "cache", "emptyDir": {}}, {"name": "data", "emptyDir": {}}],
                    "tolerations": [{"key": "other", "operator": "Exists"}]
                }
            }
        }
    });
    let got = apply(&live, &patch, schema_for("apps", "Deployment")).unwrap();
    assert_eq!(got, expected);

    // The same pod template under a CronJob.
    let cron =
        json!({"spec": {"jobTemplate": {"spec": {"template": live["spec"]["template"].clone()}}}});
    let cron_patch =
        json!({"spec": {"jobTemplate": {"spec": {"template": patch["spec"]["template"].clone()}}}});
    let got = apply(&cron, &cron_patch, schema_for("batch", "CronJob")).unwrap();
    assert_eq!(
        got["spec"]["jobTemplate"]["spec"]["template"],
        expected["spec"]["template"]
    );
}

/// What `kubectl apply` sends (a three-way patch computed by
/// `CreateThreeWayMergePatch`) when the container image changes and an
/// env var is removed from the configuration.
#[test]
fn kubectl_apply_image_change_and_env_removal() {
    let live = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"old\":true}"}
        },
        "spec": {"template": {"spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "nginx:1.0",
                    "imagePullPolicy": "IfNotPresent",
                    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                    "terminationMessagePath": "/dev/termination-log"
                },
                {"name": "sidecar", "image": "envoy:1"}
            ],
            "dnsPolicy": "ClusterFirst"
        }}}
    });
    let patch = json!({
        "metadata": {
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"new\":true}"}
        },
        "spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
            "containers": [{
                "$setElementOrder/env": [{"name": "A"}],
                "env": [{"$patch": "delete", "name": "B"}],
                "image": "nginx:1.1",
                "name": "app"
            }]
        }}}
    });
    let expected = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"new\":true}"}
        },
        "spec": {"template": {"spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "nginx:1.1",
                    "imagePullPolicy": "IfNotPresent",
                    "env": [{"name": "A", "value": "1"}],
                    "terminationMessagePath": "/dev/termination-log"
                },
                {"name": "sidecar", "image": "envoy:1"}
            ],
            "dnsPolicy": "ClusterFirst"
        }}}
    });
    let got = apply(&live, &patch, schema_for("apps", "Deployment")).unwrap();
    assert_eq!(got, expected);
}

/// `kubectl apply` replacing env var B by D while the live object also
/// has C, added by someone else. Kubernetes keeps C ahead of the newly
/// added D (a side effect of merging inside the live list, see
/// `live_order_after_merge`).
#[test]
fn kubectl_apply_env_swap_keeps_server_items_in_place() {
    let live = json!({"spec": {"containers": [{
        "name": "app",
        "env": [{"name": "A"}, {"name": "B"}, {"name": "C"}]
    }]}});
    let patch = json!({"spec": {
        "$setElementOrder/containers": [{"name": "app"}],
        "containers": [{
            "name": "app",
            "$setElementOrder/env": [{"name": "A"}, {"name": "D"}],
            "env": [{"name": "D", "value": "4"}, {"$patch": "delete", "name": "B"}]
        }]
    }});
    let got = apply(&live, &patch, Some(pod_schema())).unwrap();
    assert_eq!(
        got["spec"]["containers"][0]["env"],
        json!([{"name": "A"}, {"name": "C"}, {"name": "D", "value": "4"}])
    );
}

#[test]
fn set_element_order() {
    let pod = |containers: Value| json!({"spec": {"containers": containers}});
    run(
        Some(pod_schema()),
        vec![
            (
                "reorder without changes",
                pod(json!([{"name": "a"}, {"name": "b"}, {"name": "c"}])),
                json!({"spec": {"$setElementOrder/containers": [{"name": "c"}, {"name": "a"}, {"name": "b"}]}}),
                pod(json!([{"name": "c"}, {"name": "a"}, {"name": "b"}])),
            ),
            (
                // `s` comes before `b` in the live list, and `b` is where
                // the ordered items start.
                "server-only items stay ahead of later live items",
                pod(json!([{"name": "a"}, {"name": "s"}, {"name": "b"}])),
                json!({"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}}),
                pod(json!([{"name": "s"}, {"name": "b"}, {"name": "a"}])),
            ),
            (
                "addition placed as ordered",
                pod(json!([{"name": "a"}, {"name": "b"}])),
                json!({"spec": {
                    "$setElementOrder/containers": [{"name": "a"}, {"name": "n"}, {"name": "b"}],
                    "containers": [{"name": "n", "image": "n"}]
                }}),
                pod(json!([{"name": "a"}, {"name": "n", "image": "n"}, {"name": "b"}])),
            ),
            (
                "list created by the patch",
                json!({"spec": {}}),
                json!({"spec": {
                    "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
                    "containers": [{"name": "b"}, {"name": "a"}]
                }}),
                pod(json!([{"name": "b"}, {"name": "a"}])),
            ),
            (
                "order for an absent list is ignored",
                json!({"spec": {}}),
                json!({"spec": {"$setElementOrder/containers": [{"name": "a"}]}}),
                json!({"spec": {}}),
            ),
        ],
    );
}

#[test]
fn without_schema_lists_are_replaced() {
    run(
        None,
        vec![
            (
                "lists replaced, maps merged",
                json!({"spec": {"containers": [{"name": "a"}], "x": {"y": 1}}}),
                json!({"spec": {"containers": [{"name": "b"}], "x": {"z": 2}}}),
                json!({"spec": {"containers": [{"name": "b"}], "x": {"y": 1, "z": 2}}}),
            ),
            (
                "null patch changes nothing",
                json!({"a": 1}),
                Value::Null,
                json!({"a": 1}),
            ),
        ],
    );
}

#[test]
fn errors() {
    let pod = json!({
        "metadata": {"finalizers": ["a"]},
        "spec": {"containers": [{"name": "a"}], "matrix": [[1]]}
    });
    let cases: Vec<(&str, Value, u16)> = vec![
        ("patch is a list", json!([]), 400),
        ("patch is a string", json!("x"), 400),
        (
            "retainKeys is not a list",
            json!({"spec": {"$retainKeys": "containers"}}),
            400,
        ),
        (
            "patch sets a key missing from retainKeys",
            json!({"spec": {"$retainKeys": ["containers"], "hostname": "h"}}),
            400,
        ),
        (
            "malformed $setElementOrder key",
            json!({"spec": {"$setElementOrder": [{"name": "a"}]}}),
            400,
        ),
        (
            "malformed $deleteFromPrimitiveList key",
            json!({"metadata": {"$deleteFromPrimitiveListfinalizers": ["a"]}}),
            400,
        ),
        (
            "list items missing the merge key",
            json!({"spec": {"containers": [{"image": "x"}]}}),
            500,
        ),
        (
            "unknown $patch value in an object",
            json!({"spec": {"$patch": "frobnicate"}}),
            500,
        ),
        (
            "$patch: merge in an object",
            json!({"spec": {"$patch": "merge"}}),
            500,
        ),
        (
            "$patch: merge as a list item",
            json!({"spec": {"containers": [{"$patch": "merge"}]}}),
            500,
        ),
        (
            "list item of the wrong type",
            json!({"spec": {"containers": ["a"]}}),
            500,
        ),
        (
            "$setElementOrder disagreeing with the patch list",
            json!({"spec": {
                "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
                "containers": [{"name": "b"}, {"name": "a"}]
            }}),
            500,
        ),
        (
            "lists of lists",
            json!({"spec": {"$deleteFromPrimitiveList/matrix": [[1]]}}),
            422,
        ),
        (
            "items of mixed types",
            json!({"metadata": {"finalizers": [["a"]]}}),
            500,
        ),
    ];
    for (name, patch, code) in cases {
        let err = apply(&pod, &patch, Some(pod_schema())).expect_err(name);
        assert_eq!(err.status_code(), code, "{name}: {err}");
    }
    let err = apply(&json!([]), &json!({}), None).expect_err("list original");
    assert_eq!(err.status_code(), 400);
}
