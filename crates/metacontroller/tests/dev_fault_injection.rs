//! `metacontroller dev --fault-injection` from the outside: the binary
//! prints one usage line, the `curl` in it (run as printed, by `sh`) injects
//! a fault over HTTP, and requests then fail as the rule says; without the
//! flag the endpoint does not exist.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

/// A running `metacontroller dev`, killed on drop.
struct Dev {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

impl Dev {
    fn start(dir: &Path, extra: &[&str]) -> Dev {
        let mut child = Command::new(env!("CARGO_BIN_EXE_metacontroller"))
            .arg("dev")
            .arg("--kubeconfig-out")
            .arg(dir.join("kubeconfig"))
            .args(["--metrics-address=0", "--health-probe-bind-address=0"])
            .args(extra)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start metacontroller dev");
        let stdout = lines(child.stdout.take().unwrap());
        let stderr = lines(child.stderr.take().unwrap());
        Dev {
            child,
            stdout,
            stderr,
        }
    }

    /// The first line of `stream` starting with `prefix`.
    fn line(stream: &mpsc::Receiver<String>, prefix: &str, seen: &mut Vec<String>) -> String {
        loop {
            match stream.recv_timeout(Duration::from_secs(60)) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(line) => seen.push(line),
                Err(e) => panic!("no line starting with {prefix:?} ({e}); saw:\n{seen:#?}"),
            }
        }
    }

    /// Waits for `export KUBECONFIG=...` and returns a client without
    /// kube's own retries (so that 429s reach the test).
    async fn client(&self) -> kube::Client {
        let line = Self::line(&self.stdout, "export KUBECONFIG=", &mut Vec::new());
        let path = line.trim_start_matches("export KUBECONFIG=");
        let kubeconfig = kube::config::Kubeconfig::read_from(path).unwrap();
        let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .unwrap();
        config.default_retry = false;
        kube::Client::try_from(config).unwrap()
    }
}

fn sh(command: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(command).output().unwrap();
    assert!(out.status.success(), "{command}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The status codes of `n` ConfigMap creates (200 for success).
async fn creates(cms: &Api<ConfigMap>, prefix: &str, n: usize) -> Vec<u16> {
    let mut codes = Vec::new();
    for i in 0..n {
        let cm: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": format!("{prefix}-{i}")}})).unwrap();
        codes.push(match cms.create(&PostParams::default(), &cm).await {
            Ok(_) => 200,
            Err(kube::Error::Api(status)) => status.code,
            Err(e) => panic!("create {prefix}-{i}: {e}"),
        });
    }
    codes
}

#[tokio::test]
async fn the_printed_curl_injects_faults_into_the_dev_server() {
    let dir = tempfile::tempdir().unwrap();
    let dev = Dev::start(dir.path(), &["--fault-injection"]);
    let usage = Dev::line(&dev.stderr, "fault injection: ", &mut Vec::new());
    let client = dev.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    assert_eq!(creates(&cms, "before", 5).await, vec![200; 5]);

    // The example, exactly as printed.
    let curl = usage
        .split_once("e.g. ")
        .map(|(_, c)| c)
        .unwrap_or_else(|| panic!("no example in {usage:?}"));
    assert!(curl.starts_with("curl "), "{usage}");
    let echo: Value = serde_json::from_str(&sh(curl)).unwrap();
    assert_eq!(echo["fraction"], 0.5, "{echo}");

    // Half of the creates fail, with the three kinds mixed; reads work.
    let codes = creates(&cms, "during", 60).await;
    let count = |code| codes.iter().filter(|c| **c == code).count();
    let failed = codes.len() - count(200);
    assert!((18..=42).contains(&failed), "{codes:?}");
    assert_eq!(failed, count(409) + count(429) + count(500), "{codes:?}");
    assert!(
        count(409) > 0 && count(429) > 0 && count(500) > 0,
        "{codes:?}"
    );
    assert!(cms.get("before-0").await.is_ok());
    eprintln!(
        "60 creates under the printed rule: {} ok, {} x 409, {} x 429, {} x 500",
        count(200),
        count(409),
        count(429),
        count(500)
    );

    // DELETE, as the usage line says, clears the rule.
    let url = usage
        .trim_start_matches("fault injection: ")
        .split_whitespace()
        .next()
        .unwrap();
    sh(&format!("curl -sf -X DELETE {url}"));
    assert_eq!(creates(&cms, "after", 10).await, vec![200; 10]);
}

#[tokio::test]
async fn without_the_flag_there_is_no_fault_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let dev = Dev::start(dir.path(), &[]);
    let client = dev.client().await;
    let kubeconfig = kube::config::Kubeconfig::read_from(dir.path().join("kubeconfig")).unwrap();
    let server = kubeconfig.clusters[0]
        .cluster
        .as_ref()
        .and_then(|c| c.server.clone())
        .unwrap();
    let code = sh(&format!(
        "curl -s -o /dev/null -w '%{{http_code}}' -X POST {server}/admin/faults -H 'Content-Type: application/json' -d '{{\"kind\": \"InternalError\"}}'"
    ));
    assert_eq!(code, "404");
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    assert_eq!(creates(&cms, "x", 5).await, vec![200; 5]);
    assert!(
        dev.stderr
            .try_iter()
            .all(|l| !l.starts_with("fault injection")),
        "usage printed without the flag"
    );
}
