//! Runs every example's end-to-end script, `examples/*/test.sh`, against this
//! build of the `metacontroller` binary, on the server `MC_TEST_CLUSTER`
//! names: `embedded` (the default; each script starts `metacontroller dev`)
//! or `real` (each script starts its own control plane with
//! `metacontroller-testbed up` and runs `metacontroller run` against it; see
//! `examples/lib.sh`).
//!
//! The examples are discovered when the test runs (every directory under
//! `examples/` holding a `test.sh`, sorted by name), so a new example is
//! picked up without touching this file. Each script gets
//! `METACONTROLLER_BIN` (this package's binary), `KUBECTL` (the first entry
//! of `MC_KUBECTLS`, else `kubectl` on `PATH`) and `MC_TEST_CLUSTER`; on the
//! real cluster also `TESTBED_BIN` (`TESTBED_BIN` if set, else the
//! `metacontroller-testbed` binary of this target folder, which the test
//! builds with cargo first) and `EXAMPLE_TIMEOUT` 120 unless set, as the
//! real garbage collector takes up to 30 s to notice a new CRD. The test
//! fails listing every example whose script failed, with the tail of its
//! output; full outputs are kept under `CARGO_TARGET_TMPDIR/examples/`.
//!
//! `MC_EXAMPLES=name,...` runs only those examples; `MC_EXAMPLES_JOBS` sets
//! how many scripts run at once (default 2 on the embedded server; 6 on a
//! real one, where each script spends most of its time waiting for the
//! garbage collector's discovery pass). Without kubectl or python3 the
//! test is skipped, unless `MC_REQUIRE_KUBECTL` is set.
#![cfg(unix)]

mod common;

use common::paths::{configured_kubectl, repo_root, which};
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use metacontroller_testbed::ClusterKind;

/// A script still running after this long is stopped and counted as failed
/// (the scripts bound each of their own waits; this guards against hangs).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(900);
/// Seconds per wait on the real control plane, unless `EXAMPLE_TIMEOUT` is set.
const REAL_EXAMPLE_TIMEOUT: &str = "120";
/// Scripts run at once on the embedded server, unless `MC_EXAMPLES_JOBS` says.
const EMBEDDED_JOBS: usize = 2;
/// Scripts run at once on real control planes (one each), unless
/// `MC_EXAMPLES_JOBS` says: most of a script's time is the wait for the
/// garbage collector's next discovery pass (up to 30 s and more), which
/// costs no CPU. Six at once took 71 s on 2 cores, three 124 s, two about 200 s.
const REAL_JOBS: usize = 6;
/// Lines of output shown for a failed example.
const TAIL_LINES: usize = 40;

/// `(name, script)` for every `examples/<name>/test.sh`, sorted by name and
/// filtered by `MC_EXAMPLES` when set.
fn discover(root: &Path) -> Vec<(String, PathBuf)> {
    let only: Option<Vec<String>> = std::env::var("MC_EXAMPLES").ok().map(|list| {
        list.split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    });
    let dir = root.join("examples");
    let mut found: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let script = path.join("test.sh");
            let name = path.file_name()?.to_str()?.to_owned();
            script.is_file().then_some((name, script))
        })
        .filter(|(name, _)| only.as_ref().is_none_or(|only| only.contains(name)))
        .collect();
    found.sort();
    found
}

struct Outcome {
    name: String,
    status: Result<ExitStatus, String>,
    elapsed: Duration,
    log: PathBuf,
    output: String,
}

impl Outcome {
    fn passed(&self) -> bool {
        matches!(&self.status, Ok(status) if status.success())
    }

    fn describe(&self) -> String {
        match &self.status {
            Ok(status) if status.success() => "ok".to_owned(),
            Ok(status) => format!("FAILED ({status})"),
            Err(why) => format!("FAILED ({why})"),
        }
    }

    fn tail(&self) -> String {
        let lines: Vec<&str> = self.output.lines().collect();
        lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
    }
}

/// Signals the script's whole process group (the script, its server, its
/// hook and any kubectl it is running).
fn signal_group(child: &Child, signal: &str) {
    let _ = Command::new("kill")
        .args([signal, "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
}

/// Waits for `child` up to `limit`; `None` if it is still running.
fn wait_until(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait().expect("waiting for a script") {
            Some(status) => return Some(status),
            None if Instant::now() >= deadline => return None,
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// The `metacontroller-testbed` binary for the real cluster: `TESTBED_BIN`,
/// else built with cargo into this test's own target folder and profile.
fn testbed_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("TESTBED_BIN") {
        return PathBuf::from(bin);
    }
    // This test runs as <target>/<profile folder>/deps/examples-<hash>.
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in <target>/<profile>/deps");
    let target_dir = profile_dir.parent().expect("the target folder");
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args([
        "build",
        "--quiet",
        "-p",
        "metacontroller-testbed",
        "--target-dir",
    ])
    .arg(target_dir)
    .current_dir(repo_root());
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => {}
        Some(profile) => {
            cmd.args(["--profile", profile]);
        }
        None => panic!("no profile folder in {}", exe.display()),
    }
    eprintln!("building metacontroller-testbed: {cmd:?}");
    let status = cmd.status().expect("running cargo");
    assert!(status.success(), "building metacontroller-testbed failed");
    let bin = profile_dir.join("metacontroller-testbed");
    assert!(bin.is_file(), "{} was not built", bin.display());
    bin
}

/// What every script gets besides the binaries it always needs.
struct Setup {
    kubectl: PathBuf,
    cluster: ClusterKind,
    testbed: Option<PathBuf>,
}

fn run_example(root: &Path, setup: &Setup, logs: &Path, name: &str, script: &Path) -> Outcome {
    let log = logs.join(format!("{name}.log"));
    let file = File::create(&log).expect("creating the output file");
    let started = Instant::now();
    let mut command = Command::new("bash");
    command
        .arg(script)
        .current_dir(root)
        .env("METACONTROLLER_BIN", env!("CARGO_BIN_EXE_metacontroller"))
        .env("KUBECTL", &setup.kubectl)
        .env("MC_TEST_CLUSTER", setup.cluster.name());
    if let Some(testbed) = &setup.testbed {
        command.env("TESTBED_BIN", testbed);
        if std::env::var_os("EXAMPLE_TIMEOUT").is_none() {
            command.env("EXAMPLE_TIMEOUT", REAL_EXAMPLE_TIMEOUT);
        }
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("output file"))
        .stderr(file)
        .process_group(0)
        .spawn()
        .expect("starting bash");
    let status = match wait_until(&mut child, SCRIPT_TIMEOUT) {
        Some(status) => Ok(status),
        None => {
            signal_group(&child, "-TERM");
            if wait_until(&mut child, Duration::from_secs(10)).is_none() {
                signal_group(&child, "-KILL");
                let _ = child.wait();
            }
            Err(format!("timed out after {}s", SCRIPT_TIMEOUT.as_secs()))
        }
    };
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    Outcome {
        name: name.to_owned(),
        status,
        elapsed: started.elapsed(),
        log,
        output,
    }
}

#[test]
fn examples() {
    let required = std::env::var_os("MC_REQUIRE_KUBECTL").is_some();
    let Some(kubectl) = configured_kubectl() else {
        assert!(!required, "no kubectl found but MC_REQUIRE_KUBECTL is set");
        eprintln!("kubectl not found: skipping the examples");
        return;
    };
    if which("python3").is_none() {
        assert!(!required, "the examples need python3");
        eprintln!("python3 not found: skipping the examples");
        return;
    }

    let root = repo_root();
    let scripts = discover(&root);
    assert!(!scripts.is_empty(), "no examples/*/test.sh found");
    let logs = Path::new(env!("CARGO_TARGET_TMPDIR")).join("examples");
    std::fs::create_dir_all(&logs).expect("creating the output directory");
    let cluster = ClusterKind::from_env().expect("MC_TEST_CLUSTER");
    let default_jobs = match cluster {
        ClusterKind::Real => REAL_JOBS,
        ClusterKind::Embedded => EMBEDDED_JOBS,
    };
    let jobs = std::env::var("MC_EXAMPLES_JOBS")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(default_jobs)
        .clamp(1, scripts.len());

    let setup = Setup {
        testbed: (cluster == ClusterKind::Real).then(testbed_bin),
        kubectl,
        cluster,
    };

    eprintln!(
        "running {} examples ({} at a time) on the {} server with {}",
        scripts.len(),
        jobs,
        cluster.name(),
        setup.kubectl.display()
    );
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let outcomes = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                while let Some((name, script)) = scripts.get(next.fetch_add(1, Ordering::SeqCst)) {
                    let outcome = run_example(&root, &setup, &logs, name, script);
                    eprintln!(
                        "example {}: {} in {:.1}s",
                        outcome.name,
                        outcome.describe(),
                        outcome.elapsed.as_secs_f64()
                    );
                    outcomes.lock().unwrap().push(outcome);
                }
            });
        }
    });
    let mut outcomes = outcomes.into_inner().unwrap();
    outcomes.sort_by(|a, b| a.name.cmp(&b.name));

    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| !o.passed()).collect();
    eprintln!(
        "{} of {} examples passed on the {} server in {:.1}s",
        outcomes.len() - failed.len(),
        outcomes.len(),
        cluster.name(),
        started.elapsed().as_secs_f64()
    );
    if !failed.is_empty() {
        let mut report = format!(
            "{} example(s) failed: {}\n",
            failed.len(),
            failed
                .iter()
                .map(|o| o.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        for outcome in &failed {
            report.push_str(&format!(
                "\n===== {}: {} after {:.1}s (full output: {}) =====\n{}\n",
                outcome.name,
                outcome.describe(),
                outcome.elapsed.as_secs_f64(),
                outcome.log.display(),
                outcome.tail()
            ));
        }
        panic!("{report}");
    }
}
