//! The `metadata.managedFields` bookkeeping of every write
//! (`k8s.io/apiserver/pkg/endpoints/handlers/fieldmanager` and
//! `k8s.io/apimachinery/pkg/util/managedfields`): who the manager of a
//! request is, and what each write does to the ownership record.
//!
//! * the manager is the `fieldManager` query parameter, otherwise the user
//!   agent up to its first `/` (`kubectl`, `kube-rs`, ...); writes the server
//!   makes by itself are recorded as `kube-apiserver` (creates) or
//!   `kube-controller-manager` (updates);
//! * a subresource resets fields: `status` for writes to an object with a
//!   status subresource, everything but `status` for `/status`;
//! * ownership tracking starts at creation; an object without
//!   `managedFields` (or whose `managedFields` were reset with `[]`) is not
//!   tracked again until it is applied to, when a `before-first-apply`
//!   manager takes everything already there (see [`crate::server_side_apply`]).
//!
//! This sits below the write rules ([`crate::write`]): they call
//! [`track_write`] just before committing.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;

use http::{HeaderMap, header};
use metacontroller_patch::managed::{self, FieldPath, FieldSet, ManagedFields, ManagerId, Type};
use serde_json::{Map, Value};

use crate::meta::{self, Sub};
use crate::registry::ResourceInfo;

/// The longest field manager name Kubernetes accepts.
pub(crate) const MAX_MANAGER_LEN: usize = 128;

tokio::task_local! {
    /// The field manager of the request being served.
    static REQUEST_MANAGER: String;
}

thread_local! {
    /// The `managedFields` an apply computed, handed to the write that
    /// commits it (create and update run synchronously under the lock).
    static APPLYING: RefCell<Option<Option<Value>>> = const { RefCell::new(None) };
}

/// Serves `fut` with the field manager of the request (`fieldManager`
/// query parameter or user agent) known to the writes it makes.
pub(crate) async fn with_request<F: Future>(
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    fut: F,
) -> F::Output {
    REQUEST_MANAGER
        .scope(request_manager(headers, query), fut)
        .await
}

fn request_manager(headers: &HeaderMap, query: &HashMap<String, String>) -> String {
    if let Some(m) = query.get("fieldManager").filter(|m| !m.is_empty()) {
        return m.clone();
    }
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut out = String::new();
    for c in ua.split('/').next().unwrap_or("").chars() {
        if c.is_control() {
            continue;
        }
        if out.len() + c.len_utf8() > MAX_MANAGER_LEN {
            break;
        }
        out.push(c);
    }
    // A request without a user agent is recorded as `unknown`, as
    // kube-apiserver does (k8s.io/apiserver/pkg/endpoints/handlers/rest.go,
    // `managerOrUserAgent`).
    if out.is_empty() {
        out.push_str("unknown");
    }
    out
}

/// How field management sees objects of a resource.
pub(crate) fn type_of(info: &ResourceInfo) -> Type<'_> {
    if info.crd {
        Type::custom_resource(info.schema.as_ref())
    } else {
        Type::builtin(&info.group, &info.kind)
    }
}

/// The fields a write through `sub` resets (and that nobody owns through it).
pub(crate) fn ignored(info: &ResourceInfo, sub: Sub) -> FieldSet {
    match sub {
        Sub::Main if info.status => FieldSet::from_paths([FieldPath::fields(&["status"])]),
        Sub::Status => FieldSet::from_paths([FieldPath::fields(&["spec"])]),
        _ => FieldSet::new(),
    }
}

pub(crate) fn subresource_name(sub: Sub) -> &'static str {
    match sub {
        Sub::Main => "",
        Sub::Status => "status",
        Sub::Finalize => "finalize",
    }
}

pub(crate) fn managed_fields_of(obj: &Value) -> Option<&Value> {
    obj.get("metadata")?.get("managedFields")
}

pub(crate) fn without_managed_fields(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    o
}

fn set_managed_fields(obj: &mut Value, mf: Option<Value>) {
    let Some(obj) = obj.as_object_mut() else {
        return;
    };
    match mf {
        Some(mf) => {
            let meta = obj
                .entry("metadata")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(m) = meta.as_object_mut() {
                m.insert("managedFields".into(), mf);
            }
        }
        None => {
            if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("managedFields");
            }
        }
    }
}

/// Records `metadata.managedFields` for a write about to be committed:
/// `old` is the stored object (`None` for a create), `new` the object to
/// store, after the write's own rules (subresource, system fields,
/// defaulting) have run. The write of an apply gets the fields the apply
/// computed; any other write is an `Update` by the request's manager.
pub(crate) fn track_write(info: &ResourceInfo, old: Option<&Value>, new: &mut Value, sub: Sub) {
    if let Some(applied) = APPLYING.with(|a| a.borrow_mut().take()) {
        set_managed_fields(new, applied);
        return;
    }
    if old.is_some_and(|o| o == new) {
        // Nothing changes, so nobody's fields do.
        return;
    }
    let manager = REQUEST_MANAGER.try_with(Clone::clone).unwrap_or_else(|_| {
        if old.is_none() {
            "kube-apiserver"
        } else {
            "kube-controller-manager"
        }
        .to_string()
    });
    let old_mf = old.and_then(managed_fields_of);
    let live = || ManagedFields::decode(old_mf).unwrap_or_default();
    // The object is compared without its managedFields.
    let requested = new
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .and_then(|m| m.remove("managedFields"));
    let managed = if sub != Sub::Main {
        // Subresources cannot set managedFields.
        live()
    } else if ManagedFields::is_reset(requested.as_ref()) {
        ManagedFields::new()
    } else if requested.as_ref() == old_mf {
        live()
    } else {
        match ManagedFields::decode(requested.as_ref()) {
            Ok(m) if !m.is_empty() => m,
            _ => live(),
        }
    };
    if managed.is_empty() && old.is_some() {
        // Not tracked: tracking resumes at the next apply.
        return;
    }
    let version = info.api_version();
    // The old object keeps its managedFields: nobody owns them, so their
    // removal changes nobody's fields.
    let out = managed::update(
        old,
        new,
        type_of(info),
        &managed,
        &ManagerId::update(&manager, &version, subresource_name(sub)),
        &version,
        &ignored(info, sub),
        &meta::now(),
    );
    set_managed_fields(new, out.encode());
}

/// Hands the `managedFields` of an apply to the write committing it, for as
/// long as the guard lives.
pub(crate) struct Applying;

impl Applying {
    pub(crate) fn start(mf: Option<Value>) -> Self {
        APPLYING.with(|a| *a.borrow_mut() = Some(mf));
        Applying
    }
}

impl Drop for Applying {
    fn drop(&mut self) {
        APPLYING.with(|a| *a.borrow_mut() = None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn managers_come_from_the_query_or_the_user_agent() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::USER_AGENT,
            "kubectl/v1.33.0 (linux/amd64) kubernetes/abc"
                .parse()
                .unwrap(),
        );
        let mut q = HashMap::new();
        assert_eq!(request_manager(&headers, &q), "kubectl");
        q.insert("fieldManager".to_string(), "kubectl-edit".to_string());
        assert_eq!(request_manager(&headers, &q), "kubectl-edit");
        q.insert("fieldManager".to_string(), String::new());
        headers.insert(header::USER_AGENT, "x".repeat(300).parse().unwrap());
        assert_eq!(request_manager(&headers, &q).len(), MAX_MANAGER_LEN);
        // kube-apiserver records a request without a user agent as `unknown`.
        assert_eq!(
            request_manager(&HeaderMap::new(), &HashMap::new()),
            "unknown"
        );
    }
}
