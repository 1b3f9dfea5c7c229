//! One hook exchange: a request goes out, a typed response comes back.
//!
//! The request is encoded as Go-compatible JSON and sent with the parent's
//! `Kind/namespace/name` as ETag cache key; a 429 answer becomes
//! [`ExchangeError::TooManyRequests`] (with the `Retry-After` delay, one
//! second when there is none); the body is decoded in the hook's response
//! mode, and unknown or repeated fields of a loose-mode answer are logged.
//! A failure names the hook, its URL (secrets hidden), the kind of failure
//! and, for an answer that could not be used, a short snippet of it with
//! the hook's credentials removed.
//! Used alike by the sync, finalize and customize hooks of every controller
//! kind; it knows nothing of controller kinds.

use std::time::{Duration, Instant};

use metacontroller_api::HookVersion;
use metacontroller_api::gojson::to_go_json;
use metacontroller_api::hook_wire::{DecodeError, HookResponse, decode_response};
use metacontroller_hooks::{HookError, HookKind};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::hook_target::ResolvedHook;
use crate::journal;
use crate::object;

/// Delay used when a hook answers 429 without a usable `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Why a hook exchange failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExchangeError {
    /// The hook answered 429: ask again after this delay.
    #[error("hook asked to retry after {:.3}s", .0.as_secs_f64())]
    TooManyRequests(Duration),
    /// The request could not be encoded.
    #[error("can't marshal request: {0}")]
    Encode(#[source] serde_json::Error),
    /// The call failed (transport, timeout, HTTP status). The URL is
    /// shown unless the failure's own text names it.
    #[error(
        "{kind} hook failed ({failure}, version={version}{}): {source}",
        url_unless_named(url, source),
        failure = source.failure_kind()
    )]
    Call {
        /// Which hook.
        kind: HookKind,
        /// Its protocol version.
        version: HookVersion,
        /// Its URL, secrets hidden.
        url: String,
        /// The failure.
        #[source]
        source: HookError,
    },
    /// The answer could not be decoded. The decoding error is kept as text
    /// only, with the hook's credentials removed: it may quote the answer.
    #[error(
        "{kind} hook failed (invalid response, version={version}, url={url}): {detail}; response: {snippet}"
    )]
    Decode {
        /// Which hook.
        kind: HookKind,
        /// Its protocol version.
        version: HookVersion,
        /// Its URL, secrets hidden.
        url: String,
        /// Why the answer could not be decoded, credentials removed.
        detail: String,
        /// The start of the answer, credentials removed.
        snippet: String,
    },
}

fn url_unless_named(url: &str, source: &HookError) -> String {
    if source.url().is_some() {
        String::new()
    } else {
        format!(", url={url}")
    }
}

impl ExchangeError {
    /// The kind of failure, for telling new failures from repeats of old
    /// ones: the hook and how it failed, without the variable details.
    pub fn kind(&self) -> String {
        match self {
            ExchangeError::TooManyRequests(_) => "too many requests".to_owned(),
            ExchangeError::Encode(_) => "request encoding".to_owned(),
            ExchangeError::Call { kind, source, .. } => {
                format!("{kind} hook {}", source.failure_kind())
            }
            ExchangeError::Decode { kind, .. } => format!("{kind} hook invalid response"),
        }
    }
}

/// Sends `request` about `parent` to `hook` and decodes its answer.
/// `controller` names the hosted controller in logs.
pub(crate) async fn exchange<T: HookResponse>(
    hook: &ResolvedHook,
    request: &impl Serialize,
    parent: &Value,
    controller: &str,
) -> Result<T, ExchangeError> {
    let body = to_go_json(request).map_err(ExchangeError::Encode)?;
    let cache_key = format!(
        "{}/{}/{}",
        object::kind(parent),
        object::namespace(parent).unwrap_or_default(),
        object::name(parent)
    );
    let (kind, version) = (hook.kind, hook.version);
    let watched = journal::scope::watching().then(|| (body.clone(), Instant::now()));
    let answer = hook.client.call(body, Some(&cache_key)).await;
    if let Some((request, sent)) = watched {
        journal::scope::hook_call(hook, &request, &answer, sent.elapsed());
    }
    let bytes = answer.map_err(|err| match err {
        HookError::TooManyRequests { retry_after } => {
            ExchangeError::TooManyRequests(retry_after.unwrap_or(DEFAULT_RETRY_AFTER))
        }
        source => ExchangeError::Call {
            kind,
            version,
            url: hook.client.url().to_owned(),
            source,
        },
    })?;
    let decoded = decode_response::<T>(&bytes, hook.mode).map_err(|err: DecodeError| {
        ExchangeError::Decode {
            kind,
            version,
            url: hook.client.url().to_owned(),
            detail: hook.client.redact(&err.to_string()),
            snippet: hook.client.snippet(&bytes),
        }
    })?;
    if !decoded.issues.is_empty() {
        let issues: Vec<String> = decoded.issues.iter().map(ToString::to_string).collect();
        tracing::debug!(controller = %controller, hook = kind.as_str(), issues = %issues.join(", "), "hook response has unknown or repeated fields (loose mode)");
    }
    Ok(decoded.response)
}

/// Normalises the numbers of a sync or finalize answer's objects and status
/// as Go's decoding would (see [`object::normalize_numbers`]).
pub(crate) fn normalize(objects: &mut [Value], status: &mut Option<Map<String, Value>>) {
    objects.iter_mut().for_each(object::normalize_numbers);
    if let Some(status) = status {
        status.values_mut().for_each(object::normalize_numbers);
    }
}

/// The hook a sync calls for `obj` and whether it is finalizing: the
/// `finalize` hook, when there is one, while `obj` is being deleted or no
/// longer `selected`; the `sync` hook otherwise.
pub(crate) fn pick<'a>(
    sync: Option<&'a ResolvedHook>,
    finalize: Option<&'a ResolvedHook>,
    obj: &Value,
    selected: bool,
) -> (Option<&'a ResolvedHook>, bool) {
    if finalize.is_some() && (object::is_deleting(obj) || !selected) {
        (finalize, true)
    } else {
        (sync, false)
    }
}
