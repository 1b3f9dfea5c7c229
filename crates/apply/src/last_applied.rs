//! The `metacontroller.k8s.io/last-applied-configuration` annotation: the
//! desired object Metacontroller last applied to a child, the base of the
//! next three-way merge (`SetLastApplied`, `GetLastApplied` in
//! Metacontroller's `pkg/dynamic/apply/apply.go`).

pub use metacontroller_api::LAST_APPLIED_ANNOTATION;
use metacontroller_api::gojson;
use serde_json::{Map, Value};

use crate::error::DynamicApplyError;

pub(crate) fn annotations(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata")?.get("annotations")?.as_object()
}

/// Reads and decodes the last-applied annotation. Absent, empty or `null`
/// yields `Ok(None)`.
pub fn get_last_applied(obj: &Value) -> Result<Option<Value>, DynamicApplyError> {
    let Some(raw) = annotations(obj)
        .and_then(|a| a.get(LAST_APPLIED_ANNOTATION))
        .and_then(Value::as_str)
    else {
        return Ok(None);
    };
    if raw.is_empty() {
        return Ok(None);
    }
    match serde_json::from_str::<Value>(raw).map_err(DynamicApplyError::LastAppliedInvalid)? {
        Value::Null => Ok(None),
        v @ Value::Object(_) => Ok(Some(v)),
        _ => Err(DynamicApplyError::LastAppliedNotObject),
    }
}

/// Stores `desired` as the last-applied annotation of `obj`, encoded exactly
/// as Metacontroller encodes it (Go `json.Marshal`: sorted keys, compact,
/// HTML characters escaped; see [`metacontroller_api::gojson`]). The value is stored as
/// given: callers strip what must not be recorded (on update,
/// [`crate::apply_update`] removes the annotation itself from `desired` first).
/// Creates `metadata` and `metadata.annotations` when missing.
pub fn set_last_applied(obj: &mut Value, desired: &Value) -> Result<(), DynamicApplyError> {
    let encoded = gojson::to_string(desired);
    let obj = obj
        .as_object_mut()
        .ok_or(DynamicApplyError::NotAnObject("object"))?;
    let metadata = obj
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or(DynamicApplyError::NotAnObject("metadata"))?;
    let annotations = metadata
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if !annotations.is_object() {
        *annotations = Value::Object(Map::new());
    }
    if let Value::Object(a) = annotations {
        a.insert(LAST_APPLIED_ANNOTATION.to_string(), Value::String(encoded));
    }
    Ok(())
}

/// Removes the last-applied annotation from `obj`, leaving an empty
/// `annotations` object behind when it was the only one (as Metacontroller's
/// `nullifyLastAppliedAnnotation` does). Returns whether it was present.
pub fn remove_last_applied(obj: &mut Value) -> bool {
    obj.get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(Value::as_object_mut)
        .is_some_and(|a| a.remove(LAST_APPLIED_ANNOTATION).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::parse;
    use serde_json::json;

    #[test]
    fn last_applied_round_trip_and_encoding() {
        let mut obj = parse(r#"{"metadata": {"name": "x"}}"#);
        let desired = parse(r#"{"testing": "123", "b": [1, 2.5, "<&>"], "a": {}}"#);
        set_last_applied(&mut obj, &desired).expect("set");
        assert_eq!(
            obj["metadata"]["annotations"][LAST_APPLIED_ANNOTATION],
            r#"{"a":{},"b":[1,2.5,"\u003c\u0026\u003e"],"testing":"123"}"#
        );
        assert_eq!(get_last_applied(&obj).expect("get"), Some(desired));

        // Keeps other annotations; creates metadata when missing.
        let mut obj = parse(r#"{"metadata": {"annotations": {"other": "1"}}}"#);
        set_last_applied(&mut obj, &parse("{}")).expect("set");
        assert_eq!(obj["metadata"]["annotations"]["other"], "1");
        assert_eq!(
            obj["metadata"]["annotations"][LAST_APPLIED_ANNOTATION],
            "{}"
        );
        let mut obj = parse("{}");
        set_last_applied(&mut obj, &parse(r#"{"k": 1}"#)).expect("set");
        assert_eq!(
            obj["metadata"]["annotations"][LAST_APPLIED_ANNOTATION],
            r#"{"k":1}"#
        );
        assert!(set_last_applied(&mut parse("[]"), &parse("{}")).is_err());
        assert!(set_last_applied(&mut parse(r#"{"metadata": 1}"#), &parse("{}")).is_err());
    }

    #[test]
    fn get_last_applied_table() {
        let ann = |s: &str| json!({"metadata": {"annotations": {LAST_APPLIED_ANNOTATION: s}}});
        let cases: Vec<(Value, Result<Option<Value>, ()>)> = vec![
            (json!({}), Ok(None)),
            (json!({"metadata": {}}), Ok(None)),
            (json!({"metadata": {"annotations": {}}}), Ok(None)),
            (ann(""), Ok(None)),
            (ann("null"), Ok(None)),
            (ann("{}"), Ok(Some(json!({})))),
            (ann(r#"{"a": [1]}"#), Ok(Some(json!({"a": [1]})))),
            (ann("[1]"), Err(())),
            (ann("\"x\""), Err(())),
            (ann("{"), Err(())),
        ];
        for (obj, want) in cases {
            let got = get_last_applied(&obj);
            match want {
                Ok(v) => assert_eq!(got.expect("ok"), v, "{obj}"),
                Err(()) => assert!(got.is_err(), "{obj}"),
            }
        }
        let err = get_last_applied(&ann("[1]")).expect_err("not object");
        assert!(err.to_string().contains(LAST_APPLIED_ANNOTATION));
    }

    #[test]
    fn remove_last_applied_table() {
        let mut with = json!({"metadata": {"annotations": {LAST_APPLIED_ANNOTATION: "{}"}}});
        assert!(remove_last_applied(&mut with));
        assert_eq!(with, json!({"metadata": {"annotations": {}}}));
        let mut without = json!({"metadata": {}});
        assert!(!remove_last_applied(&mut without));
        assert_eq!(without, json!({"metadata": {}}));
    }
}
