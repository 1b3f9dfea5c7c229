//! Why a render step failed.

use crate::hosted::SyncError;

/// Why a render step failed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The controller's spec can't be used.
    #[error("invalid controller: {0}")]
    Controller(String),
    /// A resource type is not in the catalog.
    #[error("unknown resource {resource} in apiVersion {api_version}")]
    UnknownResource {
        /// Its apiVersion.
        api_version: String,
        /// Its plural name.
        resource: String,
    },
    /// The parent or a hook answer fails the engine's checks (the sync
    /// would fail with this error).
    #[error("{0}")]
    Sync(String),
    /// A related-resource rule of the customize answer is invalid.
    #[error("related rule for {api_version}/{resource}: {reason}")]
    Related {
        /// The rule's apiVersion.
        api_version: String,
        /// The rule's resource.
        resource: String,
        /// Why.
        reason: String,
    },
    /// A request could not be encoded.
    #[error("can't marshal request: {0}")]
    Encode(#[source] serde_json::Error),
    /// A hook answer could not be decoded.
    #[error("invalid response: {0}")]
    Decode(#[source] metacontroller_api::hook_wire::DecodeError),
}

impl From<SyncError> for RenderError {
    fn from(err: SyncError) -> Self {
        RenderError::Sync(err.to_string())
    }
}
