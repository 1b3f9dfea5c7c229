//! `--pprof-address` of `metacontroller dev`, over HTTP:
//!
//! 1. `/debug/pprof/profile?seconds=2`, taken while the process serves a
//!    stream of ConfigMap creations, is a gzip-compressed pprof protobuf with
//!    a `samples/count` and `cpu/nanoseconds` sample type, a 100 Hz period,
//!    and samples whose locations are in the profile.
//! 2. Of two overlapping profile requests, one gets 409.
//! 3. `/debug/pprof/heap` answers 501 with an explanation; `/debug/pprof/`
//!    lists both paths; a bad `seconds` gets 400.
#![cfg(unix)]

mod common;

use common::paths::free_port;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ObjectMeta, PostParams};
use pprof::protos::{Message, Profile};

/// Kills the `metacontroller dev` process when the test ends.
struct Dev(Child);

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET path`: the status code, the head and the body.
fn get(port: u16, path: &str) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read response");
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of head");
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("status line: {head}"));
    // axum answers with a Content-Length, so the body is not chunked.
    (status, head, response[split + 4..].to_vec())
}

/// Starts `metacontroller dev` and returns it with its kubeconfig once the
/// engine runs.
fn start_dev(dir: &std::path::Path, pprof_port: u16) -> (Dev, std::path::PathBuf) {
    let kubeconfig = dir.join("kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_metacontroller"))
        .arg("dev")
        .arg("--kubeconfig-out")
        .arg(&kubeconfig)
        .args([
            "--metrics-address=0",
            "--health-probe-bind-address=0",
            &format!("--pprof-address=127.0.0.1:{pprof_port}"),
        ])
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start metacontroller dev");
    let stdout = child.stdout.take().expect("stdout");
    let dev = Dev(child);
    let mut stdout = BufReader::new(stdout);
    let mut line = String::new();
    stdout.read_line(&mut line).expect("read stdout");
    // Keep reading, so that the process never writes to a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    assert!(line.starts_with("export KUBECONFIG="), "stdout: {line:?}");
    (dev, kubeconfig)
}

/// Creates ConfigMaps in a loop until `stop` is set; returns how many.
async fn create_config_maps(client: kube::Client, stop: Arc<AtomicBool>) -> usize {
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let mut created = 0;
    while !stop.load(Ordering::Relaxed) {
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some(format!("load-{created}")),
                ..Default::default()
            },
            data: Some([("n".to_owned(), created.to_string())].into()),
            ..Default::default()
        };
        api.create(&PostParams::default(), &cm)
            .await
            .expect("create ConfigMap");
        created += 1;
    }
    created
}

fn string(profile: &Profile, index: i64) -> &str {
    &profile.string_table[usize::try_from(index).unwrap()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_profile_and_heap() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (_dev, kubeconfig) = start_dev(dir.path(), port);
    let config = kube::config::Kubeconfig::read_from(&kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(config, &Default::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(config).unwrap();

    let (status, _, index) = tokio::task::spawn_blocking(move || get(port, "/debug/pprof/"))
        .await
        .unwrap();
    assert_eq!(status, 200);
    let index = String::from_utf8(index).unwrap();
    assert!(index.contains("/debug/pprof/profile"), "{index}");
    assert!(index.contains("/debug/pprof/heap"), "{index}");

    let (status, _, body) = tokio::task::spawn_blocking(move || get(port, "/debug/pprof/heap"))
        .await
        .unwrap();
    assert_eq!(status, 501);
    let body = String::from_utf8(body).unwrap();
    assert!(body.contains("profiling allocator"), "{body}");

    let (status, _, _) =
        tokio::task::spawn_blocking(move || get(port, "/debug/pprof/profile?seconds=0"))
            .await
            .unwrap();
    assert_eq!(status, 400);

    // Keep the process busy while it profiles itself.
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(create_config_maps(client, stop.clone()));
    // Two overlapping requests: whichever reaches the handler second finds
    // the first still sampling.
    let started = Instant::now();
    let first = tokio::task::spawn_blocking(move || get(port, "/debug/pprof/profile?seconds=2"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = tokio::task::spawn_blocking(move || get(port, "/debug/pprof/profile?seconds=2"));
    let answers = [first.await.unwrap(), second.await.unwrap()];
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let created = load.await.unwrap();
    let mut statuses: Vec<u16> = answers.iter().map(|(status, _, _)| *status).collect();
    statuses.sort();
    assert_eq!(
        statuses,
        [200, 409],
        "{:?}",
        answers.map(|(_, head, _)| head)
    );
    let (_, _, body) = answers
        .into_iter()
        .find(|(status, _, _)| *status == 200)
        .unwrap();
    assert!(
        elapsed >= Duration::from_secs(2),
        "answered after {elapsed:?}"
    );
    assert!(created > 0);

    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(body.as_slice())
        .read_to_end(&mut raw)
        .expect("gzip body");
    let profile = Profile::decode(raw.as_slice()).expect("pprof protobuf");
    let types: Vec<(&str, &str)> = profile
        .sample_type
        .iter()
        .map(|t| (string(&profile, t.ty), string(&profile, t.unit)))
        .collect();
    assert_eq!(types, [("samples", "count"), ("cpu", "nanoseconds")]);
    assert_eq!(profile.period, 10_000_000, "100 Hz");
    assert!(profile.duration_nanos >= 2_000_000_000);
    assert!(
        !profile.sample.is_empty(),
        "no samples while creating {created} ConfigMaps"
    );
    let locations: std::collections::HashSet<u64> = profile.location.iter().map(|l| l.id).collect();
    for sample in &profile.sample {
        assert_eq!(sample.value.len(), 2);
        assert!(sample.value[0] > 0);
        assert!(!sample.location_id.is_empty());
        assert!(sample.location_id.iter().all(|id| locations.contains(id)));
    }
    eprintln!(
        "profile: {} samples, {} locations, {} functions, {} bytes gzipped; {created} ConfigMaps created",
        profile.sample.len(),
        profile.location.len(),
        profile.function.len(),
        body.len()
    );
}
