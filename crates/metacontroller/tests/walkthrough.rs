//! The README's walk-through, run as written: every ```sh block of its
//! "Walk-through" section (up to the next `## ` heading), joined in order,
//! runs in one `bash` (with `set -euo pipefail` in front) in a fresh folder
//! holding a copy of `examples/`, with `metacontroller` (this build) and
//! `kubectl` (the newest found: `MC_KUBECTLS`' first entry, else
//! `/usr/lib/google-cloud-sdk/bin/kubectl.1.*`, else `kubectl` on `PATH`)
//! first on `PATH` and `HOME` in the folder. The one step before the
//! section, `cargo install`, is what puts this build on `PATH`.
//!
//! Asserted: the section has fewer than ten commands; the script succeeds
//! (each of its `kubectl wait`s met) within four minutes; `kubectl get`
//! listed the HelloWorld and its Pod; both waits printed `condition met`;
//! when the script ends, its `dev` has stopped (its lock file is free).
//! Without python3 or kubectl the test is skipped, unless
//! `MC_REQUIRE_KUBECTL` is set.
#![cfg(unix)]

mod common;

use common::paths::{repo_root, which};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_metacontroller");
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(240);

/// The ```sh blocks of the README section whose heading starts with
/// `## Walk-through`.
fn walkthrough_blocks(readme: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut in_section = false;
    let mut block: Option<String> = None;
    for line in readme.lines() {
        if let Some(current) = block.as_mut() {
            if line.trim_end() == "```" {
                blocks.push(block.take().unwrap());
            } else {
                current.push_str(line);
                current.push('\n');
            }
            continue;
        }
        if line.starts_with("## ") {
            in_section = line.starts_with("## Walk-through");
        } else if in_section && line.trim_end() == "```sh" {
            block = Some(String::new());
        }
    }
    blocks
}

/// Commands in `script`: lines that are neither blank nor comments, a line
/// ending in `\` continuing onto the next.
fn count_commands(script: &str) -> usize {
    let mut count = 0;
    let mut continued = false;
    for line in script.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if !continued {
            count += 1;
        }
        continued = trimmed.ends_with('\\');
    }
    count
}

fn kubectl() -> Option<PathBuf> {
    if let Ok(list) = std::env::var("MC_KUBECTLS")
        && let Some(first) = list.split(':').find(|s| !s.is_empty())
    {
        return Some(PathBuf::from(first));
    }
    let sdk = Path::new("/usr/lib/google-cloud-sdk/bin");
    let mut versioned: Vec<(u32, PathBuf)> = std::fs::read_dir(sdk)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let path = e.ok()?.path();
            let minor = path
                .file_name()?
                .to_str()?
                .strip_prefix("kubectl.1.")?
                .parse()
                .ok()?;
            Some((minor, path))
        })
        .collect();
    versioned.sort();
    versioned
        .pop()
        .map(|(_, path)| path)
        .or_else(|| which("kubectl"))
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

#[test]
fn readme_walkthrough_runs_as_written() {
    let root = repo_root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let blocks = walkthrough_blocks(&readme);
    assert!(!blocks.is_empty(), "no ```sh block under ## Walk-through");
    let script = blocks.concat();
    let commands = count_commands(&script);
    assert!(commands < 10, "{commands} commands:\n{script}");

    let kubectl = kubectl();
    let python = Command::new("python3").arg("--version").output().is_ok();
    let (Some(kubectl), true) = (kubectl, python) else {
        assert!(
            std::env::var_os("MC_REQUIRE_KUBECTL").is_none(),
            "kubectl or python3 missing"
        );
        eprintln!("skipped: kubectl or python3 not found");
        return;
    };

    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    copy_tree(&root.join("examples"), &work.join("examples"));
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(BIN, bin.join("metacontroller")).unwrap();
    std::os::unix::fs::symlink(&kubectl, bin.join("kubectl")).unwrap();
    let path = std::env::join_paths(std::iter::once(bin.clone()).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .unwrap();

    let out_path = tmp.path().join("walkthrough.out");
    let started = Instant::now();
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(format!("set -euo pipefail\n{script}"))
        .current_dir(&work)
        .env("PATH", path)
        .env("HOME", tmp.path())
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut { stderr }, &mut text);
        text
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > SCRIPT_TIMEOUT {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // The walk-through stopped its `dev`: the lock is free again.
    let lock = work.join(".metacontroller/kubeconfig.lock");
    let released = std::fs::File::open(&lock).is_ok_and(|file| file.try_lock().is_ok());
    // Whatever is left of the script's process group (nothing, when the
    // walk-through stops what it started).
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
    let _ = child.wait();
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = stderr_reader.join().unwrap();
    let shown = format!("script:\n{script}\nstdout:\n{stdout}\nstderr:\n{stderr}");
    let status =
        status.unwrap_or_else(|| panic!("still running after {SCRIPT_TIMEOUT:?}\n{shown}"));
    eprintln!(
        "walk-through: {commands} commands, {:?}, {status}",
        started.elapsed()
    );
    assert!(status.success(), "{status}\n{shown}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("helloworld.demo.example.com/hello")),
        "kubectl get lists the HelloWorld\n{shown}"
    );
    assert!(
        stdout.lines().any(|l| l.starts_with("pod/hello-greeter")),
        "kubectl get lists the Pod\n{shown}"
    );
    assert_eq!(
        stdout.matches("pod/hello-greeter condition met").count(),
        2,
        "{shown}"
    );
    assert!(
        released,
        "dev still held {} when the script ended",
        lock.display()
    );
}
