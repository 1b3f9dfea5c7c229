//! The zap log flags of the binary, on the server `MC_TEST_CLUSTER` names.
//!
//! One process per encoder syncs a parent through a sync hook; the test then
//! parses every line it wrote to stderr:
//!
//! - `--zap-encoder=json` (the default) at `--zap-log-level=6`: each line is
//!   a JSON object with zap's keys (`level`, numeric `ts` for the default
//!   epoch encoding, `logger`, `msg`), the sync trigger (V4) and the hook's
//!   response body (V6) are there, and the metrics listener's `addr` (from
//!   `--metrics-address=:0`) answers on IPv4 and, when the host has it, IPv6.
//! - `--zap-devel --zap-time-encoding=rfc3339nano`: console lines
//!   `time<TAB>LEVEL<TAB>logger<TAB>caller<TAB>msg[<TAB>{fields}]` with an
//!   RFC 3339 time.
//! - `--zap-log-level=info`, JSON with `--zap-time-encoding=iso8601`: no
//!   V4 or V6 lines.
#![cfg(unix)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::instance::Instance;
use common::things::{create_parent, start_world, wait_synced};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(90);

/// Runs one instance with `args` until `parent` is synced, then stops it
/// and returns its stderr lines.
async fn run_once(
    client: &kube::Client,
    kubeconfig: &Path,
    parent: &str,
    args: &[&str],
) -> (Vec<String>, Instance) {
    let instance = Instance::start(parent, kubeconfig, args);
    create_parent(client, "default", parent).await;
    wait_synced(client, "default", parent, TIMEOUT).await;
    // Let the lines of the sync that just finished reach the log.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let lines = instance.log().lines().map(str::to_owned).collect();
    (lines, instance)
}

fn json_lines(lines: &[String]) -> Vec<serde_json::Map<String, Value>> {
    lines
        .iter()
        .map(|line| match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(map)) => map,
            other => panic!("not a JSON object: {line:?} ({other:?})"),
        })
        .collect()
}

fn has_msg(lines: &[serde_json::Map<String, Value>], msg: &str) -> bool {
    lines.iter().any(|l| l["msg"] == msg)
}

async fn get_metrics(addr: std::net::SocketAddr) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .map_err(|e| e.to_string())?;
    response
        .starts_with("HTTP/1.1 200")
        .then_some(())
        .ok_or(response)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zap_encoders_and_levels() {
    let (cluster, client, _hook) = start_world().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, cluster.kubeconfig()).unwrap();

    // JSON (default encoder) at V6.
    let (lines, instance) = run_once(
        &client,
        &kubeconfig,
        "json-v6",
        &[
            "--zap-log-level=6",
            "--metrics-address=:0",
            "--health-probe-bind-address=0",
            "--discovery-interval=2s",
        ],
    )
    .await;
    let json = json_lines(&lines);
    assert!(!json.is_empty());
    for line in &json {
        assert!(
            ["debug", "info", "warn", "error"].contains(&line["level"].as_str().unwrap()),
            "{line:?}"
        );
        assert!(line["ts"].as_f64().unwrap() > 1.7e9, "{line:?}");
        assert!(line["logger"].is_string(), "{line:?}");
        assert!(line["msg"].is_string(), "{line:?}");
        assert!(!line.contains_key("caller"), "{line:?}");
    }
    let sync = json
        .iter()
        .find(|l| l["msg"] == "sync" && l["parent"].as_str() == Some("default/json-v6"))
        .unwrap_or_else(|| panic!("no V4 sync line:\n{}", lines.join("\n")));
    assert_eq!(sync["level"], "debug");
    assert!(
        sync["logger"]
            .as_str()
            .unwrap()
            .starts_with("metacontroller_engine.")
    );
    let body = json
        .iter()
        .find(|l| l["msg"] == "hook response body")
        .unwrap_or_else(|| panic!("no V6 hook body line:\n{}", lines.join("\n")));
    let body: Value = serde_json::from_str(body["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["status"]["children"], 1);

    // V5: a child someone else changed is put back, and the change is
    // logged as a JSON patch first.
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    configmaps
        .patch(
            "json-v6",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"data": {"from": "someone else"}})),
        )
        .await
        .expect("patch the child");
    let deadline = std::time::Instant::now() + TIMEOUT;
    let diff = loop {
        let lines: Vec<String> = instance.log().lines().map(str::to_owned).collect();
        let found = json_lines(&lines).into_iter().find(|l| {
            l["msg"] == "child diff" && l["child"].as_str().is_some_and(|c| c.contains("json-v6"))
        });
        if let Some(line) = found {
            break line;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no V5 child diff line:\n{}",
            lines.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let patch: Value = serde_json::from_str(diff["diff"].as_str().unwrap()).unwrap();
    assert!(
        patch
            .as_array()
            .unwrap()
            .iter()
            .any(|op| op["path"] == "/data/from" && op["value"] == "hook"),
        "{patch}"
    );

    let listening = json
        .iter()
        .find(|l| l["msg"] == "metrics server listening")
        .expect("metrics listener line");
    let addr: std::net::SocketAddr = listening["addr"].as_str().unwrap().parse().unwrap();
    let port = addr.port();
    get_metrics((std::net::Ipv4Addr::LOCALHOST, port).into())
        .await
        .unwrap();
    if std::net::TcpListener::bind((std::net::Ipv6Addr::LOCALHOST, 0)).is_ok() {
        assert!(addr.is_ipv6(), "{addr} is not dual-stack");
        get_metrics((std::net::Ipv6Addr::LOCALHOST, port).into())
            .await
            .unwrap();
    }
    drop(instance);

    // Console, development mode, RFC 3339 times with nanoseconds.
    let (lines, instance) = run_once(
        &client,
        &kubeconfig,
        "console",
        &[
            "--zap-devel",
            "--zap-time-encoding=rfc3339nano",
            "--metrics-address=0",
            "--health-probe-bind-address=0",
            "--discovery-interval=2s",
        ],
    )
    .await;
    drop(instance);
    let mut saw_sync = false;
    // Stack traces follow their line; only tab-separated lines are entries.
    for line in lines.iter().filter(|l| l.contains('\t')) {
        let cols: Vec<&str> = line.split('\t').collect();
        assert!(cols.len() >= 5, "{line:?}");
        let ts: jiff::Timestamp = cols[0].parse().unwrap_or_else(|e| panic!("{line:?}: {e}"));
        assert!(cols[0].ends_with('Z') && ts.as_second() > 1_700_000_000);
        assert!(
            ["DEBUG", "INFO", "WARN", "ERROR"].contains(&cols[1]),
            "{line:?}"
        );
        assert!(cols[3].contains(".rs:"), "caller column: {line:?}");
        if cols[4] == "sync" {
            let fields: Value = serde_json::from_str(cols[5]).unwrap();
            saw_sync |= fields["parent"] == "default/console";
        }
    }
    assert!(saw_sync, "no sync line:\n{}", lines.join("\n"));

    // Info level: nothing from V4 or V6.
    let (lines, instance) = run_once(
        &client,
        &kubeconfig,
        "quiet",
        &[
            "-zap-log-level=info",
            "-zap-time-encoding=iso8601",
            "-metrics-address=0",
            "-health-probe-bind-address=0",
            "-discovery-interval=2s",
        ],
    )
    .await;
    drop(instance);
    let json = json_lines(&lines);
    assert!(!json.is_empty());
    for line in &json {
        assert_ne!(line["level"], "debug", "{line:?}");
        let ts = line["ts"].as_str().unwrap();
        assert_eq!(ts.len(), "2026-01-02T03:04:05.000Z".len(), "{ts}");
    }
    assert!(!has_msg(&json, "sync"));
    assert!(!has_msg(&json, "hook response body"));
}

/// A server that cannot be reached: each failed request is a WARN line
/// naming the method and URL, host and port included; kube-rs's own ERROR
/// lines ("failed with error client error (Connect)") are not there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_failures_name_the_server() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: t\n"
        ),
    )
    .unwrap();
    let instance = Instance::start(
        "unreachable",
        &kubeconfig,
        &["--metrics-address=0", "--health-probe-bind-address=0"],
    );
    let url = format!("http://127.0.0.1:{port}/");
    let deadline = std::time::Instant::now() + TIMEOUT;
    let line = loop {
        let log = instance.log();
        if let Some(line) = log.lines().find(|l| l.contains(&url)) {
            break line.to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no line names {url}:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let parsed: Value = serde_json::from_str(&line).unwrap();
    assert!(
        ["warn", "info"].contains(&parsed["level"].as_str().unwrap()),
        "{line}"
    );
    assert!(line.contains(&format!("GET {url}")), "{line}");
    assert!(line.contains("Connect"), "{line}");
    let lines: Vec<String> = instance.log().lines().map(str::to_owned).collect();
    drop(instance);
    for line in json_lines(&lines) {
        assert_ne!(line["level"], "error", "{line:?}");
        assert!(
            !line["logger"].as_str().unwrap().starts_with("kube_client"),
            "{line:?}"
        );
    }
}
