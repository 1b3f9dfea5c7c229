//! Validation of a custom resource against its schema
//! (`k8s.io/apiextensions-apiserver/pkg/apiserver/validation` and
//! kube-openapi's validators), with errors worded as
//! `k8s.io/apimachinery/pkg/util/validation/field` words them.

use std::fmt;

use serde_json::{Map, Number, Value};

use super::format::{format_matches, pattern_matches};
use super::go_text::{go_float, go_number, go_quote, go_value};
use super::*;

/// What is wrong with a field (`field.ErrorType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViolationKind {
    /// A required field is missing.
    Required,
    /// The value breaks a constraint (bounds, pattern, format, ...).
    Invalid,
    /// The value is not of the schema's type.
    TypeInvalid,
    /// The value is not one of the `enum` values.
    NotSupported,
    /// A string or list is longer than allowed.
    TooLong,
    /// A list or object has more items or properties than allowed.
    TooMany,
    /// An item repeats in a `set` list or a `map` list key.
    Duplicate,
}

impl ViolationKind {
    /// The `reason` of the `Status` cause.
    pub fn reason(self) -> &'static str {
        match self {
            ViolationKind::Required => "FieldValueRequired",
            ViolationKind::Invalid => "FieldValueInvalid",
            ViolationKind::TypeInvalid => "FieldValueTypeInvalid",
            ViolationKind::NotSupported => "FieldValueNotSupported",
            ViolationKind::TooLong => "FieldValueTooLong",
            ViolationKind::TooMany => "FieldValueTooMany",
            ViolationKind::Duplicate => "FieldValueDuplicate",
        }
    }

    fn label(self) -> &'static str {
        match self {
            ViolationKind::Required => "Required value",
            ViolationKind::Invalid | ViolationKind::TypeInvalid => "Invalid value",
            ViolationKind::NotSupported => "Unsupported value",
            ViolationKind::TooLong => "Too long",
            ViolationKind::TooMany => "Too many",
            ViolationKind::Duplicate => "Duplicate value",
        }
    }
}

/// One validation error of one field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaViolation {
    /// What is wrong.
    pub kind: ViolationKind,
    /// Path of the field (`spec.replicas`, `spec.ports[1].name`).
    pub field: String,
    /// The offending value as Kubernetes prints it, when it is printed.
    pub value: Option<String>,
    /// Why, as the real server explains it (may be empty).
    pub detail: String,
}

impl SchemaViolation {
    fn new(
        kind: ViolationKind,
        field: &str,
        value: Option<String>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            field: field.to_string(),
            value,
            detail: detail.into(),
        }
    }

    /// The message without the field (`Invalid value: "x": ...`), as the
    /// `message` of a `Status` cause.
    pub fn body(&self) -> String {
        let mut s = self.kind.label().to_string();
        if !matches!(self.kind, ViolationKind::Required | ViolationKind::TooLong)
            && let Some(v) = &self.value
        {
            s.push_str(": ");
            s.push_str(v);
        }
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl fmt::Display for SchemaViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

/// Validates a new object against `schema`.
pub fn validate(schema: &Value, obj: &Value) -> Vec<SchemaViolation> {
    validate_update(schema, obj, None)
}

/// Validates `obj` against `schema`; with the stored object `old`, values
/// equal to their counterpart in `old` (same object key, same key of a
/// `map` list) are not validated again.
pub fn validate_update(schema: &Value, obj: &Value, old: Option<&Value>) -> Vec<SchemaViolation> {
    let mut v = Validator::default();
    v.node(schema, obj, old, "", true);
    v.errors
}

#[derive(Default)]
struct Validator {
    errors: Vec<SchemaViolation>,
}

/// The JSON type name of a value, as the type validator names it.
pub(super) fn json_type(x: &Value) -> &'static str {
    match x {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The types a schema allows (`x-kubernetes-int-or-string`: integer or string).
fn types_of(s: &Value) -> Vec<&str> {
    if flag(s, "x-kubernetes-int-or-string") {
        return vec!["integer", "string"];
    }
    match s.get("type") {
        Some(Value::String(t)) if !t.is_empty() => vec![t.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn type_matches(types: &[&str], x: &Value) -> bool {
    let has = |t: &str| types.contains(&t);
    match x {
        Value::Number(n) if n.is_f64() => {
            has("number")
                || (has("integer")
                    && n.as_f64()
                        .is_some_and(|f| f.is_finite() && f.fract() == 0.0))
        }
        Value::Number(_) => has("integer") || has("number"),
        other => has(json_type(other)),
    }
}

/// Equality as the enum validator sees it: numbers compare by value.
fn loosely_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// The item of `old` a list item corresponds to: for `map` lists the one
/// with the same keys; other lists have no correspondence.
fn correlated<'a>(s: &Value, old: Option<&'a Vec<Value>>, item: &Value) -> Option<&'a Value> {
    if s.get("x-kubernetes-list-type").and_then(Value::as_str) != Some("map") {
        return None;
    }
    let keys = s.get("x-kubernetes-list-map-keys")?.as_array()?;
    old?.iter().find(|o| {
        keys.iter()
            .filter_map(Value::as_str)
            .all(|k| o.get(k) == item.get(k))
    })
}

impl Validator {
    fn push(
        &mut self,
        kind: ViolationKind,
        field: &str,
        value: Option<String>,
        detail: impl Into<String>,
    ) {
        self.errors
            .push(SchemaViolation::new(kind, field, value, detail));
    }

    fn type_error(&mut self, path: &str, types: &[&str], actual: &str) {
        let actual = go_quote(actual);
        self.push(
            ViolationKind::TypeInvalid,
            path,
            Some(actual.clone()),
            format!(
                "{path} in body must be of type {}: {actual}",
                types.join(",")
            ),
        );
    }

    fn node(&mut self, s: &Value, x: &Value, old: Option<&Value>, path: &str, root: bool) {
        if old == Some(x) || !s.is_object() {
            return;
        }
        let types = types_of(s);
        if x.is_null() {
            if !types.is_empty() && !is_nullable(s) {
                self.type_error(path, &types, "null");
            }
            self.enumeration(s, x, path);
            return;
        }
        if !types.is_empty() && !type_matches(&types, x) {
            self.type_error(path, &types, json_type(x));
        }
        self.composition(s, x, old, path);
        match x {
            Value::String(v) => self.string(s, v, path),
            Value::Number(n) => self.number(s, n, path),
            Value::Array(a) => self.array(s, a, old.and_then(Value::as_array), path),
            _ => {}
        }
        self.enumeration(s, x, path);
        if let Value::Object(m) = x {
            self.object(s, m, old.and_then(Value::as_object), path, root);
        }
    }

    /// `allOf`, `anyOf`, `oneOf` and `not`.
    fn composition(&mut self, s: &Value, x: &Value, old: Option<&Value>, path: &str) {
        let subs = |name: &str| -> Vec<&Value> {
            s.get(name)
                .and_then(Value::as_array)
                .map(|a| a.iter().collect())
                .unwrap_or_default()
        };
        for sub in subs("allOf") {
            self.node(sub, x, old, path, false);
        }
        let alone = |sub: &Value| validate_update(sub, x, None).len();
        let any = subs("anyOf");
        if !any.is_empty() {
            let failures: Vec<usize> = any.iter().map(|sub| alone(sub)).collect();
            if failures.iter().all(|n| *n > 0) {
                self.push(
                    ViolationKind::Invalid,
                    path,
                    Some(go_value(x)),
                    format!(
                        "{} must validate at least one schema (anyOf)",
                        go_quote(path)
                    ),
                );
            }
        }
        let one = subs("oneOf");
        if !one.is_empty() {
            let valid = one.iter().filter(|sub| alone(sub) == 0).count();
            if valid != 1 {
                self.push(
                    ViolationKind::Invalid,
                    path,
                    Some(go_value(x)),
                    format!(
                        "{} must validate one and only one schema (oneOf). Found {valid} valid alternatives",
                        go_quote(path)
                    ),
                );
            }
        }
        if let Some(not) = s.get("not").filter(|n| n.is_object())
            && alone(not) == 0
        {
            self.push(
                ViolationKind::Invalid,
                path,
                Some(go_value(x)),
                format!("{} must not validate the schema (not)", go_quote(path)),
            );
        }
    }

    fn string(&mut self, s: &Value, v: &str, path: &str) {
        let len = v.chars().count() as u64;
        if let Some(max) = count(s, "maxLength")
            && len > max
        {
            self.push(
                ViolationKind::TooLong,
                path,
                None,
                format!("may not be longer than {max}"),
            );
        } else if let Some(min) = count(s, "minLength")
            && len < min
        {
            self.push(
                ViolationKind::Invalid,
                path,
                Some(go_quote(v)),
                format!("{path} in body should be at least {min} chars long"),
            );
        } else if let Some(pattern) = s.get("pattern").and_then(Value::as_str)
            && pattern_matches(pattern, v) == Some(false)
        {
            self.push(
                ViolationKind::Invalid,
                path,
                Some(go_quote(v)),
                format!("{path} in body should match '{pattern}'"),
            );
        }
        if let Some(format) = s.get("format").and_then(Value::as_str)
            && !format_matches(format, v)
        {
            let q = go_quote(v);
            self.push(
                ViolationKind::TypeInvalid,
                path,
                Some(q.clone()),
                format!("{path} in body must be of type {format}: {q}"),
            );
        }
    }

    fn number(&mut self, s: &Value, n: &Number, path: &str) {
        let Some(v) = n.as_f64() else { return };
        let shown = || Some(go_number(n));
        if let Some(factor) = s.get("multipleOf").and_then(Value::as_f64)
            && factor > 0.0
        {
            let multiple = match (n.as_i64(), factor.fract() == 0.0) {
                (Some(i), true) if factor <= i64::MAX as f64 => i % (factor as i64) == 0,
                _ => {
                    let m = if factor < 1.0 {
                        (1.0 / factor) * v
                    } else {
                        v / factor
                    };
                    m.is_finite() && m.fract() == 0.0
                }
            };
            if !multiple {
                self.push(
                    ViolationKind::Invalid,
                    path,
                    shown(),
                    format!(
                        "{path} in body should be a multiple of {}",
                        go_float(factor)
                    ),
                );
            }
        }
        if let Some(max) = s.get("maximum").and_then(Value::as_f64) {
            let exclusive = flag(s, "exclusiveMaximum");
            if v > max || (exclusive && v == max) {
                let rel = if exclusive {
                    "less than"
                } else {
                    "less than or equal to"
                };
                self.push(
                    ViolationKind::Invalid,
                    path,
                    shown(),
                    format!("{path} in body should be {rel} {}", go_float(max)),
                );
            }
        }
        if let Some(min) = s.get("minimum").and_then(Value::as_f64) {
            let exclusive = flag(s, "exclusiveMinimum");
            if v < min || (exclusive && v == min) {
                let rel = if exclusive {
                    "greater than"
                } else {
                    "greater than or equal to"
                };
                self.push(
                    ViolationKind::Invalid,
                    path,
                    shown(),
                    format!("{path} in body should be {rel} {}", go_float(min)),
                );
            }
        }
    }

    fn array(&mut self, s: &Value, a: &[Value], old: Option<&Vec<Value>>, path: &str) {
        if let Some(item) = items(s) {
            for (i, v) in a.iter().enumerate() {
                let o = correlated(s, old, v);
                self.node(item, v, o, &format!("{path}[{i}]"), false);
            }
        }
        let len = a.len() as u64;
        if let Some(min) = count(s, "minItems")
            && len < min
        {
            self.push(
                ViolationKind::Invalid,
                path,
                Some(len.to_string()),
                format!("{path} in body should have at least {min} items"),
            );
        }
        if let Some(max) = count(s, "maxItems")
            && len > max
        {
            self.push(
                ViolationKind::TooMany,
                path,
                Some(len.to_string()),
                format!("must have at most {max} items"),
            );
        }
        match s.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("set") => {
                for (i, v) in a.iter().enumerate() {
                    if a[..i].contains(v) {
                        self.push(
                            ViolationKind::Duplicate,
                            &format!("{path}[{i}]"),
                            Some(go_value(v)),
                            "",
                        );
                    }
                }
            }
            Some("map") => {
                let keys: Vec<&str> = s
                    .get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|k| k.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                if keys.is_empty() {
                    return;
                }
                let mut seen: Vec<Map<String, Value>> = Vec::new();
                for (i, v) in a.iter().enumerate() {
                    let Some(item) = v.as_object() else { continue };
                    let key: Map<String, Value> = keys
                        .iter()
                        .filter_map(|k| item.get(*k).map(|v| (k.to_string(), v.clone())))
                        .collect();
                    if seen.contains(&key) {
                        self.push(
                            ViolationKind::Duplicate,
                            &format!("{path}[{i}]"),
                            Some(go_value(&Value::Object(key))),
                            "",
                        );
                    } else {
                        seen.push(key);
                    }
                }
            }
            _ => {}
        }
    }

    fn enumeration(&mut self, s: &Value, x: &Value, path: &str) {
        let Some(values) = s.get("enum").and_then(Value::as_array) else {
            return;
        };
        if values.is_empty() || values.iter().any(|e| loosely_equal(e, x)) {
            return;
        }
        let allowed: Vec<String> = values
            .iter()
            .map(|e| match e {
                Value::String(s) => go_quote(s),
                other => go_quote(&other.to_string()),
            })
            .collect();
        self.push(
            ViolationKind::NotSupported,
            path,
            Some(go_value(x)),
            format!("supported values: {}", allowed.join(", ")),
        );
    }

    fn object(
        &mut self,
        s: &Value,
        m: &Map<String, Value>,
        old: Option<&Map<String, Value>>,
        path: &str,
        root: bool,
    ) {
        let n = m.len() as u64;
        if let Some(min) = count(s, "minProperties")
            && n < min
        {
            self.push(
                ViolationKind::Invalid,
                path,
                Some(n.to_string()),
                format!("{path} in body should have at least {min} properties"),
            );
            return;
        }
        if let Some(max) = count(s, "maxProperties")
            && n > max
        {
            self.push(
                ViolationKind::TooMany,
                path,
                Some(n.to_string()),
                format!("must have at most {max} items"),
            );
            return;
        }
        let props = s.get("properties").and_then(Value::as_object);
        let old_of = |k: &str| old.and_then(|o| o.get(k));
        if let Some(ap) = additional(s) {
            for (k, v) in m {
                if !props.is_some_and(|p| p.contains_key(k)) {
                    self.node(ap, v, old_of(k), &child_path(path, k), false);
                }
            }
        }
        if let Some(props) = props {
            for (k, ps) in props {
                if let Some(v) = m.get(k) {
                    self.node(ps, v, old_of(k), &child_path(path, k), false);
                }
            }
        }
        if let Some(required) = s.get("required").and_then(Value::as_array) {
            for r in required.iter().filter_map(Value::as_str) {
                if !m.contains_key(r) {
                    self.push(ViolationKind::Required, &child_path(path, r), None, "");
                }
            }
        }
        if !root && is_embedded(s) {
            for k in ["apiVersion", "kind"] {
                let field = child_path(path, k);
                match m.get(k) {
                    None => self.push(ViolationKind::Required, &field, None, ""),
                    Some(Value::String(v)) if v.is_empty() => {
                        self.push(ViolationKind::Required, &field, None, "")
                    }
                    Some(Value::String(_)) => {}
                    Some(other) => self.push(
                        ViolationKind::Invalid,
                        &field,
                        Some(go_value(other)),
                        "must be a string",
                    ),
                }
            }
        }
    }
}
