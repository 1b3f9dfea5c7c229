//! OpenAPI v3: the `/openapi/v3` index and one document per
//! group-version, with component schemas for the kinds served there.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::document_hash;
use super::operations::*;
use super::{DELETE_OPTIONS, LIST_META, OBJECT_META, PATCH, SCALE, STATUS};
use crate::discovery::{group_version, groups, gvk, resources_of};
use crate::registry::ResourceInfo;

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn v3_param(p: &Param) -> Value {
    let mut v = json!({
        "name": p.name,
        "in": p.location,
        "description": p.description,
        "schema": {"type": p.ty},
    });
    if p.required {
        v["required"] = json!(true);
    }
    v
}

fn v3_operation(o: &Operation) -> Value {
    let mut responses = Map::new();
    for (code, description, schema) in &o.responses {
        let mut content = Map::new();
        content.insert(
            "application/json".into(),
            json!({"schema": schema_ref(schema)}),
        );
        if o.watch {
            content.insert(
                "application/json;stream=watch".into(),
                json!({"schema": schema_ref(schema)}),
            );
        }
        responses.insert(
            (*code).into(),
            json!({"description": description, "content": content}),
        );
    }
    let mut v = json!({
        "description": o.description,
        "operationId": o.operation_id,
        "tags": [o.tag],
        "parameters": o.params.iter().map(|p| v3_param(p)).collect::<Vec<_>>(),
        "responses": responses,
        "x-kubernetes-action": o.action,
        "x-kubernetes-group-version-kind": o.gvk,
    });
    match &o.body {
        Some(Body::Object(schema)) => {
            v["requestBody"] = json!({
                "content": {"application/json": {"schema": schema_ref(schema)}},
                "required": true,
            });
        }
        Some(Body::Patch) => {
            // The component schemas of built-in kinds do not describe their
            // fields, so they cannot give kubectl the patch-merge keys it
            // needs to compute a strategic merge patch. Leaving that content
            // type out of the v3 request body makes kubectl fall back to its
            // compiled-in Go types for built-ins (`patchSimple` in
            // `k8s.io/kubectl/pkg/cmd/apply/patcher.go`); the server still
            // accepts strategic merge patches for them.
            let content: Map<String, Value> = patch_types(false)
                .into_iter()
                .map(|t| (t.to_string(), json!({"schema": schema_ref(PATCH)})))
                .collect();
            v["requestBody"] = json!({"content": content, "required": true});
        }
        Some(Body::DeleteOptions) => {
            v["requestBody"] = json!({
                "content": {"application/json": {"schema": schema_ref(DELETE_OPTIONS)}},
            });
        }
        None => {}
    }
    v
}

fn v3_paths(specs: &[PathSpec]) -> Map<String, Value> {
    specs
        .iter()
        .map(|spec| {
            let mut item = Map::new();
            for o in &spec.operations {
                item.insert(o.method.into(), v3_operation(o));
            }
            item.insert(
                "parameters".into(),
                Value::Array(spec.params.iter().map(|p| v3_param(p)).collect()),
            );
            (spec.path.clone(), Value::Object(item))
        })
        .collect()
}

fn string_property(description: &str) -> Value {
    json!({"type": "string", "description": description})
}

/// The `apiVersion`, `kind` and `metadata` properties every object has.
fn object_properties(meta: &str) -> Map<String, Value> {
    let mut props = Map::new();
    props.insert(
        "apiVersion".into(),
        string_property("Versioned schema of this representation of the object."),
    );
    props.insert(
        "kind".into(),
        string_property("REST resource this object represents, in CamelCase."),
    );
    props.insert(
        "metadata".into(),
        json!({"allOf": [schema_ref(meta)], "description": "Standard object metadata."}),
    );
    props
}

/// Component schema of a kind. For a CRD it is the version's
/// `openAPIV3Schema` with the standard `apiVersion`, `kind` and `metadata`
/// properties put in place (as `k8s.io/apiextensions-apiserver/pkg/controller/openapi/builder/builder.go`
/// does); a CRD without a schema, and every built-in kind, gets an object
/// schema that keeps unknown fields, so it documents the identity of the
/// kind without constraining its content.
fn kind_schema(r: &ResourceInfo) -> Value {
    let mut schema = match (&r.schema, r.crd) {
        (Some(Value::Object(s)), true) => s.clone(),
        _ => {
            let mut s = Map::new();
            s.insert(
                "description".into(),
                json!(format!(
                    "{} of {}.",
                    r.kind,
                    group_version(&r.group, &r.version)
                )),
            );
            s.insert("x-kubernetes-preserve-unknown-fields".into(), json!(true));
            s
        }
    };
    schema.insert("type".into(), json!("object"));
    let props = schema
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(props) = props {
        props.extend(object_properties(OBJECT_META));
    }
    schema.insert(
        "x-kubernetes-group-version-kind".into(),
        json!([gvk(&r.group, &r.version, &r.kind)]),
    );
    Value::Object(schema)
}

fn list_schema(r: &ResourceInfo) -> Value {
    let mut props = object_properties(LIST_META);
    props.insert(
        "items".into(),
        json!({
            "type": "array",
            "description": format!("The {} objects.", r.kind),
            "items": schema_ref(&schema_name(r, &r.kind)),
        }),
    );
    json!({
        "description": format!("{} is a list of {} objects.", r.list_kind, r.kind),
        "type": "object",
        "required": ["items"],
        "properties": props,
        "x-kubernetes-group-version-kind": [gvk(&r.group, &r.version, &r.list_kind)],
    })
}

fn open_object(description: &str) -> Value {
    json!({
        "description": description,
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// Schemas of `k8s.io/apimachinery/pkg/apis/meta/v1` types the operations
/// refer to: `ObjectMeta` and `ListMeta` with their common fields, the rest
/// as open objects.
fn meta_schemas() -> Vec<(&'static str, Value)> {
    let object_meta = json!({
        "description": "Metadata every persisted object has.",
        "type": "object",
        "properties": {
            "name": string_property("Name, unique within a namespace."),
            "generateName": string_property("Prefix the server uses to generate a name when none is given."),
            "namespace": string_property("Namespace the object belongs to."),
            "uid": string_property("Unique identifier assigned by the server."),
            "resourceVersion": string_property("Opaque version of the object, for concurrency control."),
            "generation": {"type": "integer", "format": "int64", "description": "Sequence number of changes to the desired state."},
            "creationTimestamp": {"type": "string", "format": "date-time", "description": "When the object was created."},
            "deletionTimestamp": {"type": "string", "format": "date-time", "description": "When the object is to be deleted."},
            "deletionGracePeriodSeconds": {"type": "integer", "format": "int64", "description": "Grace period before deletion."},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Labels for selecting objects."},
            "annotations": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Arbitrary non-identifying metadata."},
            "finalizers": {"type": "array", "items": {"type": "string"}, "description": "Conditions that must be cleared before the object is deleted."},
            "ownerReferences": {"type": "array", "items": open_object("Reference to an owning object."), "description": "Objects this object depends on."},
            "managedFields": {"type": "array", "items": open_object("Fields owned by one manager."), "description": "Field ownership, maintained by the server."},
        },
    });
    let list_meta = json!({
        "description": "Metadata of a list.",
        "type": "object",
        "properties": {
            "resourceVersion": string_property("Version of the list, for watching from it."),
            "continue": string_property("Token for the next page, if any."),
            "remainingItemCount": {"type": "integer", "format": "int64", "description": "Estimated number of further items."},
        },
    });
    vec![
        (OBJECT_META, object_meta),
        (LIST_META, list_meta),
        (
            STATUS,
            open_object("Result of an operation that returns no object."),
        ),
        (DELETE_OPTIONS, open_object("Options of a delete request.")),
        (
            PATCH,
            open_object("A patch document in one of the accepted patch formats."),
        ),
    ]
}

fn scale_schema() -> Value {
    json!({
        "description": "Scale of a resource that has a scale subresource.",
        "type": "object",
        "properties": {
            "apiVersion": string_property("Versioned schema of this representation of the object."),
            "kind": string_property("REST resource this object represents, in CamelCase."),
            "metadata": {"allOf": [schema_ref(OBJECT_META)], "description": "Standard object metadata."},
            "spec": {
                "type": "object",
                "description": "Desired scale.",
                "properties": {"replicas": {"type": "integer", "format": "int32", "description": "Desired number of instances."}},
            },
            "status": {
                "type": "object",
                "description": "Observed scale.",
                "properties": {
                    "replicas": {"type": "integer", "format": "int32", "description": "Observed number of instances."},
                    "selector": string_property("Label selector of the instances, in string form."),
                },
            },
        },
        "x-kubernetes-group-version-kind": [gvk("autoscaling", "v1", "Scale")],
    })
}

/// Key of a group-version in the `/openapi/v3` root: `api/v1` or `apis/{g}/{v}`
/// (`gvToAPIPath` in `k8s.io/client-go/openapi3/root.go`).
pub fn openapi_v3_key(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `GET /openapi/v3`: the index of per-group-version documents. Each
/// `serverRelativeURL` carries the hash of the current document, so clients
/// that cache documents by URL (kubectl's disk cache; the Kubernetes server
/// marks these responses `Cache-Control: public, immutable`) fetch a new one
/// whenever it changes.
pub fn openapi_v3_root(resources: &[ResourceInfo]) -> Value {
    let mut paths = Map::new();
    for core in [true, false] {
        for g in groups(resources, core) {
            for v in &g.versions {
                if let Some(doc) = openapi_v3_group_version(resources, g.name, v) {
                    let key = openapi_v3_key(g.name, v);
                    let url = format!("/openapi/v3/{key}?hash={}", document_hash(&doc));
                    paths.insert(key, json!({"serverRelativeURL": url}));
                }
            }
        }
    }
    json!({"paths": paths})
}

/// `GET /openapi/v3/api/v1` (group `""`) or `/openapi/v3/apis/{g}/{v}`: an
/// OpenAPI 3.0 document with the REST operations of that group-version and
/// the component schemas they refer to; `None` when nothing is served there.
pub fn openapi_v3_group_version(
    resources: &[ResourceInfo],
    group: &str,
    version: &str,
) -> Option<Value> {
    let list = resources_of(resources, group, version);
    if list.is_empty() {
        return None;
    }
    let mut schemas: BTreeMap<String, Value> = meta_schemas()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    for r in &list {
        schemas.insert(schema_name(r, &r.kind), kind_schema(r));
        schemas.insert(schema_name(r, &r.list_kind), list_schema(r));
        if r.scale.is_some() {
            schemas.insert(SCALE.to_string(), scale_schema());
        }
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "unversioned"},
        "paths": v3_paths(&all_paths(&list)),
        "components": {"schemas": schemas},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{has_query_param, patch_operation, registry};

    #[test]
    fn openapi_v3_root_lists_every_group_version() {
        let reg = registry();
        let root = openapi_v3_root(&reg);
        let paths = root["paths"].as_object().unwrap();
        let keys: Vec<&str> = paths.keys().map(String::as_str).collect();
        assert_eq!(
            keys.len(),
            4,
            "api/v1, apis/apps/v1, apis/example.com/v1, apis/example.com/v1beta1: {keys:?}"
        );
        for (key, group, version) in [
            ("api/v1", "", "v1"),
            ("apis/apps/v1", "apps", "v1"),
            ("apis/example.com/v1", "example.com", "v1"),
            ("apis/example.com/v1beta1", "example.com", "v1beta1"),
        ] {
            let doc = openapi_v3_group_version(&reg, group, version).unwrap();
            assert_eq!(
                paths[key]["serverRelativeURL"],
                format!("/openapi/v3/{key}?hash={}", document_hash(&doc))
            );
        }
        assert_eq!(openapi_v3_root(&reg), root, "stable across calls");

        // Changing a CRD schema changes the URL of its document only.
        let mut changed = reg.clone();
        changed[3].schema = Some(json!({"type": "object"}));
        let root2 = openapi_v3_root(&changed);
        assert_ne!(
            root2["paths"]["apis/example.com/v1"],
            root["paths"]["apis/example.com/v1"]
        );
        assert_eq!(
            root2["paths"]["apis/apps/v1"],
            root["paths"]["apis/apps/v1"]
        );
    }

    #[test]
    fn openapi_v3_builtin_group_version() {
        let reg = registry();
        let doc = openapi_v3_group_version(&reg, "apps", "v1").unwrap();
        assert_eq!(doc["openapi"], "3.0.0");
        let item = "/apis/apps/v1/namespaces/{namespace}/deployments/{name}";
        let patch = patch_operation(&doc, item);
        assert_eq!(
            patch["x-kubernetes-group-version-kind"],
            json!({"group": "apps", "version": "v1", "kind": "Deployment"})
        );
        for name in ["fieldValidation", "dryRun", "fieldManager", "force"] {
            assert!(has_query_param(patch, name), "{name}");
        }
        let content = patch["requestBody"]["content"].as_object().unwrap();
        assert!(content.contains_key("application/merge-patch+json"));
        assert!(content.contains_key("application/apply-patch+yaml"));
        assert!(!content.contains_key("application/strategic-merge-patch+json"));
        for method in ["get", "put", "delete"] {
            assert!(doc["paths"][item].get(method).is_some(), "{method}");
        }
        let create = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"]["post"];
        assert!(has_query_param(create, "fieldValidation"));
        assert!(doc["paths"]["/apis/apps/v1/deployments"]["get"].is_object());

        let scale = patch_operation(&doc, &format!("{item}/scale"));
        assert_eq!(
            scale["x-kubernetes-group-version-kind"],
            json!({"group": "autoscaling", "version": "v1", "kind": "Scale"})
        );
        let status = patch_operation(&doc, &format!("{item}/status"));
        assert!(has_query_param(status, "fieldValidation"));

        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let deployment = &schemas["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(
            deployment["x-kubernetes-group-version-kind"],
            json!([{"group": "apps", "version": "v1", "kind": "Deployment"}])
        );
        assert_eq!(deployment["x-kubernetes-preserve-unknown-fields"], true);
        assert_eq!(
            deployment["properties"]["metadata"]["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
        assert_eq!(
            schemas["io.k8s.api.apps.v1.DeploymentList"]["x-kubernetes-group-version-kind"][0]["kind"],
            "DeploymentList"
        );
        assert!(schemas.contains_key(SCALE));

        // Every reference resolves within the document.
        let text = serde_json::to_string(&doc).unwrap();
        for part in text.split("\"#/components/schemas/").skip(1) {
            let name = &part[..part.find('"').unwrap()];
            assert!(schemas.contains_key(name), "dangling reference {name}");
        }

        let core = openapi_v3_group_version(&reg, "", "v1").unwrap();
        let pod_patch = patch_operation(&core, "/api/v1/namespaces/{namespace}/pods/{name}");
        assert_eq!(
            pod_patch["x-kubernetes-group-version-kind"],
            json!({"group": "", "version": "v1", "kind": "Pod"})
        );
        assert!(core["components"]["schemas"]["io.k8s.api.core.v1.Pod"].is_object());
        assert!(openapi_v3_group_version(&reg, "batch", "v1").is_none());
    }

    #[test]
    fn openapi_v3_crd_group_version() {
        let reg = registry();
        let doc = openapi_v3_group_version(&reg, "example.com", "v1").unwrap();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let widget = &schemas["com.example.v1.Widget"];
        assert_eq!(widget["type"], "object");
        assert_eq!(
            widget["properties"]["spec"]["properties"]["size"]["type"],
            "integer"
        );
        assert_eq!(widget["properties"]["apiVersion"]["type"], "string");
        assert_eq!(widget["properties"]["kind"]["type"], "string");
        assert!(widget["properties"]["metadata"]["allOf"].is_array());
        assert_eq!(
            widget["x-kubernetes-group-version-kind"],
            json!([{"group": "example.com", "version": "v1", "kind": "Widget"}])
        );
        assert!(widget.get("x-kubernetes-preserve-unknown-fields").is_none());
        // A CRD without a schema keeps unknown fields.
        assert_eq!(
            schemas["com.example.v1.Gadget"]["x-kubernetes-preserve-unknown-fields"],
            true
        );

        let patch = patch_operation(
            &doc,
            "/apis/example.com/v1/namespaces/{namespace}/widgets/{name}",
        );
        assert!(has_query_param(patch, "fieldValidation"));
        let content = patch["requestBody"]["content"].as_object().unwrap();
        assert!(!content.contains_key("application/strategic-merge-patch+json"));

        // Cluster-scoped: no namespace segment, no all-namespaces list.
        let gadget = patch_operation(&doc, "/apis/example.com/v1/gadgets/{name}");
        assert_eq!(gadget["x-kubernetes-group-version-kind"]["kind"], "Gadget");
        let params = doc["paths"]["/apis/example.com/v1/gadgets/{name}"]["parameters"]
            .as_array()
            .unwrap();
        assert!(params.iter().all(|p| p["name"] != "namespace"));
        assert!(doc["paths"]["/apis/example.com/v1/gadgets"]["post"].is_object());
        // No status or scale for gadgets.
        assert!(
            doc["paths"]
                .get("/apis/example.com/v1/gadgets/{name}/status")
                .is_none()
        );

        // The other served version documents its own kind.
        let beta = openapi_v3_group_version(&reg, "example.com", "v1beta1").unwrap();
        assert_eq!(
            beta["components"]["schemas"]["com.example.v1beta1.Widget"]["x-kubernetes-group-version-kind"]
                [0]["version"],
            "v1beta1"
        );
    }

    #[test]
    fn operations_follow_verbs() {
        let mut reg = registry();
        reg[0].verbs = vec!["get".into(), "list".into(), "watch".into()];
        let doc = openapi_v3_group_version(&reg, "", "v1").unwrap();
        let item = &doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"];
        assert!(item["get"].is_object());
        assert!(item.get("patch").is_none());
        assert!(item.get("delete").is_none());
        let collection = &doc["paths"]["/api/v1/namespaces/{namespace}/pods"];
        assert!(collection.get("post").is_none());
        assert!(has_query_param(&collection["get"], "watch"));
    }
}
