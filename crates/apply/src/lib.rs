//! Pure functions on Kubernetes objects represented as `serde_json::Value`,
//! used by the controller engine. Label selectors live in
//! `metacontroller-selectors`.
//!
//! * [`mod@merge`]: Metacontroller's dynamic apply (three-way merge against the
//!   `metacontroller.k8s.io/last-applied-configuration` annotation, system
//!   field and `status` reversion, no-op detection) and the clean-up of
//!   desired objects for server-side apply.
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

mod go_fmt;
pub mod merge;
pub mod owner;

pub use merge::{
    DynamicApplyError, LAST_APPLIED_ANNOTATION, apply_update, get_last_applied, merge,
    revert_system_fields, sanitize_for_ssa, set_last_applied,
};
pub use owner::{claim_ownership, controller_ref, make_controller_ref};
