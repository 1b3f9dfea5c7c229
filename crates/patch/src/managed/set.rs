//! [`FieldSet`]: a set of field paths, its algebra and its `FieldsV1`
//! encoding (structured-merge-diff's `fieldpath.Set`).

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

use super::path::{FieldPath, PathElement};
use super::types::Ty;

/// A set of field paths, stored as a tree. A node is a *member* when its
/// own path is in the set; it may also have members below it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSet {
    pub(super) nodes: BTreeMap<PathElement, SetNode>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct SetNode {
    pub(super) member: bool,
    pub(super) children: FieldSet,
}

impl SetNode {
    fn is_empty(&self) -> bool {
        !self.member && self.children.is_empty()
    }
}

impl FieldSet {
    /// The empty set.
    pub fn new() -> Self {
        FieldSet::default()
    }

    /// The set of the given paths.
    pub fn from_paths<I: IntoIterator<Item = FieldPath>>(paths: I) -> Self {
        let mut s = FieldSet::new();
        for p in paths {
            s.insert(&p.0);
        }
        s
    }

    /// Whether the set has no member at all.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Adds a path. The empty path (the whole object) is never tracked.
    pub fn insert(&mut self, path: &[PathElement]) {
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        let node = self.nodes.entry(first.clone()).or_default();
        if rest.is_empty() {
            node.member = true;
        } else {
            node.children.insert(rest);
        }
    }

    /// Whether `path` is a member.
    pub fn has(&self, path: &[PathElement]) -> bool {
        let Some((first, rest)) = path.split_first() else {
            return false;
        };
        match self.nodes.get(first) {
            Some(node) if rest.is_empty() => node.member,
            Some(node) => node.children.has(rest),
            None => false,
        }
    }

    /// The members below `pe`, relative to it.
    pub fn child(&self, pe: &PathElement) -> Option<&FieldSet> {
        self.nodes.get(pe).map(|n| &n.children)
    }

    pub(super) fn put(&mut self, pe: PathElement, node: SetNode) {
        if !node.is_empty() {
            self.nodes.insert(pe, node);
        }
    }

    /// Members of either set.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        for (pe, node) in &other.nodes {
            match out.nodes.get_mut(pe) {
                Some(mine) => {
                    mine.member |= node.member;
                    mine.children = mine.children.union(&node.children);
                }
                None => {
                    out.nodes.insert(pe.clone(), node.clone());
                }
            }
        }
        out
    }

    /// Members of both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        for (pe, node) in &self.nodes {
            if let Some(theirs) = other.nodes.get(pe) {
                out.put(
                    pe.clone(),
                    SetNode {
                        member: node.member && theirs.member,
                        children: node.children.intersection(&theirs.children),
                    },
                );
            }
        }
        out
    }

    /// Members of `self` that are not members of `other`. Removing a member
    /// does not remove what lies below it (see
    /// [`FieldSet::recursive_difference`]).
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        for (pe, node) in &self.nodes {
            match other.nodes.get(pe) {
                Some(theirs) => out.put(
                    pe.clone(),
                    SetNode {
                        member: node.member && !theirs.member,
                        children: node.children.difference(&theirs.children),
                    },
                ),
                None => out.put(pe.clone(), node.clone()),
            }
        }
        out
    }

    /// Like [`FieldSet::difference`], but a member of `other` also removes
    /// everything below it.
    pub fn recursive_difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        for (pe, node) in &self.nodes {
            match other.nodes.get(pe) {
                Some(theirs) if theirs.member => {}
                Some(theirs) => out.put(
                    pe.clone(),
                    SetNode {
                        member: node.member,
                        children: node.children.recursive_difference(&theirs.children),
                    },
                ),
                None => out.put(pe.clone(), node.clone()),
            }
        }
        out
    }

    /// Every member, in structured-merge-diff's order: the members of a
    /// level first, then the levels below.
    pub fn paths(&self) -> Vec<FieldPath> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<FieldPath>) {
        for (pe, node) in &self.nodes {
            if node.member {
                let mut p = prefix.clone();
                p.push(pe.clone());
                out.push(FieldPath(p));
            }
        }
        for (pe, node) in &self.nodes {
            if !node.children.is_empty() {
                prefix.push(pe.clone());
                node.children.collect_paths(prefix, out);
                prefix.pop();
            }
        }
    }

    /// The `FieldsV1` encoding of the set.
    pub fn to_fields_v1(&self) -> Value {
        let mut out = Map::new();
        for (pe, node) in &self.nodes {
            let mut inner = match node.children.to_fields_v1() {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            if node.member && !inner.is_empty() {
                inner.insert(".".into(), Value::Object(Map::new()));
            }
            out.insert(pe.encode(), Value::Object(inner));
        }
        Value::Object(out)
    }

    /// Parses the `FieldsV1` encoding of a set.
    pub fn from_fields_v1(v: &Value) -> Result<FieldSet, String> {
        let Value::Object(m) = v else {
            return Err("a FieldsV1 value must be a JSON object".into());
        };
        let mut out = FieldSet::new();
        for (k, child) in m {
            if k == "." {
                continue;
            }
            let pe = PathElement::decode(k)?;
            let Value::Object(cm) = child else {
                return Err(format!("the value of {k:?} must be a JSON object"));
            };
            let member = cm.is_empty() || cm.contains_key(".");
            let children = FieldSet::from_fields_v1(child)?;
            out.put(pe, SetNode { member, children });
        }
        Ok(out)
    }

    /// Makes every declared field that has members below it a member
    /// itself, so that removing the set removes emptied parents too
    /// (structured-merge-diff's `EnsureNamedFieldsAreMembers`).
    pub(super) fn ensure_named_fields(&self, ty: Ty<'_>) -> FieldSet {
        let mut out = FieldSet::new();
        for (pe, node) in &self.nodes {
            let (declared, child_ty) = match pe {
                PathElement::Field(name) => ty.field(name),
                _ => (false, ty.item()),
            };
            out.put(
                pe.clone(),
                SetNode {
                    member: node.member || (declared && matches!(pe, PathElement::Field(_))),
                    children: node.children.ensure_named_fields(child_ty),
                },
            );
        }
        out
    }
}

impl fmt::Display for FieldSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.paths().iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}
