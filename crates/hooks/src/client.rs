//! The hook client: one configured endpoint, callable concurrently.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, ETAG, HeaderValue, IF_NONE_MATCH, RETRY_AFTER};

use crate::diagnostics::{
    BODY_TARGET, HEADERS_TARGET, authorization_secrets, error_chain, is_tls_error, redact_secrets,
    redact_url, show_headers, url_secrets,
};
use crate::endpoint::DEFAULT_TIMEOUT;
use crate::error::body_for_error;
use crate::etag::{CachedResponse, EtagCache};
use crate::pool::{TlsKey, shared_client};
use crate::retry_after::parse_retry_after;
use crate::{HookEndpoint, HookError, HookMetricsHandle};

/// A client for one hook endpoint.
///
/// Cheap to clone (clones share the ETag cache and the connection pool).
/// Clients whose endpoints have the same TLS setup (CA bundle and client
/// certificate) share one connection pool process-wide, so hooks on the same
/// server reuse keep-alive connections.
#[derive(Clone)]
pub struct HookClient {
    inner: Arc<Inner>,
    metrics: Option<HookMetricsHandle>,
}

struct Inner {
    http: Arc<reqwest::Client>,
    url: reqwest::Url,
    /// `url` with any password removed, for errors and logs.
    display_url: String,
    timeout: Duration,
    authorization: Option<HeaderValue>,
    /// What must be removed from response text before it is shown (the
    /// authorization value and the credentials within it).
    secrets: Vec<String>,
    etag: Option<EtagCache>,
}

impl fmt::Debug for HookClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookClient")
            .field("url", &self.inner.display_url)
            .field("timeout", &self.inner.timeout)
            .field(
                "authorization",
                &self.inner.authorization.as_ref().map(|_| "<redacted>"),
            )
            .field("etag", &self.inner.etag.is_some())
            .field("metrics", &self.metrics)
            .finish()
    }
}

impl HookClient {
    /// Validates `endpoint` and prepares a client for it.
    ///
    /// Fails with [`HookError::InvalidConfig`] for a URL that is not
    /// `http(s)://`, unusable PEM data or an `authorization` value that is not
    /// a valid header value. A zero timeout is replaced by
    /// [`DEFAULT_TIMEOUT`](crate::DEFAULT_TIMEOUT).
    pub fn new(endpoint: HookEndpoint) -> Result<Self, HookError> {
        let HookEndpoint {
            url,
            timeout,
            ca_bundle_pem,
            client_cert_pem,
            authorization,
            etag,
        } = endpoint;

        let display_url = redact_url(&url);
        let url = reqwest::Url::parse(&url).map_err(|e| HookError::InvalidConfig {
            reason: format!("invalid hook URL {display_url:?}: {e}"),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(HookError::InvalidConfig {
                reason: format!(
                    "hook URL {display_url:?} must use http or https, not {:?}",
                    url.scheme()
                ),
            });
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(HookError::InvalidConfig {
                reason: format!("hook URL {display_url:?} has no host"),
            });
        }

        let mut secrets = authorization
            .as_ref()
            .map(|secret| authorization_secrets(secret.expose_secret()))
            .unwrap_or_default();
        secrets.extend(url_secrets(&url));
        // Longest first, so that a secret inside another is not cut apart.
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        let authorization = authorization
            .map(|secret| {
                HeaderValue::from_str(secret.expose_secret())
                    .map(|mut v| {
                        v.set_sensitive(true);
                        v
                    })
                    .map_err(|_| HookError::InvalidConfig {
                        reason: "authorization value is not a valid HTTP header value".to_owned(),
                    })
            })
            .transpose()?;

        let http = shared_client(&TlsKey {
            ca_bundle_pem,
            client_cert_pem,
        })?;

        Ok(Self {
            inner: Arc::new(Inner {
                http,
                url,
                display_url,
                timeout: if timeout.is_zero() {
                    DEFAULT_TIMEOUT
                } else {
                    timeout
                },
                authorization,
                secrets,
                etag: etag.map(EtagCache::new),
            }),
            metrics: None,
        })
    }

    /// This client, recording its calls in `metrics`.
    pub fn with_metrics(mut self, metrics: HookMetricsHandle) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The hook URL, with any password in it replaced.
    pub fn url(&self) -> &str {
        &self.inner.display_url
    }

    /// The whole-request timeout in force.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// `body` (a hook's answer) as text fit for errors, logs and Events:
    /// lossily decoded, this client's credentials replaced by `<redacted>`
    /// (a hook may echo the request headers) and cut to
    /// [`MAX_ERROR_BODY_BYTES`](crate::MAX_ERROR_BODY_BYTES).
    pub fn snippet(&self, body: &[u8]) -> String {
        body_for_error(body, &self.inner.secrets)
    }

    /// `text` with this client's credentials replaced by `<redacted>`: for
    /// any text derived from a hook's answer (a decoding error may quote
    /// it) before it is shown.
    pub fn redact(&self, text: &str) -> String {
        redact_secrets(text, &self.inner.secrets)
    }

    /// Whether ETag caching is enabled for this hook.
    pub fn etag_enabled(&self) -> bool {
        self.inner.etag.is_some()
    }

    /// Forgets the cached response for `cache_key` (e.g. once the root object
    /// is gone). Does nothing when ETag caching is off.
    pub fn evict_cached(&self, cache_key: &str) {
        if let Some(cache) = &self.inner.etag {
            cache.remove(cache_key);
        }
    }

    /// POSTs `body` (a JSON document) to the hook with
    /// `Content-Type: application/json` and returns the response body of a
    /// `200 OK`.
    ///
    /// `cache_key` identifies the root object of the request (e.g.
    /// `kind/namespace/name`); it is only used when ETag caching is enabled,
    /// and without it the call is not cached. With a live cache entry the
    /// request carries `If-None-Match`, and a `304` or `412` answer returns the
    /// cached body.
    ///
    /// The whole exchange is bounded by the endpoint timeout. There are no
    /// retries.
    pub async fn call(&self, body: Vec<u8>, cache_key: Option<&str>) -> Result<Bytes, HookError> {
        let inner = &*self.inner;
        let etag = inner.etag.as_ref().zip(cache_key);
        let cached = etag.and_then(|(cache, key)| cache.get(key, Instant::now()));

        tracing::trace!(
            target: BODY_TARGET,
            verb = "POST",
            url = %inner.display_url,
            object = cache_key.unwrap_or_default(),
            body = %redact_secrets(&String::from_utf8_lossy(&body), &inner.secrets),
            "hook request body"
        );
        let mut request = inner
            .http
            .post(inner.url.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(body);
        if let Some(auth) = &inner.authorization {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        if let Some(hit) = &cached {
            request = request.header(IF_NONE_MATCH, hit.etag.clone());
        }
        if tracing::enabled!(target: HEADERS_TARGET, tracing::Level::TRACE) {
            let mut shown = vec![("content-type".to_owned(), "application/json".to_owned())];
            if inner.authorization.is_some() {
                shown.push(("authorization".to_owned(), "<redacted>".to_owned()));
            }
            if let Some(hit) = &cached {
                shown.push((
                    "if-none-match".to_owned(),
                    String::from_utf8_lossy(hit.etag.as_bytes()).into_owned(),
                ));
            }
            tracing::trace!(
                target: HEADERS_TARGET,
                verb = "POST",
                url = %inner.display_url,
                headers = %show_headers(&shown, &inner.secrets),
                "hook request headers"
            );
        }

        let _in_flight = self.metrics.as_ref().map(HookMetricsHandle::start);
        let started = Instant::now();
        let exchange = async {
            let response = request.send().await.map_err(|e| self.transport_error(&e))?;
            let status = response.status();
            if let Some(m) = &self.metrics {
                m.record_response(status.as_u16(), started.elapsed());
            }
            if status == StatusCode::TOO_MANY_REQUESTS {
                let retry_after = response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, jiff::Timestamp::now()));
                return Err(HookError::TooManyRequests { retry_after });
            }
            if tracing::enabled!(target: HEADERS_TARGET, tracing::Level::TRACE) {
                let shown: Vec<(String, String)> = response
                    .headers()
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().to_owned(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect();
                tracing::trace!(
                    target: HEADERS_TARGET,
                    url = %inner.display_url,
                    status = status.as_u16(),
                    headers = %show_headers(&shown, &inner.secrets),
                    "hook response headers"
                );
            }
            let new_etag = response.headers().get(ETAG).cloned();
            let body = response
                .bytes()
                .await
                .map_err(|e| self.transport_error(&e))?;
            Ok((status, new_etag, body))
        };

        let outcome = match tokio::time::timeout(inner.timeout, exchange).await {
            Ok(outcome) => outcome,
            Err(_elapsed) => Err(HookError::Timeout {
                url: inner.display_url.clone(),
                timeout: inner.timeout,
            }),
        };
        let (status, new_etag, response_body) = match outcome {
            Ok(parts) => parts,
            Err(err) => {
                tracing::debug!(verb = "POST", url = %inner.display_url, object = cache_key.unwrap_or_default(), failure = %err.failure_kind(), error = %err, "hook call failed");
                return Err(err);
            }
        };
        tracing::debug!(
            url = %inner.display_url,
            status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "hook call answered"
        );
        tracing::trace!(
            target: BODY_TARGET,
            url = %inner.display_url,
            body = %redact_secrets(&String::from_utf8_lossy(&response_body), &inner.secrets),
            "hook response body"
        );

        match status {
            StatusCode::OK => {
                if let (Some((cache, key)), Some(tag)) = (etag, new_etag) {
                    cache.put(key, tag, response_body.clone(), Instant::now());
                    tracing::debug!(url = %inner.display_url, cache_key = key, "hook response cached");
                }
                Ok(response_body)
            }
            StatusCode::NOT_MODIFIED | StatusCode::PRECONDITION_FAILED if cached.is_some() => {
                let CachedResponse { body, .. } = cached.expect("checked by the guard");
                tracing::debug!(
                    url = %inner.display_url,
                    cache_key = cache_key.unwrap_or_default(),
                    status = status.as_u16(),
                    "hook response replayed from cache"
                );
                Ok(body)
            }
            other => Err(HookError::UnexpectedStatus {
                code: other.as_u16(),
                body: body_for_error(&response_body, &inner.secrets),
            }),
        }
    }

    fn transport_error(&self, err: &reqwest::Error) -> HookError {
        let url = self.inner.display_url.clone();
        let reason = error_chain(err);
        if err.is_timeout() {
            HookError::Timeout {
                url,
                timeout: self.inner.timeout,
            }
        } else if is_tls_error(err) {
            HookError::Tls { url, reason }
        } else if err.is_connect() {
            HookError::Connect { url, reason }
        } else if err.is_builder() {
            HookError::InvalidConfig { reason }
        } else {
            HookError::Transport { url, reason }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SecretString;

    #[test]
    fn rejects_bad_urls() {
        for url in [
            "",
            "not a url",
            "ftp://host/x",
            "file:///etc/passwd",
            "unix:/x",
        ] {
            let err = HookClient::new(HookEndpoint::new(url)).unwrap_err();
            assert!(
                matches!(err, HookError::InvalidConfig { .. }),
                "{url}: {err}"
            );
        }
    }

    #[test]
    fn rejects_bad_header_value_without_printing_it() {
        let mut ep = HookEndpoint::new("http://h/sync");
        ep.authorization = Some(SecretString::new("Bearer abc\ndef"));
        let err = HookClient::new(ep).unwrap_err();
        assert!(!err.to_string().contains("abc"));
    }

    #[test]
    fn zero_timeout_means_default() {
        let mut ep = HookEndpoint::new("http://h/sync");
        ep.timeout = Duration::ZERO;
        assert_eq!(HookClient::new(ep).unwrap().timeout(), DEFAULT_TIMEOUT);
    }

    #[test]
    fn password_is_redacted() {
        let c = HookClient::new(HookEndpoint::new("http://u:pw@h/x?sig=zz9")).unwrap();
        assert_eq!(c.url(), "http://redacted:redacted@h/x?sig=redacted");
        assert!(!format!("{c:?}").contains("pw"));
        assert!(!format!("{c:?}").contains("zz9"));
    }

    #[test]
    fn snippets_hide_credentials() {
        let mut ep = HookEndpoint::new("http://h/sync");
        ep.authorization = Some(crate::build_bearer("s3cr3t-token"));
        let c = HookClient::new(ep).unwrap();
        assert_eq!(
            c.snippet(b"you sent Bearer s3cr3t-token"),
            "you sent <redacted>"
        );
        assert_eq!(
            c.redact("invalid type: string \"s3cr3t-token\""),
            "invalid type: string \"<redacted>\""
        );
    }
}
