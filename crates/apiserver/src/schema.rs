//! Structural schemas of custom resources: what the API server does to a
//! custom resource between decoding it and storing it, following
//! `k8s.io/apiextensions-apiserver`:
//!
//! * [`prune`] drops fields the schema does not specify
//!   (`pkg/apiserver/schema/pruning`), except below
//!   `x-kubernetes-preserve-unknown-fields: true`; `apiVersion`, `kind` and
//!   `metadata` of the object and of `x-kubernetes-embedded-resource`
//!   objects are kept, and their `metadata` loses whatever is not an
//!   `ObjectMeta` field;
//! * [`prune_nulls`] drops `null` values of non-nullable fields without a
//!   default (`PruneNonNullableNullsWithoutDefaults`);
//! * [`apply_defaults`] fills in `default:` values
//!   (`pkg/apiserver/schema/defaulting`), including inside array items and
//!   `additionalProperties`, and for `null` in non-nullable fields;
//! * [`validate`] / [`validate_update`] check the OpenAPI value
//!   constraints (`pkg/apiserver/validation`, kube-openapi's validators):
//!   types, `nullable`, `x-kubernetes-int-or-string`, `required`, `enum`,
//!   bounds, lengths, `pattern`, the common string `format`s, item counts,
//!   property counts, `allOf`/`anyOf`/`oneOf`/`not`, duplicate items of
//!   `x-kubernetes-list-type` `set` and `map` lists, and `apiVersion`/`kind`
//!   of embedded resources. Errors are worded as
//!   `k8s.io/apimachinery/pkg/util/validation/field` words them. On update,
//!   values unchanged from the stored object are not re-validated
//!   (validation ratcheting). `x-kubernetes-validations` (CEL) rules are
//!   not evaluated.
//!
//! The rest of the module applies them to the writes of an HTTP request:
//! server-side field validation (`fieldValidation=Strict|Warn|Ignore`,
//! `Warn` when absent) reports the fields pruning dropped and the
//! duplicate fields of the body as an error (`Strict`), as `Warning`
//! headers (`Warn`) or not at all (`Ignore`).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, header};
use parking_lot::Mutex;
use regex::Regex;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value, json};

use crate::error::{ApiError, ApiResult, Reason};
use crate::registry::ResourceInfo;

// ---------------------------------------------------------------------------
// Schema accessors
// ---------------------------------------------------------------------------

/// Fields of an object (or embedded resource) that pruning never touches.
const TYPE_AND_META: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// The fields of `ObjectMeta`: anything else in `metadata` is dropped.
const OBJECT_META_FIELDS: &[&str] = &[
    "annotations",
    "creationTimestamp",
    "deletionGracePeriodSeconds",
    "deletionTimestamp",
    "finalizers",
    "generateName",
    "generation",
    "labels",
    "managedFields",
    "name",
    "namespace",
    "ownerReferences",
    "resourceVersion",
    "selfLink",
    "uid",
];

fn flag(s: &Value, name: &str) -> bool {
    s.get(name).and_then(Value::as_bool).unwrap_or(false)
}

fn preserves_unknown(s: &Value) -> bool {
    flag(s, "x-kubernetes-preserve-unknown-fields")
}

fn is_embedded(s: &Value) -> bool {
    flag(s, "x-kubernetes-embedded-resource")
}

fn is_nullable(s: &Value) -> bool {
    flag(s, "nullable")
}

fn property<'a>(s: &'a Value, key: &str) -> Option<&'a Value> {
    s.get("properties")?.as_object()?.get(key)
}

/// `additionalProperties` when it is a schema.
fn additional(s: &Value) -> Option<&Value> {
    s.get("additionalProperties").filter(|a| a.is_object())
}

/// `additionalProperties: true`: any value, kept as it is.
fn additional_any(s: &Value) -> bool {
    s.get("additionalProperties") == Some(&Value::Bool(true))
}

/// The schema of a field that is not a property, if any.
fn property_or_additional<'a>(s: &'a Value, key: &str) -> Option<&'a Value> {
    property(s, key).or_else(|| additional(s))
}

fn items(s: &Value) -> Option<&Value> {
    s.get("items").filter(|i| i.is_object())
}

/// The `default` of a schema (`default: null` is no default).
fn default_of(s: &Value) -> Option<&Value> {
    s.get("default").filter(|d| !d.is_null())
}

fn count(s: &Value, name: &str) -> Option<u64> {
    let v = s.get(name)?;
    v.as_u64()
        .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
}

fn child_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

// ---------------------------------------------------------------------------
// Pruning
// ---------------------------------------------------------------------------

/// Drops every field of `obj` that `schema` (an `openAPIV3Schema`) does
/// not specify, and returns the paths of what was dropped, as field
/// validation reports them (`spec.foo`, `spec.ports[0].bar`,
/// `metadata.foo`): unknown `metadata` fields first, then the rest sorted.
pub fn prune(schema: &Value, obj: &mut Value) -> Vec<String> {
    let mut unknown = Vec::new();
    if let Some(meta) = obj.get_mut("metadata") {
        prune_object_meta(meta, "metadata", &mut unknown);
    }
    unknown.sort();
    let mut p = Pruner::default();
    p.prune(obj, Some(schema), true);
    p.unknown.sort();
    unknown.extend(p.unknown);
    unknown
}

/// Keeps only the `ObjectMeta` fields of a `metadata` object.
fn prune_object_meta(meta: &mut Value, prefix: &str, unknown: &mut Vec<String>) {
    if let Some(m) = meta.as_object_mut() {
        m.retain(|k, _| {
            let keep = OBJECT_META_FIELDS.contains(&k.as_str());
            if !keep {
                unknown.push(format!("{prefix}.{k}"));
            }
            keep
        });
    }
}

#[derive(Default)]
struct Pruner {
    /// Path of the current node (`spec.ports[0]`).
    path: String,
    unknown: Vec<String>,
}

impl Pruner {
    fn record(&mut self, key: &str) {
        self.unknown.push(child_path(&self.path, key));
    }

    /// Runs `f` with `key` appended to the path.
    fn at_key(&mut self, key: &str, f: impl FnOnce(&mut Self)) {
        let len = self.path.len();
        if !self.path.is_empty() {
            self.path.push('.');
        }
        self.path.push_str(key);
        f(self);
        self.path.truncate(len);
    }

    fn at_index(&mut self, i: usize, f: impl FnOnce(&mut Self)) {
        let len = self.path.len();
        self.path.push_str(&format!("[{i}]"));
        f(self);
        self.path.truncate(len);
    }

    /// `apiVersion`, `kind` and `metadata` of an embedded resource: kept,
    /// but `metadata` only with `ObjectMeta` fields and the type fields
    /// only as strings.
    fn coerce_embedded(&mut self, m: &mut Map<String, Value>, key: &str) {
        match key {
            "metadata" => {
                let prefix = child_path(&self.path, "metadata");
                if let Some(meta) = m.get_mut("metadata") {
                    prune_object_meta(meta, &prefix, &mut self.unknown);
                }
            }
            _ => {
                if m.get(key).is_some_and(|v| !v.is_string()) {
                    m.remove(key);
                }
            }
        }
    }

    fn prune(&mut self, x: &mut Value, s: Option<&Value>, root: bool) {
        if let Some(s) = s
            && preserves_unknown(s)
        {
            self.skip(x, s, root);
            return;
        }
        match x {
            Value::Object(m) => {
                let Some(s) = s else {
                    let keys: Vec<String> = m.keys().cloned().collect();
                    for k in keys {
                        self.record(&k);
                    }
                    m.clear();
                    return;
                };
                let embedded = root || is_embedded(s);
                let keys: Vec<String> = m.keys().cloned().collect();
                for k in keys {
                    if embedded && TYPE_AND_META.contains(&k.as_str()) {
                        if !root {
                            self.coerce_embedded(m, &k);
                        }
                        continue;
                    }
                    if let Some(sub) = property_or_additional(s, &k) {
                        if let Some(v) = m.get_mut(&k) {
                            self.at_key(&k, |p| p.prune(v, Some(sub), false));
                        }
                    } else if !additional_any(s) {
                        self.record(&k);
                        m.remove(&k);
                    }
                }
            }
            Value::Array(a) => {
                let item = s.and_then(items);
                for (i, v) in a.iter_mut().enumerate() {
                    self.at_index(i, |p| p.prune(v, item, false));
                }
            }
            _ => {}
        }
    }

    /// Below `x-kubernetes-preserve-unknown-fields`: unknown fields stay,
    /// specified ones are pruned by their own schema.
    fn skip(&mut self, x: &mut Value, s: &Value, root: bool) {
        match x {
            Value::Object(m) => {
                let embedded = root || is_embedded(s);
                let keys: Vec<String> = m.keys().cloned().collect();
                for k in keys {
                    if embedded && TYPE_AND_META.contains(&k.as_str()) {
                        if !root {
                            self.coerce_embedded(m, &k);
                        }
                        continue;
                    }
                    if let Some(sub) = property_or_additional(s, &k)
                        && let Some(v) = m.get_mut(&k)
                    {
                        self.at_key(&k, |p| p.prune(v, Some(sub), false));
                    }
                }
            }
            Value::Array(a) => {
                if let Some(item) = items(s) {
                    for (i, v) in a.iter_mut().enumerate() {
                        self.at_index(i, |p| p.skip(v, item, false));
                    }
                }
            }
            _ => {}
        }
    }
}

/// Drops `null` values of fields that are neither nullable nor defaulted.
pub fn prune_nulls(schema: &Value, obj: &mut Value) {
    match obj {
        Value::Object(m) => {
            m.retain(|k, v| {
                !(v.is_null()
                    && property_or_additional(schema, k)
                        .is_some_and(|s| default_of(s).is_none() && !is_nullable(s)))
            });
            for (k, v) in m.iter_mut() {
                if let Some(s) = property_or_additional(schema, k) {
                    prune_nulls(s, v);
                }
            }
        }
        Value::Array(a) => {
            if let Some(item) = items(schema) {
                for v in a {
                    prune_nulls(item, v);
                }
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------
// Defaulting
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------

/// What is wrong with a field (`field.ErrorType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    Required,
    Invalid,
    /// The value is not of the schema's type.
    TypeInvalid,
    NotSupported,
    TooLong,
    TooMany,
    Duplicate,
}

impl ErrorKind {
    /// The `reason` of the `Status` cause.
    pub fn reason(self) -> &'static str {
        match self {
            ErrorKind::Required => "FieldValueRequired",
            ErrorKind::Invalid => "FieldValueInvalid",
            ErrorKind::TypeInvalid => "FieldValueTypeInvalid",
            ErrorKind::NotSupported => "FieldValueNotSupported",
            ErrorKind::TooLong => "FieldValueTooLong",
            ErrorKind::TooMany => "FieldValueTooMany",
            ErrorKind::Duplicate => "FieldValueDuplicate",
        }
    }

    fn label(self) -> &'static str {
        match self {
            ErrorKind::Required => "Required value",
            ErrorKind::Invalid | ErrorKind::TypeInvalid => "Invalid value",
            ErrorKind::NotSupported => "Unsupported value",
            ErrorKind::TooLong => "Too long",
            ErrorKind::TooMany => "Too many",
            ErrorKind::Duplicate => "Duplicate value",
        }
    }
}

/// One validation error of one field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub kind: ErrorKind,
    /// Path of the field (`spec.replicas`, `spec.ports[1].name`).
    pub field: String,
    /// The offending value as Kubernetes prints it, when it is printed.
    pub value: Option<String>,
    pub detail: String,
}

impl FieldError {
    fn new(kind: ErrorKind, field: &str, value: Option<String>, detail: impl Into<String>) -> Self {
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
        if !matches!(self.kind, ErrorKind::Required | ErrorKind::TooLong)
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

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

/// Validates a new object against `schema`.
pub fn validate(schema: &Value, obj: &Value) -> Vec<FieldError> {
    validate_update(schema, obj, None)
}

/// Validates `obj` against `schema`; with the stored object `old`, values
/// equal to their counterpart in `old` (same object key, same key of a
/// `map` list) are not validated again.
pub fn validate_update(schema: &Value, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut v = Validator::default();
    v.node(schema, obj, old, "", true);
    v.errors
}

#[derive(Default)]
struct Validator {
    errors: Vec<FieldError>,
}

/// The JSON type name of a value, as the type validator names it.
fn json_type(x: &Value) -> &'static str {
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
        kind: ErrorKind,
        field: &str,
        value: Option<String>,
        detail: impl Into<String>,
    ) {
        self.errors
            .push(FieldError::new(kind, field, value, detail));
    }

    fn type_error(&mut self, path: &str, types: &[&str], actual: &str) {
        let actual = go_quote(actual);
        self.push(
            ErrorKind::TypeInvalid,
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
                    ErrorKind::Invalid,
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
                    ErrorKind::Invalid,
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
                ErrorKind::Invalid,
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
                ErrorKind::TooLong,
                path,
                None,
                format!("may not be longer than {max}"),
            );
        } else if let Some(min) = count(s, "minLength")
            && len < min
        {
            self.push(
                ErrorKind::Invalid,
                path,
                Some(go_quote(v)),
                format!("{path} in body should be at least {min} chars long"),
            );
        } else if let Some(pattern) = s.get("pattern").and_then(Value::as_str)
            && pattern_matches(pattern, v) == Some(false)
        {
            self.push(
                ErrorKind::Invalid,
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
                ErrorKind::TypeInvalid,
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
                    ErrorKind::Invalid,
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
                    ErrorKind::Invalid,
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
                    ErrorKind::Invalid,
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
                ErrorKind::Invalid,
                path,
                Some(len.to_string()),
                format!("{path} in body should have at least {min} items"),
            );
        }
        if let Some(max) = count(s, "maxItems")
            && len > max
        {
            self.push(
                ErrorKind::TooMany,
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
                            ErrorKind::Duplicate,
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
                            ErrorKind::Duplicate,
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
            ErrorKind::NotSupported,
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
                ErrorKind::Invalid,
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
                ErrorKind::TooMany,
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
                    self.push(ErrorKind::Required, &child_path(path, r), None, "");
                }
            }
        }
        if !root && is_embedded(s) {
            for k in ["apiVersion", "kind"] {
                let field = child_path(path, k);
                match m.get(k) {
                    None => self.push(ErrorKind::Required, &field, None, ""),
                    Some(Value::String(v)) if v.is_empty() => {
                        self.push(ErrorKind::Required, &field, None, "")
                    }
                    Some(Value::String(_)) => {}
                    Some(other) => self.push(
                        ErrorKind::Invalid,
                        &field,
                        Some(go_value(other)),
                        "must be a string",
                    ),
                }
            }
        }
    }
}

/// Compiled `pattern`s (CRDs reuse a handful of them for every object).
static PATTERNS: LazyLock<Mutex<HashMap<String, Option<Regex>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Whether `v` matches `pattern`; `None` for a pattern that does not compile.
fn pattern_matches(pattern: &str, v: &str) -> Option<bool> {
    let mut cache = PATTERNS.lock();
    if cache.len() > 1024 {
        cache.clear();
    }
    cache
        .entry(pattern.to_string())
        .or_insert_with(|| Regex::new(pattern).ok())
        .as_ref()
        .map(|re| re.is_match(v))
}

fn regex_matches(re: &'static LazyLock<Regex>, v: &str) -> bool {
    re.is_match(v)
}

static UUID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$").unwrap()
});
static UUID3: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}$").unwrap()
});
static UUID4: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$")
        .unwrap()
});
static UUID5: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$")
        .unwrap()
});
static HOSTNAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([a-zA-Z0-9\p{S}\p{L}]((-?[a-zA-Z0-9\p{S}\p{L}]{0,62})?)|([a-zA-Z0-9\p{S}\p{L}](([a-zA-Z0-9-\p{S}\p{L}]{0,61}[a-zA-Z0-9\p{S}\p{L}])?)(\.)){1,}([a-zA-Z\p{L}]){2,63})$").unwrap()
});
static MAC: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:[0-9A-Fa-f]{2}(?:[:-][0-9A-Fa-f]{2}){5}|[0-9A-Fa-f]{2}(?:[:-][0-9A-Fa-f]{2}){7}|[0-9A-Fa-f]{2}(?:[:-][0-9A-Fa-f]{2}){19}|[0-9A-Fa-f]{4}(?:\.[0-9A-Fa-f]{4}){2}|[0-9A-Fa-f]{4}(?:\.[0-9A-Fa-f]{4}){3}|[0-9A-Fa-f]{4}(?:\.[0-9A-Fa-f]{4}){9})$").unwrap()
});
static HEXCOLOR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$").unwrap());
static RGBCOLOR: LazyLock<Regex> = LazyLock::new(|| {
    let c = r"\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*";
    Regex::new(&format!(r"^rgb\({c},{c},{c}\)$")).unwrap()
});
static EMAIL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[^@\s<>()\[\],;:]+@[^@\s<>()\[\],;:]+$").unwrap());

/// Whether `v` is a valid string of `format`; formats Kubernetes does not
/// check are always valid.
fn format_matches(format: &str, v: &str) -> bool {
    match format {
        "byte" => base64::engine::general_purpose::STANDARD.decode(v).is_ok(),
        "date" => v.len() == 10 && v.parse::<jiff::civil::Date>().is_ok(),
        "date-time" | "datetime" => v.parse::<jiff::Timestamp>().is_ok(),
        "uuid" => regex_matches(&UUID, v),
        "uuid3" => regex_matches(&UUID3, v),
        "uuid4" => regex_matches(&UUID4, v),
        "uuid5" => regex_matches(&UUID5, v),
        "ipv4" => v.parse::<Ipv4Addr>().is_ok(),
        "ipv6" => v.contains(':') && v.parse::<Ipv6Addr>().is_ok(),
        "cidr" => {
            let Some((ip, bits)) = v.split_once('/') else {
                return false;
            };
            let Ok(bits) = bits.parse::<u8>() else {
                return false;
            };
            if bits.to_string().len() != v.len() - ip.len() - 1 {
                return false;
            }
            (ip.parse::<Ipv4Addr>().is_ok() && bits <= 32)
                || (ip.parse::<Ipv6Addr>().is_ok() && bits <= 128)
        }
        "mac" => regex_matches(&MAC, v),
        "hostname" => v.len() <= 255 && regex_matches(&HOSTNAME, v),
        "email" => regex_matches(&EMAIL, v),
        "hexcolor" => regex_matches(&HEXCOLOR, v),
        "rgbcolor" => regex_matches(&RGBCOLOR, v),
        _ => true,
    }
}

// ---------------------------------------------------------------------------
// Printing values as Go does
// ---------------------------------------------------------------------------

/// A string quoted as Go's `%q` quotes it.
pub fn go_quote(s: &str) -> String {
    use fmt::Write;
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A float as Go's `%v` prints it (exponent below 1e-4 and from 1e21).
fn go_float(f: f64) -> String {
    if f.is_finite() && f != 0.0 {
        let exp = f.abs().log10().floor();
        if !(-4.0..21.0).contains(&exp) {
            let s = format!("{f:e}");
            if let Some((mantissa, e)) = s.split_once('e')
                && let Ok(e) = e.parse::<i32>()
            {
                let sign = if e < 0 { '-' } else { '+' };
                return format!("{mantissa}e{sign}{:02}", e.abs());
            }
        }
    }
    format!("{f}")
}

fn go_number(n: &Number) -> String {
    match n.as_f64() {
        Some(f) if n.is_f64() => go_float(f),
        _ => n.to_string(),
    }
}

/// A decoded JSON value as a field error prints it (`%v` for scalars,
/// `%q` for strings, `%#v` for maps and slices).
pub fn go_value(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => go_number(n),
        Value::String(s) => go_quote(s),
        other => go_sharp(other),
    }
}

fn go_sharp(v: &Value) -> String {
    match v {
        Value::Null => "interface {}(nil)".into(),
        Value::Object(m) => {
            let entries: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}:{}", go_quote(k), go_sharp(v)))
                .collect();
            format!("map[string]interface {{}}{{{}}}", entries.join(", "))
        }
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(go_sharp).collect();
            format!("[]interface {{}}{{{}}}", items.join(", "))
        }
        other => go_value(other),
    }
}

// ---------------------------------------------------------------------------
// Duplicate fields of a request body
// ---------------------------------------------------------------------------

/// Walks any serde value, recording the keys that appear twice in a map.
struct Duplicates<'a>(&'a mut Vec<String>);

impl<'de> DeserializeSeed<'de> for Duplicates<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Duplicates<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Duplicates(&mut *self.0))?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            map.next_value_seed(Duplicates(&mut *self.0))?;
            if !seen.insert(key.clone()) {
                self.0.push(key);
            }
        }
        Ok(())
    }
}

/// The keys that appear twice in one map of a JSON (or YAML) document, in
/// document order; an undecodable document has none.
pub fn duplicate_fields(body: &[u8], yaml: bool) -> Vec<String> {
    let mut out = Vec::new();
    let ok = if yaml {
        Duplicates(&mut out)
            .deserialize(serde_yaml::Deserializer::from_slice(body))
            .is_ok()
    } else {
        Duplicates(&mut out)
            .deserialize(&mut serde_json::Deserializer::from_slice(body))
            .is_ok()
    };
    if ok { out } else { Vec::new() }
}

/// The strict decoding errors of a JSON patch's operations: unknown fields
/// of an operation and duplicate fields anywhere, in document order.
fn json_patch_errors(body: &[u8]) -> Vec<String> {
    struct Ops<'a>(&'a mut Vec<String>);
    struct Op<'a>(&'a mut Vec<String>);

    impl<'de> DeserializeSeed<'de> for Ops<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_seq(self)
        }
    }
    impl<'de> Visitor<'de> for Ops<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of operations")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element_seed(Op(&mut *self.0))?.is_some() {}
            Ok(())
        }
    }
    impl<'de> DeserializeSeed<'de> for Op<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_map(self)
        }
    }
    impl<'de> Visitor<'de> for Op<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an operation")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                if !["op", "path", "from", "value"].contains(&key.as_str()) {
                    self.0.push(format!("unknown field {}", go_quote(&key)));
                }
                let mut nested = Vec::new();
                map.next_value_seed(Duplicates(&mut nested))?;
                if !seen.insert(key.clone()) {
                    self.0.push(format!("duplicate field {}", go_quote(&key)));
                }
                self.0.extend(
                    nested
                        .iter()
                        .map(|k| format!("duplicate field {}", go_quote(k))),
                );
            }
            Ok(())
        }
    }

    let mut out = Vec::new();
    let ok = Ops(&mut out)
        .deserialize(&mut serde_json::Deserializer::from_slice(body))
        .is_ok();
    if !ok {
        return Vec::new();
    }
    out.into_iter().map(|e| format!("json patch {e}")).collect()
}

// ---------------------------------------------------------------------------
// Field validation of the request being served
// ---------------------------------------------------------------------------

/// The `fieldValidation` directive of a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Directive {
    /// Drop unknown fields silently.
    Ignore,
    /// Drop unknown fields and say so in `Warning` headers (the default).
    Warn,
    /// Refuse a body with unknown or duplicate fields.
    Strict,
}

/// What kind of write the request is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Write {
    Create,
    Update,
    MergePatch,
    JsonPatch,
    Apply,
    Other,
}

struct RequestState {
    directive: Directive,
    write: Write,
    /// The request body and its content type, until the first write checks it.
    body: Option<(Bytes, String)>,
    warnings: Vec<String>,
}

tokio::task_local! {
    static REQUEST: RefCell<RequestState>;
}

const FIELD_VALIDATION_VALUES: &str = r#""", "Ignore", "Strict", "Warn""#;

fn options_invalid(method: &Method, value: &str) -> ApiError {
    let kind = match *method {
        Method::POST => "CreateOptions",
        Method::PUT => "UpdateOptions",
        _ => "PatchOptions",
    };
    let body = format!(
        "Unsupported value: {}: supported values: {FIELD_VALIDATION_VALUES}",
        go_quote(value)
    );
    ApiError::new(
        Reason::Invalid,
        format!("{kind}.meta.k8s.io \"\" is invalid: fieldValidation: {body}"),
    )
    .with_details(json!({
        "group": "meta.k8s.io",
        "kind": kind,
        "causes": [{"reason": "FieldValueNotSupported", "message": body, "field": "fieldValidation"}],
    }))
}

/// Serves `fut` (the handling of one resource request) with the request's
/// field validation known to the writes it makes; returns its result and
/// the warnings to send with the response.
pub(crate) async fn with_request<T, F>(
    method: &Method,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    body: Bytes,
    fut: F,
) -> (ApiResult<T>, Vec<String>)
where
    F: Future<Output = ApiResult<T>>,
{
    let writes = matches!(*method, Method::POST | Method::PUT | Method::PATCH);
    if !writes {
        return (fut.await, Vec::new());
    }
    let directive = match query.get("fieldValidation").map(String::as_str) {
        None | Some("") | Some("Warn") => Directive::Warn,
        Some("Ignore") => Directive::Ignore,
        Some("Strict") => Directive::Strict,
        Some(other) => return (Err(options_invalid(method, other)), Vec::new()),
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let write = match *method {
        Method::POST => Write::Create,
        Method::PUT => Write::Update,
        _ if content_type.starts_with("application/apply-patch") => Write::Apply,
        _ if content_type.starts_with("application/json-patch") => Write::JsonPatch,
        _ if content_type.starts_with("application/merge-patch") => Write::MergePatch,
        _ => Write::Other,
    };
    let state = RefCell::new(RequestState {
        directive,
        write,
        body: Some((body, content_type)),
        warnings: Vec::new(),
    });
    REQUEST
        .scope(state, async move {
            let out = fut.await;
            let warnings = REQUEST.with(|r| std::mem::take(&mut r.borrow_mut().warnings));
            (out, warnings)
        })
        .await
}

/// Adds one `Warning: 299 - "<text>"` header per distinct warning.
pub(crate) fn add_warnings<B>(response: &mut http::Response<B>, warnings: &[String]) {
    let mut sent = HashSet::new();
    for w in warnings {
        if !sent.insert(w.as_str()) {
            continue;
        }
        if let Ok(v) = HeaderValue::from_bytes(format!("299 - {}", go_quote(w)).as_bytes()) {
            response.headers_mut().append(header::WARNING, v);
        }
    }
}

/// The schema custom resources of `info` follow, if any.
fn schema_of(info: &ResourceInfo) -> Option<&Value> {
    info.schema.as_ref().filter(|_| info.crd)
}

/// The strict decoding errors of the request body itself (duplicate
/// fields; for JSON patches also unknown operation fields).
fn body_errors(write: Write, content_type: &str, body: &[u8]) -> Vec<String> {
    let dups = |yaml| {
        duplicate_fields(body, yaml)
            .iter()
            .map(|k| format!("duplicate field {}", go_quote(k)))
            .collect()
    };
    match write {
        Write::Create | Write::Update if content_type.contains("yaml") => dups(true),
        Write::Create | Write::Update if content_type.contains("protobuf") => Vec::new(),
        Write::Create | Write::Update | Write::MergePatch => dups(false),
        Write::JsonPatch => json_patch_errors(body),
        Write::Apply | Write::Other => Vec::new(),
    }
}

/// Prunes and defaults a custom resource about to be written (`old`: the
/// stored object, for updates), and applies the request's field
/// validation to what was dropped and to the body's duplicate fields.
pub(crate) fn admit(info: &ResourceInfo, obj: &mut Value, old: Option<&Value>) -> ApiResult<()> {
    let Some(schema) = schema_of(info) else {
        return Ok(());
    };
    let (directive, write, body) = REQUEST
        .try_with(|r| {
            let mut r = r.borrow_mut();
            (r.directive, r.write, r.body.take())
        })
        .unwrap_or((Directive::Ignore, Write::Other, None));
    let is_patch = matches!(write, Write::MergePatch | Write::JsonPatch);
    let original = (directive == Directive::Strict && is_patch).then(|| obj.clone());
    let mut unknown = prune(schema, obj);
    if !unknown.is_empty()
        && let Some(old) = old
    {
        // Fields the stored object already had (stored before the schema
        // changed) are not the request's.
        let mut stored = old.clone();
        let before: HashSet<String> = prune(schema, &mut stored).into_iter().collect();
        unknown.retain(|p| !before.contains(p));
    }
    prune_nulls(schema, obj);
    apply_defaults(schema, obj);
    if write == Write::Apply {
        if unknown.is_empty() {
            return Ok(());
        }
        return Err(apply_unknown_fields(info, obj, &unknown));
    }
    if directive == Directive::Ignore {
        return Ok(());
    }
    let mut problems = body
        .map(|(b, ct)| body_errors(write, &ct, &b))
        .unwrap_or_default();
    problems.extend(
        unknown
            .iter()
            .map(|p| format!("unknown field {}", go_quote(p))),
    );
    if problems.is_empty() {
        return Ok(());
    }
    if directive == Directive::Warn {
        let _ = REQUEST.try_with(|r| r.borrow_mut().warnings.extend(problems));
        return Ok(());
    }
    let text = format!("strict decoding error: {}", problems.join(", "));
    if is_patch {
        let patched = original
            .map(|o| serde_json::to_string(&o).unwrap_or_default())
            .unwrap_or_default();
        let body = format!("Invalid value: {}: {text}", go_quote(&patched));
        return Err(
            ApiError::new(Reason::Invalid, format!(" \"\" is invalid: patch: {body}"))
                .with_details(json!({
                    "causes": [{"reason": "FieldValueInvalid", "message": body, "field": "patch"}],
                })),
        );
    }
    Err(ApiError::bad_request(format!(
        "{kind} in version {} cannot be handled as a {kind}: {text}",
        go_quote(&info.version),
        kind = info.kind
    )))
}

/// Server-side apply of fields the schema does not declare fails whatever
/// the field validation (the applied configuration cannot be typed).
fn apply_unknown_fields(info: &ResourceInfo, obj: &Value, unknown: &[String]) -> ApiError {
    let meta = |f: &str| {
        obj.get("metadata")
            .and_then(|m| m.get(f))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let errs: Vec<String> = unknown
        .iter()
        .map(|p| format!(".{p}: field not declared in schema"))
        .collect();
    let msg = if errs.len() == 1 {
        errs[0].clone()
    } else {
        format!("errors:\n  {}", errs.join("\n  "))
    };
    ApiError::internal(format!(
        "failed to create typed patch object ({}/{}; {}/{}, Kind={}): {msg}",
        meta("namespace"),
        meta("name"),
        info.group,
        info.version,
        info.kind
    ))
}

/// Validates a custom resource about to be stored against the schema of
/// the version it was written at (`old`: the stored object, for
/// ratcheting); errors are a 422 `Invalid` naming every field.
pub(crate) fn check(
    info: &ResourceInfo,
    name: &str,
    obj: &Value,
    old: Option<&Value>,
) -> ApiResult<()> {
    let Some(schema) = schema_of(info) else {
        return Ok(());
    };
    let errors = validate_update(schema, obj, old);
    if errors.is_empty() {
        return Ok(());
    }
    Err(invalid(&info.group, &info.kind, name, &errors))
}

/// `<Kind>.<group> "<name>" is invalid: ...` with one cause per error.
pub fn invalid(group: &str, kind: &str, name: &str, errors: &[FieldError]) -> ApiError {
    let mut seen = HashSet::new();
    let texts: Vec<String> = errors
        .iter()
        .map(ToString::to_string)
        .filter(|t| seen.insert(t.clone()))
        .collect();
    let summary = if texts.len() == 1 {
        texts[0].clone()
    } else {
        format!("[{}]", texts.join(", "))
    };
    let qualified = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    let causes: Vec<Value> = errors
        .iter()
        .map(|e| json!({"reason": e.kind.reason(), "message": e.body(), "field": e.field}))
        .collect();
    ApiError::new(
        Reason::Invalid,
        format!("{qualified} {} is invalid: {summary}", go_quote(name)),
    )
    .with_details(json!({"name": name, "group": group, "kind": kind, "causes": causes}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["replicas"],
                    "properties": {
                        "replicas": {"type": "integer", "minimum": 1, "maximum": 10},
                        "name": {"type": "string", "minLength": 2, "maxLength": 5, "pattern": "^[a-z]+$"},
                        "color": {"type": "string", "enum": ["red", "green"], "default": "red"},
                        "ratio": {"type": "number"},
                        "on": {"type": "boolean"},
                        "port": {"x-kubernetes-int-or-string": true},
                        "note": {"type": "string", "nullable": true},
                        "tags": {"type": "array", "minItems": 1, "maxItems": 3, "items": {"type": "string"},
                                 "x-kubernetes-list-type": "set"},
                        "ports": {
                            "type": "array",
                            "x-kubernetes-list-type": "map",
                            "x-kubernetes-list-map-keys": ["name"],
                            "items": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "protocol": {"type": "string", "default": "TCP"}
                                }
                            }
                        },
                        "labels": {"type": "object", "additionalProperties": {"type": "string", "default": "x"}},
                        "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                                  "properties": {"known": {"type": "object", "properties": {"a": {"type": "string"}}}}},
                        "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                                     "properties": {"spec": {"type": "object", "properties": {"x": {"type": "string"}}}}},
                        "id": {"type": "string", "format": "uuid"}
                    }
                },
                "status": {"type": "object", "properties": {"ready": {"type": "integer", "default": 0}}}
            }
        })
    }

    fn errors(obj: Value) -> Vec<String> {
        validate(&schema(), &obj)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn spec(s: Value) -> Value {
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": s})
    }

    #[test]
    fn prune_drops_unspecified_fields_and_reports_their_paths() {
        let mut o = json!({
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "w", "labels": {"a": "b"}, "bogus": 1},
            "spec": {"replicas": 1, "foo": "bar", "ports": [{"name": "a", "junk": 1}],
                     "labels": {"k": "v"}, "extra": {"anything": {"deep": 1}, "known": {"a": "x", "b": "y"}},
                     "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "zzz": 1},
                                  "spec": {"x": "1", "y": "2"}, "other": 1}},
            "status": {"ready": 1, "gone": true},
            "top": 1
        });
        let paths = prune(&schema(), &mut o);
        assert_eq!(
            paths,
            vec![
                "metadata.bogus",
                "spec.extra.known.b",
                "spec.foo",
                "spec.ports[0].junk",
                "spec.template.metadata.zzz",
                "spec.template.other",
                "spec.template.spec.y",
                "status.gone",
                "top",
            ]
        );
        assert_eq!(
            o,
            json!({
                "apiVersion": "example.com/v1",
                "kind": "Widget",
                "metadata": {"name": "w", "labels": {"a": "b"}},
                "spec": {"replicas": 1, "ports": [{"name": "a"}], "labels": {"k": "v"},
                         "extra": {"anything": {"deep": 1}, "known": {"a": "x"}},
                         "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                                      "spec": {"x": "1"}}},
                "status": {"ready": 1}
            })
        );
    }

    #[test]
    fn prune_keeps_everything_below_preserve_unknown_fields() {
        let s = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
        let mut o = json!({"apiVersion": "v", "kind": "K", "metadata": {"name": "n"}, "spec": {"a": [1, {"b": 2}]}, "x": 1});
        let before = o.clone();
        assert!(prune(&s, &mut o).is_empty());
        assert_eq!(o, before);
        // Arrays of preserved objects keep their items' unknown fields.
        let s = json!({"type": "object", "properties": {"l": {"type": "array",
            "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                      "properties": {"k": {"type": "object", "properties": {}}}}}}});
        let mut o = json!({"l": [{"u": 1, "k": {"v": 2}}]});
        assert_eq!(prune(&s, &mut o), vec!["l[0].k.v"]);
        assert_eq!(o, json!({"l": [{"u": 1, "k": {}}]}));
    }

    #[test]
    fn prune_without_properties_drops_all_object_fields() {
        let s = json!({"type": "object", "properties": {"m": {"type": "object"}, "a": {"type": "array"}}});
        let mut o = json!({"m": {"x": 1}, "a": [{"y": 1}, 2]});
        assert_eq!(prune(&s, &mut o), vec!["a[0].y", "m.x"]);
        assert_eq!(o, json!({"m": {}, "a": [{}, 2]}));
    }

    #[test]
    fn embedded_type_fields_must_be_strings() {
        let mut o = spec(json!({"replicas": 1, "template": {"apiVersion": 1, "kind": "Pod"}}));
        prune(&schema(), &mut o);
        assert_eq!(o["spec"]["template"], json!({"kind": "Pod"}));
    }

    #[test]
    fn nulls_of_non_nullable_fields_without_default_are_dropped() {
        let mut o = spec(json!({"replicas": 1, "name": null, "note": null, "color": null}));
        prune_nulls(&schema(), &mut o);
        assert_eq!(
            o["spec"],
            json!({"replicas": 1, "note": null, "color": null})
        );
    }

    #[test]
    fn defaults_fill_missing_and_null_fields_recursively() {
        let mut o = spec(
            json!({"replicas": 1, "color": null, "ports": [{"name": "a"}, {"name": "b", "protocol": "UDP"}],
                                "labels": {"k": null, "j": "v"}}),
        );
        apply_defaults(&schema(), &mut o);
        assert_eq!(o["spec"]["color"], "red");
        assert_eq!(
            o["spec"]["ports"],
            json!([{"name": "a", "protocol": "TCP"}, {"name": "b", "protocol": "UDP"}])
        );
        assert_eq!(o["spec"]["labels"], json!({"k": "x", "j": "v"}));
        assert!(o.get("status").is_none(), "no default for a missing object");
        let mut o = json!({"status": {}});
        apply_defaults(&schema(), &mut o);
        assert_eq!(o["status"]["ready"], 0);

        // Defaults inside a defaulted value apply too; nullable nulls stay.
        let s = json!({"type": "object", "properties": {
            "a": {"type": "object", "default": {}, "properties": {"b": {"type": "integer", "default": 3}}},
            "n": {"type": "string", "nullable": true, "default": "d"}}});
        let mut o = json!({"n": null});
        apply_defaults(&s, &mut o);
        assert_eq!(o, json!({"a": {"b": 3}, "n": null}));
        // Array items that are null take the items' default.
        let s = json!({"type": "array", "items": {"type": "string", "default": "z"}});
        let mut o = json!(["a", null]);
        apply_defaults(&s, &mut o);
        assert_eq!(o, json!(["a", "z"]));
    }

    #[test]
    fn type_errors_are_worded_like_kubernetes() {
        assert_eq!(
            errors(spec(json!({"replicas": "string"}))),
            vec![
                r#"spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string""#
            ]
        );
        let e = validate(&schema(), &spec(json!({"replicas": "x"})));
        assert_eq!(e[0].kind.reason(), "FieldValueTypeInvalid");
        assert_eq!(
            errors(spec(json!({"replicas": 1, "on": "yes", "ratio": "1"}))),
            vec![
                r#"spec.on: Invalid value: "string": spec.on in body must be of type boolean: "string""#,
                r#"spec.ratio: Invalid value: "string": spec.ratio in body must be of type number: "string""#,
            ]
        );
        // Integral floats are integers; integers are numbers.
        assert!(errors(spec(json!({"replicas": 2.0, "ratio": 3}))).is_empty());
        assert_eq!(
            errors(spec(json!({"replicas": 1.5}))),
            vec![
                r#"spec.replicas: Invalid value: "number": spec.replicas in body must be of type integer: "number""#
            ]
        );
        assert_eq!(
            errors(spec(json!({"replicas": 1, "tags": "a"}))),
            vec![
                r#"spec.tags: Invalid value: "string": spec.tags in body must be of type array: "string""#
            ]
        );
        assert_eq!(
            errors(json!({"spec": []})),
            vec![r#"spec: Invalid value: "array": spec in body must be of type object: "array""#]
        );
    }

    #[test]
    fn int_or_string_and_nullable() {
        assert!(errors(spec(json!({"replicas": 1, "port": 80}))).is_empty());
        assert!(errors(spec(json!({"replicas": 1, "port": "http"}))).is_empty());
        assert_eq!(
            errors(spec(json!({"replicas": 1, "port": true}))),
            vec![
                r#"spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean""#
            ]
        );
        assert!(errors(spec(json!({"replicas": 1, "note": null}))).is_empty());
        assert_eq!(
            errors(spec(json!({"replicas": null}))),
            vec![
                r#"spec.replicas: Invalid value: "null": spec.replicas in body must be of type integer: "null""#
            ]
        );
    }

    #[test]
    fn required_enum_bounds_lengths_pattern() {
        assert_eq!(
            errors(spec(json!({}))),
            vec!["spec.replicas: Required value"]
        );
        let e = validate(&schema(), &spec(json!({})));
        assert_eq!(
            (e[0].kind.reason(), e[0].body().as_str()),
            ("FieldValueRequired", "Required value")
        );
        assert_eq!(
            errors(spec(json!({"replicas": 1, "color": "purple"}))),
            vec![r#"spec.color: Unsupported value: "purple": supported values: "red", "green""#]
        );
        assert_eq!(
            errors(spec(json!({"replicas": 0}))),
            vec![
                "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1"
            ]
        );
        assert_eq!(
            errors(spec(json!({"replicas": 11}))),
            vec![
                "spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10"
            ]
        );
        assert_eq!(
            errors(spec(json!({"replicas": 1, "name": "toolong"}))),
            vec!["spec.name: Too long: may not be longer than 5"]
        );
        assert_eq!(
            errors(spec(json!({"replicas": 1, "name": "a"}))),
            vec![
                r#"spec.name: Invalid value: "a": spec.name in body should be at least 2 chars long"#
            ]
        );
        assert_eq!(
            errors(spec(json!({"replicas": 1, "name": "AB"}))),
            vec![r#"spec.name: Invalid value: "AB": spec.name in body should match '^[a-z]+$'"#]
        );
        // Lengths count characters, not bytes.
        assert!(errors(spec(json!({"replicas": 1, "name": "ééééé"}))).len() == 1);
    }

    #[test]
    fn exclusive_bounds_and_multiples() {
        let s = json!({"type": "object", "properties": {
            "a": {"type": "number", "minimum": 1, "exclusiveMinimum": true},
            "b": {"type": "number", "maximum": 2.5, "exclusiveMaximum": true},
            "c": {"type": "integer", "multipleOf": 3},
            "d": {"type": "number", "multipleOf": 0.5}}});
        let e: Vec<String> = validate(&s, &json!({"a": 1, "b": 2.5, "c": 4, "d": 0.75}))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            e,
            vec![
                "a: Invalid value: 1: a in body should be greater than 1",
                "b: Invalid value: 2.5: b in body should be less than 2.5",
                "c: Invalid value: 4: c in body should be a multiple of 3",
                "d: Invalid value: 0.75: d in body should be a multiple of 0.5",
            ]
        );
        assert!(validate(&s, &json!({"a": 2, "b": 2, "c": 9, "d": 1.5})).is_empty());
    }

    #[test]
    fn item_counts_and_list_types() {
        assert_eq!(
            errors(spec(json!({"replicas": 1, "tags": []}))),
            vec!["spec.tags: Invalid value: 0: spec.tags in body should have at least 1 items"]
        );
        let e = validate(
            &schema(),
            &spec(json!({"replicas": 1, "tags": ["a", "b", "c", "d"]})),
        );
        assert_eq!(
            e[0].to_string(),
            "spec.tags: Too many: 4: must have at most 3 items"
        );
        assert_eq!(e[0].kind.reason(), "FieldValueTooMany");
        assert_eq!(
            errors(spec(json!({"replicas": 1, "tags": ["a", "b", "a"]}))),
            vec![r#"spec.tags[2]: Duplicate value: "a""#]
        );
        assert_eq!(
            errors(spec(
                json!({"replicas": 1, "ports": [{"name": "a"}, {"name": "a"}, {}]})
            )),
            vec![
                "spec.ports[2].name: Required value",
                r#"spec.ports[1]: Duplicate value: map[string]interface {}{"name":"a"}"#,
            ]
        );
        assert_eq!(
            errors(spec(json!({"replicas": 1, "tags": ["a", 1]}))),
            vec![
                r#"spec.tags[1]: Invalid value: "integer": spec.tags[1] in body must be of type string: "integer""#
            ]
        );
    }

    #[test]
    fn additional_properties_and_property_counts() {
        assert_eq!(
            errors(spec(json!({"replicas": 1, "labels": {"k": 1}}))),
            vec![
                r#"spec.labels.k: Invalid value: "integer": spec.labels.k in body must be of type string: "integer""#
            ]
        );
        let s =
            json!({"type": "object", "properties": {"m": {"type": "object", "minProperties": 2}}});
        assert_eq!(
            validate(&s, &json!({"m": {"a": 1}}))[0].to_string(),
            "m: Invalid value: 1: m in body should have at least 2 properties"
        );
        let s =
            json!({"type": "object", "properties": {"m": {"type": "object", "maxProperties": 1}}});
        assert_eq!(
            validate(&s, &json!({"m": {"a": 1, "b": 2}}))[0].to_string(),
            "m: Too many: 2: must have at most 1 items"
        );
    }

    #[test]
    fn formats() {
        assert!(
            errors(spec(
                json!({"replicas": 1, "id": "123e4567-e89b-12d3-a456-426614174000"})
            ))
            .is_empty()
        );
        assert_eq!(
            errors(spec(json!({"replicas": 1, "id": "nope"}))),
            vec![r#"spec.id: Invalid value: "nope": spec.id in body must be of type uuid: "nope""#]
        );
        for (f, good, bad) in [
            ("ipv4", "10.0.0.1", "10.0.0.256"),
            ("ipv6", "::1", "1.2.3.4"),
            ("cidr", "10.0.0.0/8", "10.0.0.0/33"),
            ("date", "2024-02-29", "2023-02-29"),
            ("date-time", "2024-01-02T03:04:05Z", "2024-01-02"),
            ("byte", "aGVsbG8=", "not base64!"),
            ("hostname", "example.com", "-bad-"),
            ("mac", "01:23:45:67:89:ab", "01:23:45"),
            ("email", "a@b.c", "nobody"),
            ("hexcolor", "#fff", "#ffff"),
            (
                "uuid4",
                "123e4567-e89b-42d3-a456-426614174000",
                "123e4567-e89b-12d3-a456-426614174000",
            ),
            ("unknown-format", "anything", ""),
        ] {
            assert!(format_matches(f, good), "{f} {good}");
            assert_eq!(format_matches(f, bad), f == "unknown-format", "{f} {bad}");
        }
    }

    #[test]
    fn embedded_resources_need_type_fields() {
        assert_eq!(
            errors(spec(json!({"replicas": 1, "template": {"kind": ""}}))),
            vec![
                "spec.template.apiVersion: Required value",
                "spec.template.kind: Required value"
            ]
        );
    }

    #[test]
    fn composition_keywords() {
        let s = json!({"type": "object", "properties": {
            "a": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
            "b": {"allOf": [{"minimum": 1}, {"maximum": 3}]},
            "c": {"not": {"type": "string"}}}});
        assert!(validate(&s, &json!({"a": 1, "b": 2, "c": 1})).is_empty());
        let e: Vec<String> = validate(&s, &json!({"a": true, "b": 5, "c": "x"}))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            e,
            vec![
                r#"a: Invalid value: true: "a" must validate at least one schema (anyOf)"#,
                "b: Invalid value: 5: b in body should be less than or equal to 3",
                r#"c: Invalid value: "x": "c" must not validate the schema (not)"#,
            ]
        );
    }

    #[test]
    fn unchanged_values_are_not_validated_again() {
        let old =
            spec(json!({"replicas": 100, "name": "BAD", "ports": [{"name": "a", "protocol": 1}]}));
        // Only the changed field is validated.
        let new = spec(json!({"replicas": 100, "name": "BAD", "color": "blue",
                              "ports": [{"name": "b"}, {"name": "a", "protocol": 1}]}));
        let e: Vec<String> = validate_update(&schema(), &new, Some(&old))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            e,
            vec![r#"spec.color: Unsupported value: "blue": supported values: "red", "green""#]
        );
        assert_eq!(validate(&schema(), &new).len(), 4);
    }

    #[test]
    fn field_errors_become_an_invalid_status() {
        let errs = validate(&schema(), &spec(json!({"replicas": "x", "color": "c"})));
        let s = invalid("example.com", "Widget", "w", &errs).to_status();
        assert_eq!(s["code"], 422);
        assert_eq!(s["reason"], "Invalid");
        assert_eq!(
            s["message"],
            r#"Widget.example.com "w" is invalid: [spec.color: Unsupported value: "c": supported values: "red", "green", spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"]"#
        );
        assert_eq!(s["details"]["causes"][1]["field"], "spec.replicas");
        assert_eq!(s["details"]["causes"][1]["reason"], "FieldValueTypeInvalid");
        assert_eq!(
            s["details"]["causes"][1]["message"],
            r#"Invalid value: "string": spec.replicas in body must be of type integer: "string""#
        );
        assert_eq!(s["details"]["kind"], "Widget");
    }

    #[test]
    fn duplicates_are_found_in_document_order() {
        let body = br#"{"spec": {"a": 1, "a": 2, "b": {"c": 1, "c": 2}, "l": [{"d": 1, "d": 1}]}, "spec": {}}"#;
        assert_eq!(duplicate_fields(body, false), vec!["a", "c", "d", "spec"]);
        assert_eq!(
            duplicate_fields(b"a: 1\nb: {c: 1, c: 2}\n", true),
            vec!["c"]
        );
        assert!(duplicate_fields(b"not json", false).is_empty());
        assert_eq!(
            json_patch_errors(
                br#"[{"op": "add", "path": "/a", "value": 1, "foo": "bar"}, {"op": "add", "path": "/b", "path": "/c", "value": {"x": 1, "x": 2}}]"#
            ),
            vec![
                r#"json patch unknown field "foo""#,
                r#"json patch duplicate field "path""#,
                r#"json patch duplicate field "x""#,
            ]
        );
    }

    #[test]
    fn values_print_like_go() {
        assert_eq!(go_quote("a\"b\\c\n\u{1}é"), r#""a\"b\\c\n\x01é""#);
        assert_eq!(go_float(1.0), "1");
        assert_eq!(go_float(0.5), "0.5");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(1.5e-7), "1.5e-07");
        assert_eq!(go_value(&json!(null)), "null");
        assert_eq!(
            go_value(&json!([1, "a", null])),
            r#"[]interface {}{1, "a", interface {}(nil)}"#
        );
    }
}
