//! Schema helpers for the fields whose CRD schema is not the plain derived
//! one (label selectors, durations, free-form objects).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use schemars::{Schema, SchemaGenerator, json_schema};

/// `metav1.LabelSelector` as it appears in CRDs: an atomic map whose
/// expression list and value lists are atomic too.
pub(super) fn label_selector_schema(generator: &mut SchemaGenerator) -> Schema {
    let mut schema = generator.subschema_for::<LabelSelector>();
    if let Some(obj) = schema.as_object_mut() {
        obj.insert("x-kubernetes-map-type".into(), "atomic".into());
        if let Some(props) = obj.get_mut("properties").and_then(|p| p.as_object_mut()) {
            props.insert("matchExpressions".into(), requirement_list(generator, true));
        }
    }
    schema
}

/// A list of `LabelSelectorRequirement`s whose `values` lists are atomic.
pub(super) fn requirement_list_schema(generator: &mut SchemaGenerator) -> Schema {
    Schema::from(
        requirement_list(generator, false)
            .as_object()
            .cloned()
            .unwrap_or_default(),
    )
}

pub(super) fn requirement_list(generator: &mut SchemaGenerator, atomic: bool) -> serde_json::Value {
    let mut item = generator
        .subschema_for::<LabelSelectorRequirement>()
        .to_value();
    if let Some(values) = item
        .pointer_mut("/properties/values")
        .and_then(|v| v.as_object_mut())
    {
        values.insert("x-kubernetes-list-type".into(), "atomic".into());
    }
    let mut list = serde_json::json!({ "type": "array", "items": item });
    if atomic {
        list["description"] =
            "matchExpressions is a list of label selector requirements. The requirements are ANDed.".into();
        list["x-kubernetes-list-type"] = "atomic".into();
    }
    list
}

/// A Go duration string.
pub(super) fn duration_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "format": "duration" })
}

/// An arbitrary JSON object kept as-is by the API server.
pub(super) fn preserve_unknown_object_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "object", "x-kubernetes-preserve-unknown-fields": true })
}
