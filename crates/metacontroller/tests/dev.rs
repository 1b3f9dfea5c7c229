//! `metacontroller dev -f DIR` from the outside, on a copy of
//! `examples/hello-world`: the binary is started as a user would, and
//! checked through its output, its kubeconfig and the API server.
//!
//! - `dev --wait` prints `export KUBECONFIG=<absolute path>` once ready;
//!   the summary names loopback addresses for the API server, metrics and
//!   health, and both endpoints answer;
//! - the folder comes up: the HelloWorld's Pod is created by the hook;
//! - a second `dev` for the same kubeconfig exits non-zero with one line and
//!   leaves the kubeconfig as it was;
//! - editing a manifest re-applies it (the Pod is recreated for the new
//!   `spec.who`); editing the hook restarts it and every parent resyncs
//!   (the Pod is recreated with the new greeting);
//! - stderr, not a terminal here, carries no ANSI escape sequences;
//! - SIGTERM stops everything, the hook included.
#![cfg(unix)]

mod common;

use common::paths::repo_root;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::Api;

const TIMEOUT: Duration = Duration::from_secs(60);
const BIN: &str = env!("CARGO_BIN_EXE_metacontroller");

/// The running `dev`, killed if the test fails.
struct Dev {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Dev {
    fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }
    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }
}

/// Replaces `from` by `to` in `file`, which must contain it.
fn edit(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.contains(from), "{} lacks {from:?}", file.display());
    std::fs::write(file, text.replace(from, to)).unwrap();
}

/// GET `url` (http://host:port/path) with HTTP/1.0; the status code.
fn http_status(url: &str) -> u16 {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut stream = TcpStream::connect(host).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

/// The value of the summary line `label`.
fn summary_value(stdout: &str, label: &str) -> String {
    stdout
        .lines()
        .find_map(|line| line.trim_start().strip_prefix(label).map(str::trim))
        .unwrap_or_else(|| panic!("no {label:?} line in:\n{stdout}"))
        .to_owned()
}

async fn wait_greeting(pods: &Api<Pod>, want: &str, dev: &Dev) {
    let start = Instant::now();
    loop {
        if let Ok(Some(pod)) = pods.get_opt("hello-greeter").await {
            let command = pod
                .spec
                .and_then(|s| s.containers.into_iter().next())
                .and_then(|c| c.command)
                .unwrap_or_default();
            if command.get(1).map(String::as_str) == Some(want) {
                return;
            }
        }
        assert!(
            start.elapsed() < TIMEOUT,
            "no Pod saying {want:?} within {TIMEOUT:?}\nstdout:\n{}\nstderr:\n{}",
            dev.stdout(),
            dev.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn wait_for_line(dev: &Dev, line: &str) {
    let start = Instant::now();
    while !dev.stderr().lines().any(|l| l.contains(line)) {
        assert!(
            start.elapsed() < TIMEOUT,
            "no {line:?} within {TIMEOUT:?}\nstdout:\n{}\nstderr:\n{}",
            dev.stdout(),
            dev.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_folder_comes_up_and_follows_edits() {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("skipped: python3 not found");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("hello");
    copy_dir(&repo_root().join("examples/hello-world"), &folder);
    let kubeconfig = tmp.path().join("state/kubeconfig");

    let started = Instant::now();
    let stdout = tmp.path().join("dev.out");
    let stderr = tmp.path().join("dev.err");
    let child = Command::new(BIN)
        .args(["dev", "-f"])
        .arg(&folder)
        .arg("--kubeconfig-out")
        .arg(&kubeconfig)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let mut dev = Dev {
        child,
        stdout,
        stderr,
    };

    // `dev --wait` returns once the first one is ready.
    let wait = Command::new(BIN)
        .args(["dev", "--wait", "--wait-timeout=60s", "--kubeconfig-out"])
        .arg(&kubeconfig)
        .output()
        .unwrap();
    assert!(
        wait.status.success(),
        "dev --wait: {}\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&wait.stderr),
        dev.stdout(),
        dev.stderr()
    );
    assert_eq!(
        String::from_utf8_lossy(&wait.stdout).trim(),
        format!("export KUBECONFIG={}", kubeconfig.display())
    );
    eprintln!("ready after {:?}", started.elapsed());
    // stdout carries the export line alone; what runs where is on stderr.
    let stdout = dev.stdout();
    assert_eq!(
        stdout.trim(),
        format!("export KUBECONFIG={}", kubeconfig.display()),
        "stdout:\n{stdout}"
    );
    let out = dev.stderr();
    assert!(out.contains("metacontroller dev is ready:"), "{out}");
    for (label, path) in [("metrics", "/metrics"), ("health", "/healthz")] {
        let url = summary_value(&out, label);
        assert!(url.starts_with("http://127.0.0.1:"), "{label}: {url}");
        assert!(url.ends_with(path), "{label}: {url}");
        assert_eq!(http_status(&url), 200, "{url}");
    }
    assert!(summary_value(&out, "API server").starts_with("http://127.0.0.1:"));
    assert!(summary_value(&out, "hook hello-world").contains("python3 hook.py"));

    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&kubeconfig).unwrap(),
        &Default::default(),
    )
    .await
    .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let pods: Api<Pod> = Api::namespaced(client, "default");
    wait_greeting(&pods, "Hello, World!", &dev).await;

    // A second dev for the same kubeconfig.
    let before = std::fs::read(&kubeconfig).unwrap();
    let second = Command::new(BIN)
        .args(["dev", "--kubeconfig-out"])
        .arg(&kubeconfig)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let second_err = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success());
    assert!(
        second_err.contains("another `metacontroller dev`"),
        "{second_err}"
    );
    assert_eq!(second_err.trim().lines().count(), 1, "{second_err}");
    assert_eq!(std::fs::read(&kubeconfig).unwrap(), before);

    // A manifest edit is re-applied.
    edit(&folder.join("hello.yaml"), "who: World", "who: Rust");
    wait_greeting(&pods, "Hello, Rust!", &dev).await;
    wait_for_line(&dev, "re-applied");

    // A hook edit restarts the hook, and the parent resyncs.
    edit(&folder.join("hook.py"), "\"Hello, %s!\"", "\"Howdy, %s!\"");
    wait_for_line(&dev, "restarted hook hello-world");
    wait_greeting(&pods, "Howdy, Rust!", &dev).await;

    assert!(
        !dev.stderr().contains('\u{1b}'),
        "escape sequences in a log that is not a terminal"
    );

    // SIGTERM stops the process and its hook.
    let hook = summary_value(&out, "hook hello-world");
    let port: u16 = hook
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {hook:?}"));
    Command::new("kill")
        .arg(dev.child.id().to_string())
        .status()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = dev.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "dev did not stop"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status}\n{}", dev.stderr());
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the hook still listens on {port}"
    );
}
