//! Memory of the embedded API server over create/delete rounds.
//!
//! Each round creates `parents` ConfigMaps, `children` ConfigMaps owned by
//! each (ownerReferences with `controller: true`), updates every parent once,
//! then deletes the parents with background propagation and waits until the
//! garbage collector has removed every child. A watcher on all ConfigMaps
//! reads every event throughout, as a controller's informer would. After each
//! round, with nothing left in the namespace, the process's resident set size
//! is read from `/proc/self/status`.
//!
//! The server runs in this process: its RSS is the process's RSS (the
//! clients are a few connections). A server that forgets what it no longer
//! needs levels off after the first rounds; the report compares a late round
//! with an early one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use bytes::Bytes;
use futures::StreamExt;
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use metacontroller_apiserver::{ApiServer, Config, GroupResource};
use serde::Serialize;

use crate::throughput::{HttpClient, call, open_watch, request};

/// What a soak run does.
#[derive(Clone, Debug, Serialize)]
pub struct Params {
    /// Create/delete rounds.
    pub rounds: usize,
    /// Parents per round.
    pub parents: usize,
    /// Children per parent.
    pub children: usize,
    /// Concurrent writing clients.
    pub writers: usize,
    /// Bytes of `data.payload` in each object.
    pub payload_bytes: usize,
    /// The round compared with `late_round` (1-based).
    pub early_round: usize,
    /// The round that must stay within `max_growth` of `early_round`.
    pub late_round: usize,
    /// Allowed ratio late / early.
    pub max_growth: f64,
    /// The server's history budget per resource; `None` keeps its default.
    pub history_bytes: Option<usize>,
}

/// One round's figures.
#[derive(Clone, Debug, Serialize)]
pub struct Round {
    /// 1-based.
    pub round: usize,
    /// Seconds the round took.
    pub seconds: f64,
    /// Resident set size after the round, MiB.
    pub rss_mib: f64,
    /// Watch events the server still keeps for ConfigMaps.
    pub history_events: usize,
    /// Their approximate JSON size, MiB.
    pub history_mib: f64,
    /// Objects indexed by uid (everything stored).
    pub uids: usize,
}

/// What a soak run measured.
#[derive(Clone, Debug, Serialize)]
pub struct SoakReport {
    /// The parameters.
    pub params: Params,
    /// RSS before the first round, MiB.
    pub start_rss_mib: f64,
    /// Per round.
    pub rounds: Vec<Round>,
    /// Events the watcher received.
    pub watched_events: u64,
    /// `late_round` RSS / `early_round` RSS, when both ran.
    pub growth: Option<f64>,
    /// Whether `growth <= max_growth`.
    pub met: Option<bool>,
}

/// `VmRSS` of this process in MiB.
pub fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

fn object(name: &str, owner: Option<(&str, &str)>, payload: &str, generation: usize) -> Bytes {
    let owners = match owner {
        Some((parent, uid)) => format!(
            r#","ownerReferences":[{{"apiVersion":"v1","kind":"ConfigMap","name":"{parent}","uid":"{uid}","controller":true,"blockOwnerDeletion":true}}]"#
        ),
        None => String::new(),
    };
    Bytes::from(format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}","labels":{{"app":"apiserver-soak"}}{owners}}},"data":{{"generation":"{generation}","payload":"{payload}"}}}}"#
    ))
}

async fn one_parent(
    client: &HttpClient,
    base: &str,
    p: &Params,
    i: usize,
    payload: &str,
) -> Result<()> {
    let coll = format!("{base}/api/v1/namespaces/soak/configmaps");
    let name = format!("parent-{i}");
    let body = call(
        client,
        request(
            http::Method::POST,
            &coll,
            Some(object(&name, None, payload, 0)),
        ),
        201,
    )
    .await?;
    let created: serde_json::Value = serde_json::from_slice(&body)?;
    let uid = created["metadata"]["uid"]
        .as_str()
        .context("created parent has no uid")?
        .to_string();
    for c in 0..p.children {
        let child = format!("{name}-child-{c}");
        call(
            client,
            request(
                http::Method::POST,
                &coll,
                Some(object(&child, Some((&name, &uid)), payload, 0)),
            ),
            201,
        )
        .await?;
    }
    call(
        client,
        request(
            http::Method::PUT,
            &format!("{coll}/{name}"),
            Some(object(&name, None, payload, 1)),
        ),
        200,
    )
    .await?;
    Ok(())
}

async fn count_left(client: &HttpClient, base: &str) -> Result<usize> {
    let body = call(
        client,
        request(
            http::Method::GET,
            &format!("{base}/api/v1/namespaces/soak/configmaps"),
            None,
        ),
        200,
    )
    .await?;
    let list: serde_json::Value = serde_json::from_slice(&body)?;
    Ok(list["items"].as_array().map_or(0, Vec::len))
}

/// Runs the soak.
pub async fn run(p: &Params) -> Result<SoakReport> {
    ensure!(p.rounds > 0 && p.writers > 0, "nothing to do");
    let mut config = Config::default();
    if let Some(bytes) = p.history_bytes {
        config.history_bytes = bytes;
    }
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
            Some(Bytes::from_static(br#"{"metadata":{"name":"soak"}}"#)),
        ),
        201,
    )
    .await?;
    let mut body = open_watch(
        server.addr(),
        "/api/v1/configmaps?watch=true&allowWatchBookmarks=true".to_string(),
    )
    .await?;
    let watched = Arc::new(AtomicU64::new(0));
    let seen = watched.clone();
    let watcher = tokio::spawn(async move {
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { break };
            if let Ok(data) = frame.into_data() {
                let lines = data.iter().filter(|b| **b == b'\n').count();
                seen.fetch_add(lines as u64, Ordering::Relaxed);
            }
        }
    });
    let payload = "x".repeat(p.payload_bytes);
    let gr = GroupResource::new("", "configmaps");
    let start_rss_mib = rss_mib();
    let mut rounds = Vec::new();
    for round in 1..=p.rounds {
        let t0 = Instant::now();
        let results: Vec<Result<()>> = futures::stream::iter(0..p.parents)
            .map(|i| {
                let (client, base, payload) = (&client, &base, &payload);
                async move { one_parent(client, base, p, i, payload).await }
            })
            .buffer_unordered(p.writers)
            .collect()
            .await;
        results.into_iter().collect::<Result<Vec<()>>>()?;
        let deletes: Vec<Result<Bytes>> = futures::stream::iter(0..p.parents)
            .map(|i| {
                let (client, base) = (&client, &base);
                async move {
                    call(
                        client,
                        request(
                            http::Method::DELETE,
                            &format!("{base}/api/v1/namespaces/soak/configmaps/parent-{i}"),
                            Some(Bytes::from_static(br#"{"propagationPolicy":"Background"}"#)),
                        ),
                        200,
                    )
                    .await
                }
            })
            .buffer_unordered(p.writers)
            .collect()
            .await;
        deletes.into_iter().collect::<Result<Vec<Bytes>>>()?;
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let left = count_left(&client, &base).await?;
            if left == 0 {
                break;
            }
            if Instant::now() > deadline {
                bail!("round {round}: {left} objects still there after 300 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (history_events, history_bytes, uids) = {
            let inner = server.shared().inner.lock();
            (
                inner.history_len(&gr),
                inner.history_bytes(&gr),
                inner.uid_count(),
            )
        };
        let r = Round {
            round,
            seconds: t0.elapsed().as_secs_f64(),
            rss_mib: rss_mib(),
            history_events,
            history_mib: history_bytes as f64 / (1 << 20) as f64,
            uids,
        };
        eprintln!(
            "round {:>3}: {:>6.1} s, RSS {:>7.1} MiB, {} ConfigMap events kept ({:.1} MiB of JSON), {} uids",
            r.round, r.seconds, r.rss_mib, r.history_events, r.history_mib, r.uids
        );
        rounds.push(r);
    }
    watcher.abort();
    let at = |n: usize| rounds.get(n.wrapping_sub(1)).map(|r| r.rss_mib);
    let growth = match (at(p.early_round), at(p.late_round)) {
        (Some(e), Some(l)) if e > 0.0 => Some(l / e),
        _ => None,
    };
    Ok(SoakReport {
        params: p.clone(),
        start_rss_mib,
        rounds,
        watched_events: watched.load(Ordering::Relaxed),
        growth,
        met: growth.map(|g| g <= p.max_growth),
    })
}

/// A Markdown summary.
pub fn markdown(r: &SoakReport) -> String {
    let mut out = format!(
        "{} rounds of {} parents × {} children (payload {} B, history budget {}); RSS before: {:.1} MiB\n\n| round | s | RSS MiB | ConfigMap events kept | their JSON MiB |\n|---:|---:|---:|---:|---:|\n",
        r.params.rounds,
        r.params.parents,
        r.params.children,
        r.params.payload_bytes,
        match r.params.history_bytes {
            Some(b) => format!("{} MiB", b >> 20),
            None => "default".to_owned(),
        },
        r.start_rss_mib
    );
    for x in &r.rounds {
        out.push_str(&format!(
            "| {} | {:.1} | {:.1} | {} | {:.1} |\n",
            x.round, x.seconds, x.rss_mib, x.history_events, x.history_mib
        ));
    }
    match (r.growth, r.met) {
        (Some(g), Some(met)) => out.push_str(&format!(
            "\nround {} ≤ {}× round {}: {} ({g:.2}×)\n",
            r.params.late_round,
            r.params.max_growth,
            r.params.early_round,
            if met { "met" } else { "missed" }
        )),
        _ => out.push_str("\n(too few rounds to compare)\n"),
    }
    out
}
