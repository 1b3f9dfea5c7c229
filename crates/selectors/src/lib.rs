//! # metacontroller-selectors
//!
//! Kubernetes label selectors as pure functions: the string form
//! (`a=b,c in (x,y),!d`), the structured `metav1.LabelSelector` form and the
//! DecoratorController annotation selector, all compiled into one
//! [`Selector`] with one matcher, and Kubernetes' validation of label keys
//! and values with its error wording.
//!
//! * [`mod@selector`]: [`Selector`], its constructors, matching and canonical
//!   string form; [`structured`] compiles the JSON forms.
//! * [`requirement`]: one condition, `key <operator> values`
//!   ([`Requirement`], [`Operator`]).
//! * [`labels`]: what a selector matches against ([`Labels`]), and the
//!   labels and annotations of an object.
//! * [`validation`]: label key and value syntax.
//! * [`error`]: [`SelectorError`] and [`InvalidField`].
//! * The string form's lexer and parser are private.
//!
//! Behaviour follows `k8s.io/apimachinery/pkg/labels/selector.go` (`Parse`,
//! `NewRequirement`, `Requirement.Matches`, `String`),
//! `k8s.io/apimachinery/pkg/apis/meta/v1/helpers.go`
//! (`LabelSelectorAsSelector`) and
//! `k8s.io/apimachinery/pkg/api/validate/content/kube.go` (key and value
//! syntax).
//!
//! The crate is pure: JSON values and strings in, plain data out; no I/O,
//! no Kubernetes client, no other crate of the workspace. Both the
//! controller engine (parent, child and decorator selectors) and the
//! embedded API server (`labelSelector` on lists and watches, scale
//! subresources) use it.

pub mod error;
pub mod labels;
mod lexer;
mod parser;
pub mod requirement;
pub mod selector;
pub mod structured;
#[cfg(test)]
mod test_support;
pub mod validation;

pub use error::{InvalidField, SelectorError};
pub use labels::{Labels, object_annotations, object_labels};
pub use requirement::{Operator, Requirement};
pub use selector::Selector;
pub use validation::{
    DNS1123_SUBDOMAIN_MAX_LENGTH, LABEL_MAX_LENGTH, label_key_errors, label_value_errors,
};
