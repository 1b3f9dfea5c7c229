//! The official Python `kubernetes` client against the embedded server.

mod common;

use std::path::PathBuf;
use std::process::Command;

fn python() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("MC_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    venv.is_file().then_some(venv)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_kubernetes_client() {
    let Some(py) = python() else {
        assert!(
            std::env::var("MC_REQUIRE_PYTHON_CLIENT").is_err(),
            "no Python with the kubernetes client but MC_REQUIRE_PYTHON_CLIENT is set"
        );
        eprintln!(
            "no Python venv with the kubernetes client: skipping (run the project's test command)"
        );
        return;
    };
    let s = common::server().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    s.write_kubeconfig(&kubeconfig).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/client_test.py");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(py)
            .arg(script)
            .arg(kubeconfig)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "python client test failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
