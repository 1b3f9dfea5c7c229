//! The hook wire format: the JSON bodies exchanged with `sync`, `finalize`
//! and `customize` webhooks.
//!
//! Both hook versions share these types; the version only changes how object
//! maps are keyed (see [`object_map`]) and the default response decoding
//! mode (see [`decode_response`]).
//!
//! Requests serialize with the field order and defaults Metacontroller uses:
//! `finalizing` is always present, `related` is `{}` when nothing is related,
//! and every declared child/attachment type appears even when it has no
//! objects. Objects are plain [`serde_json::Value`]s, whose keys serialize in
//! sorted order. [`crate::gojson::to_go_json`] writes them with Go's string
//! escaping and number formatting, as Metacontroller sends them.

mod decode;
pub mod object_map;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

pub use decode::{DecodeError, Decoded, HookResponse, StrictIssue, decode_response};
pub use object_map::{
    ObjectMap, ObjectMaps, object_key, parse_type_key, split_api_version, type_key,
};

use crate::duration::GoDuration;
use crate::v1alpha1::RelatedResourceRule;

/// `null` decodes as the default value (Go leaves the field untouched).
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

// ---------------------------------------------------------------------------
// CompositeController
// ---------------------------------------------------------------------------

/// Body of a CompositeController `sync` or `finalize` call.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct CompositeHookRequest {
    /// The CompositeController (see [`controller_json`]).
    #[serde(default)]
    pub controller: Value,
    /// The parent object.
    #[serde(default)]
    pub parent: Value,
    /// Observed children, one entry per declared child type.
    #[serde(default)]
    pub children: ObjectMaps,
    /// Related objects selected by the customize hook (`{}` if none).
    #[serde(default)]
    pub related: ObjectMaps,
    /// `true` when this is a `finalize` call.
    #[serde(default)]
    pub finalizing: bool,
}

/// Response of a CompositeController `sync` or `finalize` hook.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompositeHookResponse {
    /// New parent status (replaces the old one; `observedGeneration` is added).
    #[serde(default)]
    pub status: Option<Map<String, Value>>,
    /// The complete desired set of children; observed children missing here
    /// are deleted.
    #[serde(default, deserialize_with = "null_as_default")]
    pub children: Vec<Value>,
    /// Sync this parent again after this many seconds (if positive).
    #[serde(default, deserialize_with = "null_as_default")]
    pub resync_after_seconds: f64,
    /// `finalize` only: the finalizer may be removed.
    #[serde(default, deserialize_with = "null_as_default")]
    pub finalized: bool,
}

impl HookResponse for CompositeHookResponse {
    const OBJECT_LISTS: &'static [&'static str] = &["children"];
}

// ---------------------------------------------------------------------------
// DecoratorController
// ---------------------------------------------------------------------------

/// Body of a DecoratorController `sync` or `finalize` call.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct DecoratorHookRequest {
    /// The DecoratorController (see [`controller_json`]).
    #[serde(default)]
    pub controller: Value,
    /// The target object.
    #[serde(default)]
    pub object: Value,
    /// Observed attachments, one entry per declared attachment type.
    #[serde(default)]
    pub attachments: ObjectMaps,
    /// Related objects selected by the customize hook (`{}` if none).
    #[serde(default)]
    pub related: ObjectMaps,
    /// `true` when this is a `finalize` call.
    #[serde(default)]
    pub finalizing: bool,
}

/// Response of a DecoratorController `sync` or `finalize` hook.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DecoratorHookResponse {
    /// Labels to set on the target; a `null` value removes the label.
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, Option<String>>,
    /// Annotations to set on the target; a `null` value removes it.
    #[serde(default, deserialize_with = "null_as_default")]
    pub annotations: BTreeMap<String, Option<String>>,
    /// New target status; `None` leaves the status unchanged.
    #[serde(default)]
    pub status: Option<Map<String, Value>>,
    /// The complete desired set of attachments.
    #[serde(default, deserialize_with = "null_as_default")]
    pub attachments: Vec<Value>,
    /// Sync this target again after this many seconds (if positive).
    #[serde(default, deserialize_with = "null_as_default")]
    pub resync_after_seconds: f64,
    /// `finalize` only: the finalizer may be removed.
    #[serde(default, deserialize_with = "null_as_default")]
    pub finalized: bool,
}

impl HookResponse for DecoratorHookResponse {
    const OBJECT_LISTS: &'static [&'static str] = &["attachments"];
}

// ---------------------------------------------------------------------------
// customize
// ---------------------------------------------------------------------------

/// Body of a `customize` call (both controller kinds; the key is `parent`
/// for DecoratorControllers too).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct CustomizeHookRequest {
    /// The CompositeController or DecoratorController.
    #[serde(default)]
    pub controller: Value,
    /// The parent (or decorated target) object.
    #[serde(default)]
    pub parent: Value,
}

/// Response of a `customize` hook.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomizeHookResponse {
    /// Rules selecting the related objects sent with sync requests.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub related_resources: Vec<RelatedResourceRule>,
}

impl HookResponse for CustomizeHookResponse {}

// ---------------------------------------------------------------------------
// Encoding helpers
// ---------------------------------------------------------------------------

/// The controller object as Metacontroller puts it into hook requests.
///
/// Metacontroller encodes its typed Go object, which always carries
/// `status: {}`, always carries `statusChecks: {}` inside a child
/// `updateStrategy`, and prints hook timeouts in canonical Go form (`90s`
/// becomes `1m30s`). This applies the same adjustments to the serialized
/// CompositeController or DecoratorController.
pub fn controller_json<T: Serialize>(controller: &T) -> Value {
    let mut value = serde_json::to_value(controller).unwrap_or(Value::Null);
    let Some(root) = value.as_object_mut() else {
        return value;
    };
    if root.get("status").is_none_or(Value::is_null) {
        root.insert("status".into(), Value::Object(Map::new()));
    }
    let Some(spec) = root.get_mut("spec").and_then(Value::as_object_mut) else {
        return value;
    };
    if let Some(Value::Array(children)) = spec.get_mut("childResources") {
        for child in children {
            if let Some(Value::Object(strategy)) = child.get_mut("updateStrategy")
                && strategy.get("statusChecks").is_none_or(Value::is_null)
            {
                strategy.insert("statusChecks".into(), Value::Object(Map::new()));
            }
        }
    }
    if let Some(Value::Object(hooks)) = spec.get_mut("hooks") {
        for hook in hooks.values_mut() {
            if let Some(Value::String(timeout)) = hook.pointer_mut("/webhook/timeout")
                && let Ok(parsed) = GoDuration::parse(timeout)
            {
                *timeout = parsed.to_string();
            }
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gojson::to_go_json;
    use crate::v1alpha1::{CompositeController, HookVersion, ResponseUnmarshallMode};
    use serde_json::json;

    fn parent() -> Value {
        json!({
            "apiVersion": "ctl.enisoc.com/v1",
            "kind": "CatSet",
            "metadata": {"name": "nginx-backend", "namespace": "default", "uid": "u-1"},
            "spec": {"replicas": 2}
        })
    }

    #[test]
    fn composite_request_shape() {
        let mut children = ObjectMaps::new();
        children.init_group("Pod", "v1");
        children.init_group("PersistentVolumeClaim", "v1");
        children.insert(
            HookVersion::V1,
            Some("default"),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nginx-backend-0", "namespace": "default"}}),
        );
        let request = CompositeHookRequest {
            controller: json!({"kind": "CompositeController"}),
            parent: parent(),
            children,
            related: ObjectMaps::new(),
            finalizing: false,
        };
        let text = String::from_utf8(to_go_json(&request).unwrap()).unwrap();
        assert_eq!(
            text,
            concat!(
                r#"{"controller":{"kind":"CompositeController"},"#,
                r#""parent":{"apiVersion":"ctl.enisoc.com/v1","kind":"CatSet","metadata":{"name":"nginx-backend","namespace":"default","uid":"u-1"},"spec":{"replicas":2}},"#,
                r#""children":{"PersistentVolumeClaim.v1":{},"Pod.v1":{"nginx-backend-0":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"nginx-backend-0","namespace":"default"}}}},"#,
                r#""related":{},"finalizing":false}"#
            )
        );
        let back: CompositeHookRequest = serde_json::from_str(&text).unwrap();
        assert_eq!(back, request);
    }

    #[test]
    fn decorator_and_customize_request_shape() {
        let mut attachments = ObjectMaps::new();
        attachments.init_group("Service", "v1");
        let request = DecoratorHookRequest {
            controller: json!({}),
            object: parent(),
            attachments,
            related: ObjectMaps::new(),
            finalizing: true,
        };
        let value = serde_json::to_value(&request).unwrap();
        assert_eq!(value["attachments"], json!({"Service.v1": {}}));
        assert_eq!(value["related"], json!({}));
        assert_eq!(value["finalizing"], json!(true));
        let text = serde_json::to_string(&request).unwrap();
        assert!(text.starts_with(r#"{"controller":{},"object":{"#));
        assert!(
            text.ends_with(r#""attachments":{"Service.v1":{}},"related":{},"finalizing":true}"#)
        );

        let customize = CustomizeHookRequest {
            controller: json!({}),
            parent: parent(),
        };
        let text = serde_json::to_string(&customize).unwrap();
        assert!(text.starts_with(r#"{"controller":{},"parent":{"#));
    }

    #[test]
    fn response_defaults_and_nulls() {
        let decoded = decode_response::<CompositeHookResponse>(
            br#"{"status": null, "children": null, "resyncAfterSeconds": null, "finalized": null}"#,
            ResponseUnmarshallMode::Strict,
        )
        .unwrap();
        assert_eq!(decoded.response, CompositeHookResponse::default());

        let decoded = decode_response::<CompositeHookResponse>(
            br#"{"status": {"replicas": 1}, "children": [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}}], "resyncAfterSeconds": 2}"#,
            ResponseUnmarshallMode::Strict,
        )
        .unwrap();
        assert_eq!(decoded.response.status.unwrap()["replicas"], 1);
        assert_eq!(decoded.response.children.len(), 1);
        assert!((decoded.response.resync_after_seconds - 2.0).abs() < f64::EPSILON);

        let decoded =
            decode_response::<CompositeHookResponse>(b"{}", ResponseUnmarshallMode::Strict)
                .unwrap();
        assert_eq!(decoded.response, CompositeHookResponse::default());
        let decoded =
            decode_response::<CompositeHookResponse>(b"null", ResponseUnmarshallMode::Strict)
                .unwrap();
        assert_eq!(decoded.response, CompositeHookResponse::default());
    }

    #[test]
    fn decorator_labels_null_deletes() {
        let decoded = decode_response::<DecoratorHookResponse>(
            br#"{"labels": {"keep": "v", "drop": null}, "annotations": null, "attachments": [], "resyncAfterSeconds": 0.5}"#,
            ResponseUnmarshallMode::Strict,
        )
        .unwrap()
        .response;
        assert_eq!(decoded.labels["keep"].as_deref(), Some("v"));
        assert_eq!(decoded.labels["drop"], None);
        assert!(decoded.annotations.is_empty());
        assert!(decoded.status.is_none());
        assert!((decoded.resync_after_seconds - 0.5).abs() < f64::EPSILON);
    }

    #[test]
    fn customize_response() {
        let decoded = decode_response::<CustomizeHookResponse>(
            br#"{"relatedResources": [{"apiVersion": "v1", "resource": "configmaps", "labelSelector": {"matchLabels": {"a": "b"}}, "names": null}]}"#,
            ResponseUnmarshallMode::Strict,
        )
        .unwrap()
        .response;
        assert_eq!(decoded.related_resources.len(), 1);
        assert_eq!(decoded.related_resources[0].resource, "configmaps");
        assert_eq!(
            serde_json::to_string(&CustomizeHookResponse::default()).unwrap(),
            "{}"
        );
    }

    #[test]
    fn controller_json_matches_go_encoding() {
        let cc: CompositeController = serde_json::from_value(json!({
            "apiVersion": "metacontroller.k8s.io/v1alpha1",
            "kind": "CompositeController",
            "metadata": {"name": "c"},
            "spec": {
                "parentResource": {"apiVersion": "v1", "resource": "things"},
                "childResources": [
                    {"apiVersion": "v1", "resource": "pods", "updateStrategy": {"method": "InPlace"}},
                    {"apiVersion": "v1", "resource": "services"}
                ],
                "hooks": {"sync": {"webhook": {"url": "http://x", "timeout": "90s"}}}
            }
        }))
        .unwrap();
        let value = controller_json(&cc);
        assert_eq!(value["status"], json!({}));
        assert_eq!(
            value["spec"]["childResources"][0]["updateStrategy"],
            json!({"method": "InPlace", "statusChecks": {}})
        );
        assert!(
            value["spec"]["childResources"][1]
                .get("updateStrategy")
                .is_none()
        );
        assert_eq!(
            value["spec"]["hooks"]["sync"]["webhook"]["timeout"],
            "1m30s"
        );
        assert_eq!(value["apiVersion"], "metacontroller.k8s.io/v1alpha1");
        assert_eq!(value["kind"], "CompositeController");
    }
}
