//! Process-wide sharing of HTTP clients (and so of connection pools) between
//! hooks with the same TLS setup.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;

use crate::HookError;

/// What distinguishes one connection pool from another: the trust roots and
/// the client identity. Everything else (URL, timeout, headers) is per
/// request.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct TlsKey {
    pub(crate) ca_bundle_pem: Option<Vec<u8>>,
    pub(crate) client_cert_pem: Option<(Vec<u8>, Vec<u8>)>,
}

static POOLS: LazyLock<Mutex<HashMap<TlsKey, Weak<reqwest::Client>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Idle keep-alive connections are closed after this long (Go's default
/// transport uses the same value).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Returns the client for `key`, building it if no live hook client uses
/// that TLS setup yet.
pub(crate) fn shared_client(key: &TlsKey) -> Result<Arc<reqwest::Client>, HookError> {
    let mut pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(client) = pools.get(key).and_then(Weak::upgrade) {
        return Ok(client);
    }
    let client = Arc::new(build_client(key)?);
    pools.retain(|_, w| w.strong_count() > 0);
    pools.insert(key.clone(), Arc::downgrade(&client));
    Ok(client)
}

fn invalid(reason: String) -> HookError {
    HookError::InvalidConfig { reason }
}

fn build_client(key: &TlsKey) -> Result<reqwest::Client, HookError> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .min_tls_version(reqwest::tls::Version::TLS_1_2)
        .tcp_nodelay(true)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .http1_only();

    if let Some(pem) = &key.ca_bundle_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| invalid(format!("caBundle: {}", crate::diagnostics::error_chain(&e))))?;
        if certs.is_empty() {
            return Err(invalid(
                "caBundle: no valid PEM-encoded certificates found in the provided CA bundle"
                    .to_owned(),
            ));
        }
        builder = builder.tls_built_in_root_certs(false);
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }

    if let Some((cert, key)) = &key.client_cert_pem {
        let mut pem = Vec::with_capacity(cert.len() + key.len() + 1);
        pem.extend_from_slice(cert);
        pem.push(b'\n');
        pem.extend_from_slice(key);
        let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
            invalid(format!(
                "clientTLS: cannot use certificate and key: {}",
                crate::diagnostics::error_chain(&e)
            ))
        })?;
        builder = builder.identity(identity);
    }

    builder.build().map_err(|e| {
        invalid(format!(
            "cannot build HTTP client: {}",
            crate::diagnostics::error_chain(&e)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_tls_setup_shares_one_client() {
        let key = TlsKey {
            ca_bundle_pem: None,
            client_cert_pem: None,
        };
        let a = shared_client(&key).unwrap();
        let b = shared_client(&key).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
    }

    #[test]
    fn bad_ca_bundle_is_invalid_config() {
        let key = TlsKey {
            ca_bundle_pem: Some(b"not a pem".to_vec()),
            client_cert_pem: None,
        };
        let err = shared_client(&key).unwrap_err();
        assert!(matches!(err, HookError::InvalidConfig { .. }), "{err}");
        assert!(err.to_string().contains("caBundle"), "{err}");
    }

    #[test]
    fn bad_client_cert_is_invalid_config() {
        let key = TlsKey {
            ca_bundle_pem: None,
            client_cert_pem: Some((b"nope".to_vec(), b"nope".to_vec())),
        };
        let err = shared_client(&key).unwrap_err();
        assert!(err.to_string().contains("clientTLS"), "{err}");
    }

    #[test]
    fn bad_client_key_is_not_quoted() {
        let key_material = "MC4CAQAwBQYDK2VwBCIEIKeyMaterialThatMustStayHidden0123";
        let key = TlsKey {
            ca_bundle_pem: None,
            client_cert_pem: Some((
                b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".to_vec(),
                format!("-----BEGIN PRIVATE KEY-----\n{key_material}\n-----END PRIVATE KEY-----\n")
                    .into_bytes(),
            )),
        };
        let err = shared_client(&key).unwrap_err();
        for text in [err.to_string(), format!("{err:?}")] {
            assert!(!text.contains("KeyMaterial"), "{text}");
        }
    }
}
