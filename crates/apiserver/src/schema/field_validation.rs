//! Server-side field validation of the request being served
//! (`fieldValidation=Strict|Warn|Ignore`, `Warn` when absent): the fields
//! pruning dropped and the duplicate fields of the body become an error
//! (`Strict`), `Warning` headers (`Warn`) or nothing (`Ignore`); schema
//! violations are always an `Invalid` error.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::future::Future;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, header};
use serde_json::{Value, json};

use super::duplicates::json_patch_errors;
use super::*;
use crate::error::{ApiError, ApiResult, Reason};
use crate::registry::ResourceInfo;

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
pub fn invalid(group: &str, kind: &str, name: &str, errors: &[SchemaViolation]) -> ApiError {
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
