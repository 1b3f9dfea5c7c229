//! The contenders as separate processes, and what `/proc` says about them.
//!
//! CPU time is `utime + stime` of `/proc/<pid>/stat` (in clock ticks,
//! `getconf CLK_TCK`); memory is `VmRSS` (resident now) and `VmHWM` (peak
//! resident) of `/proc/<pid>/status`.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;

/// A contender of the comparison. See the [parent module](super).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Contender {
    /// `metacontroller run` with Metacontroller's defaults: 5 workers,
    /// client QPS 5, burst 10.
    OursDefaults,
    /// `metacontroller run` tuned: 16 workers and no client rate limit
    /// (`--client-go-qps 0`, leaving flow control to the API server), like
    /// the kube-rs baseline and the floor.
    OursTuned,
    /// A hand-written `kube::runtime::Controller` (`kube-rs-baseline`).
    KubeRs,
    /// kopf running `bench/kopf/handler.py`.
    Kopf,
    /// No controller: the harness writes the objects itself.
    Floor,
}

/// Workers of the tuned contender, also the floor's concurrency.
pub const TUNED_WORKERS: usize = 16;

impl Contender {
    /// The spelling used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Contender::OursDefaults => "ours-defaults",
            Contender::OursTuned => "ours-tuned",
            Contender::KubeRs => "kube-rs",
            Contender::Kopf => "kopf",
            Contender::Floor => "floor",
        }
    }

    /// Whether this is `metacontroller` (a CompositeController and a hook).
    pub fn is_ours(self) -> bool {
        matches!(self, Contender::OursDefaults | Contender::OursTuned)
    }

    /// Whether a controller process runs (everything but the floor).
    pub fn has_process(self) -> bool {
        self != Contender::Floor
    }

    /// `(workers, qps, burst)` of the `metacontroller run` flags.
    pub fn engine_flags(self) -> Option<(usize, f64, u32)> {
        match self {
            Contender::OursDefaults => Some((5, 5.0, 10)),
            Contender::OursTuned => Some((TUNED_WORKERS, 0.0, 0)),
            _ => None,
        }
    }

    /// How the contender is configured, for the report.
    pub fn settings(self) -> String {
        match self {
            Contender::OursDefaults => {
                "metacontroller run --workers 5 --client-go-qps 5 --client-go-burst 10".into()
            }
            Contender::OursTuned => format!(
                "metacontroller run --workers {TUNED_WORKERS} --client-go-qps 0 (no client rate limit)"
            ),
            Contender::KubeRs => {
                "kube::runtime::Controller, default concurrency (unbounded), no client rate limit"
                    .into()
            }
            Contender::Kopf => {
                "kopf run --standalone -A, 16 handler threads, success events off".into()
            }
            Contender::Floor => "direct writes, requests in flight chosen by a knee search".into(),
        }
    }
}

/// Where the contenders' programs are.
#[derive(Clone, Debug)]
pub struct Programs {
    /// The `metacontroller` binary.
    pub metacontroller: PathBuf,
    /// The `kube-rs-baseline` binary.
    pub baseline: PathBuf,
    /// The venv holding kopf (`bin/kopf`).
    pub kopf_venv: PathBuf,
}

/// The cargo build directory of the running executable (`target/release`,
/// `target/debug`; tests run from its `deps/`).
pub fn exe_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let mut dir = exe.parent().context("executable without a directory")?;
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir = dir.parent().context("deps without a parent")?;
    }
    Ok(dir.to_path_buf())
}

impl Programs {
    /// The programs next to the running executable, built with cargo when
    /// `build` is set or when one is missing.
    pub fn locate(build: bool) -> Result<Self> {
        let dir = exe_dir()?;
        let programs = Programs {
            metacontroller: dir.join("metacontroller"),
            baseline: dir.join("kube-rs-baseline"),
            kopf_venv: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.venv-kopf")),
        };
        if build || !programs.metacontroller.is_file() || !programs.baseline.is_file() {
            build_programs(&dir)?;
        }
        for p in [&programs.metacontroller, &programs.baseline] {
            if !p.is_file() {
                bail!("{} is missing after the build", p.display());
            }
        }
        Ok(programs)
    }

    /// The kopf executable, creating the venv (`python3 -m venv`, then
    /// `pip install kopf kubernetes`) when it is missing.
    pub fn kopf(&self) -> Result<PathBuf> {
        let python = self.kopf_venv.join("bin/python");
        let kopf = self.kopf_venv.join("bin/kopf");
        let ok = |py: &Path| {
            std::process::Command::new(py)
                .args(["-c", "import kopf, kubernetes"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if kopf.is_file() && ok(&python) {
            return Ok(kopf);
        }
        eprintln!(
            "controller-bench: creating {} (python3 -m venv; pip install kopf kubernetes)",
            self.kopf_venv.display()
        );
        let status = std::process::Command::new("python3")
            .args(["-m", "venv"])
            .arg(&self.kopf_venv)
            .status()
            .context("python3 -m venv")?;
        if !status.success() {
            bail!("python3 -m venv failed");
        }
        let status = std::process::Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "kopf",
                "kubernetes",
            ])
            .status()
            .context("pip install kopf kubernetes")?;
        if !status.success() || !ok(&python) {
            bail!("pip install kopf kubernetes failed");
        }
        Ok(kopf)
    }
}

/// Builds `metacontroller` and `kube-rs-baseline` into the target
/// directory holding `dir`, with the profile `dir` is named after.
fn build_programs(dir: &Path) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target = dir.parent().context("build directory without a parent")?;
    let profile = dir.file_name().and_then(|n| n.to_str()).unwrap_or("debug");
    let profile = if profile == "debug" { "dev" } else { profile };
    eprintln!("controller-bench: building metacontroller and kube-rs-baseline ({profile})");
    let status = std::process::Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CARGO_TARGET_DIR", target)
        .args([
            "build",
            "--quiet",
            "--profile",
            profile,
            "-p",
            "metacontroller",
            "--bin",
            "metacontroller",
            "-p",
            "metacontroller-bench",
            "--bin",
            "kube-rs-baseline",
        ])
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo build of metacontroller and kube-rs-baseline failed");
    }
    Ok(())
}

fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// CPU seconds (user + system) of `pid` so far; 0 when it is gone.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // After the command name: state is field 3, utime 14, stime 15.
    let ticks = |i: usize| {
        fields
            .get(i - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(14) + ticks(15)) as f64 / clock_ticks()
}

/// A `Vm*` line of `/proc/<pid>/status`, in KiB; 0 when it is gone.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A running contender.
pub struct Proc {
    child: tokio::process::Child,
    pid: u32,
    /// When it was spawned.
    pub spawned: Instant,
}

/// What a stopped contender used over its life.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcTotals {
    /// User plus system CPU seconds.
    pub cpu_seconds: f64,
    /// Peak resident set size (`VmHWM`), KiB.
    pub hwm_kib: u64,
}

impl Proc {
    /// Starts `contender` against the server of `kubeconfig`, appending its
    /// output to `log`.
    pub fn spawn(
        contender: Contender,
        programs: &Programs,
        kubeconfig: &Path,
        log: &Path,
    ) -> Result<Self> {
        let mut cmd = match contender {
            Contender::OursDefaults | Contender::OursTuned => {
                let (workers, qps, burst) = contender.engine_flags().expect("ours");
                let mut cmd = tokio::process::Command::new(&programs.metacontroller);
                cmd.arg("run").arg("--kubeconfig").arg(kubeconfig).args([
                    format!("--workers={workers}"),
                    format!("--client-go-qps={qps}"),
                    format!("--client-go-burst={burst}"),
                    "--discovery-interval=30s".into(),
                    "--metrics-address=0".into(),
                    "--health-probe-bind-address=0".into(),
                    "--zap-log-level=error".into(),
                ]);
                cmd
            }
            Contender::KubeRs => {
                let mut cmd = tokio::process::Command::new(&programs.baseline);
                cmd.arg("--kubeconfig").arg(kubeconfig);
                cmd
            }
            Contender::Kopf => {
                let mut cmd = tokio::process::Command::new(programs.kopf()?);
                cmd.args(["run", "--standalone", "--all-namespaces", "--quiet"])
                    .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/kopf/handler.py"))
                    .env("KUBECONFIG", kubeconfig)
                    .env("PYTHONUNBUFFERED", "1");
                cmd
            }
            Contender::Floor => bail!("the floor has no process"),
        };
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let out = OpenOptions::new().create(true).append(true).open(log)?;
        let err = out.try_clone()?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", contender.name()))?;
        let pid = child.id().context("the contender exited at once")?;
        Ok(Proc {
            child,
            pid,
            spawned: Instant::now(),
        })
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// CPU seconds so far.
    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds(self.pid)
    }

    /// Resident memory now, KiB.
    pub fn rss_kib(&self) -> u64 {
        status_kib(self.pid, "VmRSS")
    }

    /// Peak resident memory, KiB.
    pub fn hwm_kib(&self) -> u64 {
        status_kib(self.pid, "VmHWM")
    }

    /// Whether it has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Stops it (SIGTERM, then SIGKILL after 10 s) and reports its totals.
    pub async fn stop(mut self) -> ProcTotals {
        let totals = ProcTotals {
            cpu_seconds: self.cpu_seconds(),
            hwm_kib: self.hwm_kib(),
        };
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
        totals
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_of_this_process() {
        let pid = std::process::id();
        assert!(status_kib(pid, "VmRSS") > 0);
        assert!(status_kib(pid, "VmHWM") >= status_kib(pid, "VmRSS") / 2);
        assert!(cpu_seconds(pid) >= 0.0);
        assert_eq!(status_kib(u32::MAX, "VmRSS"), 0);
        assert_eq!(Contender::OursDefaults.engine_flags(), Some((5, 5.0, 10)));
    }
}
