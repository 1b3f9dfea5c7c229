//! The fully resolved description of one hook endpoint.

use std::fmt;
use std::time::Duration;

use crate::SecretString;

/// Hook timeout Metacontroller uses when a webhook sets none (or a
/// non-positive one). [`HookClient::new`](crate::HookClient::new) also applies
/// it when handed a zero timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything needed to call one hook, with all references (Secrets,
/// ConfigMaps, service form URLs, `endpointConfigs`) already resolved by the
/// caller.
#[derive(Clone)]
pub struct HookEndpoint {
    /// Full `http://` or `https://` URL the request is posted to.
    pub url: String,
    /// Whole-request timeout: connecting, TLS, sending and reading the whole
    /// response. A zero duration is replaced by [`DEFAULT_TIMEOUT`].
    pub timeout: Duration,
    /// PEM CA certificates that replace the built-in roots for `https` URLs.
    pub ca_bundle_pem: Option<Vec<u8>>,
    /// PEM client certificate chain and PEM private key (PKCS#8, PKCS#1 or
    /// SEC1) presented for mutual TLS.
    pub client_cert_pem: Option<(Vec<u8>, Vec<u8>)>,
    /// Complete `Authorization` header value, e.g. `Bearer xyz` or
    /// `Basic dXNlcjpwYXNz`.
    pub authorization: Option<SecretString>,
    /// ETag response caching; `None` disables it.
    pub etag: Option<EtagConfig>,
}

impl HookEndpoint {
    /// An endpoint for `url` with the default timeout and nothing else set.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            timeout: DEFAULT_TIMEOUT,
            ca_bundle_pem: None,
            client_cert_pem: None,
            authorization: None,
            etag: None,
        }
    }
}

impl fmt::Debug for HookEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Bytes(usize);
        impl fmt::Debug for Bytes {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "<{} bytes>", self.0)
            }
        }
        struct Redacted;
        impl fmt::Debug for Redacted {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("<redacted>")
            }
        }
        f.debug_struct("HookEndpoint")
            .field("url", &crate::diagnostics::redact_url(&self.url))
            .field("timeout", &self.timeout)
            .field(
                "ca_bundle_pem",
                &self.ca_bundle_pem.as_ref().map(|b| Bytes(b.len())),
            )
            .field(
                "client_cert_pem",
                &self
                    .client_cert_pem
                    .as_ref()
                    .map(|(cert, _)| (Bytes(cert.len()), Redacted)),
            )
            .field("authorization", &self.authorization)
            .field("etag", &self.etag)
            .finish()
    }
}

/// ETag cache settings of one hook.
///
/// A zero `cache_timeout` keeps entries until they are replaced (no expiry);
/// a zero `cache_cleanup` disables the periodic sweep of expired entries
/// (expired entries are still never used).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EtagConfig {
    /// How long a cached response stays usable after it was stored.
    pub cache_timeout: Duration,
    /// How often expired entries are dropped from memory. The sweep runs
    /// lazily, on cache access, at most once per interval.
    pub cache_cleanup: Duration,
}
