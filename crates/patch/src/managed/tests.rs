//! Tests of the module as a whole.

use serde_json::Value;
use serde_json::json;

use super::apply::{Applied, ApplyError, apply, strip_meta, update};
use super::managers::{MAX_UPDATE_MANAGERS, ManagedEntry, ManagedFields, ManagerId};
use super::path::{FieldPath, PathElement};
use super::set::FieldSet;
use super::types::Type;
use super::walk::{compare, field_set, merge};

fn f(names: &[&str]) -> FieldPath {
    FieldPath::fields(names)
}

fn key(name: &str, v: &str) -> PathElement {
    PathElement::key([(name, json!(v))])
}

const NOW: &str = "2026-01-01T00:00:00Z";
const LATER: &str = "2026-01-01T00:01:00Z";

fn deployment() -> Type<'static> {
    Type::builtin("apps", "Deployment")
}

#[test]
fn path_elements_round_trip_their_encoding() {
    let cases = [
        (PathElement::field("spec"), "f:spec", ".spec"),
        (key("name", "web"), r#"k:{"name":"web"}"#, r#"[name="web"]"#),
        (
            PathElement::key([("protocol", json!("TCP")), ("containerPort", json!(80))]),
            r#"k:{"containerPort":80,"protocol":"TCP"}"#,
            r#"[containerPort=80,protocol="TCP"]"#,
        ),
        (
            PathElement::Value(json!("a<b")),
            r#"v:"a\u003cb""#,
            r#"[="a<b"]"#,
        ),
        (PathElement::Value(json!(3)), "v:3", "[=3]"),
        (PathElement::Index(2), "i:2", "[2]"),
    ];
    for (pe, encoded, shown) in cases {
        assert_eq!(pe.encode(), encoded);
        assert_eq!(pe.to_string(), shown);
        assert_eq!(PathElement::decode(encoded).unwrap(), pe, "{encoded}");
    }
    for bad in ["", "x", "q:1", "k:[1]", "v:{", "i:x", "fx"] {
        assert!(PathElement::decode(bad).is_err(), "{bad:?}");
    }
    // Field names sort before keys, keys before values, values before indexes.
    let mut pes = [
        PathElement::Index(0),
        PathElement::Value(json!("a")),
        key("name", "a"),
        PathElement::field("z"),
        PathElement::Value(json!(10)),
    ];
    pes.sort();
    let encoded: Vec<String> = pes.iter().map(PathElement::encode).collect();
    assert_eq!(
        encoded,
        ["f:z", r#"k:{"name":"a"}"#, "v:10", r#"v:"a""#, "i:0"]
    );
}

#[test]
fn set_algebra() {
    let a = FieldSet::from_paths([f(&["spec"]), f(&["spec", "a"]), f(&["spec", "b"])]);
    let b = FieldSet::from_paths([f(&["spec", "b"]), f(&["spec", "c"])]);
    assert_eq!(a.union(&b).paths().len(), 4);
    assert_eq!(a.intersection(&b).paths(), vec![f(&["spec", "b"])]);
    assert_eq!(
        a.difference(&b).paths(),
        vec![f(&["spec"]), f(&["spec", "a"])]
    );
    // A member removes its subtree only in a recursive difference.
    let spec = FieldSet::from_paths([f(&["spec"])]);
    assert_eq!(
        a.difference(&spec).paths(),
        vec![f(&["spec", "a"]), f(&["spec", "b"])]
    );
    assert!(a.recursive_difference(&spec).is_empty());
    assert!(a.has(&f(&["spec", "a"]).0));
    assert!(!b.has(&f(&["spec"]).0));
    assert!(FieldSet::new().is_empty());
    let mut s = FieldSet::new();
    s.insert(&[]);
    assert!(s.is_empty(), "the whole object is never tracked");
}

#[test]
fn fields_v1_encoding() {
    let set = FieldSet::from_paths([
        f(&["metadata", "labels", "app"]),
        f(&["spec", "template", "spec", "containers"]).with(key("name", "web")),
        f(&["spec", "template", "spec", "containers"])
            .with(key("name", "web"))
            .with(PathElement::field("image")),
        f(&["spec", "replicas"]),
    ]);
    let v1 = set.to_fields_v1();
    assert_eq!(
        v1,
        json!({
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:template": {"f:spec": {"f:containers": {
                    "k:{\"name\":\"web\"}": {".": {}, "f:image": {}}
                }}}
            }
        })
    );
    assert_eq!(FieldSet::from_fields_v1(&v1).unwrap(), set);
    assert!(FieldSet::from_fields_v1(&json!({"f:a": 1})).is_err());
    assert!(FieldSet::from_fields_v1(&json!({"bad": {}})).is_err());
    assert!(FieldSet::from_fields_v1(&json!([])).is_err());
}

#[test]
fn field_sets_of_builtin_objects() {
    let obj = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}, "finalizers": ["a/b"], "annotations": {}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"spec": {
                "containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}], "args": ["-v"]}],
                "tolerations": [{"key": "k"}]
            }}
        }
    });
    let set = field_set(&obj, deployment()).unwrap();
    let shown: Vec<String> = set.paths().iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            ".apiVersion",
            ".kind",
            ".metadata.annotations",
            ".metadata.name",
            ".metadata.finalizers[=\"a/b\"]",
            ".metadata.labels.app",
            ".spec.replicas",
            ".spec.selector",
            ".spec.template.spec.tolerations",
            ".spec.template.spec.containers[name=\"web\"]",
            ".spec.template.spec.containers[name=\"web\"].args",
            ".spec.template.spec.containers[name=\"web\"].image",
            ".spec.template.spec.containers[name=\"web\"].name",
            ".spec.template.spec.containers[name=\"web\"].ports[containerPort=80,protocol=\"TCP\"]",
            ".spec.template.spec.containers[name=\"web\"].ports[containerPort=80,protocol=\"TCP\"].containerPort",
        ]
    );
    // Applied sets have no "." on maps, only on list items.
    assert_eq!(
        strip_meta(&set).to_fields_v1()["f:metadata"],
        json!({"f:annotations": {}, "f:finalizers": {"v:\"a/b\"": {}}, "f:labels": {"f:app": {}}})
    );
}

#[test]
fn invalid_lists_are_rejected() {
    let ty = Type::builtin("", "Pod");
    let dup = json!({"spec": {"containers": [{"name": "a"}, {"name": "a"}]}});
    assert_eq!(
        field_set(&dup, ty).unwrap_err(),
        ".spec.containers: duplicate entries for key [name=\"a\"]"
    );
    let nokey = json!({"spec": {"containers": [{"image": "x"}]}});
    assert_eq!(
        field_set(&nokey, ty).unwrap_err(),
        ".spec.containers: element 0: associative list with keys has an element that omits all key fields [\"name\"] (and doesn't have default values for any key fields)"
    );
    let set_of_maps = json!({"metadata": {"finalizers": [{"a": 1}]}});
    assert!(field_set(&set_of_maps, ty).is_err());
}

fn widget_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "items": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name", "zone"],
                        "items": {"type": "object", "properties": {
                            "name": {"type": "string"},
                            "zone": {"type": "string", "default": "a"},
                            "size": {"type": "integer"}
                        }}
                    },
                    "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                    "plain": {"type": "array", "items": {"type": "string"}},
                    "selector": {"type": "object", "x-kubernetes-map-type": "atomic"},
                    "extra": {"type": "object", "additionalProperties": {"type": "object", "properties": {"x": {"type": "integer"}}}}
                }
            }
        }
    })
}

#[test]
fn field_sets_of_custom_resources_follow_the_schema() {
    let schema = widget_schema();
    let ty = Type::custom_resource(Some(&schema));
    let obj = json!({"spec": {
        "items": [{"name": "x", "size": 1}, {"name": "x", "zone": "b"}],
        "tags": ["t1"],
        "plain": ["p"],
        "selector": {"a": "b"},
        "extra": {"e": {"x": 1}}
    }});
    let set = field_set(&obj, ty).unwrap();
    assert_eq!(
        set.to_fields_v1()["f:spec"],
        json!({
            "f:items": {
                "k:{\"name\":\"x\",\"zone\":\"a\"}": {".": {}, "f:name": {}, "f:size": {}},
                "k:{\"name\":\"x\",\"zone\":\"b\"}": {".": {}, "f:name": {}, "f:zone": {}}
            },
            "f:tags": {"v:\"t1\"": {}},
            "f:plain": {},
            "f:selector": {},
            "f:extra": {"f:e": {".": {}, "f:x": {}}}
        })
    );
    // Without a schema every key is a map element and lists are atomic.
    let set = field_set(
        &json!({"spec": {"a": {"b": 1}, "l": [1]}}),
        Type::custom_resource(None),
    )
    .unwrap();
    assert_eq!(
        set.to_fields_v1(),
        json!({"f:spec": {".": {}, "f:a": {".": {}, "f:b": {}}, "f:l": {}}})
    );
}

#[test]
fn comparisons() {
    let ty = deployment();
    let old = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}}});
    let new = json!({"metadata": {"labels": {"a": "1", "c": "3"}, "annotations": {"n": "v"}}, "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b"}]}}}});
    let c = compare(Some(&old), Some(&new), ty);
    let show = |s: &FieldSet| {
        s.paths()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(show(&c.modified), [".spec.replicas"]);
    assert_eq!(
        show(&c.added),
        [
            ".metadata.annotations",
            ".metadata.annotations.n",
            ".metadata.labels.c",
            ".spec.template.spec.containers[name=\"b\"]",
            ".spec.template.spec.containers[name=\"b\"].name",
        ]
    );
    assert_eq!(show(&c.removed), [".metadata.labels.b"]);
    assert!(compare(Some(&old), Some(&old), ty).is_same());
    // Numbers compare numerically.
    assert!(compare(Some(&json!({"a": 1})), Some(&json!({"a": 1.0})), ty).is_same());
}

#[test]
fn merging_keeps_live_items_and_orders_new_ones_like_kubernetes() {
    let ty = Type::builtin("", "Pod");
    let live = json!({"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b"}, {"name": "c"}], "tolerations": [{"key": "x"}]}});
    let config = json!({"spec": {"containers": [{"name": "d"}, {"name": "b", "image": "2"}], "tolerations": [{"key": "y"}]}});
    let out = merge(&live, &config, ty);
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "a", "image": "1"}, {"name": "d"}, {"name": "b", "image": "2"}, {"name": "c"}])
    );
    assert_eq!(
        out["spec"]["tolerations"],
        json!([{"key": "y"}]),
        "atomic lists are replaced"
    );
    let out = merge(
        &json!({"a": 1, "b": {"c": 1}}),
        &json!({"a": null, "b": null}),
        Type::deduced(),
    );
    assert_eq!(out, json!({"b": {"c": 1}}), "null clears scalars");
}

fn mgr(name: &str) -> ManagerId {
    ManagerId::apply(name, "")
}

fn run_apply(
    live: &Value,
    config: &Value,
    managed: &ManagedFields,
    who: &str,
    force: bool,
) -> Result<Applied, ApplyError> {
    apply(
        live,
        config,
        deployment(),
        managed,
        &mgr(who),
        "apps/v1",
        force,
        &FieldSet::new(),
        NOW,
    )
}

fn deploy(spec: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": spec})
}

#[test]
fn apply_creates_records_and_prunes() {
    let first = run_apply(
        &json!({}),
        &deploy(json!({"replicas": 1, "paused": true, "template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}})),
        &ManagedFields::new(),
        "alice",
        false,
    )
    .unwrap();
    assert!(first.changed);
    let entry = first.managed.get(&mgr("alice")).unwrap();
    assert_eq!(entry.time.as_deref(), Some(NOW));
    assert_eq!(entry.api_version, "apps/v1");
    assert_eq!(
        entry.set.to_fields_v1(),
        json!({"f:spec": {"f:paused": {}, "f:replicas": {}, "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"a\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}})
    );
    // Dropping fields from the configuration removes them.
    let second = apply(
        &first.object,
        &deploy(json!({"replicas": 1, "template": {"spec": {"containers": []}}})),
        deployment(),
        &first.managed,
        &mgr("alice"),
        "apps/v1",
        false,
        &FieldSet::new(),
        LATER,
    )
    .unwrap();
    assert_eq!(second.object["spec"], json!({"replicas": 1}));
    assert_eq!(
        second.managed.get(&mgr("alice")).unwrap().time.as_deref(),
        Some(LATER)
    );
    // Applying the same again changes nothing, not even the time.
    let third = apply(
        &second.object,
        &deploy(json!({"replicas": 1})),
        deployment(),
        &second.managed,
        &mgr("alice"),
        "apps/v1",
        false,
        &FieldSet::new(),
        "2030-01-01T00:00:00Z",
    )
    .unwrap();
    assert!(!third.changed);
    assert_eq!(third.managed, second.managed);
}

#[test]
fn conflicts_force_and_shared_ownership() {
    let a = run_apply(
        &json!({}),
        &deploy(json!({"replicas": 1, "paused": false})),
        &ManagedFields::new(),
        "alice",
        false,
    )
    .unwrap();
    // Same value: shared, no conflict.
    let b = run_apply(
        &a.object,
        &deploy(json!({"replicas": 1})),
        &a.managed,
        "bob",
        false,
    )
    .unwrap();
    assert!(!b.changed);
    let replicas = f(&["spec", "replicas"]);
    assert!(b.managed.get(&mgr("alice")).unwrap().set.has(&replicas.0));
    assert!(b.managed.get(&mgr("bob")).unwrap().set.has(&replicas.0));
    // Different value: conflict with the one owner (bob's own share is not a conflict).
    let err = run_apply(
        &b.object,
        &deploy(json!({"replicas": 3, "paused": true})),
        &b.managed,
        "bob",
        false,
    )
    .unwrap_err();
    let ApplyError::Conflicts(c) = err else {
        panic!("{err:?}")
    };
    assert_eq!(
        c.message(),
        "Apply failed with 2 conflicts: conflicts with \"alice\":\n- .spec.paused\n- .spec.replicas"
    );
    // Forcing takes ownership.
    let forced = run_apply(
        &b.object,
        &deploy(json!({"replicas": 3})),
        &b.managed,
        "bob",
        true,
    )
    .unwrap();
    assert_eq!(forced.object["spec"]["replicas"], 3);
    assert!(
        !forced
            .managed
            .get(&mgr("alice"))
            .unwrap()
            .set
            .has(&replicas.0)
    );
    assert!(
        forced
            .managed
            .get(&mgr("bob"))
            .unwrap()
            .set
            .has(&replicas.0)
    );
    // A field still owned by another applier survives its other owner dropping it.
    let bare = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}});
    let dropped = run_apply(&b.object, &bare, &b.managed, "bob", false).unwrap();
    assert_eq!(dropped.object["spec"]["replicas"], 1);
    assert!(
        dropped.managed.get(&mgr("bob")).is_none(),
        "an empty applier entry goes away"
    );
}

#[test]
fn updates_take_ownership_and_conflict_with_appliers() {
    let created = update(
        None,
        &deploy(json!({"replicas": 1, "template": {"metadata": {"labels": {"app": "x"}}}})),
        deployment(),
        &ManagedFields::new(),
        &ManagerId::update("kubectl-create", "apps/v1", ""),
        "apps/v1",
        &FieldSet::new(),
        NOW,
    );
    let creator = ManagerId::update("kubectl-create", "apps/v1", "");
    assert_eq!(
        created.get(&creator).unwrap().set.to_fields_v1(),
        json!({"f:spec": {".": {}, "f:replicas": {}, "f:template": {".": {}, "f:metadata": {".": {}, "f:labels": {".": {}, "f:app": {}}}}}})
    );
    let live = deploy(json!({"replicas": 1, "template": {"metadata": {"labels": {"app": "x"}}}}));
    let err = run_apply(
        &live,
        &deploy(json!({"replicas": 2})),
        &created,
        "kubectl",
        false,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"kubectl-create\" using apps/v1: .spec.replicas"
    );
    // An edit moves the field it changes to the editor.
    let edited = update(
        Some(&live),
        &deploy(json!({"replicas": 5, "template": {"metadata": {"labels": {"app": "x"}}}})),
        deployment(),
        &created,
        &ManagerId::update("kubectl-edit", "apps/v1", ""),
        "apps/v1",
        &FieldSet::new(),
        LATER,
    );
    let editor = edited
        .get(&ManagerId::update("kubectl-edit", "apps/v1", ""))
        .unwrap();
    assert_eq!(editor.set.paths(), vec![f(&["spec", "replicas"])]);
    assert_eq!(editor.time.as_deref(), Some(LATER));
    assert!(
        !edited
            .get(&creator)
            .unwrap()
            .set
            .has(&f(&["spec", "replicas"]).0)
    );
    // A write that changes nothing records nothing.
    let same = update(
        Some(&live),
        &live,
        deployment(),
        &created,
        &ManagerId::update("x", "apps/v1", ""),
        "apps/v1",
        &FieldSet::new(),
        LATER,
    );
    assert_eq!(same, created);
}

#[test]
fn ignored_fields_are_not_owned() {
    let status = FieldSet::from_paths([f(&["status"])]);
    let mut config = deploy(json!({"replicas": 1}));
    config["status"] = json!({"replicas": 1});
    let out = apply(
        &json!({}),
        &config,
        deployment(),
        &ManagedFields::new(),
        &mgr("a"),
        "apps/v1",
        false,
        &status,
        NOW,
    )
    .unwrap();
    let set = &out.managed.get(&mgr("a")).unwrap().set;
    assert!(set.child(&PathElement::field("status")).is_none());
    assert!(set.has(&f(&["spec", "replicas"]).0));
}

#[test]
fn managed_fields_round_trip_and_validation() {
    let mut m = ManagedFields::new();
    m.insert(
        ManagerId::update("kube-controller-manager", "v1", "status"),
        ManagedEntry {
            set: FieldSet::from_paths([f(&["status", "phase"])]),
            api_version: "v1".into(),
            time: Some(LATER.into()),
        },
    );
    m.insert(
        mgr("kubectl"),
        ManagedEntry {
            set: FieldSet::from_paths([f(&["data", "k"])]),
            api_version: "v1".into(),
            time: Some(LATER.into()),
        },
    );
    m.insert(
        ManagerId::update("kubectl-create", "v1", ""),
        ManagedEntry {
            set: FieldSet::from_paths([f(&["data", "j"])]),
            api_version: "v1".into(),
            time: Some(NOW.into()),
        },
    );
    let encoded = m.encode().unwrap();
    let order: Vec<&str> = encoded
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["manager"].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        ["kubectl", "kubectl-create", "kube-controller-manager"]
    );
    assert_eq!(encoded[2]["subresource"], "status");
    assert_eq!(encoded[0]["fieldsType"], "FieldsV1");
    assert_eq!(ManagedFields::decode(Some(&encoded)).unwrap(), m);
    assert!(ManagedFields::new().encode().is_none());
    for bad in [
        json!([{"operation": "Patch", "apiVersion": "v1", "fieldsType": "FieldsV1"}]),
        json!([{"operation": "Apply", "fieldsType": "FieldsV1"}]),
        json!([{"operation": "Apply", "apiVersion": "v1"}]),
        json!([{"operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV2"}]),
        json!({}),
    ] {
        assert!(ManagedFields::decode(Some(&bad)).is_err(), "{bad}");
    }
    assert!(ManagedFields::is_reset(Some(&json!([]))));
    assert!(ManagedFields::is_reset(Some(&json!([{}]))));
    assert!(!ManagedFields::is_reset(None));
    assert!(!ManagedFields::is_reset(Some(&encoded)));
    assert_eq!(
        ManagerId::update("a", "v1", "status").describe(),
        "\"a\" with subresource \"status\" using v1"
    );
    assert_eq!(
        mgr("a").identifier(),
        r#"{"manager":"a","operation":"Apply"}"#
    );
}

#[test]
fn update_managers_are_capped() {
    let mut m = ManagedFields::new();
    let live = json!({"data": {}});
    let mut obj = live.clone();
    for i in 0..12 {
        let mut next = obj.clone();
        next["data"][format!("k{i}")] = json!("v");
        m = update(
            Some(&obj),
            &next,
            Type::builtin("", "ConfigMap"),
            &m,
            &ManagerId::update(&format!("m{i:02}"), "v1", ""),
            "v1",
            &FieldSet::new(),
            &format!("2026-01-01T00:00:{i:02}Z"),
        );
        obj = next;
    }
    assert_eq!(m.len(), MAX_UPDATE_MANAGERS);
    let ancient = m
        .get(&ManagerId::update("ancient-changes", "v1", ""))
        .unwrap();
    assert_eq!(ancient.set.paths().len(), 3);
}
