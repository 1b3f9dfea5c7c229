//! Hook settings shared by both controller kinds: the hook itself, its
//! webhook (URL or service, timeout, ETag caching) and the connection
//! settings of `endpointConfigs` (CA bundles, credentials, client TLS).

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::crd_schema::duration_schema;
use crate::duration::{DurationError, hook_timeout};

/// A hook: protocol version plus the webhook that implements it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Hook {
    /// Hook protocol version (default `v1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "v1"))]
    pub version: Option<HookVersion>,
    /// Webhook endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Webhook>,
}

/// Hook protocol version.
///
/// `v1` keys namespaced objects relative to the parent and restricts related
/// objects to the parent's namespace; `v2` always uses `namespace/name` keys
/// and decodes responses strictly by default.
#[derive(
    Serialize,
    Deserialize,
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    JsonSchema,
)]
#[allow(
    missing_docs,
    reason = "a doc comment on a variant would change the derived CRD schema; each variant is described by the comment above it"
)]
pub enum HookVersion {
    #[default]
    #[serde(rename = "v1")]
    V1,
    #[serde(rename = "v2")]
    V2,
}

impl HookVersion {
    /// `"v1"` or `"v2"`.
    pub fn as_str(self) -> &'static str {
        match self {
            HookVersion::V1 => "v1",
            HookVersion::V2 => "v2",
        }
    }

    /// Response decoding mode used when the webhook does not set one:
    /// loose for v1, strict for v2.
    pub fn default_unmarshall_mode(self) -> ResponseUnmarshallMode {
        match self {
            HookVersion::V1 => ResponseUnmarshallMode::Loose,
            HookVersion::V2 => ResponseUnmarshallMode::Strict,
        }
    }
}

impl std::fmt::Display for HookVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How hook responses are decoded.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(
    missing_docs,
    reason = "a doc comment on a variant would change the derived CRD schema; each variant is described by the comment above it"
)]
pub enum ResponseUnmarshallMode {
    // Unknown and duplicated fields are ignored.
    Loose,
    // Unknown and duplicated fields fail the sync.
    Strict,
}

impl ResponseUnmarshallMode {
    /// `"loose"` or `"strict"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseUnmarshallMode::Loose => "loose",
            ResponseUnmarshallMode::Strict => "strict",
        }
    }
}

impl std::fmt::Display for ResponseUnmarshallMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Hook {
    /// The hook version, `v1` when unset.
    pub fn version(&self) -> HookVersion {
        self.version.unwrap_or_default()
    }

    /// The effective response decoding mode: the webhook's
    /// `responseUnMarshallMode` if set, else loose for v1 and strict for v2.
    pub fn response_unmarshall_mode(&self) -> ResponseUnmarshallMode {
        self.webhook
            .as_ref()
            .and_then(|w| w.response_unmarshall_mode)
            .unwrap_or_else(|| self.version().default_unmarshall_mode())
    }

    /// The effective webhook timeout (see [`Webhook::effective_timeout`]);
    /// 10s when no webhook is configured.
    pub fn timeout(&self) -> Result<Duration, DurationError> {
        match &self.webhook {
            Some(w) => w.effective_timeout(),
            None => hook_timeout(None),
        }
    }
}

/// Webhook endpoint and connection settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// Full URL of the hook; takes precedence over `service` and `path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Request timeout as a Go duration (`10s`, `1m30s`, `500ms`); default 10s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "duration_schema")]
    pub timeout: Option<String>,
    /// Response caching keyed by ETag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<WebhookEtagConfig>,
    /// URL path, used together with `service`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// In-cluster Service hosting the hook, used together with `path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceReference>,
    /// `loose` ignores unknown or repeated response fields, `strict` rejects
    /// them. Default: loose for v1 hooks, strict for v2 hooks.
    #[serde(
        rename = "responseUnMarshallMode",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub response_unmarshall_mode: Option<ResponseUnmarshallMode>,
    /// CA certificates trusted for the hook's TLS certificate (replaces the
    /// system roots). Set exactly one source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<CaBundle>,
    /// Client certificate for mutual TLS.
    #[serde(rename = "clientTLS", default, skip_serializing_if = "Option::is_none")]
    pub client_tls: Option<ClientTls>,
    /// Credential sent in the Authorization header; excludes `basicAuth`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    /// HTTP Basic credentials; excludes `authorization`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
}

/// Why a webhook has no usable URL.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WebhookConfigError {
    /// Neither `url` nor both `service` and `path` are set.
    #[error(
        "invalid webhook config: must specify either a full 'url', or both 'service' and 'path'"
    )]
    MissingUrl,
    /// `service.name` or `service.namespace` is empty.
    #[error("invalid webhook config: 'service' must specify both 'name' and 'namespace'")]
    IncompleteService,
}

impl Webhook {
    /// The URL requests are sent to: `url` verbatim if set, otherwise
    /// `<protocol>://<name>.<namespace>:<port><path>` built from `service`
    /// (protocol `http` and port 80 by default).
    pub fn endpoint_url(&self) -> Result<String, WebhookConfigError> {
        if let Some(url) = &self.url {
            return Ok(url.clone());
        }
        let (Some(service), Some(path)) = (&self.service, &self.path) else {
            return Err(WebhookConfigError::MissingUrl);
        };
        if service.name.is_empty() || service.namespace.is_empty() {
            return Err(WebhookConfigError::IncompleteService);
        }
        Ok(format!(
            "{}://{}.{}:{}{}",
            service.protocol(),
            service.name,
            service.namespace,
            service.port(),
            path
        ))
    }

    /// The timeout: absent, zero or negative values give 10s.
    pub fn effective_timeout(&self) -> Result<Duration, DurationError> {
        hook_timeout(self.timeout.as_deref())
    }

    /// `true` when `etag.enabled` is `true`.
    pub fn etag_enabled(&self) -> bool {
        self.etag.as_ref().and_then(|e| e.enabled).unwrap_or(false)
    }

    /// `true` when the webhook sets any connection setting itself (`caBundle`,
    /// `clientTLS`, `authorization`, `basicAuth`); matching `endpointConfigs`
    /// are then ignored entirely.
    pub fn has_connection_settings(&self) -> bool {
        self.ca_bundle.is_some()
            || self.client_tls.is_some()
            || self.authorization.is_some()
            || self.basic_auth.is_some()
    }
}

/// ETag response caching.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEtagConfig {
    /// Send `If-None-Match` and replay cached responses on 304/412.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Lifetime of a cached response, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_timeout_seconds: Option<i32>,
    /// Interval between purges of expired entries, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_cleanup_seconds: Option<i32>,
}

/// In-cluster Service reference (resolved through cluster DNS).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceReference {
    /// Service name.
    pub name: String,
    /// Service namespace.
    pub namespace: String,
    /// Port (default 80).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    /// URL scheme (default `http`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

impl ServiceReference {
    /// The port, 80 when unset.
    pub fn port(&self) -> i32 {
        self.port.unwrap_or(80)
    }

    /// The scheme, `http` when unset.
    pub fn protocol(&self) -> &str {
        self.protocol.as_deref().unwrap_or("http")
    }
}

/// Source of PEM-encoded CA certificates; exactly one field must be set.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaBundle {
    /// PEM certificates given directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline: Option<String>,
    /// Key of a Secret holding the certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<ResourceKeyRef>,
    /// Key of a ConfigMap holding the certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<ResourceKeyRef>,
}

/// A key of a Secret or ConfigMap.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceKeyRef {
    /// Object name.
    pub name: String,
    /// Object namespace.
    pub namespace: String,
    /// Data key (default `ca.crt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "ca.crt"))]
    pub key: Option<String>,
}

impl ResourceKeyRef {
    /// The data key, `ca.crt` when unset or empty.
    pub fn key(&self) -> &str {
        non_empty_or(self.key.as_deref(), "ca.crt")
    }
}

/// A Secret, by name and namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Secret name.
    pub name: String,
    /// Secret namespace.
    pub namespace: String,
}

/// A key of a Secret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Secret name.
    pub name: String,
    /// Secret namespace.
    pub namespace: String,
    /// Data key.
    pub key: String,
}

/// Authorization header credential (`<type> <secret value>`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Authorization {
    /// Header scheme, case-insensitive (default `Bearer`; `Basic` is refused,
    /// use `basicAuth`).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "Bearer"))]
    pub type_: Option<String>,
    /// Secret key holding the credential.
    pub secret_ref: SecretKeyRef,
}

impl Authorization {
    /// The scheme, `Bearer` when unset or empty.
    pub fn auth_type(&self) -> &str {
        non_empty_or(self.type_.as_deref(), "Bearer")
    }
}

/// HTTP Basic credentials read from one Secret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BasicAuth {
    /// Secret holding username and password.
    pub secret_ref: SecretRef,
    /// Key of the username (default `username`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "username"))]
    pub username_key: Option<String>,
    /// Key of the password (default `password`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "password"))]
    pub password_key: Option<String>,
}

impl BasicAuth {
    /// The username key, `username` when unset or empty.
    pub fn username_key(&self) -> &str {
        non_empty_or(self.username_key.as_deref(), "username")
    }

    /// The password key, `password` when unset or empty.
    pub fn password_key(&self) -> &str {
        non_empty_or(self.password_key.as_deref(), "password")
    }
}

/// Client certificate and key read from one Secret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientTls {
    /// Secret holding certificate and key.
    pub secret_ref: SecretRef,
    /// Key of the PEM certificate (default `tls.crt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "tls.crt"))]
    pub cert_key: Option<String>,
    /// Key of the PEM private key (default `tls.key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "tls.key"))]
    pub private_key_key: Option<String>,
}

impl ClientTls {
    /// The certificate key, `tls.crt` when unset or empty.
    pub fn cert_key(&self) -> &str {
        non_empty_or(self.cert_key.as_deref(), "tls.crt")
    }

    /// The private key key, `tls.key` when unset or empty.
    pub fn private_key_key(&self) -> &str {
        non_empty_or(self.private_key_key.as_deref(), "tls.key")
    }
}

/// Connection settings for hooks whose URL host matches `host`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointConfig {
    /// Host or host:port matched against hook URLs.
    pub host: String,
    /// CA certificates trusted for the server certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<CaBundle>,
    /// Client certificate for mutual TLS.
    #[serde(rename = "clientTLS", default, skip_serializing_if = "Option::is_none")]
    pub client_tls: Option<ClientTls>,
    /// Authorization header credential; excludes `basicAuth`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    /// HTTP Basic credentials; excludes `authorization`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
}

pub(super) fn non_empty_or<'a>(value: Option<&'a str>, default: &'a str) -> &'a str {
    match value {
        Some(v) if !v.is_empty() => v,
        _ => default,
    }
}
