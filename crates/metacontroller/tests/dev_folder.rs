//! `metacontroller dev -f DIR` keeping a folder and the server in step,
//! with real processes:
//!
//! - an object removed from a manifest file, or a whole file removed, is
//!   deleted from the server (an object moved to another file stays);
//! - a hook that exits on its own (here after 1 s) is started again after
//!   1 s, 2 s, 4 s of back-off, one line per restart;
//! - every port is bound before the kubeconfig is written and the export
//!   line printed: a busy live-view port fails `dev` with neither, and the
//!   live view answers as soon as the export line is out.
#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;

const TIMEOUT: Duration = Duration::from_secs(60);

/// A running `dev`, its output lines (stdout and stderr) kept; killed on
/// drop.
struct Dev {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Dev {
    fn start(args: &[&str], kubeconfig: &Path) -> Dev {
        let mut child = Command::new(env!("CARGO_BIN_EXE_metacontroller"))
            .arg("dev")
            .args(args)
            .arg("--kubeconfig-out")
            .arg(kubeconfig)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start metacontroller dev");
        let lines = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let sink = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    sink.lock().unwrap().push(line);
                }
            });
        }
        Dev { child, lines }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    fn wait_line(&self, what: &str) -> String {
        let start = Instant::now();
        loop {
            if let Some(line) = self.lines().into_iter().find(|l| l.contains(what)) {
                return line;
            }
            assert!(
                start.elapsed() < TIMEOUT,
                "no {what:?} within {TIMEOUT:?}:\n{}",
                self.lines().join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

async fn client(kubeconfig: &Path) -> kube::Client {
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(kubeconfig).unwrap(),
        &Default::default(),
    )
    .await
    .unwrap();
    kube::Client::try_from(config).unwrap()
}

async fn wait_until<F, Fut>(what: &str, dev: &Dev, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !done().await {
        assert!(
            start.elapsed() < TIMEOUT,
            "timed out waiting for {what}:\n{}",
            dev.lines().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn config_maps(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| {
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {n}\ndata:\n  k: v\n")
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn objects_gone_from_the_files_are_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("folder");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("extra.yaml"), config_maps(&["a", "b"])).unwrap();
    std::fs::write(folder.join("other.yaml"), config_maps(&["c"])).unwrap();
    let kubeconfig = tmp.path().join("kubeconfig");
    let folder_arg = folder.to_str().unwrap();
    let dev = Dev::start(&["-f", folder_arg, "--port", "0"], &kubeconfig);
    dev.wait_line("export KUBECONFIG=");
    let cms: Api<ConfigMap> = Api::namespaced(client(&kubeconfig).await, "default");
    let names = || async {
        let mut names: Vec<String> = cms
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|cm| cm.metadata.name)
            .filter(|n| n.len() == 1)
            .collect();
        names.sort();
        names
    };
    assert_eq!(names().await, ["a", "b", "c"]);

    // b leaves its file.
    std::fs::write(folder.join("extra.yaml"), config_maps(&["a"])).unwrap();
    wait_until("b deleted", &dev, || async { names().await == ["a", "c"] }).await;
    let line = dev.wait_line("deleted configmap/b");
    assert!(line.contains("gone from extra.yaml"), "{line}");

    // c moves to another file: it stays. Then extra.yaml goes, with a.
    std::fs::rename(folder.join("other.yaml"), folder.join("moved.yaml")).unwrap();
    dev.wait_line("re-applied configmap/a, configmap/c");
    std::fs::remove_file(folder.join("extra.yaml")).unwrap();
    wait_until("a deleted", &dev, || async { names().await == ["c"] }).await;
    dev.wait_line("deleted configmap/a (gone from extra.yaml)");
    assert!(
        !dev.lines()
            .iter()
            .any(|l| l.contains("deleted configmap/c")),
        "{}",
        dev.lines().join("\n")
    );
}

/// A hook that listens on $HOOK_PORT, notes its start and exits after 1 s.
const FLAKY: &str = r#"
import os, socket, time
with open("starts.log", "a") as f:
    f.write("start\n")
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(os.environ["HOOK_PORT"])))
s.listen()
time.sleep(1)
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_hook_that_exits_is_restarted_with_back_off() {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("skipped: python3 not found");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("folder");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("flaky.py"), FLAKY).unwrap();
    std::fs::write(
        folder.join("dev.yaml"),
        "hooks:\n  - name: flaky\n    command: [python3, flaky.py]\n    watch: [flaky.py]\n",
    )
    .unwrap();
    let kubeconfig = tmp.path().join("kubeconfig");
    let dev = Dev::start(
        &["-f", folder.to_str().unwrap(), "--port", "0"],
        &kubeconfig,
    );
    dev.wait_line("export KUBECONFIG=");
    let started = Instant::now();
    let restarts = || -> Vec<String> {
        dev.lines()
            .into_iter()
            .filter(|l| l.contains("restarted hook flaky"))
            .collect()
    };
    while restarts().len() < 3 {
        assert!(
            started.elapsed() < TIMEOUT,
            "fewer than 3 restarts:\n{}",
            dev.lines().join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let lines = restarts();
    for (line, backoff) in lines.iter().zip(["1s", "2s", "4s"]) {
        assert!(
            line.contains(&format!("back-off {backoff})"))
                && line.contains("exited (exit status: 0"),
            "{line}\n{}",
            lines.join("\n")
        );
    }
    // One line per restart: the process was started once more than the
    // restarts reported (or twice, if a restart is under way).
    let starts = std::fs::read_to_string(folder.join("starts.log"))
        .unwrap()
        .lines()
        .count();
    let reported = restarts().len();
    assert!(
        starts == reported + 1 || starts == reported + 2,
        "{starts} starts, {reported} restart lines"
    );
    assert!(!dev.lines().iter().any(|l| l.contains("hook failed")));
    eprintln!("3 restarts in {:?}: {starts} starts", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn every_port_is_bound_before_the_export_line() {
    // A busy live-view port: dev fails, and writes and prints nothing.
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = busy.local_addr().unwrap().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let kubeconfig = tmp.path().join("kubeconfig");
    let mut dev = Dev::start(&["--port", "0", "--view-address", &address], &kubeconfig);
    let start = Instant::now();
    let status = loop {
        if let Some(status) = dev.child.try_wait().unwrap() {
            break status;
        }
        assert!(start.elapsed() < TIMEOUT, "dev kept running on a busy port");
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(Duration::from_millis(200));
    let lines = dev.lines().join("\n");
    assert!(!status.success(), "{lines}");
    assert!(lines.contains("live view"), "{lines}");
    assert!(!lines.contains("export KUBECONFIG="), "{lines}");
    assert!(!kubeconfig.exists(), "kubeconfig written:\n{lines}");
    drop(busy);

    // Free ports: the live view answers as soon as the export line is out.
    let dev = Dev::start(
        &["--port", "0", "--view-address", "127.0.0.1:0"],
        &kubeconfig,
    );
    dev.wait_line("export KUBECONFIG=");
    let view = dev.wait_line("live view");
    let url = view.split_whitespace().last().unwrap().to_owned();
    let host = url
        .strip_prefix("http://")
        .and_then(|u| u.strip_suffix('/'))
        .unwrap_or_else(|| panic!("{view}"));
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    use std::io::{Read, Write};
    write!(stream, "GET / HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200"),
        "{answer}"
    );
}
