//! The error of the dynamic-apply helpers.

use metacontroller_api::LAST_APPLIED_ANNOTATION;

/// Errors of the dynamic-apply helpers (reading and writing the last-applied
/// annotation).
#[derive(Debug, thiserror::Error)]
pub enum DynamicApplyError {
    /// The last-applied annotation is not valid JSON.
    #[error("can't unmarshal {LAST_APPLIED_ANNOTATION:?} annotation: {0}")]
    LastAppliedInvalid(#[source] serde_json::Error),
    /// The last-applied annotation is valid JSON but not an object.
    #[error("can't unmarshal {LAST_APPLIED_ANNOTATION:?} annotation: expected a JSON object")]
    LastAppliedNotObject,
    /// The object (or its `metadata`) is not a JSON object.
    #[error("{0} is not a JSON object")]
    NotAnObject(&'static str),
}
