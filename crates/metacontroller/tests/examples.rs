//! Runs every example's end-to-end script, `examples/*/test.sh`, against this
//! build of the `metacontroller` binary.
//!
//! The examples are discovered when the test runs (every directory under
//! `examples/` holding a `test.sh`, sorted by name), so a new example is
//! picked up without touching this file. Each script gets
//! `METACONTROLLER_BIN` (this package's binary) and `KUBECTL` (the first entry
//! of `MC_KUBECTLS`, else `kubectl` on `PATH`), and starts its own
//! `metacontroller dev` server and hook. The test fails listing every example
//! whose script failed, with the tail of its output; full outputs are kept
//! under `CARGO_TARGET_TMPDIR/examples/`.
//!
//! `MC_EXAMPLES=name,...` runs only those examples; `MC_EXAMPLES_JOBS` sets
//! how many scripts run at once (default 2). Without kubectl or python3 the
//! test is skipped, unless `MC_REQUIRE_KUBECTL` is set.
#![cfg(unix)]

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A script still running after this long is stopped and counted as failed
/// (the scripts bound each of their own waits; this guards against hangs).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(600);
/// Lines of output shown for a failed example.
const TAIL_LINES: usize = 40;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    })
}

/// The kubectl the scripts use: `MC_KUBECTLS` (':'-separated, first entry),
/// else `kubectl` on `PATH`.
fn kubectl() -> Option<PathBuf> {
    if let Ok(list) = std::env::var("MC_KUBECTLS")
        && let Some(first) = list.split(':').find(|s| !s.is_empty())
    {
        return Some(PathBuf::from(first));
    }
    which("kubectl")
}

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

fn run_example(root: &Path, kubectl: &Path, logs: &Path, name: &str, script: &Path) -> Outcome {
    let log = logs.join(format!("{name}.log"));
    let file = File::create(&log).expect("creating the output file");
    let started = Instant::now();
    let mut child = Command::new("bash")
        .arg(script)
        .current_dir(root)
        .env("METACONTROLLER_BIN", env!("CARGO_BIN_EXE_metacontroller"))
        .env("KUBECTL", kubectl)
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
    let Some(kubectl) = kubectl() else {
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
    let jobs = std::env::var("MC_EXAMPLES_JOBS")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(2)
        .clamp(1, scripts.len());

    eprintln!(
        "running {} examples ({} at a time) with {}",
        scripts.len(),
        jobs,
        kubectl.display()
    );
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let outcomes = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                while let Some((name, script)) = scripts.get(next.fetch_add(1, Ordering::SeqCst)) {
                    let outcome = run_example(&root, &kubectl, &logs, name, script);
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
        "{} of {} examples passed in {:.1}s",
        outcomes.len() - failed.len(),
        outcomes.len(),
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
