//! CustomResourceDefinitions of the Metacontroller API, generated from the
//! Rust types.
//!
//! The schemas are produced by `schemars` through `kube`'s derive and then
//! brought into the shape `controller-gen` gives Metacontroller's own CRDs:
//! plain structural schemas without `nullable`, with the Kubernetes list/map
//! markers on label selectors, `format: duration` on hook timeouts, defaults on
//! the fields Metacontroller defaults in its CRDs, and a free-form
//! `parentPatch`.
//!
//! The same output is checked in at `manifests/metacontroller-crds-v1.yaml`;
//! a unit test fails when the two drift apart.
//!
//! Use [`crds`] rather than `CustomResourceExt::crd()` on the individual
//! types: the latter is the derive's raw output (schemas with `nullable`,
//! no `listKind`, no approval annotation, and no status subresource for
//! ControllerRevision).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceSubresourceStatus, CustomResourceSubresources,
    JSONSchemaProps,
};
use kube::core::CustomResourceExt;
use serde_json::{Map, Value, json};

use crate::constants::{API_APPROVED_ANNOTATION, API_APPROVED_VALUE};
use crate::v1alpha1::{CompositeController, ControllerRevision, DecoratorController};

/// Path of the checked-in CRD manifest, relative to the repository root.
pub const MANIFEST_PATH: &str = "manifests/metacontroller-crds-v1.yaml";

/// Comment placed at the top of the checked-in manifest.
pub const MANIFEST_HEADER: &str = "# Metacontroller CustomResourceDefinitions (metacontroller.k8s.io/v1alpha1).\n\
# Generated from the types in crates/api; regenerate with:\n\
#   UPDATE_MANIFESTS=1 cargo test -p metacontroller-api\n";

/// The three Metacontroller CRDs, in name order: `compositecontrollers`,
/// `controllerrevisions`, `decoratorcontrollers`.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        finish(CompositeController::crd()),
        finish(ControllerRevision::crd()),
        finish(DecoratorController::crd()),
    ]
}

/// [`crds`] as a multi-document YAML stream (each document starts with `---`).
pub fn crds_yaml() -> String {
    crds()
        .iter()
        .map(|crd| {
            let body =
                serde_yaml::to_string(crd).expect("a CustomResourceDefinition serializes to YAML");
            format!("---\n{body}")
        })
        .collect()
}

/// The checked-in manifest's full expected content: [`MANIFEST_HEADER`]
/// followed by [`crds_yaml`].
pub fn manifest_file_contents() -> String {
    format!("{MANIFEST_HEADER}{}", crds_yaml())
}

fn finish(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    crd.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(
            API_APPROVED_ANNOTATION.to_owned(),
            API_APPROVED_VALUE.to_owned(),
        );
    crd.spec.names.list_kind = Some(format!("{}List", crd.spec.names.kind));
    for version in &mut crd.spec.versions {
        // Every Metacontroller CRD declares the status subresource, including
        // ControllerRevision, which has no status field.
        version.subresources = Some(CustomResourceSubresources {
            scale: None,
            status: Some(CustomResourceSubresourceStatus(json!({}))),
        });
        if let Some(validation) = version.schema.as_mut()
            && let Some(schema) = validation.open_api_v3_schema.take()
        {
            validation.open_api_v3_schema = Some(finish_root_schema(schema));
        }
    }
    crd
}

fn finish_root_schema(schema: JSONSchemaProps) -> JSONSchemaProps {
    let mut value = serde_json::to_value(schema).expect("schema serializes");
    normalize(&mut value);
    if let Some(root) = value.as_object_mut() {
        root.insert("type".into(), "object".into());
        let props = root
            .entry("properties")
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .expect("properties is an object");
        props.insert(
            "apiVersion".into(),
            json!({
                "description": "API version of this object's schema, `metacontroller.k8s.io/v1alpha1`.",
                "type": "string"
            }),
        );
        props.insert(
            "kind".into(),
            json!({"description": "Kind of this object.", "type": "string"}),
        );
        props.insert("metadata".into(), json!({"type": "object"}));
        let required = root
            .entry("required")
            .or_insert_with(|| Value::Array(Vec::new()))
            .as_array_mut()
            .expect("required is an array");
        required.push("metadata".into());
        let mut names: Vec<String> = required
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        names.sort();
        names.dedup();
        *required = names.into_iter().map(Value::from).collect();
    }
    serde_json::from_value(value).expect("normalized schema is a valid JSONSchemaProps")
}

/// Rewrites a schema produced by schemars/kube into a plain structural schema:
/// drops `nullable`, `null` types/enum values and `null` branches, and
/// removes keywords the API server does not accept.
fn normalize(value: &mut Value) {
    let Some(obj) = value.as_object_mut() else {
        return;
    };

    // `anyOf: [X, null]` (an optional value that schemars could not fold
    // into `type`) becomes X.
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = obj.get(key) {
            let non_null: Vec<Value> = branches
                .iter()
                .filter(|b| !is_null_schema(b))
                .cloned()
                .collect();
            if non_null.len() == 1 && branches.len() == 2 {
                obj.remove(key);
                if let Value::Object(inner) = non_null.into_iter().next().expect("one branch") {
                    for (k, v) in inner {
                        obj.entry(k).or_insert(v);
                    }
                }
            }
        }
    }

    for key in ["nullable", "$schema", "title", "definitions", "$defs"] {
        obj.remove(key);
    }
    if obj.get("default").is_some_and(Value::is_null) {
        obj.remove("default");
    }
    if let Some(Value::Array(types)) = obj.get("type") {
        let non_null: Vec<Value> = types
            .iter()
            .filter(|t| t.as_str() != Some("null"))
            .cloned()
            .collect();
        if non_null.len() == 1 {
            obj.insert(
                "type".into(),
                non_null.into_iter().next().expect("one type"),
            );
        } else {
            obj.insert("type".into(), Value::Array(non_null));
        }
    }
    if let Some(Value::Array(values)) = obj.get_mut("enum") {
        values.retain(|v| !v.is_null());
    }

    if let Some(Value::Object(props)) = obj.get_mut("properties") {
        for prop in props.values_mut() {
            normalize(prop);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(sub) = obj.get_mut(key) {
            normalize(sub);
        }
    }
}

fn is_null_schema(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("null")
        || schema.get("enum") == Some(&json!([null]))
        || (schema.get("nullable") == Some(&json!(true))
            && schema.get("type").is_none()
            && schema.get("properties").is_none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn manifest_path() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(MANIFEST_PATH)
    }

    /// The checked-in manifest must equal the generated one.
    #[test]
    fn checked_in_manifest_is_up_to_date() {
        let path = manifest_path();
        let expected = manifest_file_contents();
        if std::env::var_os("UPDATE_MANIFESTS").is_some_and(|v| v != "0" && !v.is_empty()) {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &expected).unwrap();
            return;
        }
        let actual = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            actual == expected,
            "{} is out of date with the Rust API types.\n\
             Regenerate it with:\n\n    UPDATE_MANIFESTS=1 cargo test -p metacontroller-api\n",
            path.display()
        );
    }

    fn schema_of(crd: &CustomResourceDefinition) -> Value {
        serde_json::to_value(
            crd.spec.versions[0]
                .schema
                .as_ref()
                .unwrap()
                .open_api_v3_schema
                .as_ref()
                .unwrap(),
        )
        .unwrap()
    }

    /// Checks the rules of apiextensions.k8s.io/v1 structural schemas that a
    /// generated schema could violate.
    fn assert_structural(schema: &Value, path: &str) {
        let obj = schema
            .as_object()
            .unwrap_or_else(|| panic!("{path}: schema must be an object"));
        for banned in [
            "$ref",
            "$schema",
            "$defs",
            "definitions",
            "anyOf",
            "oneOf",
            "allOf",
            "not",
            "nullable",
            "uniqueItems",
            "const",
            "title",
        ] {
            assert!(!obj.contains_key(banned), "{path}: `{banned}` present");
        }
        let free_form = obj.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true))
            || obj.get("x-kubernetes-int-or-string") == Some(&json!(true));
        let ty = obj.get("type").and_then(Value::as_str);
        assert!(ty.is_some() || free_form, "{path}: missing `type`");
        if let Some(props) = obj.get("properties") {
            assert_eq!(ty, Some("object"), "{path}: properties on a non-object");
            assert!(
                !obj.contains_key("additionalProperties"),
                "{path}: properties and additionalProperties"
            );
            for (name, prop) in props.as_object().unwrap() {
                assert_structural(prop, &format!("{path}.{name}"));
            }
        }
        if let Some(additional) = obj.get("additionalProperties") {
            assert!(
                additional.is_object(),
                "{path}: additionalProperties must be a schema"
            );
            assert_structural(additional, &format!("{path}[*]"));
        }
        if ty == Some("array") {
            let items = obj
                .get("items")
                .unwrap_or_else(|| panic!("{path}: array without items"));
            assert!(items.is_object(), "{path}: items must be a single schema");
            assert_structural(items, &format!("{path}[]"));
        }
        if let Some(required) = obj.get("required") {
            let props = obj.get("properties").and_then(Value::as_object);
            for name in required.as_array().unwrap() {
                let name = name.as_str().unwrap();
                assert!(
                    props.is_some_and(|p| p.contains_key(name)),
                    "{path}: required `{name}` is not a property"
                );
            }
        }
        if let Some(values) = obj.get("enum") {
            assert!(
                values.as_array().unwrap().iter().all(Value::is_string),
                "{path}: non-string enum value"
            );
        }
    }

    #[test]
    fn crds_are_structural() {
        for crd in crds() {
            assert_structural(&schema_of(&crd), crd.metadata.name.as_deref().unwrap());
        }
    }

    #[test]
    fn crd_metadata() {
        let all = crds();
        let names: Vec<_> = all
            .iter()
            .map(|c| c.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "compositecontrollers.metacontroller.k8s.io",
                "controllerrevisions.metacontroller.k8s.io",
                "decoratorcontrollers.metacontroller.k8s.io"
            ]
        );
        let expected = [
            ("CompositeController", "Cluster", Some(vec!["cc", "cctl"])),
            ("ControllerRevision", "Namespaced", None),
            (
                "DecoratorController",
                "Cluster",
                Some(vec!["dec", "decorators"]),
            ),
        ];
        for (crd, (kind, scope, short)) in all.iter().zip(expected) {
            assert_eq!(crd.spec.group, "metacontroller.k8s.io");
            assert_eq!(crd.spec.names.kind, kind);
            assert_eq!(
                crd.spec.names.list_kind.as_deref(),
                Some(format!("{kind}List").as_str())
            );
            assert_eq!(
                crd.spec.names.singular.as_deref(),
                Some(kind.to_lowercase().as_str())
            );
            assert_eq!(crd.spec.scope, scope);
            assert_eq!(
                crd.spec.names.short_names,
                short.map(|s| s.into_iter().map(String::from).collect::<Vec<_>>())
            );
            assert_eq!(
                crd.metadata.annotations.as_ref().unwrap()["api-approved.kubernetes.io"],
                "unapproved, request not yet submitted"
            );
            assert_eq!(crd.spec.versions.len(), 1);
            let version = &crd.spec.versions[0];
            assert_eq!(version.name, "v1alpha1");
            assert!(version.served && version.storage);
            assert_eq!(
                version.subresources.as_ref().unwrap().status,
                Some(CustomResourceSubresourceStatus(json!({})))
            );
        }
    }

    #[test]
    fn schema_details_match_metacontroller() {
        let all = crds();
        let cc = schema_of(&all[0]);
        let rev = schema_of(&all[1]);
        let dc = schema_of(&all[2]);

        assert_eq!(cc["required"], json!(["metadata", "spec"]));
        assert_eq!(
            cc["properties"]["spec"]["required"],
            json!(["parentResource"])
        );
        assert_eq!(cc["properties"]["status"]["type"], "object");
        let parent = &cc["properties"]["spec"]["properties"]["parentResource"];
        assert_eq!(parent["required"], json!(["apiVersion", "resource"]));
        assert_eq!(
            parent["properties"]["labelSelector"]["x-kubernetes-map-type"],
            "atomic"
        );
        assert_eq!(
            parent["properties"]["labelSelector"]["properties"]["matchExpressions"]["x-kubernetes-list-type"],
            "atomic"
        );
        let child = &cc["properties"]["spec"]["properties"]["childResources"]["items"];
        assert_eq!(
            child["properties"]["updateStrategy"]["properties"]["method"]["enum"],
            json!([
                "OnDelete",
                "Recreate",
                "InPlace",
                "RollingRecreate",
                "RollingInPlace"
            ])
        );
        let conditions = &child["properties"]["updateStrategy"]["properties"]["statusChecks"]["properties"]
            ["conditions"];
        assert_eq!(conditions["items"]["required"], json!(["type"]));
        assert_eq!(
            cc["properties"]["spec"]["properties"]["resyncPeriodSeconds"]["format"],
            "int32"
        );

        let hooks = &cc["properties"]["spec"]["properties"]["hooks"]["properties"];
        for hook in [
            "sync",
            "finalize",
            "customize",
            "preUpdateChild",
            "postUpdateChild",
        ] {
            let h = &hooks[hook];
            assert_eq!(h["properties"]["version"]["default"], "v1", "{hook}");
            assert_eq!(
                h["properties"]["version"]["enum"],
                json!(["v1", "v2"]),
                "{hook}"
            );
            let webhook = &h["properties"]["webhook"]["properties"];
            assert_eq!(
                webhook["timeout"],
                json!({"description": webhook["timeout"]["description"], "format": "duration", "type": "string"})
            );
            assert_eq!(
                webhook["responseUnMarshallMode"]["enum"],
                json!(["loose", "strict"])
            );
            assert_eq!(
                webhook["authorization"]["properties"]["type"]["default"],
                "Bearer"
            );
            assert_eq!(webhook["authorization"]["required"], json!(["secretRef"]));
            assert_eq!(
                webhook["basicAuth"]["properties"]["usernameKey"]["default"],
                "username"
            );
            assert_eq!(
                webhook["basicAuth"]["properties"]["passwordKey"]["default"],
                "password"
            );
            assert_eq!(
                webhook["clientTLS"]["properties"]["certKey"]["default"],
                "tls.crt"
            );
            assert_eq!(
                webhook["clientTLS"]["properties"]["privateKeyKey"]["default"],
                "tls.key"
            );
            assert_eq!(
                webhook["caBundle"]["properties"]["secretRef"]["properties"]["key"]["default"],
                "ca.crt"
            );
            assert_eq!(
                webhook["caBundle"]["properties"]["configMapRef"]["required"],
                json!(["name", "namespace"])
            );
            assert_eq!(webhook["service"]["required"], json!(["name", "namespace"]));
            assert_eq!(webhook["service"]["properties"]["port"]["format"], "int32");
            assert_eq!(
                webhook["etag"]["properties"]["cacheTimeoutSeconds"]["type"],
                "integer"
            );
        }
        let endpoint = &cc["properties"]["spec"]["properties"]["endpointConfigs"]["items"];
        assert_eq!(endpoint["required"], json!(["host"]));

        assert_eq!(rev["required"], json!(["metadata", "parentPatch"]));
        assert_eq!(
            rev["properties"]["parentPatch"],
            json!({"description": rev["properties"]["parentPatch"]["description"], "type": "object", "x-kubernetes-preserve-unknown-fields": true})
        );
        assert_eq!(
            rev["properties"]["children"]["items"]["required"],
            json!(["apiGroup", "kind", "names"])
        );
        assert!(rev["properties"].get("spec").is_none());

        assert_eq!(dc["properties"]["spec"]["required"], json!(["resources"]));
        let resource = &dc["properties"]["spec"]["properties"]["resources"]["items"]["properties"];
        assert_eq!(
            resource["annotationSelector"]["properties"]["matchAnnotations"]["additionalProperties"]
                ["type"],
            "string"
        );
        assert_eq!(
            resource["annotationSelector"]["properties"]["matchExpressions"]["items"]["required"],
            json!(["key", "operator"])
        );
        let dc_hooks = &dc["properties"]["spec"]["properties"]["hooks"]["properties"];
        assert!(dc_hooks.get("preUpdateChild").is_none());
        assert!(dc_hooks["sync"].is_object());
    }

    #[test]
    fn yaml_stream_parses_back() {
        let yaml = crds_yaml();
        assert!(yaml.starts_with("---\n"));
        let docs: Vec<CustomResourceDefinition> = yaml
            .split("---\n")
            .filter(|d| !d.trim().is_empty())
            .map(|d| serde_yaml::from_str(d).unwrap())
            .collect();
        assert_eq!(docs, crds());
    }
}
