//! kubectl for the suites that run on either server: which binaries to test
//! with, and one of them bound to a cluster's kubeconfig.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The kubectl binaries to test with: `MC_KUBECTLS` (set by the test
/// command; ':'-separated), else `kubectl` on `PATH`, else none (the caller
/// skips, unless `MC_REQUIRE_KUBECTL` is set).
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

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

/// One kubectl binary run against one cluster, with a private HOME and
/// discovery cache.
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
    /// Writes `kubeconfig` under `dir` and uses it.
    pub fn new(bin: &Path, kubeconfig: &str, dir: &Path) -> Self {
        let path = dir.join("kubeconfig");
        std::fs::write(&path, kubeconfig).unwrap();
        let home = dir.join("home");
        std::fs::create_dir_all(&home).unwrap();
        Self {
            bin: bin.to_path_buf(),
            kubeconfig: path,
            home,
        }
    }

    /// A kubectl command with this cluster's kubeconfig, cache and HOME.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.home.join("cache"))
            .env("HOME", &self.home)
            .env_remove("KUBECONFIG");
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_stdin(args, None)
    }

    pub fn run_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl runs");
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
        drop(input);
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
        self.assert_ok(args, &o);
        o.stdout
    }

    #[track_caller]
    pub fn ok_stdin(&self, args: &[&str], stdin: &str) -> String {
        let o = self.run_stdin(args, Some(stdin));
        self.assert_ok(args, &o);
        o.stdout
    }

    #[track_caller]
    fn assert_ok(&self, args: &[&str], o: &Output) {
        assert!(
            o.ok,
            "{} {:?} failed:\nstdout: {}\nstderr: {}",
            self.bin.display(),
            args,
            o.stdout,
            o.stderr
        );
    }

    #[track_caller]
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&a)).expect("kubectl printed JSON")
    }
}
