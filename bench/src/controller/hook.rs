//! The sync and finalize hooks of the `ours` contenders.
//!
//! * `rust`: a null hook served by hyper inside the harness process: it
//!   reads `parent.metadata.name` and `parent.spec.replicas` and answers the
//!   children and status they imply ([`objects::sync_response`]);
//! * `rust-1ms`, `rust-10ms`: the same with a fixed delay before answering
//!   (a hook doing some work);
//! * `python`: the same logic in `bench/hooks/null_hook.py` (Python standard
//!   library, `ThreadingHTTPServer`, `TCP_NODELAY`) as a separate process:
//!   what a user's first hook looks like.
//!
//! Every hook counts calls and bytes; `finalize` answers "no children,
//! finalized".

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::api::Rest;
use super::objects;

/// Which hook serves the `ours` contenders.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum HookKind {
    /// Null hook in Rust (hyper), in the harness process.
    Rust,
    /// Null hook in Python (standard library), a separate process.
    Python,
    /// The Rust null hook answering after 1 ms.
    #[value(name = "rust-1ms")]
    #[serde(rename = "rust-1ms")]
    Rust1ms,
    /// The Rust null hook answering after 10 ms.
    #[value(name = "rust-10ms")]
    #[serde(rename = "rust-10ms")]
    Rust10ms,
}

impl HookKind {
    /// The spelling used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            HookKind::Rust => "rust",
            HookKind::Python => "python",
            HookKind::Rust1ms => "rust-1ms",
            HookKind::Rust10ms => "rust-10ms",
        }
    }

    fn delay(self) -> Duration {
        match self {
            HookKind::Rust1ms => Duration::from_millis(1),
            HookKind::Rust10ms => Duration::from_millis(10),
            _ => Duration::ZERO,
        }
    }
}

/// Calls and bytes served by a hook.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HookStats {
    /// `sync` calls.
    pub sync_calls: u64,
    /// `finalize` calls.
    pub finalize_calls: u64,
    /// Request bytes received.
    pub bytes_in: u64,
    /// Response bytes sent.
    pub bytes_out: u64,
}

impl HookStats {
    /// All calls.
    pub fn calls(&self) -> u64 {
        self.sync_calls + self.finalize_calls
    }

    /// `self - before`.
    pub fn since(&self, before: &HookStats) -> HookStats {
        HookStats {
            sync_calls: self.sync_calls.saturating_sub(before.sync_calls),
            finalize_calls: self.finalize_calls.saturating_sub(before.finalize_calls),
            bytes_in: self.bytes_in.saturating_sub(before.bytes_in),
            bytes_out: self.bytes_out.saturating_sub(before.bytes_out),
        }
    }
}

#[derive(Default)]
struct Counters {
    sync_calls: AtomicU64,
    finalize_calls: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> HookStats {
        HookStats {
            sync_calls: self.sync_calls.load(Ordering::Relaxed),
            finalize_calls: self.finalize_calls.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
        }
    }
}

#[derive(Deserialize)]
struct Request {
    parent: Parent,
}

#[derive(Deserialize)]
struct Parent {
    metadata: Meta,
    #[serde(default)]
    spec: Spec,
}

#[derive(Deserialize)]
struct Meta {
    name: String,
}

#[derive(Deserialize, Default)]
struct Spec {
    #[serde(default)]
    replicas: i64,
}

/// The answer of the null hook to one request body.
pub fn answer(path: &str, body: &[u8]) -> Result<Vec<u8>> {
    if path == "/finalize" {
        return Ok(serde_json::to_vec(&objects::finalize_response())?);
    }
    let req: Request = serde_json::from_slice(body).context("undecodable hook request")?;
    Ok(serde_json::to_vec(&objects::sync_response(
        &req.parent.metadata.name,
        req.parent.spec.replicas,
    ))?)
}

enum Server {
    Rust {
        counters: Arc<Counters>,
        task: JoinHandle<()>,
    },
    Python {
        child: Box<tokio::process::Child>,
        client: Rest,
    },
}

/// A running hook. Dropping it stops it.
pub struct Hook {
    kind: HookKind,
    url: String,
    server: Server,
}

impl Drop for Hook {
    fn drop(&mut self) {
        match &mut self.server {
            Server::Rust { task, .. } => task.abort(),
            Server::Python { child, .. } => {
                let _ = child.start_kill();
            }
        }
    }
}

/// Where the Python hook script lives.
pub fn python_hook_script() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/hooks/null_hook.py"))
}

impl Hook {
    /// Starts a hook of `kind` on a free loopback port.
    pub async fn start(kind: HookKind) -> Result<Self> {
        match kind {
            HookKind::Python => Self::start_python().await,
            _ => Self::start_rust(kind).await,
        }
    }

    async fn start_rust(kind: HookKind) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let counters = Arc::new(Counters::default());
        let task = tokio::spawn(serve(listener, counters.clone(), kind.delay()));
        Ok(Hook {
            kind,
            url: format!("http://{addr}"),
            server: Server::Rust { counters, task },
        })
    }

    async fn start_python() -> Result<Self> {
        // Pick a free port, then hand it to the script.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?.port()
        };
        let child = tokio::process::Command::new("python3")
            .arg(python_hook_script())
            .arg(port.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting python3 bench/hooks/null_hook.py")?;
        let url = format!("http://127.0.0.1:{port}");
        let client = Rest::new(&url);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok((200, _)) = client
                .send(http::Method::GET, "/stats", None, "application/json")
                .await
            {
                break;
            }
            if Instant::now() > deadline {
                bail!("the Python hook did not start on port {port}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Hook {
            kind: HookKind::Python,
            url,
            server: Server::Python {
                child: Box::new(child),
                client,
            },
        })
    }

    /// `http://127.0.0.1:<port>`; the hook paths are `/sync` and `/finalize`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Which hook this is.
    pub fn kind(&self) -> HookKind {
        self.kind
    }

    /// Calls and bytes so far.
    pub async fn stats(&self) -> Result<HookStats> {
        match &self.server {
            Server::Rust { counters, .. } => Ok(counters.snapshot()),
            Server::Python { client, .. } => {
                let (status, body) = client
                    .send(http::Method::GET, "/stats", None, "application/json")
                    .await?;
                if status != 200 {
                    bail!("the Python hook's /stats answered {status}");
                }
                Ok(serde_json::from_slice(&body)?)
            }
        }
    }
}

async fn serve(listener: TcpListener, counters: Arc<Counters>, delay: Duration) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let counters = counters.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let counters = counters.clone();
                async move {
                    let path = req.uri().path().to_string();
                    let body = req.into_body().collect().await?.to_bytes();
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    let (status, out) = match answer(&path, &body) {
                        Ok(out) => (200, out),
                        Err(err) => (500, format!("{err:#}").into_bytes()),
                    };
                    let calls = if path == "/finalize" {
                        &counters.finalize_calls
                    } else {
                        &counters.sync_calls
                    };
                    calls.fetch_add(1, Ordering::Relaxed);
                    counters
                        .bytes_in
                        .fetch_add(body.len() as u64, Ordering::Relaxed);
                    counters
                        .bytes_out
                        .fetch_add(out.len() as u64, Ordering::Relaxed);
                    let resp = http::Response::builder()
                        .status(status)
                        .header(http::header::CONTENT_TYPE, "application/json")
                        .body(Full::new(Bytes::from(out)))
                        .expect("valid response");
                    Ok::<_, hyper::Error>(resp)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_rust_hook_answers_from_the_parent_spec() {
        let hook = Hook::start(HookKind::Rust).await.unwrap();
        let client = Rest::new(hook.url());
        let req = serde_json::json!({
            "controller": {}, "children": {"ConfigMap.v1": {}},
            "parent": {"metadata": {"name": "p"}, "spec": {"replicas": 2}}
        });
        let (status, body) = client
            .send(http::Method::POST, "/sync", Some(&req), "application/json")
            .await
            .unwrap();
        assert_eq!(status, 200);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["status"]["ready"], 2);
        assert_eq!(v["children"][1]["metadata"]["name"], "p-1");
        let stats = hook.stats().await.unwrap();
        assert_eq!(stats.sync_calls, 1);
        assert_eq!(stats.bytes_out, body.len() as u64);
    }
}
