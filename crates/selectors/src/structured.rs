//! The structured selector forms: `metav1.LabelSelector`
//! (`LabelSelectorAsSelector` in
//! `k8s.io/apimachinery/pkg/apis/meta/v1/helpers.go`) and the
//! DecoratorController annotation selector
//! (`{matchAnnotations, matchExpressions}`).

use serde_json::{Map, Value};

use crate::error::SelectorError;
use crate::requirement::{Operator, Requirement};
use crate::selector::Selector;

impl Selector {
    /// Compiles a `metav1.LabelSelector` JSON value
    /// (`metav1.LabelSelectorAsSelector`): `null` selects nothing, an object
    /// without `matchLabels`/`matchExpressions` entries selects everything.
    /// Keys and values are validated; `In`/`NotIn` need values,
    /// `Exists`/`DoesNotExist` must have none.
    pub fn from_label_selector(v: &Value) -> Result<Self, SelectorError> {
        Self::from_structured(v, "matchLabels", true)
    }

    /// Compiles a DecoratorController annotation selector
    /// (`{matchAnnotations, matchExpressions}`), with the same rules as
    /// [`Selector::from_label_selector`] except that values are free text
    /// (annotation values are not label values). Match it against
    /// [`crate::object_annotations`]. Note that a DecoratorController whose
    /// `annotationSelector` is absent or `null` selects everything; callers
    /// should handle that case before calling this (which maps `null` to
    /// [`Selector::nothing`] for symmetry with label selectors).
    pub fn from_annotation_selector(v: &Value) -> Result<Self, SelectorError> {
        Self::from_structured(v, "matchAnnotations", false)
    }

    fn from_structured(
        v: &Value,
        map_field: &str,
        check_values: bool,
    ) -> Result<Self, SelectorError> {
        let obj = match v {
            Value::Null => return Ok(Self::nothing()),
            Value::Object(obj) => obj,
            _ => {
                return Err(SelectorError::Malformed(
                    "selector must be an object".to_string(),
                ));
            }
        };
        let empty = Map::new();
        let match_map = match obj.get(map_field) {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(m)) => m,
            Some(_) => {
                return Err(SelectorError::Malformed(format!(
                    "{map_field} must be an object"
                )));
            }
        };
        let no_exprs = Vec::new();
        let exprs = match obj.get("matchExpressions") {
            None | Some(Value::Null) => &no_exprs,
            Some(Value::Array(a)) => a,
            Some(_) => {
                return Err(SelectorError::Malformed(
                    "matchExpressions must be a list".to_string(),
                ));
            }
        };
        if match_map.is_empty() && exprs.is_empty() {
            return Ok(Self::everything());
        }
        let mut requirements = Vec::with_capacity(match_map.len() + exprs.len());
        for (k, val) in match_map {
            let Some(val) = val.as_str() else {
                return Err(SelectorError::Malformed(format!(
                    "{map_field}[{k}] must be a string"
                )));
            };
            requirements.push(Requirement::build(
                k.clone(),
                Operator::Equals,
                vec![val.to_string()],
                check_values,
            )?);
        }
        for (i, expr) in exprs.iter().enumerate() {
            let Some(expr) = expr.as_object() else {
                return Err(SelectorError::Malformed(format!(
                    "matchExpressions[{i}] must be an object"
                )));
            };
            let string_field = |name: &str| -> Result<String, SelectorError> {
                match expr.get(name) {
                    None | Some(Value::Null) => Ok(String::new()),
                    Some(Value::String(s)) => Ok(s.clone()),
                    Some(_) => Err(SelectorError::Malformed(format!(
                        "matchExpressions[{i}].{name} must be a string"
                    ))),
                }
            };
            let key = string_field("key")?;
            let operator = Operator::from_label_selector_operator(&string_field("operator")?)?;
            let values = match expr.get("values") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|x| x.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        SelectorError::Malformed(format!(
                            "matchExpressions[{i}].values must be a list of strings"
                        ))
                    })?,
                Some(_) => {
                    return Err(SelectorError::Malformed(format!(
                        "matchExpressions[{i}].values must be a list of strings"
                    )));
                }
            };
            requirements.push(Requirement::build(key, operator, values, check_values)?);
        }
        Ok(Self::from_requirements(requirements))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::req;
    use serde_json::json;

    #[test]
    fn label_selector_table() {
        use Operator::*;
        // (json, Ok(canonical string) | Err(()) , is_everything, is_nothing)
        let cases: Vec<(Value, Result<&str, ()>, bool, bool)> = vec![
            (json!(null), Ok(""), false, true),
            (json!({}), Ok(""), true, false),
            (
                json!({"matchLabels": {}, "matchExpressions": []}),
                Ok(""),
                true,
                false,
            ),
            (
                json!({"matchLabels": null, "matchExpressions": null}),
                Ok(""),
                true,
                false,
            ),
            (
                json!({"matchLabels": {"b": "2", "a": "1"}}),
                Ok("a=1,b=2"),
                false,
                false,
            ),
            (
                json!({"matchExpressions": [
                    {"key": "t", "operator": "In", "values": ["y", "x"]},
                    {"key": "s", "operator": "NotIn", "values": ["z"]},
                    {"key": "r", "operator": "Exists"},
                    {"key": "q", "operator": "DoesNotExist", "values": []},
                ]}),
                Ok("!q,r,s notin (z),t in (x,y)"),
                false,
                false,
            ),
            (
                json!({"matchLabels": {"app": "x"}, "matchExpressions": [
                    {"key": "app", "operator": "Exists"}]}),
                Ok("app=x,app"),
                false,
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}),
                Err(()),
                false,
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "In"}]}),
                Err(()),
                false,
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": null}]}),
                Err(()),
                false,
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}),
                Err(()),
                false,
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "DoesNotExist", "values": ["x"]}]}),
                Err(()),
                false,
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}),
                Err(()),
                false,
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "in", "values": ["1"]}]}),
                Err(()),
                false,
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "a"}]}),
                Err(()),
                false,
                false,
            ),
            (
                json!({"matchExpressions": [{"operator": "Exists"}]}),
                Err(()),
                false,
                false,
            ),
            (json!({"matchLabels": {"a": "b c"}}), Err(()), false, false),
            (json!({"matchLabels": {"a b": "c"}}), Err(()), false, false),
            (json!({"matchLabels": {"a": 1}}), Err(()), false, false),
            (json!({"matchLabels": []}), Err(()), false, false),
            (json!({"matchExpressions": {}}), Err(()), false, false),
            (json!({"matchExpressions": ["a"]}), Err(()), false, false),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "In", "values": [1]}]}),
                Err(()),
                false,
                false,
            ),
            (json!("a=b"), Err(()), false, false),
        ];
        for (v, want, everything, nothing) in cases {
            let got = Selector::from_label_selector(&v);
            match want {
                Ok(s) => {
                    let sel = got.unwrap_or_else(|e| panic!("{v}: {e}"));
                    assert_eq!(sel.to_string(), s, "{v}");
                    assert_eq!(sel.is_everything(), everything, "{v}");
                    assert_eq!(sel.is_nothing(), nothing, "{v}");
                }
                Err(()) => assert!(got.is_err(), "{v} should fail, got {got:?}"),
            }
        }
        // Values of matchExpressions are kept as given (not deduplicated).
        let sel = Selector::from_label_selector(
            &json!({"matchExpressions": [{"key": "a", "operator": "In", "values": ["y", "x", "y"]}]}),
        )
        .expect("valid");
        assert_eq!(sel.requirements(), &[req("a", In, &["y", "x", "y"])]);
        let err = Selector::from_label_selector(
            &json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}),
        )
        .expect_err("bad op");
        assert_eq!(
            err.to_string(),
            "\"Gt\" is not a valid label selector operator"
        );
    }

    #[test]
    fn label_selector_matching() {
        let sel = Selector::from_label_selector(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "NotIn", "values": ["db"]},
                {"key": "legacy", "operator": "DoesNotExist"}
            ]
        }))
        .expect("valid");
        let cases = [
            (json!({"metadata": {"labels": {"app": "web"}}}), true),
            (
                json!({"metadata": {"labels": {"app": "web", "tier": "fe"}}}),
                true,
            ),
            (
                json!({"metadata": {"labels": {"app": "web", "tier": "db"}}}),
                false,
            ),
            (
                json!({"metadata": {"labels": {"app": "web", "legacy": ""}}}),
                false,
            ),
            (json!({"metadata": {"labels": {"app": "api"}}}), false),
            (json!({"metadata": {}}), false),
        ];
        for (obj, want) in cases {
            assert_eq!(sel.matches_object_labels(&obj), want, "{obj}");
        }
    }

    #[test]
    fn annotation_selector_table() {
        let cases: Vec<(Value, Value, Option<bool>)> = vec![
            // (selector, annotations, Some(match) | None = invalid selector)
            (json!({}), json!({}), Some(true)),
            (
                json!({"matchAnnotations": {"note": "free text, with spaces!"}}),
                json!({"note": "free text, with spaces!"}),
                Some(true),
            ),
            (
                json!({"matchAnnotations": {"note": "free text"}}),
                json!({"note": "other"}),
                Some(false),
            ),
            (
                json!({"matchExpressions": [
                    {"key": "example.com/json", "operator": "In", "values": ["{\"a\": 1}"]}]}),
                json!({"example.com/json": "{\"a\": 1}"}),
                Some(true),
            ),
            (
                json!({"matchExpressions": [{"key": "x", "operator": "Exists"}]}),
                json!({"x": ""}),
                Some(true),
            ),
            (
                json!({"matchExpressions": [{"key": "x", "operator": "DoesNotExist"}]}),
                json!({"x": ""}),
                Some(false),
            ),
            // matchLabels is not the annotation form's field and is ignored.
            (json!({"matchLabels": {"a": "b"}}), json!({}), Some(true)),
            // Keys are still validated.
            (
                json!({"matchAnnotations": {"bad key": "v"}}),
                json!({}),
                None,
            ),
            (
                json!({"matchExpressions": [{"key": "x", "operator": "In", "values": []}]}),
                json!({}),
                None,
            ),
            (json!({"matchAnnotations": {"a": 1}}), json!({}), None),
        ];
        for (selector, annotations, want) in cases {
            let got = Selector::from_annotation_selector(&selector);
            match want {
                Some(m) => {
                    let sel = got.unwrap_or_else(|e| panic!("{selector}: {e}"));
                    let obj = json!({"metadata": {"annotations": annotations}});
                    assert_eq!(sel.matches_object_annotations(&obj), m, "{selector}");
                }
                None => assert!(got.is_err(), "{selector} should fail"),
            }
        }
        assert!(
            Selector::from_annotation_selector(&json!(null))
                .expect("null")
                .is_nothing()
        );
    }
}
