//! Which desired children (or attachments) a parent can own, and as what
//! type.
//!
//! [`resolve`] finds a desired object's type among the controller's rules
//! (the same apiVersion and kind, else discovery, where a declared group and
//! kind at another version takes that rule's update method) and applies
//! [`refusal`]; CompositeController children and DecoratorController
//! attachments go through it alike.
//!
//! A hook may answer with an object the controller could create but never
//! manage. Metacontroller creates it anyway, silently; this engine refuses
//! it, and the sync reports the refusal (a `SyncError` Warning Event on the
//! parent naming the child and the rule) while the other children are still
//! managed. The rules:
//!
//! 1. **Undeclared kind.** Children are observed only through the caches of
//!    the kinds declared in `childResources` (`attachments` for a
//!    DecoratorController); a child of any other kind would be created and
//!    then never seen again: never updated, never deleted, its status never
//!    reported. A declared group and kind at another version is accepted.
//! 2. **Another namespace.** Owner references do not cross namespaces: the
//!    garbage collector treats an owner in another namespace as absent and
//!    deletes the dependent at once, so a namespaced parent's namespaced
//!    children must live in its own namespace
//!    (<https://kubernetes.io/docs/concepts/overview/working-with-objects/owners-dependents/>).
//! 3. **Cluster-scoped child of a namespaced parent.** A cluster-scoped
//!    dependent may only have cluster-scoped owners (same page); the garbage
//!    collector would delete it as well.
//! 4. **Namespace on a cluster-scoped kind.** A child of a cluster-scoped
//!    kind that names a namespace is a mistake in the hook: it is refused
//!    rather than guessed at.
//!
//! An empty namespace on a namespaced child means the parent's namespace and
//! is filled in before these rules apply.

use metacontroller_api::ChildUpdateMethod;
use serde_json::Value;

use crate::discovery::{ResourceInfo, ResourceMap};
use crate::object;

/// Why a desired child (or attachment) is not managed.
#[derive(Debug, thiserror::Error)]
pub enum OwnershipError {
    /// Discovery does not know its kind.
    #[error("discovery: can't find kind {kind} in apiVersion {api_version}")]
    Unknown {
        /// The kind.
        kind: String,
        /// Its apiVersion.
        api_version: String,
    },
    /// The parent can't own it (see [`refusal`]).
    #[error("refused desired {noun} {what}: {why}")]
    Refused {
        /// `child` or `attachment`.
        noun: String,
        /// The object.
        what: String,
        /// Why.
        why: String,
    },
}

/// The type and update method of `desired` (of `api_version` and `kind`),
/// owned by `parent`, among `rules` (each declared type and its update
/// method). `noun` names the object in errors ("child", "attachment").
/// An error when discovery doesn't know the kind or [`refusal`] refuses it.
pub async fn resolve<'a, R>(
    rules: R,
    resources: &ResourceMap,
    parent: &Value,
    desired: &Value,
    noun: &str,
) -> Result<(ResourceInfo, ChildUpdateMethod), OwnershipError>
where
    R: Iterator<Item = (&'a ResourceInfo, ChildUpdateMethod)> + Clone,
{
    let api_version = object::api_version(desired);
    let kind = object::kind(desired);
    let exact = rules
        .clone()
        .any(|(info, _)| info.kind() == kind && info.api_version() == api_version);
    let found = if exact {
        None
    } else {
        resources.resolve_kind(api_version, kind).await
    };
    decide(rules, found, parent, desired, noun)
}

/// [`resolve`] once the kind is looked up: `found` is what discovery knows
/// of `desired`'s kind (only needed when no rule names its exact
/// apiVersion and kind).
pub fn decide<'a, R>(
    rules: R,
    found: Option<ResourceInfo>,
    parent: &Value,
    desired: &Value,
    noun: &str,
) -> Result<(ResourceInfo, ChildUpdateMethod), OwnershipError>
where
    R: Iterator<Item = (&'a ResourceInfo, ChildUpdateMethod)> + Clone,
{
    let api_version = object::api_version(desired);
    let kind = object::kind(desired);
    let exact = rules
        .clone()
        .find(|(info, _)| info.kind() == kind && info.api_version() == api_version);
    let (info, method, declared) = match exact {
        Some((info, method)) => (info.clone(), method, true),
        None => {
            let Some(info) = found else {
                return Err(OwnershipError::Unknown {
                    kind: kind.to_owned(),
                    api_version: api_version.to_owned(),
                });
            };
            // The same group and kind at another version is still declared.
            let rule = rules
                .clone()
                .find(|(rule, _)| rule.kind() == kind && rule.group() == info.group());
            let method = rule.map(|(_, m)| m).unwrap_or_default();
            (info, method, rule.is_some())
        }
    };
    match refusal(parent, desired, info.namespaced, declared) {
        Some(why) => Err(OwnershipError::Refused {
            noun: noun.to_owned(),
            what: object::describe(desired),
            why,
        }),
        None => Ok((info, method)),
    }
}

/// Why `child` (whose kind is `child_namespaced` or not, and `declared` in
/// the controller's rules or not) can't be owned by `parent`; `None` when
/// it can.
pub fn refusal(
    parent: &Value,
    child: &Value,
    child_namespaced: bool,
    declared: bool,
) -> Option<String> {
    let kind = object::kind(child);
    if !declared {
        return Some(format!(
            "{kind} is not among the controller's child resources, so it would never be observed"
        ));
    }
    let parent_ns = object::namespace(parent).filter(|ns| !ns.is_empty());
    let child_ns = object::namespace(child).filter(|ns| !ns.is_empty());
    match (child_namespaced, parent_ns, child_ns) {
        (true, Some(parent_ns), Some(child_ns)) if parent_ns != child_ns => Some(format!(
            "it is in namespace {child_ns:?} but its parent is in {parent_ns:?}; owner references don't cross namespaces, so the garbage collector would delete it"
        )),
        (false, Some(parent_ns), _) => Some(format!(
            "{kind} is cluster-scoped and can't be owned by a parent in namespace {parent_ns:?}; the garbage collector would delete it"
        )),
        (false, None, Some(child_ns)) => Some(format!(
            "{kind} is cluster-scoped but the child names namespace {child_ns:?}"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(kind: &str, ns: Option<&str>) -> Value {
        let mut v = json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": "x"}});
        if let Some(ns) = ns {
            v["metadata"]["namespace"] = json!(ns);
        }
        v
    }

    #[test]
    fn rules() {
        let ns_parent = obj("Parent", Some("a"));
        let cluster_parent = obj("Parent", None);
        // (parent, child, child namespaced, declared, refused)
        let cases = [
            (&ns_parent, obj("ConfigMap", Some("a")), true, true, false),
            (&ns_parent, obj("ConfigMap", Some("b")), true, true, true),
            (&ns_parent, obj("ConfigMap", Some("a")), true, false, true),
            (&ns_parent, obj("ClusterRole", None), false, true, true),
            (&ns_parent, obj("ClusterRole", Some("a")), false, true, true),
            (
                &cluster_parent,
                obj("ConfigMap", Some("b")),
                true,
                true,
                false,
            ),
            (
                &cluster_parent,
                obj("ClusterRole", None),
                false,
                true,
                false,
            ),
            (
                &cluster_parent,
                obj("ClusterRole", Some("b")),
                false,
                true,
                true,
            ),
            (&cluster_parent, obj("Secret", Some("b")), true, false, true),
        ];
        for (parent, child, namespaced, declared, refused) in cases {
            let got = refusal(parent, &child, namespaced, declared);
            assert_eq!(
                got.is_some(),
                refused,
                "parent {parent} child {child} namespaced {namespaced} declared {declared}: {got:?}"
            );
        }
    }

    #[test]
    fn messages_name_the_rule() {
        let parent = obj("Parent", Some("a"));
        let msg = refusal(&parent, &obj("ConfigMap", Some("b")), true, true).unwrap();
        assert!(msg.contains("\"b\"") && msg.contains("\"a\""), "{msg}");
        let msg = refusal(&parent, &obj("Secret", Some("a")), true, false).unwrap();
        assert!(msg.contains("Secret is not among"), "{msg}");
    }
}
