//! [`apply`] and [`update`]: a server-side apply of a configuration, and the
//! record of a non-apply write, each moving ownership between managers.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use serde_json::{Map, Value};

use super::conflicts::Conflicts;
use super::managers::{MAX_UPDATE_MANAGERS, ManagedEntry, ManagedFields, ManagerId};
use super::path::{FieldPath, values_equal};
use super::set::FieldSet;
use super::types::{Ty, Type};
use super::walk::{Comparison, collect, compare_walk, field_set_lenient, merge_walk, remove_walk};

/// The fields the server owns: never recorded for any manager.
pub(super) static STRIPPED: LazyLock<FieldSet> = LazyLock::new(|| {
    FieldSet::from_paths(
        [
            &["apiVersion"][..],
            &["kind"],
            &["metadata"],
            &["metadata", "name"],
            &["metadata", "namespace"],
            &["metadata", "creationTimestamp"],
            &["metadata", "selfLink"],
            &["metadata", "uid"],
            &["metadata", "clusterName"],
            &["metadata", "generation"],
            &["metadata", "managedFields"],
            &["metadata", "resourceVersion"],
        ]
        .into_iter()
        .map(FieldPath::fields),
    )
});

/// Removes the fields the server owns (`apiVersion`, `kind`, and the
/// system fields of `metadata`) from a manager's set.
pub fn strip_meta(set: &FieldSet) -> FieldSet {
    set.difference(&STRIPPED)
}

/// Why an apply failed.
#[derive(Clone, Debug, PartialEq)]
pub enum ApplyError {
    /// The configuration is not valid for its type (duplicate or
    /// unidentifiable list items).
    Invalid(String),
    /// Other managers own fields the configuration changes.
    Conflicts(Conflicts),
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApplyError::Invalid(m) => f.write_str(m),
            ApplyError::Conflicts(c) => c.fmt(f),
        }
    }
}

impl std::error::Error for ApplyError {}

/// The outcome of an [`apply`].
#[derive(Clone, Debug, PartialEq)]
pub struct Applied {
    /// The merged object (without `managedFields`).
    pub object: Value,
    /// The managers after the apply.
    pub managed: ManagedFields,
    /// Whether the object differs from the live one.
    pub changed: bool,
}

/// Applies `config` for `manager` to `live` (both without
/// `managedFields`; `live` is `{}` for an object that does not exist yet).
///
/// The configuration is merged into the live object; fields `manager`
/// applied before and omits now are removed unless another manager owns
/// them; fields the merge changes that other managers own are conflicts,
/// refused unless `force`, which takes them over. Managers that set a field
/// to the value it already has share it. `ignored` fields (reset by the
/// addressed subresource) are neither recorded nor compared.
#[allow(clippy::too_many_arguments)]
pub fn apply(
    live: &Value,
    config: &Value,
    ty: Type<'_>,
    managed: &ManagedFields,
    manager: &ManagerId,
    api_version: &str,
    force: bool,
    ignored: &FieldSet,
    now: &str,
) -> Result<Applied, ApplyError> {
    let ty = ty.0;
    let config_set = collect(config, ty, true, &mut Vec::new())
        .map(|(_, s)| s)
        .map_err(ApplyError::Invalid)?;
    let mut managers = managed.entries.clone();
    let merged =
        merge_walk(Some(live), Some(config), ty).unwrap_or_else(|| Value::Object(Map::new()));
    let previous = managers.get(manager).cloned();
    managers.insert(
        manager.clone(),
        ManagedEntry {
            set: config_set.recursive_difference(ignored),
            api_version: api_version.to_owned(),
            time: previous.as_ref().and_then(|p| p.time.clone()),
        },
    );
    let merged = prune(merged, &managers, previous.as_ref().map(|p| &p.set), ty);
    update_sets(
        Some(live),
        &merged,
        ty,
        &mut managers,
        Some(manager),
        force,
        ignored,
    )
    .map_err(ApplyError::Conflicts)?;
    let changed = !values_equal(live, &merged);
    if let Some(entry) = managers.get_mut(manager) {
        entry.set = strip_meta(&entry.set);
        if entry.set.is_empty() {
            managers.remove(manager);
        } else if changed {
            entry.time = Some(now.to_owned());
        }
    }
    Ok(Applied {
        object: merged,
        managed: ManagedFields { entries: managers },
        changed,
    })
}

/// Records a non-apply write (create, update, patch) of `new` over `old`
/// (`None` for a create) by `manager`: it takes ownership of the fields it
/// added or changed, other managers lose those and the removed ones.
#[allow(clippy::too_many_arguments)]
pub fn update(
    old: Option<&Value>,
    new: &Value,
    ty: Type<'_>,
    managed: &ManagedFields,
    manager: &ManagerId,
    api_version: &str,
    ignored: &FieldSet,
    now: &str,
) -> ManagedFields {
    let ty = ty.0;
    let mut managers = managed.entries.clone();
    let Ok(cmp) = update_sets(old, new, ty, &mut managers, None, true, ignored) else {
        unreachable!("a forced update has no conflicts")
    };
    let current = strip_meta(&cmp.modified.union(&cmp.added).recursive_difference(ignored));
    if !current.is_empty() {
        let set = match managers.get(manager) {
            Some(previous) => current.union(&previous.set),
            None => current,
        };
        managers.insert(
            manager.clone(),
            ManagedEntry {
                set,
                api_version: api_version.to_owned(),
                time: Some(now.to_owned()),
            },
        );
    }
    let mut out = ManagedFields { entries: managers };
    out.cap_updates(MAX_UPDATE_MANAGERS);
    out
}

/// Moves ownership for a change from `old` to `new`: managers other than
/// `skip` lose the fields that were removed, and the ones that were changed
/// or added (which are conflicts unless `force`).
pub(super) fn update_sets(
    old: Option<&Value>,
    new: &Value,
    ty: Ty<'_>,
    managers: &mut BTreeMap<ManagerId, ManagedEntry>,
    skip: Option<&ManagerId>,
    force: bool,
    ignored: &FieldSet,
) -> Result<Comparison, Conflicts> {
    let mut cmp = Comparison::default();
    compare_walk(old, Some(new), ty, &mut Vec::new(), &mut cmp);
    cmp.exclude(ignored);
    let changed = cmp.modified.union(&cmp.added);
    let mut conflicts = BTreeMap::new();
    for (id, entry) in managers.iter() {
        if Some(id) == skip {
            continue;
        }
        let c = entry.set.intersection(&changed);
        if !c.is_empty() {
            conflicts.insert(id.clone(), c);
        }
    }
    if !force && !conflicts.is_empty() {
        return Err(Conflicts::from_sets(conflicts));
    }
    for (id, entry) in managers.iter_mut() {
        if Some(id) == skip {
            continue;
        }
        if let Some(c) = conflicts.get(id) {
            entry.set = entry.set.difference(c);
        }
        if !cmp.removed.is_empty() {
            entry.set = entry.set.difference(&cmp.removed);
        }
    }
    managers.retain(|_, e| !e.set.is_empty());
    Ok(cmp)
}

/// Removes from `merged` what the applier applied last time and no longer
/// applies, unless some manager (including the applier's new
/// configuration) still owns it.
pub(super) fn prune(
    merged: Value,
    managers: &BTreeMap<ManagerId, ManagedEntry>,
    last: Option<&FieldSet>,
    ty: Ty<'_>,
) -> Value {
    let Some(last) = last.filter(|l| !l.is_empty()) else {
        return merged;
    };
    let empty = || Value::Object(Map::new());
    let last = last.ensure_named_fields(ty);
    let pruned = remove_walk(&merged, &last, ty).unwrap_or_else(empty);
    // Add back what any manager owns.
    let owned = managers
        .values()
        .fold(FieldSet::new(), |acc, e| acc.union(&e.set))
        .ensure_named_fields(ty);
    let merged_set = field_set_lenient(&merged, ty).ensure_named_fields(ty);
    let pruned_set = field_set_lenient(&pruned, ty).ensure_named_fields(ty);
    let remove = merged_set.difference(&pruned_set.union(&owned));
    let pruned = remove_walk(&merged, &remove, ty).unwrap_or_else(empty);
    // Only remove what the applier owned.
    let pruned_set = field_set_lenient(&pruned, ty).ensure_named_fields(ty);
    let remove = merged_set.difference(&pruned_set).intersection(&last);
    remove_walk(&merged, &remove, ty).unwrap_or_else(empty)
}
