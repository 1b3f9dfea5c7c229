//! Requests the server must refuse, and the `Status` bodies it answers with.

use serde_json::json;

use super::NS;
use crate::step::Step;

fn cm(name: &str) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})
}

pub fn all() -> Vec<Step> {
    let cms = format!("/api/v1/namespaces/{NS}/configmaps");
    vec![
        Step::get(
            "err-unknown-resource",
            &format!("/api/v1/namespaces/{NS}/widgets"),
        ),
        Step::get("err-unknown-group", "/apis/nothing.example.com/v1/things"),
        Step::get(
            "err-missing-namespace-object",
            "/api/v1/namespaces/absent-ns/configmaps/x",
        ),
        Step::get(
            "err-missing-namespace-list",
            "/api/v1/namespaces/absent-ns/configmaps",
        ),
        Step::post(
            "err-create-in-missing-namespace",
            "/api/v1/namespaces/absent-ns/configmaps",
            cm("x"),
        ),
        Step::post(
            "err-create-no-name",
            &cms,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}),
        ),
        Step::post("err-create-bad-name", &cms, cm("Not_Valid")),
        Step::post("err-create-long-name", &cms, cm(&"a".repeat(254))),
        Step::post(
            "err-create-wrong-kind",
            &cms,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "k"}}),
        ),
        Step::post(
            "err-create-wrong-namespace",
            &cms,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w", "namespace": "other"}}),
        ),
        Step::post(
            "err-create-data-not-string",
            &cms,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "n"}, "data": {"a": 1}}),
        ),
        Step::post(
            "err-create-bad-label",
            &cms,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "l", "labels": {"bad key!": "v"}}}),
        ),
        Step::post(
            "err-create-bad-label-value",
            &cms,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "l2", "labels": {"k": "not valid!"}}}),
        ),
        Step::post(
            "err-create-uid-given",
            &cms,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "u", "uid": "1234"}}),
        ),
        Step::post(
            "err-create-rv-given",
            &cms,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "rv", "resourceVersion": "12"}}),
        ),
        Step::post("err-ok-for-name-mismatch", &cms, cm("mismatch")),
        Step::put(
            "err-update-name-mismatch",
            &format!("{cms}/mismatch"),
            cm("other-name"),
        ),
        Step::put("err-update-missing", &format!("{cms}/never"), cm("never")),
        Step::put(
            "err-update-no-rv-missing",
            &format!("{cms}/never2"),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "never2", "resourceVersion": "5"}}),
        ),
        Step::delete_with(
            "err-delete-uid-precondition",
            &format!("{cms}/mismatch"),
            json!({"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": "not-the-uid"}}),
        ),
        Step::delete_with(
            "err-delete-rv-precondition",
            &format!("{cms}/mismatch"),
            json!({"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"resourceVersion": "1"}}),
        ),
        Step::delete_with(
            "err-delete-bad-propagation",
            &format!("{cms}/mismatch"),
            json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Sometimes"}),
        ),
        Step::get(
            "err-bad-label-selector",
            &format!("{cms}?labelSelector=a%20%3D%3D%3D%20b"),
        ),
        Step::get(
            "err-bad-field-selector",
            &format!("{cms}?fieldSelector=spec.unknown%3Dx"),
        ),
        Step::get("err-bad-limit", &format!("{cms}?limit=abc")),
        Step::get(
            "err-bad-continue",
            &format!("{cms}?limit=1&continue=garbage"),
        ),
        Step::get(
            "err-cluster-scoped-under-namespace",
            &format!("/api/v1/namespaces/{NS}/namespaces/x"),
        ),
        Step::get("err-namespace-get-missing", "/api/v1/namespaces/absent-ns"),
        Step::delete("err-delete-missing-ns", "/api/v1/namespaces/absent-ns"),
        Step::get("err-ok-mismatch-still-there", &format!("{cms}/mismatch")),
    ]
}
