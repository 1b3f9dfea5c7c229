//! Kubernetes write semantics on top of the store: what create, update,
//! patch and delete do to an object's metadata, status and lifecycle
//! (`k8s.io/apiserver/pkg/registry/generic/registry/store.go` and the
//! per-type strategies). Every function runs under the server's lock, so
//! each verb is atomic.

use std::sync::Arc;

use metacontroller_patch::PatchType;
use serde_json::{Map, Value, json};

use crate::builtins::{annotations_bump_generation, tracks_generation};
use crate::crd;
use crate::error::{ApiError, ApiResult, Reason};
use crate::managed_fields::track_write;
use crate::meta::{Sub, annotations, at_version, key_for, now};
use crate::registry::ResourceInfo;
use crate::store::{FOREGROUND_FINALIZER, Inner, Key, ORPHAN_FINALIZER, finalizers, is_deleting};

/// `propagationPolicy` of a delete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Propagation {
    Orphan,
    Background,
    Foreground,
}

/// The parts of `DeleteOptions` the server honours.
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    pub propagation: Option<Propagation>,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    /// The deprecated `orphanDependents`, when given.
    pub orphan_dependents: Option<bool>,
}

impl DeleteOptions {
    /// Reads a `DeleteOptions` body (JSON); an empty body is no options.
    pub fn from_body(body: &[u8]) -> ApiResult<Self> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?;
        let mut o = Self::default();
        if let Some(p) = v.get("propagationPolicy").and_then(Value::as_str) {
            o.propagation = Some(parse_propagation(p)?);
        } else if let Some(orphan) = v.get("orphanDependents").and_then(Value::as_bool) {
            o.orphan_dependents = Some(orphan);
            o.propagation = Some(if orphan {
                Propagation::Orphan
            } else {
                Propagation::Background
            });
        }
        if let Some(pre) = v.get("preconditions") {
            o.uid = pre.get("uid").and_then(Value::as_str).map(str::to_string);
            o.resource_version = pre
                .get("resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_string);
        }
        Ok(o)
    }
}

pub fn parse_propagation(p: &str) -> ApiResult<Propagation> {
    match p {
        "Orphan" => Ok(Propagation::Orphan),
        "Background" => Ok(Propagation::Background),
        "Foreground" => Ok(Propagation::Foreground),
        other => Err(ApiError::new(
            Reason::Invalid,
            format!(
                "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"{other}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
            ),
        )),
    }
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    obj["metadata"].as_object_mut().unwrap()
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

fn storage_api_version(info: &ResourceInfo) -> String {
    if info.group.is_empty() {
        info.storage_version.clone()
    } else {
        format!("{}/{}", info.group, info.storage_version)
    }
}

/// Sets apiVersion/kind to the storage form; rejects a body of another type.
fn normalize_type(obj: &mut Value, info: &ResourceInfo) -> ApiResult<()> {
    if let Some(kind) = obj.get("kind").and_then(Value::as_str)
        && !kind.is_empty()
        && kind != info.kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind of the object ({kind}) does not match the expected kind ({})",
            info.kind
        )));
    }
    if let Some(av) = obj.get("apiVersion").and_then(Value::as_str)
        && !av.is_empty()
    {
        let (g, _v) = av.rsplit_once('/').unwrap_or(("", av));
        if g != info.group {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({})",
                info.api_version()
            )));
        }
    }
    obj["apiVersion"] = Value::String(storage_api_version(info));
    obj["kind"] = Value::String(info.kind.clone());
    Ok(())
}

const NAME_CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn random_suffix() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..5)
        .map(|_| NAME_CHARS[rng.random_range(0..NAME_CHARS.len())] as char)
        .collect()
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric()
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// Name validation per resource, as the type's `ValidateObjectMeta` uses.
fn validate_name(info: &ResourceInfo, name: &str) -> Option<String> {
    let rbac = info.group == "rbac.authorization.k8s.io";
    if rbac {
        // Path segment names (ValidatePathSegmentName).
        if name == "." || name == ".." {
            return Some(format!("may not be '{name}'"));
        }
        if name.contains('/') || name.contains('%') {
            return Some("may not contain '/' or '%'".to_string());
        }
        return None;
    }
    let label_only =
        info.group.is_empty() && (info.plural == "namespaces" || info.plural == "services");
    if label_only {
        if !is_dns_label(name) {
            return Some(format!(
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?') (got \"{name}\")"
            ));
        }
        if info.plural == "services" && name.as_bytes()[0].is_ascii_digit() {
            return Some("a DNS-1035 label must start with an alphabetic character".into());
        }
        return None;
    }
    if !is_dns_subdomain(name) {
        return Some(format!(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*') (got \"{name}\")"
        ));
    }
    None
}

fn namespace_gr() -> crate::registry::GroupResource {
    crate::registry::GroupResource::new("", "namespaces")
}

fn is_namespace(info: &ResourceInfo) -> bool {
    info.group.is_empty() && info.plural == "namespaces"
}

/// Checks that a namespaced object may be created in `ns`.
fn check_namespace(inner: &Inner, info: &ResourceInfo, ns: &str, name: &str) -> ApiResult<()> {
    match inner.get(&namespace_gr(), &(String::new(), ns.to_string())) {
        None => Err(ApiError::not_found("", "namespaces", ns)),
        Some(n) if is_deleting(n) => Err(ApiError::new(
            Reason::Forbidden,
            format!(
                "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                qualified(info)
            ),
        )
        .with_details({
            let mut d = crate::error::details(name, &info.group, &info.plural);
            d["causes"] = json!([{"reason": "NamespaceTerminating", "message": format!("namespace {ns} is being terminated"), "field": "metadata.namespace"}]);
            d
        })),
        Some(_) => Ok(()),
    }
}

fn qualified(info: &ResourceInfo) -> String {
    if info.group.is_empty() {
        info.plural.clone()
    } else {
        format!("{}.{}", info.plural, info.group)
    }
}

/// Resolves the object's key from the URL namespace and the body.
fn resolve_namespace(
    info: &ResourceInfo,
    url_ns: Option<&str>,
    obj: &mut Value,
) -> ApiResult<String> {
    if !info.namespaced {
        meta_mut(obj).remove("namespace");
        return Ok(String::new());
    }
    let body_ns = meta_str(obj, "namespace").map(str::to_string);
    let ns = match (url_ns, body_ns.as_deref()) {
        (Some(u), Some(b)) if !b.is_empty() && u != b => {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        (Some(u), _) => u.to_string(),
        (None, Some(b)) if !b.is_empty() => b.to_string(),
        _ => {
            return Err(ApiError::bad_request(
                "the namespace of the object is required for a namespaced resource",
            ));
        }
    };
    meta_mut(obj).insert("namespace".into(), Value::String(ns.clone()));
    Ok(ns)
}

/// POST: creates an object.
pub fn create(
    inner: &mut Inner,
    info: &ResourceInfo,
    url_ns: Option<&str>,
    mut obj: Value,
    dry_run: bool,
) -> ApiResult<Arc<Value>> {
    if !obj.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be a JSON object",
        ));
    }
    normalize_type(&mut obj, info)?;
    crate::schema::admit(info, &mut obj, None)?;
    let ns = resolve_namespace(info, url_ns, &mut obj)?;
    let gr = info.group_resource();
    if info.crd && crd::is_terminating(inner, &info.group, &info.plural) {
        return Err(ApiError::method_not_allowed(
            "create not allowed while custom resource definition is terminating".to_string(),
        ));
    }
    let mut name = meta_str(&obj, "name").unwrap_or("").to_string();
    if name.is_empty() {
        let prefix = meta_str(&obj, "generateName").unwrap_or("").to_string();
        if prefix.is_empty() {
            return Err(ApiError::invalid(
                &info.group,
                &info.kind,
                "",
                &[(
                    "metadata.name",
                    "Required value: name or generateName is required",
                )],
            ));
        }
        // Retry on the rare collision, as the registry does for generateName.
        for _ in 0..8 {
            name = format!("{prefix}{}", random_suffix());
            if inner.get(&gr, &(ns.clone(), name.clone())).is_none() {
                break;
            }
        }
    }
    if let Some(msg) = validate_name(info, &name) {
        return Err(ApiError::invalid(
            &info.group,
            &info.kind,
            &name,
            &[(
                "metadata.name",
                &format!("Invalid value: \"{name}\": {msg}"),
            )],
        ));
    }
    if info.namespaced {
        check_namespace(inner, info, &ns, &name)?;
    }
    let key: Key = (ns.clone(), name.clone());
    if inner.get(&gr, &key).is_some() {
        return Err(ApiError::already_exists(&info.group, &info.plural, &name));
    }
    let generation = tracks_generation(&info.group, &info.plural, info.crd);
    // The storage layer refuses a create that names a version
    // (k8s.io/apiserver/pkg/storage/etcd3/store.go, Create).
    if meta_str(&obj, "resourceVersion").is_some_and(|rv| !rv.is_empty()) {
        return Err(ApiError::internal(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    {
        let m = meta_mut(&mut obj);
        m.insert("name".into(), Value::String(name.clone()));
        m.insert(
            "uid".into(),
            Value::String(uuid::Uuid::new_v4().to_string()),
        );
        m.insert("creationTimestamp".into(), Value::String(now()));
        for f in [
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
            "resourceVersion",
        ] {
            m.remove(f);
        }
        if generation {
            m.insert("generation".into(), json!(1));
        } else {
            m.remove("generation");
        }
    }
    if info.status
        && let Some(o) = obj.as_object_mut()
    {
        // Create cannot set status where a status subresource exists
        // (the strategies' PrepareForCreate reset it).
        o.remove("status");
    }
    crate::schema::check(info, &name, &obj, None)?;
    prepare_kind(inner, info, None, &mut obj)?;
    track_write(info, None, &mut obj, Sub::Main);
    if dry_run {
        return Ok(Arc::new(obj));
    }
    let stored = inner.put(&gr, key, obj);
    after_write(inner, info, &stored);
    if is_namespace(info) {
        default_service_account(inner, &name);
    }
    Ok(at_version(&stored, info))
}

/// Every namespace gets a `default` ServiceAccount, as kube-controller-manager's
/// serviceaccount controller makes it
/// (pkg/controller/serviceaccount/serviceaccounts_controller.go); Pods that
/// name no ServiceAccount run as it.
fn default_service_account(inner: &mut Inner, ns: &str) {
    let Some(info) = inner.resources.get("", "v1", "serviceaccounts").cloned() else {
        return;
    };
    let _ = create(
        inner,
        &info,
        Some(ns),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}),
        false,
    );
}

/// Type-specific defaulting and validation (the strategies' PrepareFor*).
fn prepare_kind(
    inner: &Inner,
    info: &ResourceInfo,
    old: Option<&Value>,
    obj: &mut Value,
) -> ApiResult<()> {
    match (info.group.as_str(), info.plural.as_str()) {
        ("", "namespaces") if old.is_none() => {
            let name = meta_str(obj, "name").unwrap_or_default().to_string();
            let labels = meta_mut(obj).entry("labels").or_insert_with(|| json!({}));
            if let Some(l) = labels.as_object_mut() {
                l.insert("kubernetes.io/metadata.name".into(), Value::String(name));
            }
            if obj.get("spec").and_then(|s| s.get("finalizers")).is_none() {
                obj["spec"] = json!({"finalizers": ["kubernetes"]});
            }
            obj["status"] = json!({"phase": "Active"});
        }
        ("", "secrets") => {
            // `stringData` is write-only: merged into `data` (base64) on every
            // write, overriding keys of `data` (core/v1 Secret docs).
            if let Some(Value::Object(string_data)) =
                obj.as_object_mut().and_then(|o| o.remove("stringData"))
            {
                use base64::Engine;
                if !obj.get("data").is_some_and(Value::is_object) {
                    obj["data"] = json!({});
                }
                for (k, v) in string_data {
                    let text = v.as_str().unwrap_or_default().to_string();
                    obj["data"][k] = json!(base64::engine::general_purpose::STANDARD.encode(text));
                }
            }
            if obj
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
            {
                obj["type"] = json!("Opaque");
            }
        }
        ("", "pods") if old.is_none() => {
            obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            crd::prepare(inner, old, obj)?;
        }
        _ => {}
    }
    Ok(())
}

fn after_write(inner: &mut Inner, info: &ResourceInfo, _obj: &Value) {
    if info.group == "apiextensions.k8s.io" && info.plural == "customresourcedefinitions" {
        crd::rebuild_resources(inner);
    }
}

fn after_remove(inner: &mut Inner, info: &ResourceInfo, obj: &Value) {
    if info.group == "apiextensions.k8s.io" && info.plural == "customresourcedefinitions" {
        crd::on_removed(inner, obj);
    }
}

/// PUT: replaces an object (or its status).
pub fn update(
    inner: &mut Inner,
    info: &ResourceInfo,
    url_ns: Option<&str>,
    name: &str,
    mut body: Value,
    sub: Sub,
    dry_run: bool,
) -> ApiResult<Arc<Value>> {
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be a JSON object",
        ));
    }
    normalize_type(&mut body, info)?;
    let key = key_for(info, url_ns, name);
    let gr = info.group_resource();
    let old = inner
        .get(&gr, &key)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&info.group, &info.plural, name))?;
    let require_rv = info.crd && sub == Sub::Main;
    commit_update(inner, info, &key, &old, body, sub, require_rv, dry_run)
}

/// PATCH: applies a patch to the current object (or its status).
#[allow(clippy::too_many_arguments)]
pub fn patch(
    inner: &mut Inner,
    info: &ResourceInfo,
    url_ns: Option<&str>,
    name: &str,
    pt: PatchType,
    patch: &[u8],
    sub: Sub,
    dry_run: bool,
) -> ApiResult<Arc<Value>> {
    let key = key_for(info, url_ns, name);
    let gr = info.group_resource();
    let old = inner
        .get(&gr, &key)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&info.group, &info.plural, name))?;
    let served = at_version(&old, info);
    let patched = match pt {
        // Every built-in type takes strategic merge patches; kinds without a
        // merge-key table merge maps and replace lists. Custom resources do
        // not (rejected with 415 before reaching here).
        PatchType::StrategicMerge if !info.crd => {
            let doc: Value = serde_json::from_slice(patch).map_err(|e| {
                ApiError::bad_request(format!("invalid strategic merge patch: {e}"))
            })?;
            metacontroller_patch::strategic_merge_patch(
                &served,
                &doc,
                metacontroller_patch::schema_for(&info.group, &info.kind),
            )
        }
        _ => metacontroller_patch::apply_patch(pt, &info.group, &info.kind, &served, patch),
    }
    .map_err(|e| patch_error(info, name, e))?;
    commit_update(inner, info, &key, &old, patched, sub, false, dry_run)
}

pub fn patch_error(
    info: &ResourceInfo,
    name: &str,
    e: metacontroller_patch::PatchError,
) -> ApiError {
    use metacontroller_patch::PatchError as P;
    match e {
        P::StrategicMergeUnsupported { .. } => ApiError::new(
            Reason::UnsupportedMediaType,
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml".to_string(),
        ),
        e if e.is_invalid() => {
            ApiError::invalid(&info.group, &info.kind, name, &[("", &e.to_string())])
        }
        e => ApiError::bad_request(e.to_string()),
    }
}

fn strip_for_generation(obj: &Value, status_sub: bool) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("metadata");
        if status_sub {
            m.remove("status");
        }
    }
    o
}

/// The shared tail of PUT and PATCH.
#[allow(clippy::too_many_arguments)]
fn commit_update(
    inner: &mut Inner,
    info: &ResourceInfo,
    key: &Key,
    old: &Arc<Value>,
    mut new: Value,
    sub: Sub,
    require_rv: bool,
    dry_run: bool,
) -> ApiResult<Arc<Value>> {
    if !new.is_object() {
        return Err(ApiError::bad_request("the object must be a JSON object"));
    }
    normalize_type(&mut new, info)?;
    crate::schema::admit(info, &mut new, Some(old))?;
    let name = &key.1;
    match meta_str(&new, "name") {
        Some(n) if !n.is_empty() && n != name => {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        _ => {
            meta_mut(&mut new).insert("name".into(), Value::String(name.clone()));
        }
    }
    if info.namespaced {
        match meta_str(&new, "namespace") {
            Some(n) if !n.is_empty() && n != key.0 => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            _ => {
                meta_mut(&mut new).insert("namespace".into(), Value::String(key.0.clone()));
            }
        }
    } else {
        meta_mut(&mut new).remove("namespace");
    }
    let old_rv = meta_str(old, "resourceVersion").unwrap_or("").to_string();
    match meta_str(&new, "resourceVersion").filter(|rv| !rv.is_empty()) {
        Some(rv) if rv != old_rv => {
            return Err(ApiError::stale(&info.group, &info.plural, name));
        }
        None if require_rv => {
            return Err(ApiError::invalid(
                &info.group,
                &info.kind,
                name,
                &[(
                    "metadata.resourceVersion",
                    "Invalid value: 0x0: must be specified for an update",
                )],
            ));
        }
        _ => {}
    }
    let old_uid = meta_str(old, "uid").unwrap_or("").to_string();
    if let Some(uid) = meta_str(&new, "uid")
        && !uid.is_empty()
        && uid != old_uid
    {
        return Err(ApiError::conflict(
            &info.group,
            &info.plural,
            name,
            &format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {old_uid}"
            ),
        ));
    }
    match sub {
        Sub::Main => {
            if info.status {
                let o = new.as_object_mut().unwrap();
                match old.get("status") {
                    Some(s) => {
                        o.insert("status".into(), s.clone());
                    }
                    None => {
                        o.remove("status");
                    }
                }
            }
            if is_namespace(info) {
                // spec.finalizers change only through /finalize.
                let keep = old.get("spec").and_then(|s| s.get("finalizers")).cloned();
                set_spec_finalizers(&mut new, keep);
            }
        }
        Sub::Status => {
            let status = new.get("status").cloned();
            new = (**old).clone();
            let o = new.as_object_mut().unwrap();
            match status {
                Some(s) => {
                    o.insert("status".into(), s);
                }
                None => {
                    o.remove("status");
                }
            }
        }
        Sub::Finalize => {
            let fins = new.get("spec").and_then(|s| s.get("finalizers")).cloned();
            new = (**old).clone();
            set_spec_finalizers(&mut new, fins);
        }
    }
    // System fields are owned by the server.
    {
        let old_meta = old
            .get("metadata")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let m = meta_mut(&mut new);
        for f in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ] {
            match old_meta.get(f) {
                Some(v) => {
                    m.insert(f.into(), v.clone());
                }
                None => {
                    m.remove(f);
                }
            }
        }
        m.remove("selfLink");
        m.insert("resourceVersion".into(), Value::String(old_rv.clone()));
    }
    if is_deleting(old) {
        let before = finalizers(old);
        let added: Vec<String> = finalizers(&new)
            .into_iter()
            .filter(|f| !before.contains(f))
            .map(|f| format!("\"{f}\""))
            .collect();
        if !added.is_empty() {
            return Err(ApiError::invalid(
                &info.group,
                &info.kind,
                name,
                &[(
                    "metadata.finalizers",
                    &format!(
                        "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                        added.join(", ")
                    ),
                )],
            ));
        }
    }
    crate::schema::check(info, name, &new, Some(old))?;
    prepare_kind(inner, info, Some(old), &mut new)?;
    if tracks_generation(&info.group, &info.plural, info.crd)
        && (strip_for_generation(&new, info.status) != strip_for_generation(old, info.status)
            || (matches!(sub, Sub::Main)
                && annotations_bump_generation(&info.group, &info.plural)
                && annotations(&new) != annotations(old)))
    {
        let g = old
            .get("metadata")
            .and_then(|m| m.get("generation"))
            .and_then(Value::as_i64)
            .unwrap_or(0);
        meta_mut(&mut new).insert("generation".into(), json!(g + 1));
    }
    track_write(info, Some(old), &mut new, sub);
    // An empty finalizer list is omitted, as Go's `omitempty` serialises it.
    if let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut)
        && m.get("finalizers")
            .and_then(Value::as_array)
            .is_some_and(|a| a.is_empty())
    {
        m.remove("finalizers");
    }
    if new == **old {
        // Nothing changed: no write, no event, same resourceVersion.
        return Ok(at_version(old, info));
    }
    let gr = info.group_resource();
    if is_deleting(&new) && finalizers(&new).is_empty() && !has_spec_finalizers(info, &new) {
        if dry_run {
            return Ok(Arc::new(new));
        }
        let last = inner
            .remove(&gr, key)
            .ok_or_else(|| ApiError::not_found(&info.group, &info.plural, name))?;
        after_remove(inner, info, &last);
        // The update that empties the finalizers of a deleting object
        // deletes it, and the response is the object as the update made it
        // (finalizers gone), not as it was last stored: the generic store's
        // `Update` hands the updated object to `deleteWithoutFinalizers`
        // (k8s.io/apiserver/pkg/registry/generic/registry/store.go).
        return Ok(at_version(&Arc::new(new), info));
    }
    if dry_run {
        return Ok(Arc::new(new));
    }
    let stored = inner.put(&gr, key.clone(), new);
    after_write(inner, info, &stored);
    Ok(at_version(&stored, info))
}

fn set_spec_finalizers(obj: &mut Value, fins: Option<Value>) {
    match fins {
        Some(f) => {
            if !obj.get("spec").is_some_and(Value::is_object) {
                obj["spec"] = json!({});
            }
            obj["spec"]["finalizers"] = f;
        }
        None => {
            if let Some(s) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                s.remove("finalizers");
            }
        }
    }
}

fn has_spec_finalizers(info: &ResourceInfo, obj: &Value) -> bool {
    is_namespace(info)
        && obj
            .get("spec")
            .and_then(|s| s.get("finalizers"))
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
}

/// The default propagation policy of a resource: `batch/v1` Jobs orphan for
/// backwards compatibility (`pkg/registry/batch/job/strategy.go`), everything
/// else deletes dependents in the background.
pub fn default_propagation(info: &ResourceInfo) -> Propagation {
    if info.group == "batch" && info.plural == "jobs" && info.version == "v1" {
        Propagation::Orphan
    } else {
        Propagation::Background
    }
}

/// Outcome of a delete.
pub struct Deleted {
    pub object: Arc<Value>,
    /// The object is gone (`false`: it is terminating, waiting for finalizers).
    pub gone: bool,
}

/// DELETE: removes an object, or marks it terminating when finalizers (or a
/// foreground/orphan propagation) must run first.
pub fn delete(
    inner: &mut Inner,
    info: &ResourceInfo,
    url_ns: Option<&str>,
    name: &str,
    opts: &DeleteOptions,
    dry_run: bool,
) -> ApiResult<Deleted> {
    let key = key_for(info, url_ns, name);
    let gr = info.group_resource();
    let old = inner
        .get(&gr, &key)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&info.group, &info.plural, name))?;
    let old_uid = meta_str(&old, "uid").unwrap_or("");
    if let Some(uid) = &opts.uid
        && uid != old_uid
    {
        return Err(ApiError::conflict(
            &info.group,
            &info.plural,
            name,
            &format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {old_uid}"
            ),
        ));
    }
    let old_rv = meta_str(&old, "resourceVersion").unwrap_or("");
    if let Some(rv) = &opts.resource_version
        && rv != old_rv
    {
        return Err(ApiError::conflict(
            &info.group,
            &info.plural,
            name,
            &format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {old_rv}"
            ),
        ));
    }
    let policy = opts
        .propagation
        .unwrap_or_else(|| default_propagation(info));
    let gc_finalizer = match policy {
        Propagation::Orphan => Some(ORPHAN_FINALIZER),
        Propagation::Foreground => Some(FOREGROUND_FINALIZER),
        Propagation::Background => None,
    };
    if is_deleting(&old) {
        // Already terminating: only an explicitly requested orphan/foreground
        // policy changes the GC finalizers (`shouldUpdateFinalizers`).
        let mut new = (*old).clone();
        if let Some(f) = gc_finalizer.filter(|_| opts.propagation.is_some())
            && !finalizers(&old).contains(&f)
        {
            let fins = meta_mut(&mut new)
                .entry("finalizers")
                .or_insert_with(|| json!([]));
            if let Some(a) = fins.as_array_mut() {
                a.retain(|x| x != ORPHAN_FINALIZER && x != FOREGROUND_FINALIZER);
                a.push(json!(f));
            }
            if !dry_run {
                let stored = inner.put(&gr, key, new);
                return Ok(Deleted {
                    object: at_version(&stored, info),
                    gone: false,
                });
            }
        }
        return Ok(Deleted {
            object: at_version(&old, info),
            gone: false,
        });
    }
    let must_wait =
        !finalizers(&old).is_empty() || gc_finalizer.is_some() || has_spec_finalizers(info, &old);
    if must_wait {
        let mut new = (*old).clone();
        {
            let m = meta_mut(&mut new);
            m.insert("deletionTimestamp".into(), Value::String(now()));
            m.insert("deletionGracePeriodSeconds".into(), json!(0));
            if let Some(f) = gc_finalizer {
                let fins = m.entry("finalizers").or_insert_with(|| json!([]));
                if let Some(a) = fins.as_array_mut()
                    && !a.iter().any(|x| x == f)
                {
                    a.push(json!(f));
                }
            }
            if let Some(g) = m.get("generation").and_then(Value::as_i64) {
                m.insert("generation".into(), json!(g + 1));
            }
        }
        if is_namespace(info) {
            new["status"] = json!({"phase": "Terminating"});
        }
        if dry_run {
            return Ok(Deleted {
                object: Arc::new(new),
                gone: false,
            });
        }
        let stored = inner.put(&gr, key, new);
        return Ok(Deleted {
            object: at_version(&stored, info),
            gone: false,
        });
    }
    if dry_run {
        return Ok(Deleted {
            object: at_version(&old, info),
            gone: true,
        });
    }
    let last = inner
        .remove(&gr, &key)
        .ok_or_else(|| ApiError::not_found(&info.group, &info.plural, name))?;
    after_remove(inner, info, &last);
    Ok(Deleted {
        object: at_version(&last, info),
        gone: true,
    })
}

/// Removes finalizer `f` from an object (used by the server's own
/// controllers); completes the deletion when it was the last one.
pub fn remove_finalizer(inner: &mut Inner, info: &ResourceInfo, key: &Key, f: &str) {
    let Some(old) = inner.get(&info.group_resource(), key).cloned() else {
        return;
    };
    if !finalizers(&old).contains(&f) {
        return;
    }
    let mut new = (*old).clone();
    if let Some(a) = meta_mut(&mut new)
        .get_mut("finalizers")
        .and_then(Value::as_array_mut)
    {
        a.retain(|x| x != f);
    }
    let _ = commit_update(inner, info, key, &old, new, Sub::Main, false, false);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated_per_resource() {
        let mut info = crate::builtins::builtin_resources()
            .into_iter()
            .find(|r| r.plural == "configmaps")
            .unwrap();
        assert!(validate_name(&info, "a.b-c").is_none());
        assert!(validate_name(&info, "A").is_some());
        assert!(validate_name(&info, "-a").is_some());
        info.plural = "namespaces".into();
        assert!(validate_name(&info, "a.b").is_some());
        info.group = "rbac.authorization.k8s.io".into();
        info.plural = "clusterroles".into();
        assert!(validate_name(&info, "system:controller:x").is_none());
        assert!(validate_name(&info, "a/b").is_some());
    }

    #[test]
    fn delete_options_parse() {
        let o = DeleteOptions::from_body(
            br#"{"kind":"DeleteOptions","propagationPolicy":"Foreground","preconditions":{"uid":"u"}}"#,
        )
        .unwrap();
        assert_eq!(o.propagation, Some(Propagation::Foreground));
        assert_eq!(o.uid.as_deref(), Some("u"));
        let o = DeleteOptions::from_body(br#"{"orphanDependents":true}"#).unwrap();
        assert_eq!(o.propagation, Some(Propagation::Orphan));
        assert!(DeleteOptions::from_body(b"").unwrap().propagation.is_none());
        assert!(DeleteOptions::from_body(br#"{"propagationPolicy":"Sometimes"}"#).is_err());
    }
}
