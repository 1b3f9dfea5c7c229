//! [`SyncError`]: why the sync of one parent or target failed, and how the
//! worker loop retries it.
//!
//! Shared by every controller kind and by the `customize` support; it
//! depends only on the engine's lower layers (requests, child management,
//! related objects, hook exchange), never on a controller kind.

use std::time::Duration;

use metacontroller_selectors::SelectorError;

use crate::children::ChildErrors;
use crate::customize::RelatedError;
use crate::dynapi::RequestError;
use crate::hosted::claim::ClaimErrors;
use crate::hosted::exchange::ExchangeError;

/// Outcome of a failed sync. The worker loop retries each variant in its
/// own way; only [reported](SyncError::is_reported) failures become
/// `SyncError` events.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SyncError {
    /// A hook answered 429: retry after this delay, without back-off.
    #[error("hook asked to retry after {:.3}s", .0.as_secs_f64())]
    TooManyRequests(Duration),
    /// Related objects are not cached yet: retried with back-off, without
    /// an event.
    #[error("related objects are not cached yet")]
    NotReady,
    /// The sync was put off until the cache shows the children the last one
    /// created (see [`crate::hosted::expectations`]): neither retried nor
    /// reported, nor a success; their events, or the expectations' timeout,
    /// queue the object again.
    #[error("waiting for the cache to show the children the last sync created")]
    Deferred,
    /// A write the sync meant to make lost to a newer version (409) even
    /// after re-reading the object: retried with back-off, without an event.
    /// The newer version usually brings a sync of its own, but nothing
    /// guarantees it (a conflict injected by a proxy, or one whose watch
    /// event was already seen), and a sync that did not write what it meant
    /// to must not be left for good.
    #[error("{what}: {source}")]
    Conflict {
        /// What was not written.
        what: String,
        /// The 409.
        #[source]
        source: RequestError,
    },
    /// A request to the API server failed.
    #[error("{what}: {source}")]
    Request {
        /// What the request was for.
        what: String,
        /// The failure.
        #[source]
        source: RequestError,
    },
    /// A hook call failed (429 answers become [`SyncError::TooManyRequests`]).
    #[error(transparent)]
    Hook(ExchangeError),
    /// The parent, the queue key or the hook's answer breaks a rule; there is
    /// no lower error.
    #[error("{0}")]
    Invalid(String),
    /// A selector could not be built.
    #[error("{what}: {source}")]
    Selector {
        /// Which selector.
        what: String,
        /// Why.
        #[source]
        source: SelectorError,
    },
    /// Children (or attachments, or ControllerRevisions) could not be
    /// claimed.
    #[error("{what}: {source}")]
    Claim {
        /// What was being claimed.
        what: String,
        /// Every failed adoption or release.
        #[source]
        source: ClaimErrors,
    },
    /// Children could not be brought to the desired state.
    #[error("{what}: {source}")]
    Children {
        /// Whose children.
        what: String,
        /// Every failed operation.
        #[source]
        source: ChildErrors,
    },
    /// Related objects could not be selected.
    #[error(transparent)]
    Related(RelatedError),
    /// A failure particular to one controller kind.
    #[error(transparent)]
    Kind(Box<dyn std::error::Error + Send + Sync>),
    /// A failure, with what the sync was doing.
    #[error("{context}: {source}")]
    Context {
        /// What the sync was doing.
        context: String,
        /// The failure.
        #[source]
        source: Box<SyncError>,
    },
}

impl SyncError {
    /// Whether the failure is reported as a `SyncError` event (and logged as
    /// a warning); the others are expected on the way to a sync that works.
    pub fn is_reported(&self) -> bool {
        !matches!(
            self,
            SyncError::TooManyRequests(_)
                | SyncError::NotReady
                | SyncError::Deferred
                | SyncError::Conflict { .. }
        )
    }

    /// The kind of failure, without its variable details: what tells a new
    /// failure from a repeat of an old one when Events are rate-limited.
    pub fn kind(&self) -> String {
        match self {
            SyncError::TooManyRequests(_) => "too many requests".to_owned(),
            SyncError::NotReady => "not ready".to_owned(),
            SyncError::Deferred => "deferred".to_owned(),
            SyncError::Conflict { what, .. } => format!("conflict: {what}"),
            SyncError::Request { what, .. } => format!("API request: {what}"),
            SyncError::Hook(err) => err.kind(),
            SyncError::Invalid(_) => "invalid".to_owned(),
            SyncError::Selector { what, .. } => format!("selector: {what}"),
            SyncError::Claim { what, .. } => format!("claim: {what}"),
            SyncError::Children { what, .. } => format!("children: {what}"),
            SyncError::Related(_) => "related objects".to_owned(),
            SyncError::Kind(_) => "controller".to_owned(),
            SyncError::Context { source, .. } => source.kind(),
        }
    }

    /// Adds what the sync was doing to a reported failure; the other
    /// outcomes pass through unchanged (their handling depends on them).
    pub fn context(self, context: impl FnOnce() -> String) -> SyncError {
        if self.is_reported() {
            SyncError::Context {
                context: context(),
                source: Box::new(self),
            }
        } else {
            self
        }
    }
}

impl From<ExchangeError> for SyncError {
    fn from(err: ExchangeError) -> Self {
        match err {
            ExchangeError::TooManyRequests(delay) => SyncError::TooManyRequests(delay),
            other => SyncError::Hook(other),
        }
    }
}

impl From<RelatedError> for SyncError {
    fn from(err: RelatedError) -> Self {
        match err {
            RelatedError::NotReady => SyncError::NotReady,
            RelatedError::Hook(err) => err.into(),
            other => SyncError::Related(other),
        }
    }
}
