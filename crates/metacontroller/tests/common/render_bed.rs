//! What the `metacontroller render` tests share: the server with the engine
//! (`dev` on the embedded server, or `metacontroller run` on a real control
//! plane, as `MC_TEST_CLUSTER` says), the examples' hooks (plain or
//! recording the engine's requests), kubectl, a stand-in kubelet and the
//! `render` command itself.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::paths::{configured_kubectl, free_port, repo_root, which};

pub const LAST_APPLIED: &str = "metacontroller.k8s.io/last-applied-configuration";
/// How long to wait for the engine: longer on a real control plane.
pub fn wait_limit() -> Duration {
    match metacontroller_testbed::ClusterKind::from_env() {
        Ok(metacontroller_testbed::ClusterKind::Real) => Duration::from_secs(180),
        _ => Duration::from_secs(60),
    }
}

/// kubectl (first entry of `MC_KUBECTLS`, else on `PATH`), or `None` when
/// the tests that need it should be skipped.
pub fn kubectl() -> Option<PathBuf> {
    let found = configured_kubectl();
    let found = found.filter(|_| which("python3").is_some());
    if found.is_none() {
        assert!(
            std::env::var_os("MC_REQUIRE_KUBECTL").is_none(),
            "kubectl and python3 are required"
        );
        eprintln!("skipped: kubectl or python3 not found");
    }
    found
}

/// A child process killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `metacontroller dev` on a free port; its kubeconfig.
pub fn start_dev(dir: &Path) -> (Proc, PathBuf) {
    start_dev_with(dir, &[])
}

/// `metacontroller dev` with extra flags on a free port; its kubeconfig.
pub fn start_dev_with(dir: &Path, flags: &[&str]) -> (Proc, PathBuf) {
    let kubeconfig = dir.join("kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_metacontroller"))
        .args(["dev", "--port", "0", "--kubeconfig-out"])
        .arg(&kubeconfig)
        .args(["--metrics-address", "0", "--health-probe-bind-address", "0"])
        .args(flags)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start metacontroller dev");
    let stdout = child.stdout.take().unwrap();
    let proc = Proc(child);
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = lines
            .next()
            .expect("metacontroller dev exited before printing its kubeconfig")
            .unwrap();
        if line.starts_with("export KUBECONFIG=") {
            break;
        }
    }
    // Keep draining stdout so the server never blocks on it.
    std::thread::spawn(move || for _ in lines {});
    (proc, kubeconfig)
}

/// The API server with Metacontroller running against it: `metacontroller
/// dev` (the embedded server), or, with `MC_TEST_CLUSTER=real`, a real
/// control plane with Metacontroller's CRDs and `metacontroller run`.
pub struct Server {
    _engine: Proc,
    /// The real control plane, stopped on drop (before its runtime).
    _real: Option<metacontroller_testbed::RealCluster>,
    _runtime: Option<tokio::runtime::Runtime>,
    pub kubeconfig: PathBuf,
}

/// The server `MC_TEST_CLUSTER` names, its engine started with `flags`.
pub fn start_server(dir: &Path, flags: &[&str]) -> Server {
    use metacontroller_testbed::ClusterKind;
    if ClusterKind::from_env().expect("MC_TEST_CLUSTER") == ClusterKind::Embedded {
        let (engine, kubeconfig) = start_dev_with(dir, flags);
        return Server {
            _engine: engine,
            _real: None,
            _runtime: None,
            kubeconfig,
        };
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let real = runtime
        .block_on(metacontroller_testbed::RealCluster::start())
        .expect("start a real control plane");
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, real.kubeconfig()).unwrap();
    let k = Kubectl {
        bin: kubectl().expect("kubectl"),
        kubeconfig: kubeconfig.clone(),
    };
    let crds = repo_root().join("manifests/metacontroller-crds-v1.yaml");
    k.ok(&["create", "-f", crds.to_str().unwrap()]);
    for crd in [
        "compositecontrollers",
        "decoratorcontrollers",
        "controllerrevisions",
    ] {
        k.wait_established(&format!("{crd}.metacontroller.k8s.io"));
    }
    // Pods need the namespace's ServiceAccount (admission).
    wait_until("the default ServiceAccount", || {
        k.run(&["get", "serviceaccount", "default"])
            .status
            .success()
    });
    let engine = Command::new(env!("CARGO_BIN_EXE_metacontroller"))
        .arg("run")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--metrics-address", "0", "--health-probe-bind-address", "0"])
        .args(flags)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("metacontroller.log")).unwrap())
        .spawn()
        .expect("start metacontroller run");
    Server {
        _engine: Proc(engine),
        _real: Some(real),
        _runtime: Some(runtime),
        kubeconfig,
    }
}

/// The example's `hook.py` on a free port.
pub fn start_hook(example: &Path) -> (Proc, u16) {
    let port = free_port();
    let child = Command::new("python3")
        .arg(example.join("hook.py"))
        .arg(port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start hook.py");
    let proc = Proc(child);
    wait_until("hook listening", || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    (proc, port)
}

/// A hook server answering with the functions of the example's `hook.py`
/// (`/sync` calls `sync`, `/customize` calls `customize`) that keeps the
/// body of the last request to each path in `OUT/<path>.json`.
pub const RECORDER: &str = r#"
import json, os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
example, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sys.path.insert(0, example)
import hook

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        name = self.path.strip("/")
        tmp = os.path.join(out, name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(body)
        os.replace(tmp, os.path.join(out, name + ".json"))
        data = json.dumps(getattr(hook, name)(json.loads(body))).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
"#;

/// [`RECORDER`] for `example` on a free port, recording into `out`.
pub fn start_recorder(example: &Path, out: &Path) -> (Proc, u16) {
    let port = free_port();
    let child = Command::new("python3")
        .args(["-c", RECORDER])
        .arg(example)
        .arg(port.to_string())
        .arg(out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the recording hook");
    let proc = Proc(child);
    wait_until("recording hook listening", || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    (proc, port)
}

pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < wait_limit(),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

pub struct Kubectl {
    pub bin: PathBuf,
    pub kubeconfig: PathBuf,
}

impl Kubectl {
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(&self.bin)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .expect("run kubectl")
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Creates or updates the CRDs in `file` and waits until `crd` (its
    /// `<plural>.<group>` name) is Established.
    pub fn apply_crd(&self, file: &Path, crd: &str) {
        self.ok(&["apply", "-f", file.to_str().unwrap()]);
        self.wait_established(crd);
    }

    /// Waits until the CRD `crd` is Established.
    pub fn wait_established(&self, crd: &str) {
        self.ok(&[
            "wait",
            "--for",
            "condition=Established",
            "--timeout",
            "60s",
            &format!("crd/{crd}"),
        ]);
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        // Objects as the engine sees them (and passes them to hooks).
        all.extend(["-o", "json", "--show-managed-fields"]);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }
}

/// Runs `metacontroller render ARGS`.
pub fn render(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_metacontroller"))
        .arg("render")
        .args(args)
        .output()
        .expect("run metacontroller render");
    (
        out.status.code().expect("exit status"),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The JSON reports of `render -o json` (one per parent).
pub fn reports(stdout: &str) -> Vec<Value> {
    serde_json::Deserializer::from_str(stdout)
        .into_iter::<Value>()
        .map(Result::unwrap)
        .collect()
}

/// Marks every Pod in the default namespace that is not Running and Ready
/// so, as a kubelet would (neither server runs one).
pub fn play_kubelet(k: &Kubectl) {
    let pods = k.json(&["get", "pods"]);
    for pod in pods["items"].as_array().unwrap() {
        let status = &pod["status"];
        let ready = status["phase"] == "Running"
            && status["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            });
        if ready || pod["metadata"]["deletionTimestamp"].is_string() {
            continue;
        }
        // The Pod may be gone already; the next pass sees.
        let _ = k.run(&[
            "patch",
            "pod",
            pod["metadata"]["name"].as_str().unwrap(),
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}}"#,
        ]);
    }
}

/// Writes the example's controller with its hook port.
pub fn controller_file(example: &Path, port: u16, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(example.join("controller.yaml"))
        .unwrap()
        .replace("${HOOK_PORT}", &port.to_string());
    let path = dir.join("controller.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A command running `function` of the example's `hook.py` on the request
/// read from standard input (the hooks' HTTP handlers call the same
/// functions).
pub fn exec_example(example: &str) -> String {
    let dir = repo_root().join("examples").join(example);
    format!(
        "python3 -c 'import json, os, sys; sys.path.insert(0, {dir:?}); import hook; \
         print(json.dumps(getattr(hook, os.environ[\"METACONTROLLER_HOOK\"])(json.load(sys.stdin))))'",
        dir = dir.to_str().unwrap()
    )
}
