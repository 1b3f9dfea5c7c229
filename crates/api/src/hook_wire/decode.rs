//! Decoding hook responses in `loose` or `strict` mode.
//!
//! Field names are matched case-sensitively in both modes, and malformed
//! JSON or values of the wrong type are always errors. The modes differ in
//! how unknown fields and repeated keys are treated: `loose` ignores them (a
//! repeated key keeps its last value) and reports them as [`StrictIssue`]s
//! for logging, `strict` fails. Objects inside `children`/`attachments` are
//! opaque Kubernetes objects and are not checked.

use std::any::TypeId;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde::de::{DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::v1alpha1::ResponseUnmarshallMode;

/// A hook response type.
pub trait HookResponse: DeserializeOwned + JsonSchema + Default + 'static {
    /// Top-level array fields holding Kubernetes objects, whose contents are
    /// not subject to the strict checks.
    const OBJECT_LISTS: &'static [&'static str] = &[];
}

/// An unknown field or repeated key found while decoding a response.
/// Paths look like `relatedResources[0].labelSelector.foo`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum StrictIssue {
    /// A key that is not a field of the response type.
    UnknownField(String),
    /// A key that occurs more than once in the same object.
    DuplicateField(String),
}

impl fmt::Display for StrictIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StrictIssue::UnknownField(path) => write!(f, "unknown field {path:?}"),
            StrictIssue::DuplicateField(path) => write!(f, "duplicate field {path:?}"),
        }
    }
}

/// Why a response could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON, or a field has the wrong type (fatal in both modes).
    #[error("can't unmarshal hook response: {0}")]
    Malformed(#[source] serde_json::Error),
    /// Strict mode found unknown or repeated fields.
    #[error("strict decoding of hook response failed: {}", join(.0))]
    Strict(Vec<StrictIssue>),
}

fn join(issues: &[StrictIssue]) -> String {
    issues
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A decoded response plus the issues that loose mode tolerated.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded<T> {
    /// The response.
    pub response: T,
    /// Unknown or repeated fields (always empty in strict mode, which fails
    /// instead).
    pub issues: Vec<StrictIssue>,
}

/// Decodes a hook response body. A body of `null` gives the default response.
pub fn decode_response<T: HookResponse>(
    body: &[u8],
    mode: ResponseUnmarshallMode,
) -> Result<Decoded<T>, DecodeError> {
    let mut duplicates = Vec::new();
    let value = parse_tracking_duplicates(body, &mut duplicates).map_err(DecodeError::Malformed)?;

    let opaque = |path: &str| {
        T::OBJECT_LISTS.iter().any(|list| {
            path.strip_prefix(list)
                .is_some_and(|rest| rest.starts_with('['))
        })
    };
    let mut issues: BTreeSet<StrictIssue> = duplicates
        .into_iter()
        .filter(|p| !opaque(p))
        .map(StrictIssue::DuplicateField)
        .collect();
    let mut unknown = Vec::new();
    find_unknown_fields(&value, &schema_for::<T>(), "", &mut unknown);
    issues.extend(
        unknown
            .into_iter()
            .filter(|p| !opaque(p))
            .map(StrictIssue::UnknownField),
    );
    let issues: Vec<StrictIssue> = issues.into_iter().collect();

    // Type errors take precedence over strict issues.
    let response = if value.is_null() {
        T::default()
    } else {
        T::deserialize(value).map_err(DecodeError::Malformed)?
    };
    if mode == ResponseUnmarshallMode::Strict && !issues.is_empty() {
        return Err(DecodeError::Strict(issues));
    }
    Ok(Decoded { response, issues })
}

fn schema_for<T: JsonSchema + 'static>() -> Arc<Value> {
    static CACHE: OnceLock<Mutex<HashMap<TypeId, Arc<Value>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut guard = cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    guard
        .entry(TypeId::of::<T>())
        .or_insert_with(|| {
            let generator = SchemaSettings::draft2020_12()
                .with(|s| {
                    s.inline_subschemas = true;
                    s.meta_schema = None;
                })
                .into_generator();
            Arc::new(generator.into_root_schema_for::<T>().to_value())
        })
        .clone()
}

fn child_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Property schemas of an object schema, merged across `anyOf`/`oneOf`/`allOf`
/// branches, and its `additionalProperties`.
fn object_shape<'a>(
    schema: &'a Value,
    props: &mut Map<String, Value>,
    additional: &mut Option<&'a Value>,
) {
    let Some(obj) = schema.as_object() else {
        return;
    };
    if let Some(Value::Object(p)) = obj.get("properties") {
        for (k, v) in p {
            props.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    if let Some(a) = obj.get("additionalProperties") {
        additional.get_or_insert(a);
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(branches)) = obj.get(key) {
            for branch in branches {
                object_shape(branch, props, additional);
            }
        }
    }
}

fn items_schema(schema: &Value) -> Option<&Value> {
    let obj = schema.as_object()?;
    if let Some(items) = obj.get("items") {
        return Some(items);
    }
    ["anyOf", "oneOf", "allOf"]
        .iter()
        .find_map(|key| obj.get(*key)?.as_array()?.iter().find_map(items_schema))
}

fn find_unknown_fields(value: &Value, schema: &Value, path: &str, out: &mut Vec<String>) {
    if !schema.is_object() {
        // `true` (anything goes) or `false`.
        return;
    }
    match value {
        Value::Object(map) => {
            let mut props = Map::new();
            let mut additional = None;
            object_shape(schema, &mut props, &mut additional);
            if props.is_empty() && additional.is_none() {
                // Free-form object.
                return;
            }
            for (key, v) in map {
                let p = child_path(path, key);
                if let Some(prop) = props.get(key) {
                    find_unknown_fields(v, prop, &p, out);
                } else {
                    match additional {
                        Some(Value::Bool(false)) | None => out.push(p),
                        Some(extra) => find_unknown_fields(v, extra, &p, out),
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = items_schema(schema) {
                for (i, v) in items.iter().enumerate() {
                    find_unknown_fields(v, item_schema, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

/// Parses JSON into a [`Value`] (last value wins for repeated keys) and
/// records the path of every repeated key.
fn parse_tracking_duplicates(
    body: &[u8],
    duplicates: &mut Vec<String>,
) -> serde_json::Result<Value> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = TrackingSeed {
        path: String::new(),
        duplicates,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

struct TrackingSeed<'a> {
    path: String,
    duplicates: &'a mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for TrackingSeed<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TrackingSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(TrackingSeed {
            path: format!("{}[{}]", self.path, items.len()),
            duplicates: &mut *self.duplicates,
        })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let path = child_path(&self.path, &key);
            if map.contains_key(&key) {
                self.duplicates.push(path.clone());
            }
            let value = access.next_value_seed(TrackingSeed {
                path,
                duplicates: &mut *self.duplicates,
            })?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hook_wire::{CompositeHookResponse, CustomizeHookResponse, DecoratorHookResponse};
    use ResponseUnmarshallMode::{Loose, Strict};

    #[test]
    fn unknown_top_level_field() {
        let body = br#"{"status": {}, "children": [], "extra": 1}"#;
        let loose = decode_response::<CompositeHookResponse>(body, Loose).unwrap();
        assert_eq!(
            loose.issues,
            vec![StrictIssue::UnknownField("extra".into())]
        );
        assert_eq!(loose.response.status, Some(Map::new()));
        let err = decode_response::<CompositeHookResponse>(body, Strict).unwrap_err();
        assert!(
            matches!(&err, DecodeError::Strict(i) if i == &[StrictIssue::UnknownField("extra".into())])
        );
        assert_eq!(
            err.to_string(),
            r#"strict decoding of hook response failed: unknown field "extra""#
        );
    }

    #[test]
    fn unknown_field_in_customize_response() {
        let body = br#"{"some": "sother"}"#;
        let loose = decode_response::<CustomizeHookResponse>(body, Loose).unwrap();
        assert!(loose.response.related_resources.is_empty());
        assert_eq!(loose.issues, vec![StrictIssue::UnknownField("some".into())]);
        assert!(matches!(
            decode_response::<CustomizeHookResponse>(body, Strict),
            Err(DecodeError::Strict(_))
        ));
        assert!(
            decode_response::<CustomizeHookResponse>(b"{}", Strict)
                .unwrap()
                .issues
                .is_empty()
        );
    }

    #[test]
    fn field_names_are_case_sensitive() {
        let body = br#"{"Status": {"a": 1}, "ResyncAfterSeconds": 3, "finalized": true}"#;
        let loose = decode_response::<CompositeHookResponse>(body, Loose).unwrap();
        assert_eq!(loose.response.status, None);
        assert!(loose.response.resync_after_seconds.abs() < f64::EPSILON);
        assert!(loose.response.finalized);
        assert_eq!(loose.issues.len(), 2);
        assert!(decode_response::<CompositeHookResponse>(body, Strict).is_err());
    }

    #[test]
    fn duplicate_keys() {
        let body = br#"{"finalized": false, "finalized": true, "status": {"a": 1, "a": 2}}"#;
        let loose = decode_response::<CompositeHookResponse>(body, Loose).unwrap();
        assert!(loose.response.finalized, "last value wins");
        assert_eq!(loose.response.status.as_ref().unwrap()["a"], 2);
        assert_eq!(
            loose.issues,
            vec![
                StrictIssue::DuplicateField("finalized".into()),
                StrictIssue::DuplicateField("status.a".into())
            ]
        );
        assert!(matches!(
            decode_response::<CompositeHookResponse>(body, Strict),
            Err(DecodeError::Strict(_))
        ));
    }

    #[test]
    fn objects_in_children_are_not_checked() {
        let body = br#"{"children": [{"apiVersion": "v1", "kind": "Pod", "kind": "Pod", "whatever": {"x": 1}}]}"#;
        let strict = decode_response::<CompositeHookResponse>(body, Strict).unwrap();
        assert!(strict.issues.is_empty());
        let body = br#"{"attachments": [{"apiVersion": "v1", "kind": "Service", "spec": {}, "spec": {}}], "labels": {"a": "1", "a": "2"}}"#;
        let err = decode_response::<DecoratorHookResponse>(body, Strict).unwrap_err();
        assert!(
            matches!(&err, DecodeError::Strict(i) if i == &[StrictIssue::DuplicateField("labels.a".into())])
        );
    }

    #[test]
    fn nested_unknown_fields_in_typed_rules() {
        let body = br#"{"relatedResources": [{"apiVersion": "v1", "resource": "secrets", "labelSelector": {"matchLabels": {"a": "b"}, "matchLabel": {}}, "namespaces": ["x"]}]}"#;
        let loose = decode_response::<CustomizeHookResponse>(body, Loose).unwrap();
        assert_eq!(
            loose.issues,
            vec![
                StrictIssue::UnknownField("relatedResources[0].labelSelector.matchLabel".into()),
                StrictIssue::UnknownField("relatedResources[0].namespaces".into()),
            ]
        );
        assert!(decode_response::<CustomizeHookResponse>(body, Strict).is_err());
        let ok = br#"{"relatedResources": [{"apiVersion": "v1", "resource": "secrets", "namespace": "x", "names": ["a"], "namespaceSelector": {"matchExpressions": [{"key": "k", "operator": "Exists"}]}}]}"#;
        assert!(
            decode_response::<CustomizeHookResponse>(ok, Strict)
                .unwrap()
                .issues
                .is_empty()
        );
    }

    #[test]
    fn type_errors_are_fatal_in_both_modes() {
        for body in [
            &br#"{"finalized": "yes"}"#[..],
            br#"{"resyncAfterSeconds": "5"}"#,
            br#"{"status": [1]}"#,
            br#"{"children": {}}"#,
            br#"not json"#,
            br#""#,
            br#"{"children": []} trailing"#,
        ] {
            for mode in [Loose, Strict] {
                assert!(
                    matches!(
                        decode_response::<CompositeHookResponse>(body, mode),
                        Err(DecodeError::Malformed(_))
                    ),
                    "{}",
                    String::from_utf8_lossy(body)
                );
            }
        }
        assert!(matches!(
            decode_response::<DecoratorHookResponse>(br#"{"labels": {"a": 1}}"#, Loose),
            Err(DecodeError::Malformed(_))
        ));
    }
}
