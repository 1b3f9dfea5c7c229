//! Walks over values along their [`Type`]: the field set of a value, the
//! comparison of two values, the merge of a configuration into a live
//! object and the removal of fields (structured-merge-diff's `typed`
//! package).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::path::{FieldPath, PathElement, values_equal};
use super::set::{FieldSet, SetNode};
use super::types::{ListKind, Ty, Type, item_element};

/// The fields a value sets, as recorded for the manager that applies it.
/// Fails on list items that cannot be identified (missing keys, maps in a
/// set) and on duplicate items, like Kubernetes does for an applied
/// configuration.
pub fn field_set(value: &Value, ty: Type<'_>) -> Result<FieldSet, String> {
    collect(value, ty.0, true, &mut Vec::new()).map(|(_, s)| s)
}

/// Like [`field_set`] but skips items that cannot be identified (live
/// objects are not validated again).
pub(super) fn field_set_lenient(value: &Value, ty: Ty<'_>) -> FieldSet {
    collect(value, ty, false, &mut Vec::new())
        .map(|(_, s)| s)
        .unwrap_or_default()
}

/// Returns whether the value is a leaf (a member by itself) and the
/// members below it.
pub(super) fn collect(
    v: &Value,
    ty: Ty<'_>,
    strict: bool,
    path: &mut Vec<PathElement>,
) -> Result<(bool, FieldSet), String> {
    match v {
        Value::Object(m) => {
            if ty.atomic_map() {
                return Ok((true, FieldSet::new()));
            }
            let mut set = FieldSet::new();
            for (k, cv) in m {
                let (declared, cty) = ty.field(k);
                let pe = PathElement::Field(k.clone());
                path.push(pe.clone());
                let (leaf, children) = collect(cv, cty, strict, path)?;
                path.pop();
                let empty_map = matches!(cv, Value::Object(cm) if cm.is_empty());
                let member = leaf || cv.is_null() || empty_map || !declared;
                set.put(pe, SetNode { member, children });
            }
            Ok((false, set))
        }
        Value::Array(items) => {
            let kind = ty.list();
            if matches!(kind, ListKind::Atomic) {
                return Ok((true, FieldSet::new()));
            }
            let item_ty = ty.item();
            let mut set = FieldSet::new();
            for (i, item) in items.iter().enumerate() {
                let pe = match item_element(item, &kind) {
                    Ok(pe) => pe,
                    Err(e) if strict => {
                        return Err(format!("{}: element {i}: {e}", FieldPath(path.clone())));
                    }
                    Err(_) => continue,
                };
                if strict && set.nodes.contains_key(&pe) {
                    return Err(format!(
                        "{}: duplicate entries for key {pe}",
                        FieldPath(path.clone())
                    ));
                }
                path.push(pe.clone());
                let (_, children) = collect(item, item_ty, strict, path)?;
                path.pop();
                let node = SetNode {
                    member: true,
                    children,
                };
                match set.nodes.get_mut(&pe) {
                    Some(existing) => existing.children = existing.children.union(&node.children),
                    None => set.put(pe, node),
                }
            }
            Ok((false, set))
        }
        _ => Ok((true, FieldSet::new())),
    }
}

/// What changed between two versions of an object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Comparison {
    /// Fields present only in the new object.
    pub added: FieldSet,
    /// Fields present in both with different values.
    pub modified: FieldSet,
    /// Fields present only in the old object.
    pub removed: FieldSet,
}

impl Comparison {
    /// Whether the objects are the same.
    pub fn is_same(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.removed.is_empty()
    }

    pub(super) fn exclude(&mut self, ignored: &FieldSet) {
        if ignored.is_empty() {
            return;
        }
        self.added = self.added.recursive_difference(ignored);
        self.modified = self.modified.recursive_difference(ignored);
        self.removed = self.removed.recursive_difference(ignored);
    }
}

/// Compares two versions of an object (`None` for an object that does not
/// exist yet). Leaves (scalars, atomic values) are added, modified or
/// removed; a map, list item or list that appears or disappears as a whole
/// is added or removed itself too.
pub fn compare(old: Option<&Value>, new: Option<&Value>, ty: Type<'_>) -> Comparison {
    let mut out = Comparison::default();
    compare_walk(old, new, ty.0, &mut Vec::new(), &mut out);
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    Map,
    List,
    Leaf,
}

pub(super) fn shape(l: Option<&Value>, r: Option<&Value>) -> Shape {
    let nullish = |v: Option<&Value>| matches!(v, None | Some(Value::Null));
    let is_map = |v: Option<&Value>| matches!(v, Some(Value::Object(_)));
    let is_list = |v: Option<&Value>| matches!(v, Some(Value::Array(_)));
    if (is_map(l) || is_map(r)) && (is_map(l) || nullish(l)) && (is_map(r) || nullish(r)) {
        Shape::Map
    } else if (is_list(l) || is_list(r)) && (is_list(l) || nullish(l)) && (is_list(r) || nullish(r))
    {
        Shape::List
    } else {
        Shape::Leaf
    }
}

pub(super) fn empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        _ => false,
    }
}

/// Maps are walked key by key unless atomic or empty on both sides (which
/// keeps the difference between empty and null).
pub(super) fn map_is_leaf(ty: Ty<'_>, l: Option<&Value>, r: Option<&Value>) -> bool {
    ty.atomic_map() || (empty(l) && empty(r))
}

pub(super) fn as_map(v: Option<&Value>) -> Option<&Map<String, Value>> {
    v.and_then(Value::as_object)
}

pub(super) fn as_list(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The items of a list by path element; the first of duplicates wins and
/// items that cannot be identified are skipped.
pub(super) fn index_items<'v>(
    items: &'v [Value],
    kind: &ListKind,
) -> (Vec<PathElement>, BTreeMap<PathElement, &'v Value>) {
    let mut order = Vec::with_capacity(items.len());
    let mut by_pe = BTreeMap::new();
    for item in items {
        if let Ok(pe) = item_element(item, kind)
            && !by_pe.contains_key(&pe)
        {
            order.push(pe.clone());
            by_pe.insert(pe, item);
        }
    }
    (order, by_pe)
}

pub(super) fn compare_walk(
    l: Option<&Value>,
    r: Option<&Value>,
    ty: Ty<'_>,
    path: &mut Vec<PathElement>,
    out: &mut Comparison,
) {
    if let (Some(a), Some(b)) = (l, r)
        && a == b
    {
        // Nothing differs below.
        return;
    }
    let leaf = |out: &mut Comparison, path: &[PathElement]| match (l, r) {
        (None, _) => out.added.insert(path),
        (_, None) => out.removed.insert(path),
        (Some(a), Some(b)) if !values_equal(a, b) => out.modified.insert(path),
        _ => {}
    };
    match shape(l, r) {
        Shape::Map if !map_is_leaf(ty, l, r) => {
            let (lm, rm) = (as_map(l), as_map(r));
            let keys: BTreeSet<&String> = lm.into_iter().chain(rm).flat_map(Map::keys).collect();
            for k in keys {
                path.push(PathElement::Field(k.clone()));
                compare_walk(
                    lm.and_then(|m| m.get(k)),
                    rm.and_then(|m| m.get(k)),
                    ty.field(k).1,
                    path,
                    out,
                );
                path.pop();
            }
        }
        Shape::List if !(empty(l) && empty(r)) => {
            let kind = ty.list();
            if matches!(kind, ListKind::Atomic) {
                return leaf(out, path);
            }
            let (_, li) = index_items(as_list(l), &kind);
            let (_, ri) = index_items(as_list(r), &kind);
            let pes: BTreeSet<&PathElement> = li.keys().chain(ri.keys()).collect();
            for pe in pes {
                path.push(pe.clone());
                compare_walk(
                    li.get(pe).copied(),
                    ri.get(pe).copied(),
                    ty.item(),
                    path,
                    out,
                );
                path.pop();
            }
        }
        _ => return leaf(out, path),
    }
    match (l, r) {
        (None, _) => out.added.insert(path),
        (_, None) => out.removed.insert(path),
        _ => {}
    }
}

/// Merges an applied configuration into a live object: values of the
/// configuration win, maps merge key by key, keyed lists and sets merge
/// item by item (keeping the live order of items and placing new ones
/// after the configuration's preceding item), atomic values are replaced.
/// A `null` in the configuration clears a scalar.
pub fn merge(live: &Value, config: &Value, ty: Type<'_>) -> Value {
    merge_walk(Some(live), Some(config), ty.0).unwrap_or_else(|| Value::Object(Map::new()))
}

pub(super) fn merge_walk(l: Option<&Value>, r: Option<&Value>, ty: Ty<'_>) -> Option<Value> {
    match shape(l, r) {
        Shape::Map if !map_is_leaf(ty, l, r) => {
            let (lm, rm) = (as_map(l), as_map(r));
            let keys: BTreeSet<&String> = lm.into_iter().chain(rm).flat_map(Map::keys).collect();
            let mut out = Map::new();
            for k in keys {
                let lc = lm.and_then(|m| m.get(k));
                let rc = rm.and_then(|m| m.get(k));
                if rc.is_some_and(Value::is_null)
                    && !matches!(lc, Some(Value::Object(_) | Value::Array(_)))
                {
                    continue;
                }
                if let Some(v) = merge_walk(lc, rc, ty.field(k).1) {
                    out.insert(k.clone(), v);
                }
            }
            Some(Value::Object(out))
        }
        Shape::List if !(empty(l) && empty(r)) => {
            let kind = ty.list();
            if matches!(kind, ListKind::Atomic) {
                return r.or(l).cloned();
            }
            Some(Value::Array(merge_list(
                as_list(l),
                as_list(r),
                &kind,
                ty.item(),
            )))
        }
        _ => r.or(l).cloned(),
    }
}

/// structured-merge-diff's list merge: shared items are merged in place,
/// items only the live object has keep their position, and items only the
/// configuration has follow the configuration's order.
pub(super) fn merge_list(
    lhs: &[Value],
    rhs: &[Value],
    kind: &ListKind,
    item_ty: Ty<'_>,
) -> Vec<Value> {
    let (rhs_pes, observed_rhs) = index_items(rhs, kind);
    let mut lhs_pes = Vec::with_capacity(lhs.len());
    let mut observed_lhs: BTreeMap<PathElement, Option<&Value>> = BTreeMap::new();
    for (i, item) in lhs.iter().enumerate() {
        // Items that cannot be identified never match the configuration.
        let pe = item_element(item, kind).unwrap_or(PathElement::Index(i));
        match observed_lhs.get_mut(&pe) {
            Some(seen) => *seen = None,
            None => {
                observed_lhs.insert(pe.clone(), Some(item));
            }
        }
        lhs_pes.push(pe);
    }
    let mut shared = rhs_pes.iter().filter(|pe| observed_lhs.contains_key(*pe));
    let mut next_shared = shared.next();
    let mut merged_rhs: BTreeSet<&PathElement> = BTreeSet::new();
    let mut out = Vec::with_capacity(lhs.len().max(rhs.len()));
    let merge_item = |l: Option<&Value>, r: Option<&Value>| merge_walk(l, r, item_ty);
    let (mut li, mut ri) = (0, 0);
    while li < lhs_pes.len() || ri < rhs_pes.len() {
        if li < lhs_pes.len() && ri < rhs_pes.len() {
            let pe = &lhs_pes[li];
            if *pe == rhs_pes[ri] {
                merged_rhs.insert(pe);
                let l = observed_lhs.get(pe).copied().flatten();
                out.extend(merge_item(l, observed_rhs.get(pe).copied()));
                li += 1;
                ri += 1;
                next_shared = shared.next();
                continue;
            }
            if observed_rhs.contains_key(pe) && next_shared.is_some_and(|n| n != pe) {
                li += 1;
                continue;
            }
        }
        if li < lhs_pes.len() {
            let pe = &lhs_pes[li];
            if !observed_rhs.contains_key(pe) {
                out.extend(merge_item(Some(&lhs[li]), None));
                li += 1;
                continue;
            } else if merged_rhs.contains(pe) {
                li += 1;
            }
        }
        if ri < rhs_pes.len() {
            let pe = &rhs_pes[ri];
            merged_rhs.insert(pe);
            let l = observed_lhs.get(pe).copied().flatten();
            out.extend(merge_item(l, observed_rhs.get(pe).copied()));
            ri += 1;
            if next_shared == Some(pe) {
                next_shared = shared.next();
            }
        }
    }
    out
}

/// Removes the members of `set` from a value: a member map key or list
/// item goes away with everything below it. Maps and lists emptied this
/// way go away too.
pub fn remove_items(value: &Value, set: &FieldSet, ty: Type<'_>) -> Value {
    remove_walk(value, set, ty.0).unwrap_or_else(|| Value::Object(Map::new()))
}

pub(super) fn remove_walk(v: &Value, set: &FieldSet, ty: Ty<'_>) -> Option<Value> {
    match v {
        Value::Object(m) => {
            if m.is_empty() || ty.atomic_map() {
                return if set.is_empty() {
                    Some(v.clone())
                } else {
                    None
                };
            }
            let mut out = Map::new();
            for (k, cv) in m {
                let pe = PathElement::Field(k.clone());
                match set.nodes.get(&pe) {
                    Some(node) if node.member => {}
                    Some(node) if !node.children.is_empty() => {
                        if let Some(x) = remove_walk(cv, &node.children, ty.field(k).1) {
                            out.insert(k.clone(), x);
                        }
                    }
                    _ => {
                        out.insert(k.clone(), cv.clone());
                    }
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        Value::Array(items) => {
            let kind = ty.list();
            if items.is_empty() || matches!(kind, ListKind::Atomic) {
                return if set.is_empty() {
                    Some(v.clone())
                } else {
                    None
                };
            }
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let Ok(pe) = item_element(item, &kind) else {
                    out.push(item.clone());
                    continue;
                };
                match set.nodes.get(&pe) {
                    Some(node) if node.member => {}
                    Some(node) if !node.children.is_empty() => {
                        out.extend(remove_walk(item, &node.children, ty.item()));
                    }
                    _ => out.push(item.clone()),
                }
            }
            (!out.is_empty()).then_some(Value::Array(out))
        }
        _ => Some(v.clone()),
    }
}
