//! # metacontroller-api
//!
//! The Metacontroller API (`metacontroller.k8s.io/v1alpha1`) and the hook
//! wire protocol (versions `v1` and `v2`), as plain data types.
//!
//! * [`v1alpha1`] — the [`CompositeController`], [`DecoratorController`] and
//!   [`ControllerRevision`] custom resources with every field of
//!   Metacontroller's Go API, plus accessors for the defaults Metacontroller
//!   applies at runtime ([`Hook::version`], [`Hook::response_unmarshall_mode`],
//!   [`Webhook::effective_timeout`], [`ChildUpdateMethod`] default `OnDelete`, ...).
//! * [`crd`] — the CustomResourceDefinitions generated from those types
//!   ([`crds`], [`crds_yaml`]); the same YAML is checked in at
//!   `manifests/metacontroller-crds-v1.yaml`.
//! * [`hook_wire`] — the wire format of hook calls: request and response
//!   bodies of the `sync`, `finalize` and `customize` hooks, the
//!   `Kind.apiVersion` object maps with their per-version keys, and
//!   loose/strict response decoding.
//! * [`gojson`] — JSON text byte-for-byte as Go's `encoding/json` writes it
//!   (hook requests, the last-applied annotation).
//! * [`duration`] — Go duration strings (`10s`, `1m30s`, `500ms`).
//! * [`constants`] — annotation, label and finalizer names.
//!
//! The crate does no HTTP and no I/O, and depends on no other crate of this
//! workspace.

pub mod constants;
pub mod crd;
pub mod duration;
pub mod gojson;
pub mod hook_wire;
pub mod v1alpha1;

pub use constants::{
    API_VERSION, COMPOSITE_FINALIZER_PREFIX, CONTROLLER_UID_LABEL, DECORATOR_CONTROLLER_ANNOTATION,
    DECORATOR_FINALIZER_PREFIX, GROUP, LAST_APPLIED_ANNOTATION, REVISION_API_GROUP_LABEL,
    REVISION_RESOURCE_LABEL, VERSION, composite_finalizer, decorator_finalizer,
};
pub use crd::{crds, crds_yaml};
pub use duration::{DEFAULT_HOOK_TIMEOUT, DurationError, GoDuration};
pub use v1alpha1::*;
