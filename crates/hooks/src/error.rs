//! Errors of hook calls and hook client construction.

use std::time::Duration;

use crate::diagnostics::redact_secrets;

/// Longest response body (in bytes) copied into
/// [`HookError::UnexpectedStatus`]; longer bodies are cut at a character
/// boundary and marked as truncated. The text ends up in logs and Events, so
/// it stays short.
pub const MAX_ERROR_BODY_BYTES: usize = 256;

/// Why a hook could not be set up or called.
///
/// Apart from [`HookError::TooManyRequests`] (which asks for a delayed retry),
/// every call error is an ordinary failure of that sync attempt.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HookError {
    /// The endpoint settings cannot be used (bad URL, bad PEM, bad header
    /// value, …). Raised by construction, never by a call.
    #[error("invalid hook configuration: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: String,
    },

    /// The whole request did not finish within the endpoint timeout.
    #[error("hook request to {url} timed out after {timeout:?}")]
    Timeout {
        /// The hook URL (any password removed).
        url: String,
        /// The timeout that fired.
        timeout: Duration,
    },

    /// No TCP connection could be made (refused, unreachable, DNS failure…).
    #[error("cannot connect to hook {url}: {reason}")]
    Connect {
        /// The hook URL (any password removed).
        url: String,
        /// The underlying cause.
        reason: String,
    },

    /// The TLS handshake or session failed (unknown issuer, name mismatch,
    /// client certificate refused, …).
    #[error("TLS error calling hook {url}: {reason}")]
    Tls {
        /// The hook URL (any password removed).
        url: String,
        /// The underlying cause.
        reason: String,
    },

    /// Any other transport failure: connection reset, malformed response,
    /// body read failure, too many redirects…
    #[error("http error calling hook {url}: {reason}")]
    Transport {
        /// The hook URL (any password removed).
        url: String,
        /// The underlying cause.
        reason: String,
    },

    /// The hook answered `429 Too Many Requests`. `retry_after` is the parsed
    /// `Retry-After` header (integer seconds, or an HTTP date relative to the
    /// time of the answer, rounded up to whole seconds, never negative);
    /// `None` when the header was missing or unreadable.
    #[error("{}", too_many_requests_text(*.retry_after))]
    TooManyRequests {
        /// How long to wait before calling again.
        retry_after: Option<Duration>,
    },

    /// The hook answered with a status other than `200` (or a replayable
    /// `304`/`412` in ETag mode). `body` is the response body as text, lossily
    /// decoded, with the client's credentials replaced by `<redacted>`, and
    /// truncated to [`MAX_ERROR_BODY_BYTES`].
    #[error("unsupported status code: {code} body: {body}")]
    UnexpectedStatus {
        /// The HTTP status code.
        code: u16,
        /// The (possibly truncated) response body.
        body: String,
    },
}

impl HookError {
    /// The delay requested by a `429` answer, if this is one and it had a
    /// usable `Retry-After` header.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            HookError::TooManyRequests { retry_after } => *retry_after,
            _ => None,
        }
    }

    /// Whether this is a `429 Too Many Requests` answer.
    pub fn is_too_many_requests(&self) -> bool {
        matches!(self, HookError::TooManyRequests { .. })
    }

    /// Whether this is a timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self, HookError::Timeout { .. })
    }

    /// The hook URL (secrets hidden) when the error text names it.
    pub fn url(&self) -> Option<&str> {
        match self {
            HookError::Timeout { url, .. }
            | HookError::Connect { url, .. }
            | HookError::Tls { url, .. }
            | HookError::Transport { url, .. } => Some(url),
            _ => None,
        }
    }

    /// A short name for the kind of failure, stable across calls that fail
    /// the same way: `timeout`, `connection failed`, `TLS failure`,
    /// `transport failure`, `too many requests`, `invalid configuration` or
    /// `status <code>`.
    pub fn failure_kind(&self) -> String {
        match self {
            HookError::InvalidConfig { .. } => "invalid configuration".to_owned(),
            HookError::Timeout { .. } => "timeout".to_owned(),
            HookError::Connect { .. } => "connection failed".to_owned(),
            HookError::Tls { .. } => "TLS failure".to_owned(),
            HookError::Transport { .. } => "transport failure".to_owned(),
            HookError::TooManyRequests { .. } => "too many requests".to_owned(),
            HookError::UnexpectedStatus { code, .. } => format!("status {code}"),
        }
    }

    /// The HTTP status code the hook answered with, when the error comes from
    /// an answer.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            HookError::TooManyRequests { .. } => Some(429),
            HookError::UnexpectedStatus { code, .. } => Some(*code),
            _ => None,
        }
    }
}

fn too_many_requests_text(retry_after: Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!(
            "hook answered 429 Too Many Requests, retry after {}s",
            d.as_secs()
        ),
        None => "hook answered 429 Too Many Requests without a usable Retry-After".to_owned(),
    }
}

/// Response body as text for errors and logs: lossily decoded, each of
/// `secrets` replaced by `<redacted>`, then cut to [`MAX_ERROR_BODY_BYTES`]
/// at a character boundary.
pub(crate) fn body_for_error(body: &[u8], secrets: &[String]) -> String {
    let text = redact_secrets(&String::from_utf8_lossy(body), secrets);
    if text.len() <= MAX_ERROR_BODY_BYTES {
        return text;
    }
    let mut cut = MAX_ERROR_BODY_BYTES;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{}… [{} more bytes truncated]",
        &text[..cut],
        text.len() - cut
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unexpected_status_text_matches_metacontroller() {
        let e = HookError::UnexpectedStatus {
            code: 500,
            body: "boom".into(),
        };
        assert_eq!(e.to_string(), "unsupported status code: 500 body: boom");
        assert_eq!(e.status_code(), Some(500));
    }

    #[test]
    fn timeout_text_names_url_and_timeout() {
        let e = HookError::Timeout {
            url: "http://h/sync".into(),
            timeout: Duration::from_millis(250),
        };
        assert_eq!(
            e.to_string(),
            "hook request to http://h/sync timed out after 250ms"
        );
    }

    #[test]
    fn too_many_requests_text() {
        let e = HookError::TooManyRequests {
            retry_after: Some(Duration::from_secs(7)),
        };
        assert!(e.to_string().contains("retry after 7s"));
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert!(e.is_too_many_requests());
    }

    #[test]
    fn body_truncation() {
        assert_eq!(body_for_error(b"short", &[]), "short");
        let long = "é".repeat(MAX_ERROR_BODY_BYTES); // 2 bytes each
        let out = body_for_error(long.as_bytes(), &[]);
        assert!(out.len() < MAX_ERROR_BODY_BYTES + 64);
        assert!(out.starts_with("éé"));
        assert!(!out.contains('\u{FFFD}'));
        assert!(out.ends_with(&format!("[{} more bytes truncated]", MAX_ERROR_BODY_BYTES)));
    }

    #[test]
    fn body_secrets_are_removed_before_the_cut() {
        let secret = "t0ken".repeat(60); // longer than the cut
        let body = format!("echo {secret} end");
        let out = body_for_error(body.as_bytes(), std::slice::from_ref(&secret));
        assert_eq!(out, "echo <redacted> end");
    }

    #[test]
    fn failure_kinds_and_urls() {
        let e = HookError::Timeout {
            url: "http://h/sync".into(),
            timeout: Duration::from_secs(1),
        };
        assert_eq!(e.failure_kind(), "timeout");
        assert_eq!(e.url(), Some("http://h/sync"));
        let e = HookError::UnexpectedStatus {
            code: 503,
            body: String::new(),
        };
        assert_eq!(e.failure_kind(), "status 503");
        assert_eq!(e.url(), None);
    }
}
