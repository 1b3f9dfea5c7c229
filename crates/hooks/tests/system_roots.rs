//! HTTPS hooks without a CA bundle trust the roots the operating system
//! names: a CA listed only in `SSL_CERT_FILE` is accepted, and the same
//! server is refused when the variable is unset.
//!
//! The environment is per process, so the outer test starts an HTTPS server
//! and runs the hook call in a child process of this test binary (the
//! ignored `call_hook_in_child`) with the environment under test.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use metacontroller_hooks::{HookClient, HookEndpoint, HookError};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const URL_VAR: &str = "HOOK_TEST_URL";
const EXPECT_VAR: &str = "HOOK_TEST_EXPECT";

/// A CA and a server certificate for 127.0.0.1 it issued.
fn pki() -> (String, CertificateDer<'static>, Vec<u8>) {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "system roots test CA");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca = rcgen::CertifiedIssuer::self_signed(ca, rcgen::KeyPair::generate().unwrap()).unwrap();
    let mut leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = leaf.signed_by(&key, &ca).unwrap();
    (ca.pem(), cert.der().clone(), key.serialize_der())
}

/// Serves `{"ok":true}` over TLS; returns the URL and a request counter.
async fn serve(cert: CertificateDer<'static>, key: Vec<u8>) -> (String, Arc<AtomicUsize>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], PrivateKeyDer::Pkcs8(key.into()))
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/sync", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, counter) = (acceptor.clone(), counter.clone());
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let service = service_fn(move |_req: Request<hyper::body::Incoming>| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    async {
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
                            b"{\"ok\":true}",
                        ))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, requests)
}

async fn run_child(url: &str, expect: &str, ssl_cert_file: Option<&std::path::Path>) {
    let mut command = tokio::process::Command::new(std::env::current_exe().unwrap());
    command
        .args(["call_hook_in_child", "--exact", "--ignored", "--nocapture"])
        .env(URL_VAR, url)
        .env(EXPECT_VAR, expect)
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR");
    if let Some(path) = ssl_cert_file {
        command.env("SSL_CERT_FILE", path);
    }
    let output = command.output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child expecting {expect}:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn ssl_cert_file_roots_are_trusted() {
    let (ca_pem, cert, key) = pki();
    let (url, requests) = serve(cert, key).await;
    let ca_file = std::env::temp_dir().join(format!("hooks-roots-{}.pem", std::process::id()));
    std::fs::write(&ca_file, &ca_pem).unwrap();

    run_child(&url, "ok", Some(&ca_file)).await;
    assert_eq!(requests.load(Ordering::SeqCst), 1);
    run_child(&url, "tls-error", None).await;
    assert_eq!(requests.load(Ordering::SeqCst), 1);
    std::fs::remove_file(&ca_file).unwrap();
}

/// Run by [`ssl_cert_file_roots_are_trusted`] in a child process.
#[tokio::test]
#[ignore = "run by ssl_cert_file_roots_are_trusted with its environment"]
async fn call_hook_in_child() {
    let url = std::env::var(URL_VAR).expect("run by ssl_cert_file_roots_are_trusted");
    let mut endpoint = HookEndpoint::new(url);
    endpoint.timeout = Duration::from_secs(10);
    let client = HookClient::new(endpoint).unwrap();
    let result = client.call(b"{}".to_vec(), None).await;
    match std::env::var(EXPECT_VAR).unwrap().as_str() {
        "ok" => assert_eq!(result.unwrap(), "{\"ok\":true}"),
        _ => assert!(matches!(result, Err(HookError::Tls { .. })), "{result:?}"),
    }
}
