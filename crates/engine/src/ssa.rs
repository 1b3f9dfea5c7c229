//! Server-side apply of children and attachments
//! (`--apply-strategy=server-side-apply`), and the [`ApplyOptions`] that
//! choose between it and dynamic apply.
//!
//! Every write is a `PATCH` with `application/apply-patch+yaml` (a JSON
//! body), the configured field manager (`--apply-strategy-ssa-field-manager`,
//! default `metacontroller`) and `force=true`. The applied object is the
//! hook's desired object with our controller reference ensured (every time,
//! not only on create) and the server-managed fields removed
//! ([`metacontroller_apply::sanitize_for_ssa`]: system `metadata` fields,
//! `status`, the dynamic-apply annotation).
//!
//! * missing child: applied (which creates it);
//! * `OnDelete`: an existing child is never touched;
//! * `InPlace`/`RollingInPlace`: the legacy
//!   `metacontroller.k8s.io/last-applied-configuration` annotation is
//!   removed with a JSON patch first (children created by dynamic apply),
//!   then the object is applied; a Conflict is ignored (the next sync
//!   retries);
//! * `Recreate`/`RollingRecreate`: a dry-run apply shows what applying would
//!   do. If the result, without server-managed fields, equals the observed
//!   object, nothing is deleted (when we never applied to the object, for
//!   instance because dynamic apply created it, the apply is then made for
//!   real once, which changes no value but records our field ownership). A
//!   dry run answered 400 or 403 means the desired object is invalid: the
//!   child is left alone, never deleted. When the object the dry run worked
//!   on is not the observed one (another UID, or another resourceVersion:
//!   it changed after our read), the sync fails and is retried, since the
//!   comparison would be meaningless. Otherwise the child is deleted and the
//!   next sync creates it again.
//!
//!   Metacontroller compares `metadata.generation` instead; but a dry run
//!   that changes the spec of a type with generations (custom resources,
//!   apps/v1, batch/v1, ...) reports the generation the write would get, so
//!   that check fails for every real change and such children are never
//!   recreated. The resourceVersion, which a dry run leaves at the stored
//!   value, tells concurrent changes apart from our own.
//!
//! # No-op detection
//!
//! Metacontroller skips applies with an in-process cache of what it last
//! applied; that cache let manual edits stand (MC#1177). Nothing is cached
//! here: every sync compares the desired object with the observed one, and
//! an apply is skipped only when [`is_applied`] proves it would change
//! nothing, which needs both
//!
//! 1. every desired value present in the observed object (numbers compared
//!    by value), and
//! 2. every field our manager owns, according to the object's
//!    `metadata.managedFields` entry for (our manager, `Apply`), still
//!    present in the desired object: otherwise the apply would remove it.
//!
//! The `managedFields` entry also says how lists merge: keyed lists
//! (`k:{...}` entries) are compared item by item on their keys, sets (`v:`
//! entries) by membership, every other list exactly. A child without such
//! an entry has never been applied by us and is applied (or, for Recreate,
//! dry-run) once. So a converged sync makes no request at all, and any
//! drift in a field we apply (a hand edit, another manager taking it over)
//! is put back by the next sync. Values the server normalizes (a quantity
//! written `1000m` and stored `1`) never compare equal and cost one no-op
//! apply (Recreate: one dry run) per sync.

use std::sync::LazyLock;

use kube::Client;
use metacontroller_api::{ChildUpdateMethod, LAST_APPLIED_ANNOTATION};
use metacontroller_apply::{apply_update, claim_ownership, sanitize_for_ssa};
use serde_json::{Map, Value, json};

use crate::config::{ApplyStrategy, EngineConfig};
use crate::discovery::ResourceInfo;
use crate::dynapi::{self, RequestError};
use crate::object;

/// How children (and attachments) are written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplyOptions {
    /// Dynamic apply or server-side apply.
    pub strategy: ApplyStrategy,
    /// Field manager of server-side applies.
    pub field_manager: String,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            strategy: ApplyStrategy::DynamicApply,
            field_manager: metacontroller_api::constants::FIELD_MANAGER.to_owned(),
        }
    }
}

impl ApplyOptions {
    /// The options of `--apply-strategy` and
    /// `--apply-strategy-ssa-field-manager`.
    pub fn from_config(config: &EngineConfig) -> Self {
        ApplyOptions {
            strategy: config.apply_strategy,
            field_manager: config.ssa_field_manager.clone(),
        }
    }

    /// Server-side apply with `field_manager`.
    pub fn server_side(field_manager: impl Into<String>) -> Self {
        ApplyOptions {
            strategy: ApplyStrategy::ServerSideApply,
            field_manager: field_manager.into(),
        }
    }

    /// Whether children are written with server-side apply.
    pub fn is_server_side(&self) -> bool {
        self.strategy == ApplyStrategy::ServerSideApply
    }

    /// Whether writing `desired` (a hook's object) for `parent` would leave
    /// `observed` unchanged: the rolling-update "child is up to date" check.
    /// Dynamic apply uses the three-way merge; server-side apply uses
    /// [`is_applied`].
    pub fn is_up_to_date(
        &self,
        parent: &Value,
        observed: &Value,
        desired: &Value,
    ) -> Result<bool, metacontroller_apply::DynamicApplyError> {
        if self.is_server_side() {
            Ok(is_applied(
                observed,
                &prepare(desired, parent),
                &self.field_manager,
            ))
        } else {
            apply_update(observed, desired).map(|updated| updated.is_none())
        }
    }
}

/// The object to apply: `desired` with our controller reference ensured and
/// the server-managed fields removed.
pub fn prepare(desired: &Value, parent: &Value) -> Value {
    let mut obj = desired.clone();
    claim_ownership(&mut obj, parent);
    sanitize_for_ssa(&obj)
}

static NO_FIELDS: LazyLock<Map<String, Value>> = LazyLock::new(Map::new);

/// The fields `manager` owns through server-side apply on the main resource
/// (`None` when it never applied to the object).
pub(crate) fn applied_fields<'a>(
    observed: &'a Value,
    manager: &str,
) -> Option<&'a Map<String, Value>> {
    let entries = observed.get("metadata")?.get("managedFields")?.as_array()?;
    let entry = entries.iter().find(|e| {
        e.get("manager").and_then(Value::as_str) == Some(manager)
            && e.get("operation").and_then(Value::as_str) == Some("Apply")
            && e.get("subresource")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
    })?;
    Some(
        entry
            .get("fieldsV1")
            .and_then(Value::as_object)
            .unwrap_or(&NO_FIELDS),
    )
}

/// Whether applying `prepared` (see [`prepare`]) with `manager` would change
/// nothing on `observed`. See the [module documentation](self).
pub fn is_applied(observed: &Value, prepared: &Value, manager: &str) -> bool {
    let Some(owned) = applied_fields(observed, manager) else {
        return false;
    };
    covers(prepared, Some(observed), Some(owned)) && !owns_beyond(owned, prepared)
}

/// The child node of a `FieldsV1` node.
fn field_node<'a>(
    node: Option<&'a Map<String, Value>>,
    key: &str,
) -> Option<&'a Map<String, Value>> {
    node?.get(key)?.as_object()
}

/// Whether a list item carries the key of a `k:` entry: every key field the
/// item has is equal, and it has at least one. Key fields the item omits
/// match anything (the server may have defaulted them, like a port's
/// `protocol`).
fn key_matches(key: &Map<String, Value>, item: &Map<String, Value>) -> bool {
    let mut present = false;
    for (field, value) in key {
        if let Some(v) = item.get(field) {
            if !object::semantic_eq(v, value) {
                return false;
            }
            present = true;
        }
    }
    present
}

/// A parsed `k:` entry of a `FieldsV1` node: the key fields and the node.
type KeyedEntry<'a> = (Map<String, Value>, &'a Map<String, Value>);

/// The `k:` entries of a `FieldsV1` node, parsed.
fn keyed_entries(node: &Map<String, Value>) -> Vec<KeyedEntry<'_>> {
    node.iter()
        .filter_map(|(k, child)| {
            let json = k.strip_prefix("k:")?;
            let Ok(Value::Object(key)) = serde_json::from_str::<Value>(json) else {
                return None;
            };
            Some((key, child.as_object().unwrap_or(&NO_FIELDS)))
        })
        .collect()
}

/// Whether every value of `desired` is in `observed`; `owned` (our
/// `FieldsV1` node at this place, if any) tells how lists and maps merge.
fn covers(desired: &Value, observed: Option<&Value>, owned: Option<&Map<String, Value>>) -> bool {
    let observed = observed.filter(|v| !v.is_null());
    match desired {
        Value::Null => observed.is_none(),
        Value::Object(d) => {
            let Some(o) = observed else {
                return d.is_empty();
            };
            let Value::Object(om) = o else {
                return false;
            };
            if let Some(node) = owned
                && !node.keys().any(|k| k.starts_with("f:"))
            {
                // Owned as a whole (an atomic map), or applied empty.
                return object::semantic_eq(desired, o);
            }
            d.iter()
                .all(|(k, dv)| covers(dv, om.get(k), field_node(owned, &format!("f:{k}"))))
        }
        Value::Array(d) => {
            let o = match observed {
                None => return d.is_empty(),
                Some(Value::Array(o)) => o,
                Some(_) => return false,
            };
            if let Some(node) = owned {
                let keyed = keyed_entries(node);
                if !keyed.is_empty() {
                    return covers_keyed_list(d, o, &keyed);
                }
                if node.keys().any(|k| k.starts_with("v:")) {
                    return d
                        .iter()
                        .all(|v| o.iter().any(|w| object::semantic_eq(v, w)));
                }
            }
            d.len() == o.len() && d.iter().zip(o).all(|(a, b)| object::semantic_eq(a, b))
        }
        _ => observed.is_some_and(|o| object::semantic_eq(desired, o)),
    }
}

/// A keyed list: each desired item must be one we own, present in the
/// observed list in the same relative order, with its values.
fn covers_keyed_list(desired: &[Value], observed: &[Value], keyed: &[KeyedEntry<'_>]) -> bool {
    let mut last_index: Option<usize> = None;
    for item in desired {
        let Value::Object(im) = item else {
            return false;
        };
        let Some((key, node)) = keyed.iter().find(|(key, _)| key_matches(key, im)) else {
            return false;
        };
        let Some((index, found)) = observed
            .iter()
            .enumerate()
            .find(|(_, o)| o.as_object().is_some_and(|om| key_matches(key, om)))
        else {
            return false;
        };
        if last_index.is_some_and(|last| index <= last) {
            return false;
        }
        last_index = Some(index);
        if !covers(item, Some(found), Some(node)) {
            return false;
        }
    }
    true
}

/// Whether `owned` (a `FieldsV1` node) has a field that `desired` no longer
/// has: applying would drop it.
fn owns_beyond(owned: &Map<String, Value>, desired: &Value) -> bool {
    for (key, child) in owned {
        let child = child.as_object().unwrap_or(&NO_FIELDS);
        if key == "." {
            continue;
        }
        if let Some(field) = key.strip_prefix("f:") {
            let Some(value) = desired.as_object().and_then(|m| m.get(field)) else {
                return true;
            };
            if owns_beyond(child, value) {
                return true;
            }
        } else if let Some(json) = key.strip_prefix("k:") {
            let Ok(Value::Object(k)) = serde_json::from_str::<Value>(json) else {
                return true;
            };
            let item = desired.as_array().and_then(|items| {
                items
                    .iter()
                    .find(|i| i.as_object().is_some_and(|m| key_matches(&k, m)))
            });
            match item {
                Some(item) if !owns_beyond(child, item) => {}
                _ => return true,
            }
        } else if let Some(json) = key.strip_prefix("v:") {
            let Ok(v) = serde_json::from_str::<Value>(json) else {
                return true;
            };
            if !desired
                .as_array()
                .is_some_and(|items| items.iter().any(|x| object::semantic_eq(x, &v)))
            {
                return true;
            }
        } else {
            // Positional (`i:`) or unknown elements: assume a difference.
            return true;
        }
    }
    false
}

/// Whether the object a dry run worked on is not the one we observed: its
/// UID differs (replaced), or its resourceVersion does (changed since our
/// read; a dry run answers with the stored resourceVersion). The dry run's
/// own generation bump for a spec change is expected and not a change.
fn changed_since_read(observed: &Value, dry_run: &Value) -> bool {
    let (before, after) = (
        object::resource_version(observed),
        object::resource_version(dry_run),
    );
    object::uid(dry_run) != object::uid(observed)
        || (!before.is_empty() && !after.is_empty() && before != after)
}

pub(crate) fn has_last_applied(obj: &Value) -> bool {
    obj.get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(LAST_APPLIED_ANNOTATION))
        .is_some()
}

/// Why a server-side apply write failed.
#[derive(Debug, thiserror::Error)]
pub enum SsaError {
    /// The apply request failed.
    #[error("can't apply {what}: {source}")]
    Apply {
        /// The child.
        what: String,
        /// The failed request.
        #[source]
        source: RequestError,
    },
    /// The dry run before a recreate failed.
    #[error("dry run failed for server-side apply of {what}: {source}")]
    DryRun {
        /// The child.
        what: String,
        /// The failed request.
        #[source]
        source: RequestError,
    },
    /// The child changed between our read and the dry run.
    #[error(
        "object changed during dry run for server-side apply of {what}: expected UID {expected_uid} at resourceVersion {expected_version} but got UID {uid} at resourceVersion {version}"
    )]
    Changed {
        /// The child.
        what: String,
        /// The UID read.
        expected_uid: String,
        /// The resourceVersion read.
        expected_version: String,
        /// The UID of the dry run.
        uid: String,
        /// The resourceVersion of the dry run.
        version: String,
    },
    /// The delete of a recreate failed.
    #[error("can't delete {what}: {source}")]
    Delete {
        /// The child.
        what: String,
        /// The failed request.
        #[source]
        source: RequestError,
    },
    /// The dynamic-apply annotation could not be removed.
    #[error("can't remove the {LAST_APPLIED_ANNOTATION} annotation from {what}: {source}")]
    RemoveAnnotation {
        /// The child.
        what: String,
        /// The failed request.
        #[source]
        source: RequestError,
    },
}

/// Creates a missing child by applying it.
pub(crate) async fn create(
    client: &Client,
    parent: &Value,
    resource: &ResourceInfo,
    desired: &Value,
    options: &ApplyOptions,
) -> Result<(), SsaError> {
    let obj = prepare(desired, parent);
    let api = dynapi::api(client, resource, object::namespace(&obj));
    tracing::info!(parent = %object::describe(parent), child = %object::describe(desired), "creating child (server-side apply)");
    match dynapi::apply(
        &api,
        object::name(&obj),
        &obj,
        &options.field_manager,
        false,
    )
    .await
    {
        Ok(_) => Ok(()),
        Err(err) if err.is_conflict() => {
            tracing::info!(child = %object::describe(desired), error = %err, "apply conflict; retrying on the next sync");
            Ok(())
        }
        Err(source) => Err(SsaError::Apply {
            what: object::describe(desired),
            source,
        }),
    }
}

/// What the update of an existing child does, decided from the observed
/// object alone; both the sync ([`update`]) and `metacontroller render`
/// follow it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UpdateStep {
    /// Nothing: the child is pending deletion.
    Terminating,
    /// Nothing: `OnDelete` never touches an existing child.
    OnDelete,
    /// Nothing: applying would change nothing.
    UpToDate,
    /// `Recreate`: a dry run decides between nothing, taking ownership and
    /// deleting.
    Recreate,
    /// Apply in place, after removing the dynamic-apply annotation when
    /// `remove_last_applied`.
    InPlace { remove_last_applied: bool },
}

/// The [`UpdateStep`] for `observed`, whose desired object prepared for
/// applying ([`prepare`]) is `prepared`.
pub(crate) fn update_step(
    observed: &Value,
    prepared: &Value,
    method: ChildUpdateMethod,
    manager: &str,
) -> UpdateStep {
    // Compared only where the answer decides something: a sync skips
    // terminating and `OnDelete` children without looking further.
    let applied = || is_applied(observed, prepared, manager);
    if object::is_deleting(observed) {
        return UpdateStep::Terminating;
    }
    match method.without_rolling() {
        ChildUpdateMethod::OnDelete => UpdateStep::OnDelete,
        ChildUpdateMethod::Recreate if applied() => UpdateStep::UpToDate,
        ChildUpdateMethod::Recreate => UpdateStep::Recreate,
        _ => {
            let legacy = has_last_applied(observed);
            if !legacy && applied() {
                UpdateStep::UpToDate
            } else {
                UpdateStep::InPlace {
                    remove_last_applied: legacy,
                }
            }
        }
    }
}

/// Brings an existing child to its desired state by the update method.
pub(crate) async fn update(
    client: &Client,
    parent: &Value,
    resource: &ResourceInfo,
    method: ChildUpdateMethod,
    observed: &Value,
    desired: &Value,
    options: &ApplyOptions,
) -> Result<(), SsaError> {
    let manager = options.field_manager.as_str();
    let obj = prepare(desired, parent);
    let name = object::name(observed);
    let api = dynapi::api(client, resource, object::namespace(observed));
    let describe = object::describe(observed);
    match update_step(observed, &obj, method, manager) {
        UpdateStep::Terminating => {
            tracing::debug!(child = %describe, "not updating child: pending deletion");
            Ok(())
        }
        UpdateStep::OnDelete | UpdateStep::UpToDate => Ok(()),
        UpdateStep::Recreate => {
            let dry_run = match dynapi::apply(&api, name, &obj, manager, true).await {
                Ok(result) => result,
                Err(err) if err.is_bad_request() || err.is_forbidden() => {
                    tracing::warn!(parent = %object::describe(parent), child = %describe, error = %err,
                        "dry run of the desired child was rejected; not recreating it");
                    return Ok(());
                }
                Err(err) if err.is_not_found() => return Ok(()),
                Err(source) => {
                    return Err(SsaError::DryRun {
                        what: describe,
                        source,
                    });
                }
            };
            if changed_since_read(observed, &dry_run) {
                return Err(SsaError::Changed {
                    what: describe,
                    expected_uid: object::uid(observed).to_owned(),
                    expected_version: object::resource_version(observed).to_owned(),
                    uid: object::uid(&dry_run).to_owned(),
                    version: object::resource_version(&dry_run).to_owned(),
                });
            }
            if object::semantic_eq(&sanitize_for_ssa(&dry_run), &sanitize_for_ssa(observed)) {
                if applied_fields(observed, manager).is_none() {
                    // No value changes: record our ownership so later syncs
                    // can decide without asking the server.
                    tracing::debug!(child = %describe, "taking field ownership (server-side apply)");
                    match dynapi::apply(&api, name, &obj, manager, false).await {
                        Ok(_) => {}
                        Err(err) if err.is_conflict() || err.is_not_found() => {}
                        Err(source) => {
                            return Err(SsaError::Apply {
                                what: describe,
                                source,
                            });
                        }
                    }
                }
                return Ok(());
            }
            tracing::info!(parent = %object::describe(parent), child = %describe, reason = "Recreate update strategy", "deleting child");
            match dynapi::delete_background(&api, name, object::uid(observed)).await {
                Ok(()) => Ok(()),
                Err(err) if err.is_not_found() => Ok(()),
                Err(source) => Err(SsaError::Delete {
                    what: describe,
                    source,
                }),
            }
        }
        UpdateStep::InPlace {
            remove_last_applied,
        } => {
            if remove_last_applied {
                let path = format!(
                    "/metadata/annotations/{}",
                    LAST_APPLIED_ANNOTATION
                        .replace('~', "~0")
                        .replace('/', "~1")
                );
                let ops = json!([{"op": "remove", "path": path}]);
                match dynapi::json_patch(client, resource, object::namespace(observed), name, &ops)
                    .await
                {
                    Ok(_) => {}
                    Err(err) if err.is_not_found() => return Ok(()),
                    Err(source) => {
                        return Err(SsaError::RemoveAnnotation {
                            what: describe,
                            source,
                        });
                    }
                }
            }
            tracing::info!(parent = %object::describe(parent), child = %describe, "updating child in place (server-side apply)");
            match dynapi::apply(&api, name, &obj, manager, false).await {
                Ok(_) => Ok(()),
                Err(err) if err.is_conflict() => {
                    tracing::info!(child = %describe, error = %err, "apply conflict; retrying on the next sync");
                    Ok(())
                }
                Err(source) => Err(SsaError::Apply {
                    what: describe,
                    source,
                }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed_with(fields: Value, obj: Value) -> Value {
        let mut obj = obj;
        obj["metadata"]["managedFields"] = json!([
            {"manager": "other", "operation": "Update", "fieldsV1": {"f:spec": {"f:other": {}}}},
            {"manager": "metacontroller", "operation": "Apply", "fieldsV1": fields}
        ]);
        obj
    }

    fn pod() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "x"},
                "ownerReferences": [{"apiVersion": "v1", "kind": "P", "name": "o", "uid": "u1",
                    "controller": true, "blockOwnerDeletion": true}]},
            "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}]}],
                "tolerations": [{"key": "a", "operator": "Exists"}]}
        })
    }

    fn pod_fields() -> Value {
        json!({
            "f:metadata": {"f:labels": {"f:app": {}},
                "f:ownerReferences": {"k:{\"uid\":\"u1\"}": {".": {}, "f:apiVersion": {},
                    "f:blockOwnerDeletion": {}, "f:controller": {}, "f:kind": {}, "f:name": {}, "f:uid": {}}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:image": {}, "f:name": {},
                "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}},
                "f:tolerations": {}}
        })
    }

    #[test]
    fn applied_object_is_recognised() {
        let desired = pod();
        let mut live = observed_with(pod_fields(), pod());
        // Server additions and other managers' fields do not matter.
        live["metadata"]["uid"] = json!("x");
        live["metadata"]["labels"]["added"] = json!("by-someone");
        live["spec"]["containers"][0]["terminationMessagePath"] = json!("/dev/x");
        live["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "sidecar"}));
        live["spec"]["other"] = json!(1.0);
        live["status"] = json!({"phase": "Running"});
        assert!(is_applied(&live, &desired, "metacontroller"));
        // Another manager name never applied.
        assert!(!is_applied(&live, &desired, "someone-else"));
    }

    #[test]
    fn drift_and_changes_are_detected() {
        let desired = pod();
        let base = observed_with(pod_fields(), pod());
        // A value we own was edited.
        let mut edited = base.clone();
        edited["spec"]["containers"][0]["image"] = json!("evil");
        assert!(!is_applied(&edited, &desired, "metacontroller"));
        // A label we own was removed.
        let mut removed = base.clone();
        removed["metadata"]["labels"] = json!({});
        assert!(!is_applied(&removed, &desired, "metacontroller"));
        // An atomic list changed.
        let mut tol = base.clone();
        tol["spec"]["tolerations"]
            .as_array_mut()
            .unwrap()
            .push(json!({"key": "b"}));
        assert!(!is_applied(&tol, &desired, "metacontroller"));
        // The desired object dropped a field we own: applying removes it.
        let mut smaller = desired.clone();
        smaller["metadata"]["labels"] = json!({});
        assert!(!is_applied(&base, &smaller, "metacontroller"));
        let mut no_ports = desired.clone();
        no_ports["spec"]["containers"][0]
            .as_object_mut()
            .unwrap()
            .remove("ports");
        assert!(!is_applied(&base, &no_ports, "metacontroller"));
        // A new desired field.
        let mut bigger = desired.clone();
        bigger["spec"]["hostname"] = json!("h");
        assert!(!is_applied(&base, &bigger, "metacontroller"));
        // A new container in the keyed list.
        let mut more = desired;
        more["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "d", "image": "x"}));
        assert!(!is_applied(&base, &more, "metacontroller"));
    }

    #[test]
    fn keyed_lists_check_order_and_sets_membership() {
        let desired = json!({"spec": {"l": [{"name": "a", "v": 1}, {"name": "b", "v": 2}],
            "s": ["x", "y"]}});
        let fields = json!({"f:spec": {
            "f:l": {"k:{\"name\":\"a\"}": {".": {}, "f:name": {}, "f:v": {}},
                    "k:{\"name\":\"b\"}": {".": {}, "f:name": {}, "f:v": {}}},
            "f:s": {"v:\"x\"": {}, "v:\"y\"": {}}}});
        let live = observed_with(fields.clone(), desired.clone());
        assert!(is_applied(&live, &desired, "metacontroller"));
        let mut swapped = live.clone();
        swapped["spec"]["l"] = json!([{"name": "b", "v": 2}, {"name": "a", "v": 1}]);
        assert!(!is_applied(&swapped, &desired, "metacontroller"));
        let mut set = live.clone();
        set["spec"]["s"] = json!(["y", "z", "x"]);
        assert!(is_applied(&set, &desired, "metacontroller"));
        set["spec"]["s"] = json!(["y"]);
        assert!(!is_applied(&set, &desired, "metacontroller"));
        let mut fewer = desired.clone();
        fewer["spec"]["s"] = json!(["x"]);
        assert!(!is_applied(&live, &fewer, "metacontroller"));
    }

    #[test]
    fn dry_run_staleness() {
        let observed = json!({"metadata": {"uid": "u", "resourceVersion": "5", "generation": 1}});
        let ours = json!({"metadata": {"uid": "u", "resourceVersion": "5", "generation": 2}});
        assert!(!changed_since_read(&observed, &ours));
        let newer = json!({"metadata": {"uid": "u", "resourceVersion": "6", "generation": 2}});
        assert!(changed_since_read(&observed, &newer));
        let replaced = json!({"metadata": {"uid": "v", "resourceVersion": "5"}});
        assert!(changed_since_read(&observed, &replaced));
    }

    #[test]
    fn prepare_adds_owner_and_strips_server_fields() {
        let parent =
            json!({"apiVersion": "g/v1", "kind": "P", "metadata": {"name": "p", "uid": "pu"}});
        let desired = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "resourceVersion": "5",
                "annotations": {LAST_APPLIED_ANNOTATION: "{}"}},
            "status": {"x": 1}, "data": {"k": "v"}});
        let obj = prepare(&desired, &parent);
        assert_eq!(
            obj,
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "c", "ownerReferences": [{"apiVersion": "g/v1", "kind": "P",
                    "name": "p", "uid": "pu", "controller": true, "blockOwnerDeletion": true}]},
                "data": {"k": "v"}})
        );
    }

    #[test]
    fn up_to_date_by_strategy() {
        let parent =
            json!({"apiVersion": "g/v1", "kind": "P", "metadata": {"name": "p", "uid": "pu"}});
        let desired = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c"}, "data": {"k": "v"}});
        let mut observed = desired.clone();
        metacontroller_apply::set_last_applied(&mut observed, &desired).unwrap();
        let dynamic = ApplyOptions::default();
        assert!(dynamic.is_up_to_date(&parent, &observed, &desired).unwrap());
        let ssa = ApplyOptions::server_side("metacontroller");
        // Never applied: not up to date.
        assert!(!ssa.is_up_to_date(&parent, &observed, &desired).unwrap());
        let applied = observed_with(
            json!({"f:data": {"f:k": {}}, "f:metadata": {"f:ownerReferences": {"k:{\"uid\":\"pu\"}": {}}}}),
            prepare(&desired, &parent),
        );
        assert!(ssa.is_up_to_date(&parent, &applied, &desired).unwrap());
    }
}
