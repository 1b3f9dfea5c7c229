//! Pure functions on Kubernetes objects represented as `serde_json::Value`,
//! used by the controller engine. Label selectors live in
//! `metacontroller-selectors`.
//!
//! * [`mod@merge`]: Metacontroller's three-way merge (observed, last
//!   applied, desired), with list-maps.
//! * [`last_applied`]: the `metacontroller.k8s.io/last-applied-configuration`
//!   annotation that records what was applied.
//! * [`update`]: the dynamic-apply update of a child (merge against the
//!   annotation, system field and `status` reversion, no-op detection).
//! * [`ssa`]: the clean-up of desired objects for server-side apply.
//! * [`error`]: the error type, [`DynamicApplyError`].
//! * [`owner`]: owner references (controller reference construction, lookup,
//!   adoption and release).
//!
//! The annotation is written with `metacontroller_api::gojson`, so stored
//! annotations compare equal to the ones Metacontroller wrote.
//!
//! This crate deliberately has no HTTP, no I/O and no Kubernetes client, and
//! of the workspace depends only on `metacontroller-api` (names and the Go
//! JSON encoder): everything here takes JSON values in and gives JSON values
//! (or plain data) back, so it can be tested exhaustively with tables.

pub mod error;
mod go_fmt;
pub mod last_applied;
pub mod merge;
pub mod owner;
pub mod ssa;
#[cfg(test)]
mod test_support;
pub mod update;

pub use error::DynamicApplyError;
pub use last_applied::{
    LAST_APPLIED_ANNOTATION, get_last_applied, remove_last_applied, set_last_applied,
};
pub use merge::merge;
pub use owner::{claim_ownership, controller_ref, make_controller_ref};
pub use ssa::sanitize_for_ssa;
pub use update::{apply_update, revert_system_fields};
