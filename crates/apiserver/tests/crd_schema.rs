//! Custom resources follow their CRD's structural schema over HTTP:
//! pruning, defaulting, validation (422 with Kubernetes' wording) and
//! server-side field validation (`fieldValidation=Strict|Warn|Ignore`),
//! for creates, updates, patches and status writes, at the schema of the
//! version the request is served at. Ends with kubectl, which sends
//! `fieldValidation=Strict`.

mod common;

use common::{Kubectl, server};
use metacontroller_apiserver::ApiServer;
use serde_json::{Value, json};

const CRDS: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
const WIDGETS: &str = "/apis/example.com/v1/namespaces/default/widgets";
const WIDGETS_BETA: &str = "/apis/example.com/v1beta1/namespaces/default/widgets";

fn v1_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["replicas"],
                "properties": {
                    "replicas": {"type": "integer", "minimum": 1, "maximum": 10},
                    "name": {"type": "string", "minLength": 2, "maxLength": 8, "pattern": "^[a-z]+$"},
                    "color": {"type": "string", "enum": ["red", "green"], "default": "red"},
                    "port": {"x-kubernetes-int-or-string": true},
                    "note": {"type": "string", "nullable": true},
                    "tags": {"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "string"}},
                    "ports": {"type": "array", "items": {"type": "object", "properties": {
                        "name": {"type": "string"},
                        "protocol": {"type": "string", "default": "TCP"}
                    }}},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "id": {"type": "string", "format": "uuid"}
                }
            },
            "status": {
                "type": "object",
                "properties": {
                    "ready": {"type": "integer", "minimum": 0},
                    "phase": {"type": "string", "default": "Pending"}
                }
            }
        }
    })
}

/// `example.com` Widgets: `v1` (stored, status subresource) and `v1beta1`
/// with a schema of its own.
fn crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                 "schema": {"openAPIV3Schema": v1_schema()}},
                {"name": "v1beta1", "served": true, "storage": false,
                 "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                     "spec": {"type": "object", "properties": {
                         "replicas": {"type": "integer", "maximum": 3},
                         "legacy": {"type": "string"}
                     }}
                 }}}}
            ]
        }
    })
}

fn widget(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec})
}

/// A response: code, `Warning` headers and body.
struct Resp {
    code: u16,
    warnings: Vec<String>,
    body: Value,
}

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn new(s: &ApiServer) -> Self {
        let api = Self {
            base: s.url(),
            http: reqwest::Client::new(),
        };
        let r = api.post(CRDS, &crd()).await;
        assert_eq!(r.code, 201, "{}", r.body);
        api
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        ct: &str,
        body: Option<String>,
    ) -> Resp {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(b) = body {
            req = req.header("content-type", ct).body(b);
        }
        let resp = req.send().await.expect("request sent");
        let code = resp.status().as_u16();
        let warnings = resp
            .headers()
            .get_all("warning")
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Resp {
            code,
            warnings,
            body,
        }
    }

    async fn get(&self, path: &str) -> Resp {
        self.send(reqwest::Method::GET, path, "", None).await
    }

    async fn post(&self, path: &str, body: &Value) -> Resp {
        self.post_raw(path, &body.to_string()).await
    }

    async fn post_raw(&self, path: &str, body: &str) -> Resp {
        self.send(
            reqwest::Method::POST,
            path,
            "application/json",
            Some(body.to_string()),
        )
        .await
    }

    async fn put(&self, path: &str, body: &Value) -> Resp {
        self.send(
            reqwest::Method::PUT,
            path,
            "application/json",
            Some(body.to_string()),
        )
        .await
    }

    async fn patch(&self, path: &str, ct: &str, body: &str) -> Resp {
        self.send(reqwest::Method::PATCH, path, ct, Some(body.to_string()))
            .await
    }
}

const MERGE: &str = "application/merge-patch+json";
const JSON_PATCH: &str = "application/json-patch+json";

fn warning(text: &str) -> String {
    format!("299 - {}", serde_json::to_string(text).unwrap())
}

#[tokio::test]
async fn create_prunes_unknown_fields_and_applies_defaults() {
    let s = server().await;
    let api = Api::new(&s).await;
    let mut body = widget(
        "w",
        json!({"replicas": 2, "foo": "bar", "ports": [{"name": "http", "junk": 1}],
               "extra": {"anything": {"goes": [1, 2]}}, "labels": {"a": "b"}}),
    );
    body["metadata"]["bogus"] = json!(true);
    body["status"] = json!({"ready": 1});
    body["top"] = json!(1);
    let r = api.post(WIDGETS, &body).await;
    assert_eq!(r.code, 201, "{}", r.body);
    // Warn is the default: one Warning header per dropped field.
    assert_eq!(
        r.warnings,
        vec![
            warning(r#"unknown field "metadata.bogus""#),
            warning(r#"unknown field "spec.foo""#),
            warning(r#"unknown field "spec.ports[0].junk""#),
            warning(r#"unknown field "top""#),
        ]
    );
    let w = api.get(&format!("{WIDGETS}/w")).await.body;
    assert_eq!(
        w["spec"],
        json!({"replicas": 2, "color": "red", "ports": [{"name": "http", "protocol": "TCP"}],
               "extra": {"anything": {"goes": [1, 2]}}, "labels": {"a": "b"}})
    );
    assert!(w["metadata"].get("bogus").is_none() && w.get("top").is_none());
    // Create cannot set status when there is a status subresource.
    assert!(w.get("status").is_none());
    assert_eq!(r.body["spec"], w["spec"]);
}

#[tokio::test]
async fn updates_and_patches_prune_and_default() {
    let s = server().await;
    let api = Api::new(&s).await;
    let created = api
        .post(WIDGETS, &widget("w", json!({"replicas": 1})))
        .await;
    assert_eq!(created.code, 201);
    let path = format!("{WIDGETS}/w");

    // PUT with fieldValidation=Ignore: pruned silently.
    let mut obj = created.body.clone();
    obj["spec"] = json!({"replicas": 3, "color": null, "unknown": 1, "note": null});
    let r = api
        .put(&format!("{path}?fieldValidation=Ignore"), &obj)
        .await;
    assert_eq!(r.code, 200, "{}", r.body);
    assert!(r.warnings.is_empty());
    // null in a non-nullable field with a default is defaulted; a
    // nullable one stays null.
    assert_eq!(
        r.body["spec"],
        json!({"replicas": 3, "color": "red", "note": null})
    );
    assert_eq!(r.body["metadata"]["generation"], 2);

    // Merge patch: pruned, with a warning; defaults inside new list items.
    let r = api
        .patch(
            &path,
            MERGE,
            r#"{"spec": {"ports": [{"name": "a"}], "zzz": {"x": 1}}}"#,
        )
        .await;
    assert_eq!(r.code, 200, "{}", r.body);
    assert_eq!(r.warnings, vec![warning(r#"unknown field "spec.zzz""#)]);
    assert_eq!(
        r.body["spec"]["ports"],
        json!([{"name": "a", "protocol": "TCP"}])
    );
    assert!(r.body["spec"].get("zzz").is_none());

    // JSON patch: likewise.
    let r = api
        .patch(
            &path,
            JSON_PATCH,
            r#"[{"op": "add", "path": "/spec/ports/-", "value": {"name": "b", "bad": true}}]"#,
        )
        .await;
    assert_eq!(r.code, 200, "{}", r.body);
    assert_eq!(
        r.warnings,
        vec![warning(r#"unknown field "spec.ports[1].bad""#)]
    );
    assert_eq!(
        r.body["spec"]["ports"][1],
        json!({"name": "b", "protocol": "TCP"})
    );

    // A write that drops nothing warns about nothing.
    let r = api
        .patch(&path, MERGE, r#"{"spec": {"replicas": 4}}"#)
        .await;
    assert_eq!((r.code, r.warnings.len()), (200, 0));
}

#[tokio::test]
async fn status_writes_are_pruned_defaulted_and_validated() {
    let s = server().await;
    let api = Api::new(&s).await;
    let created = api
        .post(WIDGETS, &widget("w", json!({"replicas": 1})))
        .await;
    let status = format!("{WIDGETS}/w/status");

    let mut obj = created.body.clone();
    obj["status"] = json!({"ready": 2, "extra": "x"});
    obj["spec"]["ignored"] = json!(1);
    let r = api.put(&status, &obj).await;
    assert_eq!(r.code, 200, "{}", r.body);
    // The whole body is decoded: unknown fields anywhere are reported.
    assert_eq!(
        r.warnings,
        vec![
            warning(r#"unknown field "spec.ignored""#),
            warning(r#"unknown field "status.extra""#),
        ]
    );
    assert_eq!(r.body["status"], json!({"ready": 2, "phase": "Pending"}));
    assert_eq!(r.body["spec"], json!({"replicas": 1, "color": "red"}));

    let r = api
        .patch(&status, MERGE, r#"{"status": {"ready": -1}}"#)
        .await;
    assert_eq!(r.code, 422, "{}", r.body);
    assert_eq!(
        r.body["message"],
        r#"Widget.example.com "w" is invalid: status.ready: Invalid value: -1: status.ready in body should be greater than or equal to 0"#
    );
    let r = api
        .patch(
            &status,
            MERGE,
            r#"{"status": {"phase": "Running", "more": 1}}"#,
        )
        .await;
    assert_eq!(r.code, 200, "{}", r.body);
    assert_eq!(r.body["status"], json!({"ready": 2, "phase": "Running"}));
    assert_eq!(r.warnings, vec![warning(r#"unknown field "status.more""#)]);
}

/// Creates `spec` and expects a 422 whose message is `message`.
async fn rejected(api: &Api, spec: Value, message: &str) -> Value {
    let r = api.post(WIDGETS, &widget("bad", spec)).await;
    assert_eq!(r.code, 422, "{}", r.body);
    assert_eq!(r.body["reason"], "Invalid");
    assert_eq!(
        r.body["message"].as_str().unwrap(),
        format!(r#"Widget.example.com "bad" is invalid: {message}"#)
    );
    assert_eq!(r.body["details"]["kind"], "Widget");
    assert_eq!(r.body["details"]["group"], "example.com");
    assert_eq!(r.body["details"]["name"], "bad");
    r.body["details"]["causes"].clone()
}

#[tokio::test]
async fn validation_errors_are_422_with_kubernetes_wording() {
    let s = server().await;
    let api = Api::new(&s).await;

    let causes = rejected(
        &api,
        json!({"replicas": "string"}),
        r#"spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string""#,
    )
    .await;
    assert_eq!(
        causes,
        json!([{"reason": "FieldValueTypeInvalid", "field": "spec.replicas",
                "message": r#"Invalid value: "string": spec.replicas in body must be of type integer: "string""#}])
    );
    let causes = rejected(&api, json!({}), "spec.replicas: Required value").await;
    assert_eq!(
        causes,
        json!([{"reason": "FieldValueRequired", "field": "spec.replicas", "message": "Required value"}])
    );
    // null in a non-nullable field without a default is dropped, so a
    // required one is then missing.
    rejected(
        &api,
        json!({"replicas": null}),
        "spec.replicas: Required value",
    )
    .await;
    let causes = rejected(
        &api,
        json!({"replicas": 1, "color": "blue"}),
        r#"spec.color: Unsupported value: "blue": supported values: "red", "green""#,
    )
    .await;
    assert_eq!(causes[0]["reason"], "FieldValueNotSupported");
    rejected(
        &api,
        json!({"replicas": 0}),
        "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1",
    )
    .await;
    rejected(
        &api,
        json!({"replicas": 11}),
        "spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10",
    )
    .await;
    let causes = rejected(
        &api,
        json!({"replicas": 1, "name": "muchtoolong"}),
        "spec.name: Too long: may not be longer than 8",
    )
    .await;
    assert_eq!(causes[0]["reason"], "FieldValueTooLong");
    rejected(
        &api,
        json!({"replicas": 1, "name": "a"}),
        r#"spec.name: Invalid value: "a": spec.name in body should be at least 2 chars long"#,
    )
    .await;
    rejected(
        &api,
        json!({"replicas": 1, "name": "Abc"}),
        r#"spec.name: Invalid value: "Abc": spec.name in body should match '^[a-z]+$'"#,
    )
    .await;
    let causes = rejected(
        &api,
        json!({"replicas": 1, "tags": ["a", "b", "c"]}),
        "spec.tags: Too many: 3: must have at most 2 items",
    )
    .await;
    assert_eq!(causes[0]["reason"], "FieldValueTooMany");
    rejected(
        &api,
        json!({"replicas": 1, "tags": []}),
        "spec.tags: Invalid value: 0: spec.tags in body should have at least 1 items",
    )
    .await;
    rejected(
        &api,
        json!({"replicas": 1, "port": 1.5}),
        r#"spec.port: Invalid value: "number": spec.port in body must be of type integer,string: "number""#,
    )
    .await;
    rejected(
        &api,
        json!({"replicas": 1, "labels": {"a": 1}}),
        r#"spec.labels.a: Invalid value: "integer": spec.labels.a in body must be of type string: "integer""#,
    )
    .await;
    rejected(
        &api,
        json!({"replicas": 1, "id": "not-a-uuid"}),
        r#"spec.id: Invalid value: "not-a-uuid": spec.id in body must be of type uuid: "not-a-uuid""#,
    )
    .await;
    // Several errors: listed together, one cause each.
    let causes = rejected(
        &api,
        json!({"replicas": 20, "color": "blue"}),
        r#"[spec.color: Unsupported value: "blue": supported values: "red", "green", spec.replicas: Invalid value: 20: spec.replicas in body should be less than or equal to 10]"#,
    )
    .await;
    assert_eq!(causes.as_array().unwrap().len(), 2);
    // Nothing was stored.
    assert_eq!(api.get(&format!("{WIDGETS}/bad")).await.code, 404);

    // Valid values of every kind pass.
    let ok = widget(
        "good",
        json!({"replicas": 10, "name": "ab", "color": "green", "port": "http", "note": null,
               "tags": ["x"], "labels": {"a": "b"}, "id": "123e4567-e89b-12d3-a456-426614174000"}),
    );
    let r = api.post(WIDGETS, &ok).await;
    assert_eq!(r.code, 201, "{}", r.body);
    let r = api
        .patch(
            &format!("{WIDGETS}/good"),
            MERGE,
            r#"{"spec": {"port": 8080}}"#,
        )
        .await;
    assert_eq!(r.code, 200, "{}", r.body);

    // Updates are validated too; dry runs as well.
    let r = api
        .patch(
            &format!("{WIDGETS}/good"),
            MERGE,
            r#"{"spec": {"replicas": "x"}}"#,
        )
        .await;
    assert_eq!(r.code, 422, "{}", r.body);
    let r = api
        .post(
            &format!("{WIDGETS}?dryRun=All"),
            &widget("dry", json!({"replicas": 0})),
        )
        .await;
    assert_eq!(r.code, 422, "{}", r.body);
}

#[tokio::test]
async fn strict_field_validation_rejects_unknown_and_duplicate_fields() {
    let s = server().await;
    let api = Api::new(&s).await;
    let strict = format!("{WIDGETS}?fieldValidation=Strict");

    let r = api
        .post(
            &strict,
            &widget("w", json!({"replicas": 1, "foo": 1, "bar": {"x": 1}})),
        )
        .await;
    assert_eq!(r.code, 400, "{}", r.body);
    assert_eq!(r.body["reason"], "BadRequest");
    assert_eq!(
        r.body["message"],
        r#"Widget in version "v1" cannot be handled as a Widget: strict decoding error: unknown field "spec.bar", unknown field "spec.foo""#
    );
    assert!(r.warnings.is_empty());
    assert_eq!(api.get(&format!("{WIDGETS}/w")).await.code, 404);

    // Duplicate fields of the body come first, in document order.
    let raw = r#"{"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
                  "spec": {"replicas": 1, "replicas": 2, "color": "red", "zzz": 1}}"#;
    let r = api.post_raw(&strict, raw).await;
    assert_eq!(r.code, 400, "{}", r.body);
    assert_eq!(
        r.body["message"],
        r#"Widget in version "v1" cannot be handled as a Widget: strict decoding error: duplicate field "replicas", unknown field "spec.zzz""#
    );
    // Warn: the same findings as warnings; the last duplicate wins.
    let r = api.post_raw(WIDGETS, raw).await;
    assert_eq!(r.code, 201, "{}", r.body);
    assert_eq!(
        r.warnings,
        vec![
            warning(r#"duplicate field "replicas""#),
            warning(r#"unknown field "spec.zzz""#)
        ]
    );
    assert_eq!(r.body["spec"]["replicas"], 2);

    // A body without unknown fields passes Strict.
    let r = api
        .post(&strict, &widget("ok", json!({"replicas": 1})))
        .await;
    assert_eq!(r.code, 201, "{}", r.body);

    // PUT.
    let mut obj = r.body.clone();
    obj["spec"]["foo"] = json!(1);
    let r = api
        .put(&format!("{WIDGETS}/ok?fieldValidation=Strict"), &obj)
        .await;
    assert_eq!(r.code, 400, "{}", r.body);
    assert_eq!(
        r.body["message"],
        r#"Widget in version "v1" cannot be handled as a Widget: strict decoding error: unknown field "spec.foo""#
    );

    // Patches: 422 on the patched object, as the patch handler reports it.
    let r = api
        .patch(
            &format!("{WIDGETS}/ok?fieldValidation=Strict"),
            MERGE,
            r#"{"spec": {"foo": 1}}"#,
        )
        .await;
    assert_eq!(r.code, 422, "{}", r.body);
    let msg = r.body["message"].as_str().unwrap();
    assert!(
        msg.starts_with(
            r#" "" is invalid: patch: Invalid value: "{\"apiVersion\":\"example.com/v1\""#
        ),
        "{msg}"
    );
    assert!(
        msg.ends_with(r#"": strict decoding error: unknown field "spec.foo""#),
        "{msg}"
    );
    assert_eq!(r.body["details"]["causes"][0]["field"], "patch");
    let r = api
        .patch(
            &format!("{WIDGETS}/ok?fieldValidation=Strict"),
            JSON_PATCH,
            r#"[{"op": "add", "path": "/spec/color", "value": "green", "foo": "bar"}]"#,
        )
        .await;
    assert_eq!(r.code, 422, "{}", r.body);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .ends_with(r#"strict decoding error: json patch unknown field "foo""#),
        "{}",
        r.body
    );
    // Nothing changed.
    let w = api.get(&format!("{WIDGETS}/ok")).await.body;
    assert_eq!(w["spec"], json!({"replicas": 1, "color": "red"}));

    // Only Ignore, Warn and Strict are directives.
    let r = api
        .post(
            &format!("{WIDGETS}?fieldValidation=Loose"),
            &widget("x", json!({"replicas": 1})),
        )
        .await;
    assert_eq!(r.code, 422, "{}", r.body);
    assert_eq!(
        r.body["message"],
        r#"CreateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "Loose": supported values: "", "Ignore", "Strict", "Warn""#
    );
}

#[tokio::test]
async fn schemas_that_preserve_unknown_fields_keep_everything() {
    let s = server().await;
    let raw = common::Raw::new(&s);
    let (code, _) = raw.post(CRDS, common::widget_crd("Namespaced")).await;
    assert_eq!(code, 201);
    let api = Api {
        base: s.url(),
        http: reqwest::Client::new(),
    };
    let body = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
                      "spec": {"anything": [1, {"at": "all"}]}, "other": true});
    let r = api
        .post(&format!("{WIDGETS}?fieldValidation=Strict"), &body)
        .await;
    assert_eq!(r.code, 201, "{}", r.body);
    assert!(r.warnings.is_empty());
    assert_eq!(r.body["spec"], body["spec"]);
    assert_eq!(r.body["other"], true);
    // Root metadata is an ObjectMeta whatever the schema says.
    let r = api
        .patch(
            &format!("{WIDGETS}/w"),
            MERGE,
            r#"{"metadata": {"nope": 1}, "more": 2}"#,
        )
        .await;
    assert_eq!(r.code, 200, "{}", r.body);
    assert_eq!(
        r.warnings,
        vec![warning(r#"unknown field "metadata.nope""#)]
    );
    assert_eq!(r.body["more"], 2);
}

#[tokio::test]
async fn the_schema_of_the_served_version_applies() {
    let s = server().await;
    let api = Api::new(&s).await;
    // v1beta1 allows at most 3 replicas and knows `legacy`; v1 does not.
    let beta = |name: &str, spec: Value| json!({"apiVersion": "example.com/v1beta1", "kind": "Widget", "metadata": {"name": name}, "spec": spec});
    let r = api
        .post(WIDGETS_BETA, &beta("b", json!({"replicas": 5})))
        .await;
    assert_eq!(r.code, 422, "{}", r.body);
    assert_eq!(
        r.body["message"],
        "Widget.example.com \"b\" is invalid: spec.replicas: Invalid value: 5: spec.replicas in body should be less than or equal to 3"
    );
    let r = api
        .post(
            WIDGETS_BETA,
            &beta(
                "b",
                json!({"replicas": 2, "legacy": "kept", "color": "gone"}),
            ),
        )
        .await;
    assert_eq!(r.code, 201, "{}", r.body);
    assert_eq!(r.body["spec"], json!({"replicas": 2, "legacy": "kept"}));
    assert_eq!(r.warnings, vec![warning(r#"unknown field "spec.color""#)]);
    let r = api
        .post(
            WIDGETS,
            &widget("a", json!({"replicas": 5, "legacy": "dropped"})),
        )
        .await;
    assert_eq!(r.code, 201, "{}", r.body);
    assert_eq!(r.body["spec"], json!({"replicas": 5, "color": "red"}));
}

#[tokio::test]
async fn unchanged_invalid_values_do_not_block_updates() {
    let s = server().await;
    let api = Api::new(&s).await;
    let r = api
        .post(WIDGETS, &widget("w", json!({"replicas": 8})))
        .await;
    assert_eq!(r.code, 201);

    // Tighten the schema: the stored 8 is now too many.
    let path = format!("{CRDS}/widgets.example.com");
    let mut c = api.get(&path).await.body;
    c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["replicas"]
        ["maximum"] = json!(5);
    let r = api.put(&path, &c).await;
    assert_eq!(r.code, 200, "{}", r.body);

    // Changing something else is fine; changing replicas is validated.
    let w = format!("{WIDGETS}/w");
    let r = api
        .patch(&w, MERGE, r#"{"spec": {"color": "green"}}"#)
        .await;
    assert_eq!(r.code, 200, "{}", r.body);
    let r = api.patch(&w, MERGE, r#"{"spec": {"replicas": 9}}"#).await;
    assert_eq!(r.code, 422, "{}", r.body);
    let r = api.patch(&w, MERGE, r#"{"spec": {"replicas": 4}}"#).await;
    assert_eq!(r.code, 200, "{}", r.body);
}

#[tokio::test]
async fn server_side_apply_prunes_defaults_and_rejects_undeclared_fields() {
    let s = server().await;
    let api = Api::new(&s).await;
    let path = format!("{WIDGETS}/w?fieldManager=test");
    let apply = "application/apply-patch+yaml";
    let r = api
        .patch(
            &path,
            apply,
            "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {replicas: 2}\n",
        )
        .await;
    assert_eq!(r.code, 201, "{}", r.body);
    assert_eq!(r.body["spec"], json!({"replicas": 2, "color": "red"}));
    let r = api
        .patch(
            &path,
            apply,
            "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {replicas: 2, foo: 1}\n",
        )
        .await;
    assert_eq!(r.code, 500, "{}", r.body);
    assert_eq!(
        r.body["message"],
        "failed to create typed patch object (default/w; example.com/v1, Kind=Widget): .spec.foo: field not declared in schema"
    );
    let r = api
        .patch(
            &path,
            apply,
            "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {replicas: 99}\n",
        )
        .await;
    assert_eq!(r.code, 422, "{}", r.body);
}

const KUBECTL: &str = "/usr/lib/google-cloud-sdk/bin/kubectl.1.33";

const CRD_YAML: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer, maximum: 5}
              mode: {type: string, default: auto}
"#;

fn gadget(spec: &str) -> String {
    format!(
        "apiVersion: example.com/v1\nkind: Gadget\nmetadata: {{name: g, namespace: default}}\nspec: {spec}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_of_unknown_fields_fails_as_on_kubernetes() {
    let bin = std::path::Path::new(KUBECTL);
    if !bin.is_file() {
        assert!(
            std::env::var("MC_REQUIRE_KUBECTL").is_err(),
            "{KUBECTL} not found but MC_REQUIRE_KUBECTL is set"
        );
        eprintln!("{KUBECTL} not found: skipping the kubectl checks");
        return;
    }
    let s = server().await;
    let dir = tempfile::tempdir().unwrap();
    let k = Kubectl::new(bin, &s, dir.path());
    // kubectl calls back into the server, which runs on this runtime.
    tokio::task::spawn_blocking(move || {
        k.ok_stdin(&["apply", "-f", "-"], CRD_YAML);
        k.ok(&[
            "wait",
            "--for",
            "condition=established",
            "--timeout=30s",
            "crd/gadgets.example.com",
        ]);

        // Create through apply: kubectl asks for Strict.
        let o = k.run_stdin(&["apply", "-f", "-"], Some(&gadget("{size: 1, colour: red}")));
        assert!(!o.ok, "apply with an unknown field succeeded: {}", o.stdout);
        assert!(
            o.stderr.contains(
                r#"Gadget in version "v1" cannot be handled as a Gadget: strict decoding error: unknown field "spec.colour""#
            ),
            "{}",
            o.stderr
        );
        assert!(!k.run(&["get", "gadget", "g"]).ok);

        // Without it, the object is created and defaulted.
        k.ok_stdin(&["apply", "-f", "-"], &gadget("{size: 1}"));
        let g = k.json(&["get", "gadget", "g"]);
        assert_eq!(g["spec"], json!({"size": 1, "mode": "auto"}));

        // Update through apply (a merge patch, still Strict).
        let o = k.run_stdin(&["apply", "-f", "-"], Some(&gadget("{size: 2, colour: red}")));
        assert!(!o.ok, "apply with an unknown field succeeded: {}", o.stdout);
        assert!(
            o.stderr
                .contains(r#"strict decoding error: unknown field "spec.colour""#),
            "{}",
            o.stderr
        );
        assert_eq!(k.json(&["get", "gadget", "g"])["spec"]["size"], 1);

        // Server-side apply refuses undeclared fields too.
        let o = k.run_stdin(
            &["apply", "--server-side", "-f", "-"],
            Some(&gadget("{size: 2, colour: red}")),
        );
        assert!(!o.ok, "server-side apply with an unknown field succeeded");
        assert!(
            o.stderr.contains(".spec.colour: field not declared in schema"),
            "{}",
            o.stderr
        );

        // Schema violations come back as kubectl prints 422s.
        let o = k.run_stdin(&["apply", "-f", "-"], Some(&gadget("{size: 9}")));
        assert!(!o.ok);
        assert!(
            o.stderr.contains(
                "spec.size: Invalid value: 9: spec.size in body should be less than or equal to 5"
            ),
            "{}",
            o.stderr
        );

        // --validate=warn prints the server's warnings; =false is silent.
        k.ok(&["delete", "gadget", "g"]);
        let o = k.run_stdin(
            &["create", "--validate=warn", "-f", "-"],
            Some(&gadget("{size: 3, colour: red}")),
        );
        assert!(o.ok, "{}", o.stderr);
        assert!(
            o.stderr.contains(r#"Warning: unknown field "spec.colour""#),
            "{}",
            o.stderr
        );
        k.ok(&["delete", "gadget", "g"]);
        let o = k.run_stdin(
            &["create", "--validate=false", "-f", "-"],
            Some(&gadget("{size: 3, colour: red}")),
        );
        assert!(o.ok, "{}", o.stderr);
        assert!(!o.stderr.contains("Warning"), "{}", o.stderr);
        let g = k.json(&["get", "gadget", "g"]);
        assert_eq!(g["spec"], json!({"size": 3, "mode": "auto"}));
    })
    .await
    .unwrap();
    drop(s);
}
