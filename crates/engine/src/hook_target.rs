//! Turning a controller's `Hook` spec into a ready [`HookClient`].
//!
//! Done once when a hosted controller is built: the URL (`url`, or the
//! `service` form `{protocol}://{name}.{namespace}:{port}{path}`), the
//! timeout (10 s by default), ETag caching, and the connection settings. A
//! webhook that sets any of `caBundle`, `clientTLS`, `authorization` or
//! `basicAuth` uses exactly those; otherwise the first `endpointConfigs`
//! entry whose `host` matches the URL's host applies. Secrets and ConfigMaps
//! are read here and never again until the controller is rebuilt. Credential
//! values only ever live inside [`SecretString`]s.

use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, Client};
use metacontroller_api::{
    Authorization, BasicAuth, CaBundle, ClientTls, EndpointConfig, Hook, HookVersion,
    ResponseUnmarshallMode, Webhook,
};
use metacontroller_hooks::{
    EtagConfig, HookClient, HookEndpoint, HookError, HookKind, HookMetrics, SecretString,
    build_authorization, build_basic_auth,
};

/// A hook ready to be called.
#[derive(Clone, Debug)]
pub struct ResolvedHook {
    /// The HTTP client, with metrics attached.
    pub client: HookClient,
    /// Protocol version (object map keys).
    pub version: HookVersion,
    /// Response decoding mode.
    pub mode: ResponseUnmarshallMode,
    /// Which hook this is.
    pub kind: HookKind,
}

/// Why a hook could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The webhook has no usable URL.
    #[error(transparent)]
    Url(#[from] metacontroller_api::WebhookConfigError),
    /// Invalid combination of connection settings.
    #[error("{0}")]
    Invalid(String),
    /// A Secret or ConfigMap could not be read.
    #[error("{what}: failed to get {kind} {namespace}/{name}: {source}")]
    Read {
        /// What was being resolved (`caBundle`, `authorization`, ...).
        what: &'static str,
        /// `Secret` or `ConfigMap`.
        kind: &'static str,
        /// Namespace of the object.
        namespace: String,
        /// Name of the object.
        name: String,
        /// The API error.
        #[source]
        source: Box<kube::Error>,
    },
    /// The HTTP client rejected the settings.
    #[error(transparent)]
    Client(#[from] HookError),
}

/// Connection settings taken from a webhook or an `endpointConfigs` entry.
struct ConnectionSettings<'a> {
    ca_bundle: Option<&'a CaBundle>,
    client_tls: Option<&'a ClientTls>,
    authorization: Option<&'a Authorization>,
    basic_auth: Option<&'a BasicAuth>,
}

/// Resolves `hook`; `Ok(None)` when it has no webhook (the hook is off).
pub async fn resolve(
    client: &Client,
    hook: &Hook,
    endpoint_configs: &[EndpointConfig],
    kind: HookKind,
    controller_type: &str,
    controller_name: &str,
    metrics: Option<&HookMetrics>,
) -> Result<Option<ResolvedHook>, ResolveError> {
    let Some(webhook) = &hook.webhook else {
        return Ok(None);
    };
    let url = webhook.endpoint_url()?;
    let timeout = match webhook.effective_timeout() {
        Ok(t) => t,
        Err(err) => {
            tracing::info!(controller = controller_name, hook = %kind, error = %err, "invalid hook timeout; using 10s");
            metacontroller_api::DEFAULT_HOOK_TIMEOUT
        }
    };
    let mut endpoint = HookEndpoint::new(url.clone());
    endpoint.timeout = timeout;
    endpoint.etag = etag_config(webhook);

    let settings = if webhook.has_connection_settings() {
        Some(ConnectionSettings {
            ca_bundle: webhook.ca_bundle.as_ref(),
            client_tls: webhook.client_tls.as_ref(),
            authorization: webhook.authorization.as_ref(),
            basic_auth: webhook.basic_auth.as_ref(),
        })
    } else {
        match_endpoint_config(&url, endpoint_configs).map(|c| ConnectionSettings {
            ca_bundle: c.ca_bundle.as_ref(),
            client_tls: c.client_tls.as_ref(),
            authorization: c.authorization.as_ref(),
            basic_auth: c.basic_auth.as_ref(),
        })
    };
    if let Some(settings) = settings {
        apply_settings(client, &settings, &mut endpoint).await?;
    }

    let mut hook_client = HookClient::new(endpoint)?;
    if let Some(metrics) = metrics {
        // The URL label never carries a password.
        let label = hook_client.url().to_owned();
        hook_client = hook_client.with_metrics(metrics.handle(
            kind,
            controller_type,
            controller_name,
            &label,
        ));
    }
    Ok(Some(ResolvedHook {
        client: hook_client,
        version: hook.version(),
        mode: hook.response_unmarshall_mode(),
        kind,
    }))
}

fn etag_config(webhook: &Webhook) -> Option<EtagConfig> {
    if !webhook.etag_enabled() {
        return None;
    }
    let etag = webhook.etag.as_ref()?;
    let secs = |v: Option<i32>| Duration::from_secs(v.unwrap_or(0).max(0) as u64);
    Some(EtagConfig {
        cache_timeout: secs(etag.cache_timeout_seconds),
        cache_cleanup: secs(etag.cache_cleanup_seconds),
    })
}

async fn apply_settings(
    client: &Client,
    settings: &ConnectionSettings<'_>,
    endpoint: &mut HookEndpoint,
) -> Result<(), ResolveError> {
    if settings.authorization.is_some() && settings.basic_auth.is_some() {
        return Err(ResolveError::Invalid(
            "authorization and basicAuth are mutually exclusive".into(),
        ));
    }
    if let Some(ca) = settings.ca_bundle {
        endpoint.ca_bundle_pem = Some(resolve_ca_bundle(client, ca).await?);
    }
    if let Some(tls) = settings.client_tls {
        let secret = read_secret(
            client,
            "clientTLS",
            &tls.secret_ref.namespace,
            &tls.secret_ref.name,
        )
        .await?;
        let cert = secret_key(
            &secret,
            tls.cert_key(),
            "clientTLS",
            &tls.secret_ref.namespace,
            &tls.secret_ref.name,
        )?;
        let key = secret_key(
            &secret,
            tls.private_key_key(),
            "clientTLS",
            &tls.secret_ref.namespace,
            &tls.secret_ref.name,
        )?;
        endpoint.client_cert_pem = Some((cert.0.clone(), key.0.clone()));
    }
    if let Some(auth) = settings.authorization {
        let r = &auth.secret_ref;
        let secret = read_secret(client, "authorization", &r.namespace, &r.name).await?;
        let value = secret_key(&secret, &r.key, "authorization", &r.namespace, &r.name)?;
        let text = String::from_utf8_lossy(&value.0);
        endpoint.authorization = Some(build_authorization(
            auth.type_.as_deref().unwrap_or_default(),
            &text,
        )?);
    } else if let Some(basic) = settings.basic_auth {
        let r = &basic.secret_ref;
        let secret = read_secret(client, "basicAuth", &r.namespace, &r.name).await?;
        let user = secret_key(
            &secret,
            basic.username_key(),
            "basicAuth",
            &r.namespace,
            &r.name,
        )?;
        let pass = secret_key(
            &secret,
            basic.password_key(),
            "basicAuth",
            &r.namespace,
            &r.name,
        )?;
        let header: SecretString = build_basic_auth(
            &String::from_utf8_lossy(&user.0),
            &String::from_utf8_lossy(&pass.0),
        )?;
        endpoint.authorization = Some(header);
    }
    Ok(())
}

async fn resolve_ca_bundle(client: &Client, ca: &CaBundle) -> Result<Vec<u8>, ResolveError> {
    let sources = [
        ca.inline.is_some(),
        ca.secret_ref.is_some(),
        ca.config_map_ref.is_some(),
    ]
    .iter()
    .filter(|s| **s)
    .count();
    if sources == 0 {
        return Err(ResolveError::Invalid(
            "caBundle is set but none of inline, secretRef, or configMapRef is specified".into(),
        ));
    }
    if sources > 1 {
        return Err(ResolveError::Invalid(
            "caBundle has more than one source set: exactly one of inline, secretRef, or configMapRef must be specified".into(),
        ));
    }
    if let Some(inline) = &ca.inline {
        return Ok(inline.as_bytes().to_vec());
    }
    if let Some(r) = &ca.secret_ref {
        let secret = read_secret(client, "caBundle", &r.namespace, &r.name).await?;
        let data = secret_key(&secret, r.key(), "caBundle", &r.namespace, &r.name)?;
        if data.0.is_empty() {
            return Err(ResolveError::Invalid(format!(
                "caBundle: key {:?} in Secret {}/{} is empty",
                r.key(),
                r.namespace,
                r.name
            )));
        }
        return Ok(data.0.clone());
    }
    let Some(r) = &ca.config_map_ref else {
        return Err(ResolveError::Invalid("caBundle has no source".into()));
    };
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &r.namespace);
    let cm = api
        .get(&r.name)
        .await
        .map_err(|source| ResolveError::Read {
            what: "caBundle",
            kind: "ConfigMap",
            namespace: r.namespace.clone(),
            name: r.name.clone(),
            source: Box::new(source),
        })?;
    match cm.data.as_ref().and_then(|d| d.get(r.key())) {
        None => Err(ResolveError::Invalid(format!(
            "caBundle: key {:?} not found in ConfigMap {}/{}",
            r.key(),
            r.namespace,
            r.name
        ))),
        Some(data) if data.is_empty() => Err(ResolveError::Invalid(format!(
            "caBundle: key {:?} in ConfigMap {}/{} is empty",
            r.key(),
            r.namespace,
            r.name
        ))),
        Some(data) => Ok(data.as_bytes().to_vec()),
    }
}

async fn read_secret(
    client: &Client,
    what: &'static str,
    namespace: &str,
    name: &str,
) -> Result<Secret, ResolveError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    api.get(name).await.map_err(|source| ResolveError::Read {
        what,
        kind: "Secret",
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        source: Box::new(source),
    })
}

fn secret_key<'a>(
    secret: &'a Secret,
    key: &str,
    what: &str,
    namespace: &str,
    name: &str,
) -> Result<&'a ByteString, ResolveError> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .ok_or_else(|| {
            ResolveError::Invalid(format!(
                "{what}: Secret {namespace}/{name} does not contain key {key:?}"
            ))
        })
}

/// The first entry whose `host` matches the host of `url`, case-insensitively;
/// `example.com` and `example.com:443` both match an `https` URL on the
/// default port (80 for `http`).
pub fn match_endpoint_config<'a>(
    url: &str,
    configs: &'a [EndpointConfig],
) -> Option<&'a EndpointConfig> {
    let uri: http::Uri = url.parse().ok()?;
    let authority = uri.authority()?;
    let host = authority.host();
    let port = authority.port_u16();
    let scheme = uri.scheme_str().unwrap_or_default();
    let default_port = match scheme {
        "https" => Some(443),
        "http" => Some(80),
        _ => None,
    };
    let raw = match port {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    };
    let canonical = match (port, default_port) {
        (None, Some(d)) => format!("{host}:{d}"),
        _ => raw.clone(),
    };
    configs.iter().find(|c| {
        c.host.eq_ignore_ascii_case(&raw)
            || c.host.eq_ignore_ascii_case(&canonical)
            || (port.is_some() && port == default_port && c.host.eq_ignore_ascii_case(host))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(host: &str) -> EndpointConfig {
        EndpointConfig {
            host: host.into(),
            ..EndpointConfig::default()
        }
    }

    #[test]
    fn endpoint_config_host_matching() {
        let configs = [cfg("other"), cfg("Hook.NS"), cfg("secure.example.com:443")];
        let m = |url: &str| match_endpoint_config(url, &configs).map(|c| c.host.as_str());
        assert_eq!(m("http://hook.ns/sync"), Some("Hook.NS"));
        assert_eq!(m("http://hook.ns:80/sync"), Some("Hook.NS"));
        assert_eq!(m("http://hook.ns:8080/sync"), None);
        assert_eq!(
            m("https://secure.example.com/x"),
            Some("secure.example.com:443")
        );
        assert_eq!(
            m("https://secure.example.com:443/x"),
            Some("secure.example.com:443")
        );
        assert_eq!(m("http://secure.example.com/x"), None);
        assert_eq!(m("http://nomatch/x"), None);
        let configs = [cfg("svc.ns:8443")];
        assert!(match_endpoint_config("https://svc.ns:8443/p", &configs).is_some());
        let configs = [cfg("example.com")];
        assert!(match_endpoint_config("https://example.com:443/p", &configs).is_some());
        assert!(match_endpoint_config("https://example.com:8443/p", &configs).is_none());
    }

    #[test]
    fn etag_settings() {
        let mut w = Webhook::default();
        assert!(etag_config(&w).is_none());
        w.etag = Some(metacontroller_api::WebhookEtagConfig {
            enabled: Some(true),
            cache_timeout_seconds: Some(60),
            cache_cleanup_seconds: None,
        });
        let e = etag_config(&w).unwrap();
        assert_eq!(e.cache_timeout, Duration::from_secs(60));
        assert_eq!(e.cache_cleanup, Duration::ZERO);
    }
}
