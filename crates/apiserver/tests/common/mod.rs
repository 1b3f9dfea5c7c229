//! Helpers shared by the conformance tests: a server per test, real clients.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use metacontroller_apiserver::{ApiServer, Config};

pub async fn server() -> ApiServer {
    ApiServer::start(Config::default())
        .await
        .expect("server starts")
}

pub async fn kube_client(server: &ApiServer) -> kube::Client {
    let kc = kube::config::Kubeconfig::from_yaml(&server.kubeconfig()).expect("kubeconfig parses");
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("kube config");
    kube::Client::try_from(config).expect("kube client")
}

/// A kubectl binary to test with. `MC_KUBECTLS` (set by the test command)
/// lists them separated by ':'; otherwise `kubectl` on PATH.
pub fn kubectls() -> Vec<PathBuf> {
    if let Ok(list) = std::env::var("MC_KUBECTLS") {
        let v: Vec<PathBuf> = list
            .split(':')
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect();
        if !v.is_empty() {
            return v;
        }
    }
    match which("kubectl") {
        Some(p) => vec![p],
        None => {
            assert!(
                std::env::var("MC_REQUIRE_KUBECTL").is_err(),
                "no kubectl found but MC_REQUIRE_KUBECTL is set"
            );
            eprintln!("kubectl not found: skipping (run the project's test command to install it)");
            vec![]
        }
    }
}

pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

/// Runs kubectl against `kubeconfig` with a private cache dir.
pub struct Kubectl {
    pub bin: PathBuf,
    pub kubeconfig: PathBuf,
    pub home: PathBuf,
}

pub struct Output {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Kubectl {
    pub fn new(bin: &Path, server: &ApiServer, dir: &Path) -> Self {
        let kubeconfig = dir.join("kubeconfig");
        server.write_kubeconfig(&kubeconfig).unwrap();
        let home = dir.join("home");
        std::fs::create_dir_all(&home).unwrap();
        Self {
            bin: bin.to_path_buf(),
            kubeconfig,
            home,
        }
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_stdin(args, None)
    }

    pub fn run_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        use std::io::Write;
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.home.join("cache"))
            .env("HOME", &self.home)
            .env_remove("KUBECONFIG")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("kubectl runs");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        } else {
            drop(child.stdin.take());
        }
        let out = child.wait_with_output().unwrap();
        Output {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs and asserts success, returning stdout.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.ok,
            "{} {:?} failed:\nstdout: {}\nstderr: {}",
            self.bin.display(),
            args,
            o.stdout,
            o.stderr
        );
        o.stdout
    }

    #[track_caller]
    pub fn ok_stdin(&self, args: &[&str], stdin: &str) -> String {
        let o = self.run_stdin(args, Some(stdin));
        assert!(
            o.ok,
            "{} {:?} failed:\nstdout: {}\nstderr: {}",
            self.bin.display(),
            args,
            o.stdout,
            o.stderr
        );
        o.stdout
    }

    #[track_caller]
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&a)).expect("kubectl printed JSON")
    }
}

/// Polls `f` until it returns true or `timeout` passes.
pub async fn eventually<F: FnMut() -> bool>(timeout: Duration, what: &str, mut f: F) {
    let start = Instant::now();
    loop {
        if f() {
            return;
        }
        assert!(start.elapsed() < timeout, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls an async condition until it holds or `timeout` passes.
pub async fn eventually_async<F, Fut>(timeout: Duration, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if f().await {
            return;
        }
        assert!(start.elapsed() < timeout, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A plain HTTP client for raw API calls.
pub struct Raw {
    pub base: String,
    pub http: reqwest::Client,
}

impl Raw {
    pub fn new(server: &ApiServer) -> Self {
        Self {
            base: server.url(),
            http: reqwest::Client::new(),
        }
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(b) = body {
            req = req
                .header("content-type", content_type.unwrap_or("application/json"))
                .body(serde_json::to_vec(&b).unwrap());
        }
        let resp = req.send().await.expect("request sent");
        let code = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        (code, v)
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        self.call(reqwest::Method::GET, path, None, None).await
    }
    pub async fn post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.call(reqwest::Method::POST, path, None, Some(body))
            .await
    }
    pub async fn put(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.call(reqwest::Method::PUT, path, None, Some(body))
            .await
    }
    pub async fn patch(
        &self,
        path: &str,
        ct: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        self.call(reqwest::Method::PATCH, path, Some(ct), Some(body))
            .await
    }
    pub async fn delete(
        &self,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        self.call(reqwest::Method::DELETE, path, None, body).await
    }
}

pub fn widget_crd(scope: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": scope,
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [
                {"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                 "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}},
                {"name": "v1beta1", "served": true, "storage": false,
                 "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}
            ]
        }
    })
}
