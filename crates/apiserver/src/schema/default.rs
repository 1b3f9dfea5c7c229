//! Defaulting (`k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting`):
//! `default:` values fill in missing fields and `null`s of non-nullable ones.

use serde_json::Value;

use super::*;

/// Sets `default:` values of fields that are missing (or `null` where the
/// field is not nullable), then recurses, so defaults apply inside
/// defaulted values, array items and `additionalProperties` too.
pub fn apply_defaults(schema: &Value, obj: &mut Value) {
    match obj {
        Value::Object(m) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, s) in props {
                    let Some(d) = default_of(s) else { continue };
                    let missing = match m.get(k) {
                        None => true,
                        Some(Value::Null) => !is_nullable(s),
                        Some(_) => false,
                    };
                    if missing {
                        m.insert(k.clone(), d.clone());
                    }
                }
            }
            for (k, v) in m.iter_mut() {
                if let Some(s) = property(schema, k) {
                    apply_defaults(s, v);
                } else if let Some(s) = additional(schema) {
                    if v.is_null()
                        && !is_nullable(s)
                        && let Some(d) = default_of(s)
                    {
                        *v = d.clone();
                    }
                    apply_defaults(s, v);
                }
            }
        }
        Value::Array(a) => {
            if let Some(s) = items(schema) {
                for v in a {
                    if v.is_null()
                        && !is_nullable(s)
                        && let Some(d) = default_of(s)
                    {
                        *v = d.clone();
                    }
                    apply_defaults(s, v);
                }
            }
        }
        _ => {}
    }
}
