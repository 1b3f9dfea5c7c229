//! Field management for server-side apply (`metadata.managedFields`).
//!
//! Kubernetes records, for every object, which *field manager* owns which
//! fields, and uses that record to merge applied configurations, to remove
//! fields a manager stops applying, and to detect conflicts between
//! managers. The model is the one of `sigs.k8s.io/structured-merge-diff`:
//!
//! * a [`FieldSet`] is a set of [`FieldPath`]s, each a list of
//!   [`PathElement`]s: a map key (`f:name`), a keyed list item
//!   (`k:{"name":"x"}`), a set item (`v:"x"`) or a list index (`i:0`);
//! * a set is written in the `FieldsV1` encoding: nested JSON objects keyed
//!   by path elements, where `{}` marks a member and `".": {}` marks a node
//!   that is a member and also has members below it;
//! * how a value is split into fields depends on its [`Type`]: maps are
//!   granular unless atomic, lists are atomic unless their schema makes
//!   them sets or lists keyed by some of their items' fields;
//! * [`apply`] merges a configuration into a live object and moves
//!   ownership, [`update`] records the fields a non-apply write changed.
//!
//! Everything here is a pure function over [`serde_json::Value`].

mod apply;
mod conflicts;
mod managers;
mod path;
mod set;
#[cfg(test)]
mod tests;
mod types;
mod walk;

pub use apply::{Applied, ApplyError, apply, strip_meta, update};
pub use conflicts::{Conflict, Conflicts};
pub use managers::{MAX_UPDATE_MANAGERS, ManagedEntry, ManagedFields, ManagerId, Operation};
pub use path::{FieldPath, PathElement, values_equal};
pub use set::FieldSet;
pub use types::Type;
pub use walk::{Comparison, compare, field_set, merge, remove_items};
