//! The same create / get / list / update / patch / delete sequence on many
//! built-in kinds.

use serde_json::{Value, json};

use super::NS;
use crate::step::{JSON_PATCH, MERGE, STRATEGIC, Step, Until};

struct Kind {
    /// Step id prefix.
    tag: &'static str,
    api_version: &'static str,
    kind: &'static str,
    /// Collection path.
    base: String,
    /// The object minus apiVersion/kind/metadata.name.
    body: Value,
    /// Strategic-merge patch body (kind specific).
    strategic: Value,
}

fn ns_path(prefix: &str, plural: &str) -> String {
    format!("{prefix}/namespaces/{NS}/{plural}")
}

fn kinds() -> Vec<Kind> {
    vec![
        Kind {
            tag: "cm",
            api_version: "v1",
            kind: "ConfigMap",
            base: ns_path("/api/v1", "configmaps"),
            body: json!({"data": {"a": "1", "b": "2"}}),
            strategic: json!({"data": {"c": "3", "a": null}}),
        },
        Kind {
            tag: "secret",
            api_version: "v1",
            kind: "Secret",
            base: ns_path("/api/v1", "secrets"),
            body: json!({"type": "Opaque", "data": {"user": "YWRtaW4="}, "stringData": {"pass": "s3cret"}}),
            strategic: json!({"stringData": {"extra": "x"}}),
        },
        Kind {
            tag: "svc",
            api_version: "v1",
            kind: "Service",
            base: ns_path("/api/v1", "services"),
            body: json!({"spec": {"clusterIP": "None", "selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}]}}),
            strategic: json!({"spec": {"ports": [{"name": "https", "port": 443}]}}),
        },
        Kind {
            tag: "deploy",
            api_version: "apps/v1",
            kind: "Deployment",
            base: ns_path("/apis/apps/v1", "deployments"),
            body: json!({"spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}}),
            strategic: json!({"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "busybox:1.36"}]}}}}),
        },
        Kind {
            tag: "pod",
            api_version: "v1",
            kind: "Pod",
            base: ns_path("/api/v1", "pods"),
            body: json!({"spec": {"nodeName": "node-1", "containers": [{"name": "app", "image": "busybox:1.36", "command": ["sleep", "3600"]}]}}),
            strategic: json!({"metadata": {"labels": {"tier": "backend"}}}),
        },
        Kind {
            tag: "sa",
            api_version: "v1",
            kind: "ServiceAccount",
            base: ns_path("/api/v1", "serviceaccounts"),
            body: json!({"automountServiceAccountToken": false}),
            strategic: json!({"imagePullSecrets": [{"name": "registry"}]}),
        },
        Kind {
            tag: "role",
            api_version: "rbac.authorization.k8s.io/v1",
            kind: "Role",
            base: ns_path("/apis/rbac.authorization.k8s.io/v1", "roles"),
            body: json!({"rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]}),
            strategic: json!({"metadata": {"annotations": {"reviewed": "yes"}}}),
        },
        Kind {
            tag: "lease",
            api_version: "coordination.k8s.io/v1",
            kind: "Lease",
            base: ns_path("/apis/coordination.k8s.io/v1", "leases"),
            body: json!({"spec": {"holderIdentity": "one", "leaseDurationSeconds": 15}}),
            strategic: json!({"spec": {"holderIdentity": "two"}}),
        },
        Kind {
            tag: "pc",
            api_version: "scheduling.k8s.io/v1",
            kind: "PriorityClass",
            base: "/apis/scheduling.k8s.io/v1/priorityclasses".into(),
            body: json!({"value": 1000, "description": "differential"}),
            strategic: json!({"description": "changed"}),
        },
        Kind {
            tag: "crole",
            api_version: "rbac.authorization.k8s.io/v1",
            kind: "ClusterRole",
            base: "/apis/rbac.authorization.k8s.io/v1/clusterroles".into(),
            body: json!({"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}),
            strategic: json!({"metadata": {"labels": {"team": "b"}}}),
        },
    ]
}

fn object(k: &Kind, name: &str, extra_meta: Value) -> Value {
    let mut meta = json!({"name": name});
    if let (Some(m), Value::Object(extra)) = (meta.as_object_mut(), extra_meta) {
        m.extend(extra);
    }
    let mut obj = json!({"apiVersion": k.api_version, "kind": k.kind, "metadata": meta});
    if let (Some(o), Some(b)) = (obj.as_object_mut(), k.body.as_object()) {
        o.extend(b.clone());
    }
    obj
}

fn sequence(k: &Kind) -> Vec<Step> {
    let t = k.tag;
    let name = format!("{t}-one");
    let item = format!("{}/{name}", k.base);
    let rv = format!("{t}_rv");
    let mut out = vec![
        Step::post(
            &format!("{t}-create"),
            &k.base,
            object(k, &name, json!({"labels": {"app": "web"}})),
        )
        .save(&rv, "/metadata/resourceVersion"),
        Step::post(
            &format!("{t}-create-again"),
            &k.base,
            object(k, &name, json!({})),
        ),
        Step::post(
            &format!("{t}-generate-name"),
            &k.base,
            object(k, "", json!({"generateName": format!("{t}-gen-")})),
        ),
        Step::get(&format!("{t}-get"), &item),
        Step::get(&format!("{t}-get-missing"), &format!("{}/{t}-none", k.base)),
        Step::get(
            &format!("{t}-list-selected"),
            &format!("{}?labelSelector=app%3Dweb", k.base),
        ),
    ];
    let mut updated = object(
        k,
        &name,
        json!({"labels": {"app": "web", "stage": "two"}, "resourceVersion": format!("${{{rv}}}")}),
    );
    out.push(
        Step::put(&format!("{t}-update"), &item, updated.clone())
            .save(&format!("{rv}2"), "/metadata/resourceVersion"),
    );
    out.push(Step::put(
        &format!("{t}-update-stale"),
        &item,
        updated.clone(),
    ));
    updated["metadata"]["resourceVersion"] = Value::Null;
    out.push(Step::put(
        &format!("{t}-update-unconditional"),
        &item,
        updated,
    ));
    out.extend([
        Step::patch(&format!("{t}-merge"), &item, MERGE, json!({"metadata": {"labels": {"stage": null, "merged": "yes"}}})),
        Step::patch(
            &format!("{t}-json-patch"),
            &item,
            JSON_PATCH,
            json!([
                {"op": "add", "path": "/metadata/annotations", "value": {"x": "1"}},
                {"op": "replace", "path": "/metadata/labels/merged", "value": "json"},
                {"op": "test", "path": "/metadata/name", "value": name}
            ]),
        ),
        Step::patch(&format!("{t}-json-patch-test-fails"), &item, JSON_PATCH, json!([{"op": "test", "path": "/metadata/name", "value": "other"}])),
        Step::patch(&format!("{t}-strategic"), &item, STRATEGIC, k.strategic.clone()),
        Step::patch(&format!("{t}-merge-stale-rv"), &item, MERGE, json!({"metadata": {"resourceVersion": format!("${{{rv}}}"), "labels": {"late": "yes"}}})),
        Step::get(&format!("{t}-get-patched"), &item),
        Step::delete(&format!("{t}-delete"), &item),
        Step::poll(&format!("{t}-gone"), &item, Until::Code(404)),
        Step::delete(&format!("{t}-delete-missing"), &item),
    ]);
    out
}

pub fn all() -> Vec<Step> {
    kinds().iter().flat_map(sequence).collect()
}
