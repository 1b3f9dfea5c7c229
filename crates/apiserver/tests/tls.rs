//! HTTPS with a generated self-signed certificate, trusted through the
//! kubeconfig the server writes.

mod common;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};
use metacontroller_apiserver::{ApiServer, Config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_generated_certificate() {
    let s = ApiServer::start(Config {
        tls: true,
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(s.url().starts_with("https://"));
    assert!(s.ca_pem().unwrap().contains("BEGIN CERTIFICATE"));
    assert!(s.kubeconfig().contains("certificate-authority-data"));

    let client = common::kube_client(&s).await;
    let names: Vec<String> = Api::<Namespace>::all(client)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(names.contains(&"default".to_string()), "{names:?}");

    // Plain HTTP to the TLS port does not get an API answer.
    let plain = reqwest::get(s.url().replace("https://", "http://") + "/api").await;
    assert!(plain.map(|r| !r.status().is_success()).unwrap_or(true));

    for bin in common::kubectls() {
        let dir = tempfile::tempdir().unwrap();
        let k = common::Kubectl::new(&bin, &s, dir.path());
        let out =
            tokio::task::spawn_blocking(move || k.ok(&["get", "ns", "default", "-o", "name"]))
                .await
                .unwrap();
        assert_eq!(out.trim(), "namespace/default");
    }
}
