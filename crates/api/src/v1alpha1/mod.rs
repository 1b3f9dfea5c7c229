//! `metacontroller.k8s.io/v1alpha1`: CompositeController, DecoratorController
//! and ControllerRevision.
//!
//! Field names, optionality and JSON shapes follow Metacontroller's Go API.
//! Optional fields are `Option`s that are left out when `None`, so an object
//! read from the cluster serializes back to the same JSON. Defaults that
//! Metacontroller applies at runtime are exposed as accessor methods
//! (for example [`Hook::version`], [`ChildUpdateMethod::default`]) rather than
//! being written into the structs.

mod composite;
mod crd_schema;
mod decorator;
mod hook_config;
mod hooked;
mod related;
mod revision;
#[cfg(test)]
mod tests;

pub use composite::*;
pub use decorator::*;
pub use hook_config::*;
pub use hooked::*;
pub use related::*;
pub use revision::*;
