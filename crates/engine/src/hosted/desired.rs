//! The desired children (or attachments) of a hook's answer, checked and
//! grouped by type for child management.
//!
//! Each object must be an object with `apiVersion`, `kind` and
//! `metadata.name` (else the sync fails); an empty namespace becomes the
//! parent's; the controller kind then prepares it (labels, annotations,
//! its own checks). Its type must be known and ownable by the parent (see
//! [`crate::ownership`]): objects that are not are reported as child
//! management errors, one by one, and the others are still managed.
//! Knows nothing of controller kinds.

use std::collections::BTreeMap;

use metacontroller_api::ChildUpdateMethod;
use metacontroller_api::hook_wire::type_key;
use serde_json::Value;

use crate::children::{ChildError, ChildGroup, Children};
use crate::discovery::{ResourceInfo, ResourceMap};
use crate::hosted::SyncError;
use crate::object;
use crate::ownership;

/// Checks and groups `desired` (the `noun`s of a hook answer for `parent`)
/// among `rules` (each declared type and its update method); `prepare`
/// adds what the controller kind needs. Refused objects go to
/// `manage_errors`.
pub(crate) async fn group<'a, R>(
    resources: &ResourceMap,
    rules: R,
    parent: &Value,
    desired: Vec<Value>,
    noun: &str,
    prepare: impl FnMut(&mut Value) -> Result<(), SyncError>,
    manage_errors: &mut Vec<ChildError>,
) -> Result<Children<Value>, SyncError>
where
    R: Iterator<Item = (&'a ResourceInfo, ChildUpdateMethod)> + Clone,
{
    let checked = check(parent, desired, noun, prepare)?;
    let mut grouped: Children<Value> = Children::new();
    for (api_version, kind, obj) in checked {
        let resolved = ownership::resolve(rules.clone(), resources, parent, &obj, noun).await;
        let (info, method) = match resolved {
            Ok(resolved) => resolved,
            Err(err) => {
                manage_errors.push(err.into());
                continue;
            }
        };
        let key = object::key(&obj);
        grouped
            .entry(type_key(&kind, &api_version))
            .or_insert_with(|| ChildGroup {
                resource: info,
                method,
                objects: BTreeMap::new(),
            })
            .objects
            .insert(key, obj);
    }
    Ok(grouped)
}

/// The first half of [`group`]: each object of `desired` checked, its
/// namespace defaulted and `prepare`d, with its apiVersion and kind.
pub(crate) fn check(
    parent: &Value,
    desired: Vec<Value>,
    noun: &str,
    mut prepare: impl FnMut(&mut Value) -> Result<(), SyncError>,
) -> Result<Vec<(String, String, Value)>, SyncError> {
    let parent_ns = object::namespace(parent).map(str::to_owned);
    let mut checked = Vec::with_capacity(desired.len());
    for mut obj in desired {
        if obj.is_null() {
            continue;
        }
        if !obj.is_object() {
            return Err(SyncError::Invalid(format!(
                "invalid desired {noun}: not an object: {obj}"
            )));
        }
        let api_version = object::api_version(&obj).to_owned();
        let kind = object::kind(&obj).to_owned();
        let name = object::name(&obj).to_owned();
        if api_version.is_empty() || kind.is_empty() || name.is_empty() {
            return Err(SyncError::Invalid(format!(
                "invalid desired {noun} {kind} {name:?}: apiVersion, kind and metadata.name are required"
            )));
        }
        let Some(meta) = object::metadata_mut(&mut obj) else {
            continue;
        };
        if meta
            .get("namespace")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
            && let Some(ns) = &parent_ns
        {
            meta.insert("namespace".into(), Value::String(ns.clone()));
        }
        prepare(&mut obj)?;
        checked.push((api_version, kind, obj));
    }
    Ok(checked)
}
