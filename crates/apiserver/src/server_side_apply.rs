//! Server-side apply (`PATCH` with `application/apply-patch+yaml`,
//! `k8s.io/apiserver/pkg/endpoints/handlers/patch.go` and
//! `k8s.io/apiserver/pkg/endpoints/handlers/fieldmanager`): the applied
//! configuration is merged into the live object and the field manager is
//! recorded as owning what it applied.
//!
//! The field-set algebra lives in [`metacontroller_patch::managed`] and the
//! ownership record of ordinary writes in [`crate::managed_fields`]; this
//! module adds what an apply decides:
//!
//! * the `fieldManager` it requires and the `force` it honours, with
//!   conflicts answered as `409` naming the other managers' fields;
//! * the upgrade path from client-side apply: `kubectl` applying over an
//!   object that carries `kubectl.kubernetes.io/last-applied-configuration`
//!   may take over the fields that annotation describes, and keeps the
//!   annotation up to date;
//! * an object never applied to before gets a `before-first-apply` manager
//!   owning everything already there.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::header;
use metacontroller_patch::managed::{
    self, ApplyError, Conflicts, FieldSet, ManagedFields, ManagerId, Type,
};
use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult, Reason};
use crate::managed_fields::{
    Applying, MAX_MANAGER_LEN, ignored, managed_fields_of, subresource_name, type_of,
    without_managed_fields,
};
use crate::meta::{self, Sub};
use crate::registry::ResourceInfo;
use crate::state::Shared;
use crate::write;

/// The annotation client-side `kubectl apply` keeps its configuration in.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

fn patch_options_invalid(field: &str, reason: &str, message: &str) -> ApiError {
    ApiError::new(
        Reason::Invalid,
        format!("PatchOptions.meta.k8s.io \"\" is invalid: {field}: {message}"),
    )
    .with_details(json!({
        "group": "meta.k8s.io",
        "kind": "PatchOptions",
        "causes": [{"reason": reason, "message": message, "field": field}],
    }))
}

/// `strconv.ParseBool`.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" | "" => Some(false),
        _ => None,
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        _ => "object",
    }
}

fn object_response(code: u16, obj: &Value) -> Response {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(serde_json::to_vec(obj).unwrap_or_default()))
        .unwrap()
}

/// The 409 of a refused apply.
fn conflict_error(c: &Conflicts) -> ApiError {
    let causes: Vec<Value> =
        c.0.iter()
            .map(|c| {
                json!({
                    "reason": "FieldManagerConflict",
                    "message": format!("conflict with {}", c.manager.describe()),
                    "field": c.path.to_string(),
                })
            })
            .collect();
    ApiError::new(Reason::Conflict, c.message()).with_details(json!({"causes": causes}))
}

/// The fields `kubectl` may take over from client-side apply: those of the
/// last-applied configuration that still have the applied values.
fn allowed_from_last_applied(live: &Value, ty: Type<'_>, info: &ResourceInfo) -> Option<FieldSet> {
    let text = live
        .get("metadata")?
        .get("annotations")?
        .get(LAST_APPLIED)?
        .as_str()
        .filter(|s| !s.is_empty())?;
    let last: Value = serde_json::from_str(text).ok()?;
    if last.get("apiVersion").and_then(Value::as_str) != Some(info.api_version().as_str()) {
        return None;
    }
    let set = managed::field_set(&last, ty).ok()?;
    let cmp = managed::compare(Some(&last), Some(live), ty);
    Some(
        set.difference(&cmp.modified)
            .difference(&cmp.added)
            .difference(&cmp.removed),
    )
}

/// The last-applied annotation for an applied configuration (compact JSON
/// with sorted keys and a final newline, as kubectl writes it).
fn last_applied_of(config: &Value) -> String {
    let mut c = config.clone();
    if let Some(a) = c
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(Value::as_object_mut)
    {
        a.remove(LAST_APPLIED);
    }
    let mut s = serde_json::to_string(&c).unwrap_or_default();
    s.push('\n');
    s
}

fn has_last_applied(obj: &Value) -> bool {
    obj.get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(LAST_APPLIED))
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
}

/// `PATCH` with `application/apply-patch+yaml`: merges the applied
/// configuration (YAML or JSON) into the object, creating it if missing,
/// and records what the field manager owns.
#[allow(clippy::too_many_arguments)]
pub fn apply(
    shared: &Arc<Shared>,
    info: &ResourceInfo,
    ns: Option<&str>,
    name: &str,
    q: &HashMap<String, String>,
    body: &[u8],
    sub: Option<&str>,
    dry_run: bool,
) -> ApiResult<Response> {
    let not_found = || {
        ApiError::new(
            Reason::NotFound,
            "the server could not find the requested resource",
        )
    };
    let sub = match sub {
        None => Sub::Main,
        Some("status") if info.status => Sub::Status,
        Some("scale") if info.scale.is_some() => {
            return Err(ApiError::new(
                Reason::UnsupportedMediaType,
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json",
            ));
        }
        Some(_) => return Err(not_found()),
    };
    if info.namespaced && ns.is_none() {
        return Err(not_found());
    }

    // Options.
    let manager = q.get("fieldManager").map(String::as_str).unwrap_or("");
    if manager.is_empty() {
        return Err(patch_options_invalid(
            "fieldManager",
            "FieldValueRequired",
            "Required value: is required for apply patch",
        ));
    }
    if manager.len() > MAX_MANAGER_LEN {
        return Err(patch_options_invalid(
            "fieldManager",
            "FieldValueTooLong",
            &format!("Too long: may not be more than {MAX_MANAGER_LEN} bytes"),
        ));
    }
    if let Some((i, c)) = manager.char_indices().find(|(_, c)| c.is_control()) {
        return Err(patch_options_invalid(
            "fieldManager",
            "FieldValueInvalid",
            &format!(
                "Invalid value: {manager:?}: invalid character U+{:04X} (at position {i})",
                c as u32
            ),
        ));
    }
    let force = match q.get("force") {
        None => false,
        Some(f) => parse_bool(f).ok_or_else(|| {
            ApiError::bad_request(format!(
                "invalid value for force: {f:?}: strconv.ParseBool: parsing {f:?}: invalid syntax"
            ))
        })?,
    };

    // The applied configuration.
    // kubectl and most clients send JSON, which is also YAML.
    let config: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => serde_yaml::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?,
    };
    let config = match config {
        Value::Null => Value::Object(Map::new()),
        v @ Value::Object(_) => v,
        other => {
            return Err(ApiError::bad_request(format!(
                "error decoding YAML: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                json_type(&other)
            )));
        }
    };
    let api_version = config
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = config.get("kind").and_then(Value::as_str).unwrap_or("");
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    if group != info.group || version != info.version || kind != info.kind {
        return Err(ApiError::bad_request(format!(
            "invalid object type: {group}/{version}, Kind={kind}"
        )));
    }
    let meta = config.get("metadata");
    if meta
        .and_then(|m| m.get("managedFields"))
        .is_some_and(|mf| !mf.is_null())
    {
        return Err(ApiError::bad_request("metadata.managedFields must be nil"));
    }
    if let Some(n) = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty() && *n != name)
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({name})"
        )));
    }
    if info.namespaced
        && let Some(n) = meta
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty() && Some(*n) != ns)
    {
        return Err(ApiError::bad_request(format!(
            "the namespace of the object ({n}) does not match the namespace on the URL ({})",
            ns.unwrap_or("")
        )));
    }
    // What the addressed part of the object takes from the configuration.
    let mut applied = config.clone();
    match sub {
        Sub::Main if info.status => {
            if let Some(o) = applied.as_object_mut() {
                o.remove("status");
            }
        }
        Sub::Status => {
            let mut only = Map::new();
            for k in ["apiVersion", "kind", "status"] {
                if let Some(v) = config.get(k) {
                    only.insert(k.into(), v.clone());
                }
            }
            let mut m = Map::new();
            for k in ["name", "namespace"] {
                if let Some(v) = meta.and_then(|m| m.get(k)) {
                    m.insert(k.into(), v.clone());
                }
            }
            only.insert("metadata".into(), Value::Object(m));
            applied = Value::Object(only);
        }
        _ => {}
    }

    let ty = type_of(info);
    let version = info.api_version();
    let ignored = ignored(info, sub);
    let subresource = subresource_name(sub);
    let applier = ManagerId::apply(manager, subresource);
    let now = meta::now();

    let mut inner = shared.inner.lock();
    let key = meta::key_for(info, ns, name);
    let stored = inner.get(&info.group_resource(), &key).cloned();
    if stored.is_none() && sub != Sub::Main {
        return Err(ApiError::not_found(&info.group, &info.plural, name));
    }
    let live_full = stored.as_ref().map(|s| meta::at_version(s, info));
    let live = live_full
        .as_deref()
        .map(without_managed_fields)
        .unwrap_or_else(|| Value::Object(Map::new()));
    let mut managed = ManagedFields::decode(live_full.as_deref().and_then(managed_fields_of))
        .map_err(|e| ApiError::internal(format!("failed to decode managed fields: {e}")))?;
    if managed.is_empty() && stored.is_some() {
        // Everything already there belongs to whoever wrote it before
        // tracking started.
        managed = managed::update(
            Some(&Value::Object(Map::new())),
            &live,
            ty,
            &managed,
            &ManagerId::update("before-first-apply", &version, subresource),
            &version,
            &ignored,
            &now,
        );
    }
    let run = |force: bool| {
        managed::apply(
            &live, &applied, ty, &managed, &applier, &version, force, &ignored, &now,
        )
    };
    let outcome = match run(force) {
        Ok(o) => o,
        Err(ApplyError::Invalid(msg)) => {
            return Err(ApiError::internal(format!(
                "failed to create typed patch object ({}/{name}; {}/{}, Kind={}): {msg}",
                ns.unwrap_or(""),
                info.group,
                info.version,
                info.kind
            )));
        }
        Err(ApplyError::Conflicts(c)) => {
            // kubectl taking over from client-side apply: fields whose
            // last-applied value is still live are not conflicts.
            let allowed = (manager == "kubectl")
                .then(|| {
                    live_full
                        .as_deref()
                        .and_then(|l| allowed_from_last_applied(l, ty, info))
                })
                .flatten();
            let Some(allowed) = allowed else {
                return Err(conflict_error(&c));
            };
            if !c.to_set().difference(&allowed).is_empty() {
                let mut rest = c.clone();
                rest.0.retain(|x| !allowed.has(&x.path.0));
                return Err(conflict_error(&rest));
            }
            match run(true) {
                Ok(o) => o,
                Err(ApplyError::Conflicts(c)) => return Err(conflict_error(&c)),
                Err(ApplyError::Invalid(msg)) => return Err(ApiError::internal(msg)),
            }
        }
    };
    let mut object = outcome.object;
    if manager == "kubectl" && live_full.as_deref().is_some_and(has_last_applied) {
        let text = last_applied_of(&config);
        if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            let annotations = meta
                .entry("annotations")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(a) = annotations.as_object_mut() {
                a.insert(LAST_APPLIED.into(), Value::String(text));
            }
        }
    }
    let _applying = Applying::start(outcome.managed.encode());
    match stored {
        None => {
            if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.insert("name".into(), Value::String(name.to_string()));
            }
            let created = write::create(&mut inner, info, ns, object, dry_run)?;
            Ok(object_response(201, &created))
        }
        Some(_) => {
            let updated = write::update(&mut inner, info, ns, name, object, sub, dry_run)?;
            Ok(object_response(200, &updated))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_parse_like_go() {
        assert_eq!(parse_bool("true"), Some(true));
        assert_eq!(parse_bool("1"), Some(true));
        assert_eq!(parse_bool("False"), Some(false));
        assert_eq!(parse_bool("yes"), None);
    }

    #[test]
    fn last_applied_is_compact_json_without_itself() {
        let c = json!({"metadata": {"annotations": {LAST_APPLIED: "x", "b": "1"}, "name": "n"}, "apiVersion": "v1"});
        assert_eq!(
            last_applied_of(&c),
            "{\"apiVersion\":\"v1\",\"metadata\":{\"annotations\":{\"b\":\"1\"},\"name\":\"n\"}}\n"
        );
    }
}
