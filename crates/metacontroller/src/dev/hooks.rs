//! The hook processes of a `dev -f DIR` folder, declared in its dev file
//! (`DIR/dev.yaml`):
//!
//! ```yaml
//! hooks:
//!   - name: hello-world          # names the hook in output and ${HOOK_PORT_<NAME>}
//!     command: [python3, hook.py]
//!     port: 0                    # 0 or absent: a free loopback port
//!     dir: .                     # working directory, relative to DIR
//!     env: {GREETING: Hello}     # extra environment
//!     watch: [hook.py]           # files whose change restarts the hook
//! ```
//!
//! Each hook gets its port as `$HOOK_PORT` and is ready once something
//! listens on `127.0.0.1:<port>`. The manifests may name the ports:
//! `${HOOK_PORT}` is the first hook's, `${HOOK_PORT_<NAME>}` each hook's
//! (NAME upper-cased, `-` as `_`). Without `watch`, every file directly in
//! the hook's folder that is not a manifest restarts it. A hook's output is
//! copied to stderr, each line prefixed with `[name]`.
//!
//! A hook that exits on its own is started again after a back-off: 1 s,
//! doubling with each restart up to 30 s, back to 1 s once a run lasted
//! 60 s (and whenever a watched file changes). Each restart is one line on
//! stderr.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

/// The dev file's name in DIR.
pub const DEV_FILE: &str = "dev.yaml";
/// How long a hook may take to listen on its port.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(30);
/// The first back-off before a hook that exited is started again.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// The longest back-off.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A run this long resets the back-off.
const BACKOFF_RESET: Duration = Duration::from_secs(60);

/// Why a hook could not be set up or started.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: String,
        source: serde_yaml::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("hook {name}: starting {command:?}: {source}")]
    Spawn {
        name: String,
        command: Vec<String>,
        source: std::io::Error,
    },
    #[error("hook {name} exited ({status}) before listening on 127.0.0.1:{port}")]
    Exited {
        name: String,
        port: u16,
        status: std::process::ExitStatus,
    },
    #[error("hook {name} not listening on 127.0.0.1:{port} within {LISTEN_TIMEOUT:?}")]
    NotListening { name: String, port: u16 },
    #[error("no free port: {0}")]
    NoPort(std::io::Error),
}

/// The dev file.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DevFile {
    #[serde(default)]
    pub hooks: Vec<HookSpec>,
}

/// One hook of the dev file.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct HookSpec {
    pub name: String,
    pub command: Vec<String>,
    #[serde(default)]
    pub port: u16,
    #[serde(default)]
    pub dir: Option<PathBuf>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub watch: Option<Vec<PathBuf>>,
}

impl DevFile {
    /// Reads `DIR/dev.yaml`; no hooks when it does not exist.
    pub fn load(dir: &Path) -> Result<DevFile, HookError> {
        let path = dir.join(DEV_FILE);
        let shown = path.display().to_string();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(DevFile::default());
            }
            Err(source) => {
                return Err(HookError::Read {
                    path: shown,
                    source,
                });
            }
        };
        let file: DevFile = serde_yaml::from_str(&text).map_err(|source| HookError::Parse {
            path: shown.clone(),
            source,
        })?;
        let mut names = std::collections::BTreeSet::new();
        for hook in &file.hooks {
            let invalid = |message: String| HookError::Invalid {
                path: shown.clone(),
                message,
            };
            if hook.name.is_empty() || !names.insert(hook.name.clone()) {
                return Err(invalid(format!(
                    "hook names must be set and unique ({:?})",
                    hook.name
                )));
            }
            if hook.command.is_empty() {
                return Err(invalid(format!("hook {}: empty command", hook.name)));
            }
        }
        Ok(file)
    }
}

/// A running hook.
pub struct Hook {
    pub spec: HookSpec,
    pub port: u16,
    /// Its working directory.
    pub dir: PathBuf,
    child: Option<Child>,
    /// Modification times of the watched files at the last (re)start.
    stamp: Vec<(PathBuf, Option<SystemTime>)>,
    /// When the process was last started.
    started: Instant,
    /// The back-off before the next restart after an exit.
    backoff: Duration,
    /// After an exit: when to start again, and how it ended.
    exited: Option<(Instant, String)>,
}

/// Every hook of the dev file.
pub struct Hooks {
    pub hooks: Vec<Hook>,
}

fn free_port() -> Result<u16, HookError> {
    std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(HookError::NoPort)
}

/// The variable naming `name`'s port.
fn port_variable(name: &str) -> String {
    let upper: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("HOOK_PORT_{upper}")
}

impl Hooks {
    /// Assigns ports to `file`'s hooks (nothing started yet).
    pub fn new(base: &Path, file: DevFile) -> Result<Hooks, HookError> {
        let mut hooks = Vec::new();
        for spec in file.hooks {
            let port = match spec.port {
                0 => free_port()?,
                port => port,
            };
            let dir = match &spec.dir {
                Some(dir) => base.join(dir),
                None => base.to_owned(),
            };
            hooks.push(Hook {
                spec,
                port,
                dir,
                child: None,
                stamp: Vec::new(),
                started: Instant::now(),
                backoff: BACKOFF_MIN,
                exited: None,
            });
        }
        Ok(Hooks { hooks })
    }

    /// The `${...}` variables of the manifests.
    pub fn variables(&self) -> BTreeMap<String, String> {
        let mut vars = BTreeMap::new();
        if let Some(first) = self.hooks.first() {
            vars.insert("HOOK_PORT".to_owned(), first.port.to_string());
        }
        for hook in &self.hooks {
            vars.insert(port_variable(&hook.spec.name), hook.port.to_string());
        }
        vars
    }

    /// Starts every hook and waits until each listens.
    pub async fn start_all(&mut self) -> Result<(), HookError> {
        for hook in &mut self.hooks {
            hook.start().await?;
        }
        Ok(())
    }

    /// Restarts the hooks whose watched files changed since their last
    /// start; returns their names.
    pub async fn restart_changed(&mut self) -> Vec<Result<String, HookError>> {
        let mut restarted = Vec::new();
        for hook in &mut self.hooks {
            if hook.watched_stamp() != hook.stamp {
                hook.stop().await;
                hook.backoff = BACKOFF_MIN;
                hook.exited = None;
                restarted.push(hook.start().await.map(|()| hook.spec.name.clone()));
            }
        }
        restarted
    }

    /// Notices hooks that exited on their own and starts again those whose
    /// back-off is over; one line for each restart.
    pub async fn restart_exited(&mut self) -> Vec<Result<String, HookError>> {
        let mut restarted = Vec::new();
        for hook in &mut self.hooks {
            if let Some(child) = &mut hook.child
                && let Ok(Some(status)) = child.try_wait()
            {
                hook.child = None;
                if hook.started.elapsed() >= BACKOFF_RESET {
                    hook.backoff = BACKOFF_MIN;
                }
                hook.exited = Some((Instant::now() + hook.backoff, status.to_string()));
            }
            let Some((due, how)) = hook.exited.clone() else {
                continue;
            };
            if hook.child.is_some() || Instant::now() < due {
                continue;
            }
            let waited = hook.backoff;
            hook.backoff = (hook.backoff * 2).min(BACKOFF_MAX);
            match hook.start().await {
                Ok(()) => {
                    hook.exited = None;
                    restarted.push(Ok(format!(
                        "restarted hook {} after it exited ({how}; back-off {waited:?})",
                        hook.spec.name
                    )));
                }
                Err(err) => {
                    hook.exited = Some((Instant::now() + hook.backoff, err.to_string()));
                    restarted.push(Err(err));
                }
            }
        }
        restarted
    }

    /// Stops every hook.
    pub async fn stop_all(&mut self) {
        for hook in &mut self.hooks {
            hook.stop().await;
        }
    }
}

/// Copies `from` to stderr, each line prefixed with `[name] `.
fn forward(name: String, from: impl AsyncRead + Unpin + Send + 'static) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(from).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("[{name}] {line}");
        }
    });
}

impl Hook {
    /// The files whose change restarts the hook.
    fn watched(&self) -> Vec<PathBuf> {
        match &self.spec.watch {
            Some(files) => files.iter().map(|f| self.dir.join(f)).collect(),
            None => {
                let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| {
                        p.is_file()
                            && !super::manifests::is_manifest(p)
                            && !p
                                .file_name()
                                .and_then(|n| n.to_str())
                                .is_some_and(|n| n.starts_with('.'))
                    })
                    .collect();
                files.sort();
                files
            }
        }
    }

    fn watched_stamp(&self) -> Vec<(PathBuf, Option<SystemTime>)> {
        self.watched()
            .into_iter()
            .map(|path| {
                let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
                (path, modified)
            })
            .collect()
    }

    /// The command line, for the summary.
    pub fn command_line(&self) -> String {
        self.spec.command.join(" ")
    }

    async fn start(&mut self) -> Result<(), HookError> {
        self.stamp = self.watched_stamp();
        self.started = Instant::now();
        let name = self.spec.name.clone();
        let mut command = Command::new(&self.spec.command[0]);
        command
            .args(&self.spec.command[1..])
            .current_dir(&self.dir)
            .env("HOOK_PORT", self.port.to_string())
            .envs(&self.spec.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|source| HookError::Spawn {
            name: name.clone(),
            command: self.spec.command.clone(),
            source,
        })?;
        if let Some(out) = child.stdout.take() {
            forward(name.clone(), out);
        }
        if let Some(err) = child.stderr.take() {
            forward(name.clone(), err);
        }
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().ok().flatten() {
                return Err(HookError::Exited {
                    name,
                    port: self.port,
                    status,
                });
            }
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                break;
            }
            if start.elapsed() >= LISTEN_TIMEOUT {
                let _ = child.kill().await;
                return Err(HookError::NotListening {
                    name,
                    port: self.port,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.child = Some(child);
        Ok(())
    }

    async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            #[cfg(unix)]
            if let Some(pid) = child.id() {
                // SIGTERM first, so the hook can close its socket cleanly.
                let _ = std::process::Command::new("kill")
                    .arg(pid.to_string())
                    .status();
                if tokio::time::timeout(Duration::from_secs(5), child.wait())
                    .await
                    .is_ok()
                {
                    return;
                }
            }
            let _ = child.kill().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_file_and_variables() {
        let dir = tempfile::tempdir().unwrap();
        assert!(DevFile::load(dir.path()).unwrap().hooks.is_empty());
        std::fs::write(
            dir.path().join(DEV_FILE),
            "hooks:\n- name: my-hook\n  command: [python3, hook.py]\n  port: 8123\n- name: other\n  command: [node, x.js]\n",
        )
        .unwrap();
        let file = DevFile::load(dir.path()).unwrap();
        let hooks = Hooks::new(dir.path(), file).unwrap();
        let vars = hooks.variables();
        assert_eq!(vars["HOOK_PORT"], "8123");
        assert_eq!(vars["HOOK_PORT_MY_HOOK"], "8123");
        assert_ne!(vars["HOOK_PORT_OTHER"], "0");
        std::fs::write(
            dir.path().join(DEV_FILE),
            "hooks:\n- name: a\n  command: []\n",
        )
        .unwrap();
        assert!(DevFile::load(dir.path()).is_err());
        std::fs::write(dir.path().join(DEV_FILE), "hooks:\n- name: a\n  cmd: [x]\n").unwrap();
        assert!(DevFile::load(dir.path()).is_err());
    }
}
