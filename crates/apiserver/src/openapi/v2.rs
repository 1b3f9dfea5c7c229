//! OpenAPI v2: the Swagger 2.0 document of `/openapi/v2`, as JSON and as
//! the gnostic protobuf message client-go asks for.

use serde_json::{Map, Value, json};

use super::gnostic;
use super::operations::*;
use crate::discovery::{groups, resources_of};
use crate::negotiate::CONTENT_TYPE_JSON;
use crate::registry::ResourceInfo;

fn v2_param(p: &Param) -> Value {
    let mut v = json!({
        "name": p.name,
        "in": p.location,
        "description": p.description,
        "type": p.ty,
    });
    if p.required {
        v["required"] = json!(true);
    }
    v
}

fn v2_operation(o: &Operation) -> Value {
    let mut params: Vec<Value> = o.params.iter().map(|p| v2_param(p)).collect();
    let consumes: Vec<&str> = match &o.body {
        Some(Body::Patch) => patch_types(o.builtin),
        _ => vec![CONTENT_TYPE_JSON],
    };
    match &o.body {
        Some(Body::DeleteOptions) => params.push(json!({
            "name": "body", "in": "body",
            "description": "Options of the delete request.",
            "schema": {"type": "object"},
        })),
        Some(_) => params.push(json!({
            "name": "body", "in": "body", "required": true,
            "description": "The object or patch to apply.",
            "schema": {"type": "object"},
        })),
        None => {}
    }
    let mut produces = vec![CONTENT_TYPE_JSON];
    if o.watch {
        produces.push("application/json;stream=watch");
    }
    let responses: Map<String, Value> = o
        .responses
        .iter()
        .map(|(code, description, _)| ((*code).to_string(), json!({"description": description})))
        .collect();
    json!({
        "description": o.description,
        "operationId": o.operation_id,
        "tags": [o.tag],
        "consumes": consumes,
        "produces": produces,
        "parameters": params,
        "responses": responses,
        "x-kubernetes-action": o.action,
        "x-kubernetes-group-version-kind": o.gvk,
    })
}

/// `GET /openapi/v2` as JSON: a Swagger 2.0 document with every REST
/// operation of every served group-version, each PATCH carrying
/// `x-kubernetes-group-version-kind` and the `fieldValidation` parameter (what
/// `supportsQueryParam` in `k8s.io/cli-runtime/pkg/resource/query_param_verifier.go`
/// looks for when OpenAPI v3 is unavailable).
///
/// `definitions` is deliberately empty. kubectl looks kinds up there for
/// client-side validation (only used when server-side field validation is
/// reported unsupported, e.g. for a `kind: List` file), for strategic merge
/// patch metadata, and for `explain --output=plaintext-openapiv2`. With no
/// definition it skips client-side validation (`validateResource` in
/// `k8s.io/kubectl/pkg/validation/validation.go`) and computes patches from
/// its compiled-in types; a definition without field details would instead
/// make it print a warning and fall back on every apply. Bodies are
/// therefore described inline as plain objects.
pub fn openapi_v2(resources: &[ResourceInfo]) -> Value {
    let mut ordered: Vec<&ResourceInfo> = Vec::new();
    for core in [true, false] {
        for g in groups(resources, core) {
            for v in &g.versions {
                ordered.extend(resources_of(resources, g.name, v));
            }
        }
    }
    let paths: Map<String, Value> = all_paths(&ordered)
        .iter()
        .map(|spec| {
            let mut item = Map::new();
            for o in &spec.operations {
                item.insert(o.method.into(), v2_operation(o));
            }
            item.insert(
                "parameters".into(),
                Value::Array(spec.params.iter().map(|p| v2_param(p)).collect()),
            );
            (spec.path.clone(), Value::Object(item))
        })
        .collect();
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "unversioned"},
        "paths": paths,
        "definitions": {},
    })
}

/// `GET /openapi/v2` as protobuf: [`openapi_v2`] encoded as the gnostic
/// `openapi.v2.Document` message (`github.com/google/gnostic-models/openapiv2/OpenAPIv2.proto`).
pub fn openapi_v2_protobuf(resources: &[ResourceInfo]) -> Vec<u8> {
    gnostic::document(&openapi_v2(resources))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{has_query_param, patch_operation, registry};

    #[test]
    fn openapi_v2_document() {
        let doc = openapi_v2(&registry());
        assert_eq!(doc["swagger"], "2.0");
        assert_eq!(doc["definitions"], json!({}));
        let deploy = patch_operation(
            &doc,
            "/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
        );
        assert!(has_query_param(deploy, "fieldValidation"));
        assert_eq!(
            deploy["x-kubernetes-group-version-kind"]["kind"],
            "Deployment"
        );
        let consumes = deploy["consumes"].as_array().unwrap();
        assert!(consumes.contains(&json!("application/strategic-merge-patch+json")));
        let widget = patch_operation(
            &doc,
            "/apis/example.com/v1/namespaces/{namespace}/widgets/{name}",
        );
        let consumes = widget["consumes"].as_array().unwrap();
        assert!(!consumes.contains(&json!("application/strategic-merge-patch+json")));
        assert!(consumes.contains(&json!("application/merge-patch+json")));
        assert!(doc["paths"]["/api/v1/namespaces/{namespace}/pods"]["get"].is_object());
        assert!(doc["paths"]["/apis/example.com/v1beta1/widgets"]["get"].is_object());
    }
}
