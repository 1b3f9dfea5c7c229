//! Calling a hook for `render`: over HTTP (the URL of the controller's
//! spec, or one given on the command line) with the engine's hook client,
//! or by running a command that reads the request JSON on its standard
//! input and writes the answer JSON on its standard output (the
//! environment variable `METACONTROLLER_HOOK` names the hook: `sync`,
//! `finalize` or `customize`).

use std::process::Stdio;
use std::time::Duration;

use metacontroller_api::{Hook, HookedController};
use metacontroller_hooks::{HookClient, HookEndpoint, HookError};
use tokio::io::AsyncWriteExt;

/// Why a hook call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The controller has no URL for the hook and none was given.
    #[error("{0} hook has no webhook URL (use --hook-url or --hook-exec)")]
    NoUrl(&'static str),
    /// The webhook settings are invalid.
    #[error("{0}")]
    Config(String),
    /// The HTTP call failed.
    #[error("{hook} hook failed (url={url}): {source}")]
    Http {
        /// Which hook.
        hook: &'static str,
        /// Its URL.
        url: String,
        /// Why.
        #[source]
        source: HookError,
    },
    /// The command could not be run.
    #[error("{hook} hook command {command:?}: {source}")]
    Spawn {
        /// Which hook.
        hook: &'static str,
        /// The command.
        command: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The command failed.
    #[error("{hook} hook command {command:?} exited with {status}: {stderr}")]
    Exit {
        /// Which hook.
        hook: &'static str,
        /// The command.
        command: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// The end of its standard error.
        stderr: String,
    },
    /// The command ran longer than the hook's timeout.
    #[error("{hook} hook command {command:?} timed out after {timeout:?}")]
    Timeout {
        /// Which hook.
        hook: &'static str,
        /// The command.
        command: String,
        /// The timeout.
        timeout: Duration,
    },
}

/// How hooks are reached.
#[derive(Clone, Debug)]
pub enum Transport {
    /// The URLs of the controller's spec; `sync` replaces the sync and
    /// finalize URLs, `customize` the customize URL.
    Http {
        /// Replaces the sync and finalize URLs.
        sync: Option<String>,
        /// Replaces the customize URL.
        customize: Option<String>,
    },
    /// Runs this shell command for every hook.
    Exec(String),
}

/// The hook a sync calls: `finalize` while the object is finalizing and
/// the controller has one, else `sync`; with its name.
pub fn sync_or_finalize(
    controller: &impl HookedController,
    finalizing: bool,
) -> anyhow::Result<(&'static str, &Hook)> {
    match (finalizing, controller.finalize_hook()) {
        (true, Some(finalize)) => Ok(("finalize", finalize)),
        _ => Ok((
            "sync",
            controller
                .sync_hook()
                .ok_or_else(|| anyhow::anyhow!("the controller has no sync hook"))?,
        )),
    }
}

/// Calls `hook` (named `name`) with `body`; returns the answer's bytes.
pub async fn call(
    transport: &Transport,
    name: &'static str,
    hook: &Hook,
    body: Vec<u8>,
) -> Result<Vec<u8>, CallError> {
    let timeout = hook
        .webhook
        .as_ref()
        .and_then(|w| w.effective_timeout().ok())
        .unwrap_or(metacontroller_api::DEFAULT_HOOK_TIMEOUT);
    match transport {
        Transport::Exec(command) => exec(command, name, body, timeout).await,
        Transport::Http { sync, customize } => {
            let given = if name == "customize" { customize } else { sync };
            let url = match given {
                Some(url) => url.clone(),
                None => hook
                    .webhook
                    .as_ref()
                    .ok_or(CallError::NoUrl(name))?
                    .endpoint_url()
                    .map_err(|e| CallError::Config(e.to_string()))?,
            };
            let mut endpoint = HookEndpoint::new(url.clone());
            endpoint.timeout = timeout;
            let client = HookClient::new(endpoint).map_err(|e| CallError::Config(e.to_string()))?;
            client
                .call(body, None)
                .await
                .map(|b| b.to_vec())
                .map_err(|source| CallError::Http {
                    hook: name,
                    url,
                    source,
                })
        }
    }
}

async fn exec(
    command: &str,
    name: &'static str,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<Vec<u8>, CallError> {
    let spawn_err = |source| CallError::Spawn {
        hook: name,
        command: command.to_owned(),
        source,
    };
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("METACONTROLLER_HOOK", name)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(spawn_err)?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let writer = async move {
        // A command that exits without reading its input is not an error
        // here: its answer (or exit status) tells.
        let _ = stdin.write_all(&body).await;
        drop(stdin);
    };
    let run = async {
        let (_, output) = tokio::join!(writer, child.wait_with_output());
        output
    };
    let output = match tokio::time::timeout(timeout, run).await {
        Ok(output) => output.map_err(spawn_err)?,
        Err(_) => {
            return Err(CallError::Timeout {
                hook: name,
                command: command.to_owned(),
                timeout,
            });
        }
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: String = stderr
            .trim_end()
            .chars()
            .rev()
            .take(500)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        return Err(CallError::Exit {
            hook: name,
            command: command.to_owned(),
            status: output.status,
            stderr: tail,
        });
    }
    Ok(output.stdout)
}
