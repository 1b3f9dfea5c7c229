//! Write and watch throughput of the embedded API server.
//!
//! One run starts a server in process, creates the namespace `bench`, opens
//! `watchers` watch streams on its ConfigMaps from the current
//! resourceVersion, then lets `writers` tasks create `count` ConfigMaps
//! (`bench-<i>`, about 1 KiB each) over pooled keep-alive HTTP/1.1
//! connections, each task one request at a time. Every watcher checks each
//! event as it arrives: an `ADDED` for a `bench-<i>` not seen before, with a
//! resourceVersion greater than the previous one; it must see all `count`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use metacontroller_apiserver::persist::{Durability, Options as PersistOptions};
use metacontroller_apiserver::{ApiServer, Config};
use serde::{Deserialize, Serialize};

use crate::Percentiles;

/// Where the server keeps its objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Storage {
    /// In memory only (the default server).
    Memory,
    /// A data directory; each write is handed to the kernel before it is
    /// acknowledged (survives `kill -9`).
    Disk,
    /// A data directory with `fdatasync` per write (survives a machine crash).
    DiskFsync,
}

/// What one run does.
#[derive(Clone, Debug, Serialize)]
pub struct Params {
    /// How the server stores objects.
    pub storage: Storage,
    /// ConfigMaps created.
    pub count: usize,
    /// Concurrent writing clients (one request in flight each).
    pub writers: usize,
    /// Watch streams, each of which must see every event.
    pub watchers: usize,
    /// Bytes of `data.payload` in each ConfigMap.
    pub payload_bytes: usize,
    #[serde(skip)]
    /// How long the run may take.
    pub timeout: Duration,
}

/// What one run measured.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    /// The settings it ran with.
    pub params: Params,
    /// Size of one stored ConfigMap as served (JSON bytes).
    pub object_bytes: usize,
    /// From the first create sent to the last acknowledged.
    pub write_seconds: f64,
    /// Acknowledged writes per second.
    pub writes_per_sec: f64,
    /// Per create request, as the client sees it.
    pub create_latency_ms: Percentiles,
    /// Per event and watcher: from the create's acknowledgement to the
    /// event's arrival at the watcher (0 when it arrived first).
    pub watcher_lag_ms: Percentiles,
    /// From the last acknowledged create to the last event at the slowest
    /// watcher.
    pub drain_ms: f64,
    /// Events received and checked, over all watchers.
    pub events_verified: u64,
    /// Watch events delivered per second, over all watchers.
    pub events_per_sec: f64,
    /// Bytes in the data directory after the run.
    pub data_dir_bytes: Option<u64>,
    /// CPU time of the whole process (server and clients) from the first
    /// create to the last event, and per write; `cpu_cores_used` is that
    /// time over the wall time: well below the number of CPUs means the
    /// process was waiting (or other work on the machine had the CPUs).
    pub cpu_seconds: f64,
    /// Server CPU microseconds per write.
    pub cpu_us_per_write: f64,
    /// Server CPU cores busy on average.
    pub cpu_cores_used: f64,
}

/// CPU time (user + system) used by this process so far, from
/// `/proc/self/stat`.
pub fn process_cpu_seconds() -> f64 {
    crate::controller::process::cpu_seconds(std::process::id())
}

pub(crate) type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub(crate) fn request(
    method: http::Method,
    url: &str,
    body: Option<Bytes>,
) -> http::Request<Full<Bytes>> {
    let mut b = http::Request::builder().method(method).uri(url);
    if body.is_some() {
        b = b.header(http::header::CONTENT_TYPE, "application/json");
    }
    b.body(Full::new(body.unwrap_or_default())).unwrap()
}

pub(crate) async fn call(
    client: &HttpClient,
    req: http::Request<Full<Bytes>>,
    want: u16,
) -> Result<Bytes> {
    let resp = client.request(req).await.context("HTTP request")?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .context("response body")?
        .to_bytes();
    if status != want {
        bail!(
            "expected HTTP {want}, got {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok(body)
}

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(rename = "type", borrow)]
    ty: &'a str,
    #[serde(borrow)]
    object: EventObject<'a>,
}

#[derive(Deserialize)]
struct EventObject<'a> {
    #[serde(borrow)]
    metadata: Option<EventMeta<'a>>,
    code: Option<u16>,
    #[serde(borrow)]
    message: Option<&'a str>,
}

#[derive(Deserialize)]
struct EventMeta<'a> {
    #[serde(borrow)]
    name: Option<&'a str>,
    #[serde(rename = "resourceVersion", borrow)]
    resource_version: Option<&'a str>,
}

/// One watcher's view: when (ns after `t0`) each object's event arrived.
#[derive(Debug)]
struct Watched {
    received: Vec<u64>,
}

/// Opens a watch and waits for the response head, so that the stream is
/// live before writing starts.
pub(crate) async fn open_watch(
    addr: std::net::SocketAddr,
    path: String,
) -> Result<hyper::body::Incoming> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(conn);
    let req = http::Request::get(path)
        .header(http::header::HOST, addr.to_string())
        .body(http_body_util::Empty::<Bytes>::new())?;
    let resp = sender.send_request(req).await?;
    ensure!(resp.status() == 200, "watch answered {}", resp.status());
    // The sender may go: the connection lives until the body is dropped.
    Ok(resp.into_body())
}

/// Reads a watch stream until `count` events, checking each.
async fn consume_watch(
    mut body: hyper::body::Incoming,
    count: usize,
    start_rv: u64,
    t0: Instant,
) -> Result<Watched> {
    let mut received = vec![u64::MAX; count];
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
    let mut last_rv = start_rv;
    let mut seen = 0usize;
    while seen < count {
        let frame = match body.frame().await {
            Some(f) => f.context("watch stream")?,
            None => bail!("watch stream ended after {seen} of {count} events"),
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let now = t0.elapsed().as_nanos() as u64;
        buf.extend_from_slice(&data);
        let mut stream = serde_json::Deserializer::from_slice(&buf).into_iter::<Event<'_>>();
        let mut consumed = 0;
        loop {
            match stream.next() {
                None => break,
                Some(Err(e)) if e.is_eof() => break,
                Some(Err(e)) => bail!("undecodable watch event: {e}"),
                Some(Ok(ev)) => {
                    consumed = stream.byte_offset();
                    if ev.ty == "BOOKMARK" {
                        continue;
                    }
                    if ev.ty != "ADDED" {
                        bail!(
                            "unexpected {} event after {seen} events: code {:?}: {}",
                            ev.ty,
                            ev.object.code,
                            ev.object.message.unwrap_or("")
                        );
                    }
                    let meta = ev.object.metadata.context("event without metadata")?;
                    let rv: u64 = meta
                        .resource_version
                        .and_then(|r| r.parse().ok())
                        .context("event without a resourceVersion")?;
                    if rv <= last_rv {
                        bail!("event out of order: resourceVersion {rv} after {last_rv}");
                    }
                    last_rv = rv;
                    let name = meta.name.unwrap_or("");
                    let i: usize = name
                        .strip_prefix("bench-")
                        .and_then(|n| n.parse().ok())
                        .filter(|i| *i < count)
                        .with_context(|| format!("unexpected object {name:?}"))?;
                    if received[i] != u64::MAX {
                        bail!("event for {name} received twice");
                    }
                    received[i] = now;
                    seen += 1;
                }
            }
        }
        buf.drain(..consumed);
    }
    Ok(Watched { received })
}

fn object_body(i: usize, writer: usize, payload: &str) -> Bytes {
    Bytes::from(format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"bench-{i}","labels":{{"app":"apiserver-throughput","writer":"{writer}"}}}},"data":{{"payload":"{payload}"}}}}"#
    ))
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Runs one benchmark.
pub async fn run(p: &Params) -> Result<RunReport> {
    ensure!(p.count > 0 && p.writers > 0, "nothing to write");
    let dir = match p.storage {
        Storage::Memory => None,
        Storage::Disk | Storage::DiskFsync => Some(tempfile::tempdir()?),
    };
    let config = Config {
        // Enough history that a watcher is never cut off by the server for
        // being behind: the run measures delivery, not eviction.
        history_limit: 100_000.max(p.count + 1_000),
        history_bytes: usize::MAX,
        data_dir: dir.as_ref().map(|d| d.path().to_path_buf()),
        persistence: PersistOptions {
            durability: if p.storage == Storage::DiskFsync {
                Durability::Machine
            } else {
                Durability::Process
            },
            ..PersistOptions::default()
        },
        ..Config::default()
    };
    let server = ApiServer::start(config).await?;
    let base = server.url();
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(p.writers * 2)
        .build_http();

    call(
        &client,
        request(
            http::Method::POST,
            &format!("{base}/api/v1/namespaces"),
            Some(Bytes::from_static(br#"{"metadata":{"name":"bench"}}"#)),
        ),
        201,
    )
    .await
    .context("creating the namespace")?;
    let cms = format!("{base}/api/v1/namespaces/bench/configmaps");
    let list = call(
        &client,
        request(http::Method::GET, &format!("{cms}?limit=1"), None),
        200,
    )
    .await?;
    let list: serde_json::Value = serde_json::from_slice(&list)?;
    let start_rv: u64 = list["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .context("list without resourceVersion")?;

    let t0 = Instant::now();
    let mut watchers = Vec::new();
    for _ in 0..p.watchers {
        let body = open_watch(
            server.addr(),
            format!("/api/v1/namespaces/bench/configmaps?watch=true&resourceVersion={start_rv}"),
        )
        .await
        .context("opening a watch")?;
        watchers.push(tokio::spawn(consume_watch(body, p.count, start_rv, t0)));
    }

    let acks: Arc<Vec<AtomicU64>> = Arc::new((0..p.count).map(|_| AtomicU64::new(0)).collect());
    let payload = Arc::new("x".repeat(p.payload_bytes));
    let cpu_start = process_cpu_seconds();
    let write_start = t0.elapsed().as_nanos() as u64;
    let mut writers = Vec::new();
    for w in 0..p.writers {
        let client = client.clone();
        let cms = cms.clone();
        let acks = acks.clone();
        let payload = payload.clone();
        let (count, step) = (p.count, p.writers);
        writers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(count / step + 1);
            let mut object_bytes = 0;
            for i in (w..count).step_by(step) {
                let body = object_body(i, w, &payload);
                let sent = Instant::now();
                let created = call(&client, request(http::Method::POST, &cms, Some(body)), 201)
                    .await
                    .with_context(|| format!("creating bench-{i}"))?;
                let done = Instant::now();
                acks[i].store(done.duration_since(t0).as_nanos() as u64, Ordering::Relaxed);
                latencies.push(done.duration_since(sent).as_secs_f64() * 1e3);
                object_bytes = created.len();
            }
            anyhow::Ok((latencies, object_bytes))
        }));
    }

    let work = async {
        let mut latencies = Vec::with_capacity(p.count);
        let mut object_bytes = 0;
        for w in writers {
            let (l, b) = w.await??;
            latencies.extend(l);
            object_bytes = object_bytes.max(b);
        }
        let mut watched = Vec::new();
        for w in watchers {
            watched.push(w.await??);
        }
        anyhow::Ok((latencies, object_bytes, watched))
    };
    let (mut latencies, object_bytes, watched) = tokio::time::timeout(p.timeout, work)
        .await
        .context("the run timed out")??;
    let cpu_seconds = process_cpu_seconds() - cpu_start;
    let wall_seconds = (t0.elapsed().as_nanos() as u64 - write_start) as f64 / 1e9;

    let last_ack = acks
        .iter()
        .map(|a| a.load(Ordering::Relaxed))
        .max()
        .unwrap_or(write_start);
    let write_seconds = (last_ack - write_start) as f64 / 1e9;
    let mut lags = Vec::with_capacity(p.count * p.watchers);
    let mut last_event = 0;
    for w in &watched {
        for (i, at) in w.received.iter().enumerate() {
            let ack = acks[i].load(Ordering::Relaxed);
            lags.push(at.saturating_sub(ack) as f64 / 1e6);
            last_event = last_event.max(*at);
        }
    }
    let events = (p.count * p.watchers) as u64;
    let data_dir_bytes = dir.as_ref().map(|d| dir_bytes(d.path()));
    drop(server);
    Ok(RunReport {
        params: p.clone(),
        object_bytes,
        write_seconds,
        writes_per_sec: p.count as f64 / write_seconds,
        create_latency_ms: Percentiles::of(&mut latencies),
        watcher_lag_ms: Percentiles::of(&mut lags),
        drain_ms: last_event.saturating_sub(last_ack) as f64 / 1e6,
        events_verified: events,
        events_per_sec: events as f64 / (last_event.max(last_ack) - write_start) as f64 * 1e9,
        data_dir_bytes,
        cpu_seconds,
        cpu_us_per_write: cpu_seconds * 1e6 / p.count as f64,
        cpu_cores_used: cpu_seconds / wall_seconds,
    })
}

/// The report as a Markdown table.
pub fn markdown(runs: &[RunReport]) -> String {
    let mut out = String::from(
        "| storage | objects | writers | watchers | object bytes | writes/s | create p50 ms | create p99 ms | watcher lag p50 ms | lag p99 ms | lag max ms | drain ms | events verified | CPU µs/write | cores used |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in runs {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} | {} | {:.0} | {:.2} |\n",
            serde_json::to_value(r.params.storage)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            r.params.count,
            r.params.writers,
            r.params.watchers,
            r.object_bytes,
            r.writes_per_sec,
            r.create_latency_ms.p50,
            r.create_latency_ms.p99,
            r.watcher_lag_ms.p50,
            r.watcher_lag_ms.p99,
            r.watcher_lag_ms.max,
            r.drain_ms,
            r.events_verified,
            r.cpu_us_per_write,
            r.cpu_cores_used,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_small_run_verifies_every_event_in_memory_and_on_disk() {
        for storage in [Storage::Memory, Storage::Disk] {
            let r = run(&Params {
                storage,
                count: 200,
                writers: 4,
                watchers: 3,
                payload_bytes: 100,
                timeout: Duration::from_secs(120),
            })
            .await
            .unwrap();
            assert_eq!(r.events_verified, 600);
            assert!(r.writes_per_sec > 0.0);
            assert_eq!(r.data_dir_bytes.is_some(), storage == Storage::Disk);
            assert!(markdown(&[r]).lines().count() == 3);
        }
    }

    #[tokio::test]
    async fn a_watcher_rejects_reordered_and_repeated_events() {
        let lines = [
            r#"{"type":"ADDED","object":{"metadata":{"name":"bench-0","resourceVersion":"5"}}}"#,
            r#"{"type":"ADDED","object":{"metadata":{"name":"bench-1","resourceVersion":"4"}}}"#,
        ];
        let err = check_lines(&lines, 2).await.unwrap_err().to_string();
        assert!(err.contains("out of order"), "{err}");
        let lines = [
            r#"{"type":"ADDED","object":{"metadata":{"name":"bench-0","resourceVersion":"5"}}}"#,
            r#"{"type":"ADDED","object":{"metadata":{"name":"bench-0","resourceVersion":"6"}}}"#,
        ];
        let err = check_lines(&lines, 2).await.unwrap_err().to_string();
        assert!(err.contains("twice"), "{err}");
        let lines = [r#"{"type":"ERROR","object":{"code":410,"message":"too old"}}"#];
        let err = check_lines(&lines, 1).await.unwrap_err().to_string();
        assert!(err.contains("ERROR"), "{err}");
        let lines =
            [r#"{"type":"ADDED","object":{"metadata":{"name":"bench-0","resourceVersion":"5"}}}"#];
        let err = check_lines(&lines, 2).await.unwrap_err().to_string();
        assert!(err.contains("ended after 1 of 2"), "{err}");
    }

    /// Serves `lines` as a watch response from a one-shot local server and
    /// checks them.
    async fn check_lines(lines: &[&str], count: usize) -> Result<Watched> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut req = [0u8; 4096];
            let _ = s.read(&mut req).await;
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                body.len()
            );
            s.write_all(head.as_bytes()).await.unwrap();
            s.write_all(body.as_bytes()).await.unwrap();
        });
        let body = open_watch(addr, "/watch".into()).await?;
        consume_watch(body, count, 0, Instant::now()).await
    }
}
