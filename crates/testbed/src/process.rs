//! A child process that cannot outlive the process that started it.
//!
//! Tests get killed, panic, or exit without running destructors; a leaked
//! kube-apiserver would hold its port and memory for the rest of the run.
//! So every component runs under a small `sh` guard whose standard input is a
//! pipe from us: the guard starts the component in the background (with
//! `/dev/null` as input) and a watcher that waits on `read` from the pipe. When the
//! pipe closes — [`Supervised::stop`], our `Drop`, or this process dying in
//! any way, even `SIGKILL` — `read` returns, and the guard sends the
//! component `SIGTERM`, then `SIGKILL` after a grace period, and waits for
//! it. When the component ends on its own, the guard ends with its status.
//! No signal handling or `unsafe` is needed on our side.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Error;

/// The guard: `$1` is the grace period in seconds, the rest is the command.
const GUARD: &str = r#"grace=$1; shift
exec 3<&0
"$@" 3<&- </dev/null &
child=$!
( read -r _ <&3; kill -TERM "$child" 2>/dev/null; sleep "$grace"; kill -KILL "$child" 2>/dev/null ) </dev/null &
watcher=$!
exec 3<&-
trap 'kill -TERM "$child" 2>/dev/null' TERM INT
wait "$child"
status=$?
kill "$watcher" 2>/dev/null
exit "$status"
"#;

/// A running component.
pub struct Supervised {
    name: String,
    guard: Child,
    stdin: Option<ChildStdin>,
    log: PathBuf,
}

impl Supervised {
    /// Starts `program args...` with its stdout and stderr appended to `log`.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        log: &Path,
        grace: Duration,
    ) -> Result<Supervised, Error> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| Error::io(log, e))?;
        let err = out.try_clone().map_err(|e| Error::io(log, e))?;
        let mut guard = Command::new("sh")
            .arg("-c")
            .arg(GUARD)
            .arg("guard")
            .arg(grace.as_secs().max(1).to_string())
            .arg(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| Error::Start(format!("{name}: {e}")))?;
        let stdin = guard.stdin.take();
        Ok(Supervised {
            name: name.to_owned(),
            guard,
            stdin,
            log: log.to_owned(),
        })
    }

    /// The component's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where its output goes.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// The component's exit status if it has ended.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.guard.try_wait().ok().flatten()
    }

    /// The last `lines` lines of the component's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Stops the component and waits for it (at most `grace` plus a little).
    pub fn stop(&mut self) {
        self.stdin.take();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.guard.kill();
        let _ = self.guard.wait();
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pid_alive(pid: u32) -> bool {
        Path::new(&format!("/proc/{pid}")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z")
    }

    #[test]
    fn stop_ends_the_child() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let log = dir.path().join("log");
        let mut p = Supervised::spawn(
            "sleeper",
            Path::new("sh"),
            &[
                "-c".into(),
                format!("echo $$ > {}; exec sleep 600", pidfile.display()),
            ],
            &log,
            Duration::from_secs(1),
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let pid: u32 = loop {
            if let Some(pid) = std::fs::read_to_string(&pidfile)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                break pid;
            }
            assert!(Instant::now() < deadline, "child never started");
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(pid_alive(pid));
        p.stop();
        assert!(p.exited().is_some());
        let deadline = Instant::now() + Duration::from_secs(5);
        while pid_alive(pid) {
            assert!(Instant::now() < deadline, "child {pid} survived stop");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
