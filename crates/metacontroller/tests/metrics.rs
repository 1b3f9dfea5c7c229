//! `/metrics` of a `metacontroller` process, on the server `MC_TEST_CLUSTER`
//! names, scraped over HTTP after it synced a CompositeController's parent.
//!
//! 1. With `--leader-election`: every family is present with
//!    Metacontroller's names and labels, and the values follow what happened
//!    (reconciles of `composite-metacontroller`, the `CompositeController-things`
//!    queue, GETs and POSTs to the API server, this process's `/proc`, the
//!    Lease held). The same registry is served as Prometheus 0.0.4 text or
//!    OpenMetrics depending on `Accept`.
//! 2. Without leader election: no `leader_election_master_status`.
#![cfg(unix)]

mod common;

use common::paths::free_port;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::instance::Instance;
use common::things::{create_parent, start_world, wait_synced};
use common::wait_for;

/// What Prometheus sends when it scrapes.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,\
    application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// `GET /metrics` with `accept`; the Content-Type and the body, or `None`
/// while the endpoint does not answer.
fn scrape(port: u16, accept: &str) -> Option<(String, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let content_type = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-type")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_default();
    // axum answers with a Content-Length, so the body is not chunked.
    Some((content_type, body.to_owned()))
}

/// One sample line: name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect(line);
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once("=\"").expect(pair);
                    (k.to_owned(), v.trim_end_matches('"').to_owned())
                })
                .collect();
            Sample {
                name: name.to_owned(),
                labels,
                value: value.parse().expect(value),
            }
        })
        .collect()
}

/// The samples of `name` whose labels include `labels`.
fn find<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Vec<&'a Sample> {
    samples
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect()
}

/// The value of the one sample of `name` with exactly `labels`.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<_> = find(samples, name, labels)
        .into_iter()
        .filter(|s| s.labels.len() == labels.len())
        .collect();
    assert_eq!(found.len(), 1, "{name} {labels:?}: {found:?}");
    found[0].value
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn start(name: &str, kubeconfig: &Path, port: u16, leader_election: bool) -> Instance {
    let metrics = format!("--metrics-address=127.0.0.1:{port}");
    let mut args = vec![
        metrics.as_str(),
        "--health-probe-bind-address=0",
        "--discovery-interval=2s",
    ];
    if leader_election {
        args.extend(["--leader-election", "--leader-election-namespace=default"]);
    }
    Instance::start(name, kubeconfig, &args)
}

/// Scrapes until `composite-metacontroller` has reconciled successfully.
async fn scrape_after_reconcile(instance: &Instance, port: u16) -> Vec<Sample> {
    wait_for("a successful reconcile", Duration::from_secs(60), || {
        let found = scrape(port, "text/plain").and_then(|(_, body)| {
            let samples = parse(&body);
            let reconciled = find(
                &samples,
                "controller_runtime_reconcile_total",
                &[
                    ("controller", "composite-metacontroller"),
                    ("result", "success"),
                ],
            )
            .first()
            .is_some_and(|s| s.value >= 1.0);
            reconciled.then_some(samples)
        });
        async move { found }
    })
    .await;
    let (_, body) =
        scrape(port, "text/plain").unwrap_or_else(|| panic!("scrape failed:\n{}", instance.log()));
    parse(&body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_family_is_exposed() {
    let (cluster, client, _hook) = start_world().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, cluster.kubeconfig()).unwrap();
    let api_host = cluster
        .kubeconfig()
        .lines()
        .find_map(|l| l.trim().strip_prefix("server:"))
        .map(|url| {
            let url = url.trim().trim_matches('"');
            url.split_once("://")
                .map_or(url, |(_, rest)| rest)
                .to_owned()
        })
        .expect("server in kubeconfig");

    // 1. With leader election.
    let port = free_port();
    let mut instance = start("a", &kubeconfig, port, true);
    create_parent(&client, "default", "one").await;
    wait_synced(&client, "default", "one", Duration::from_secs(90)).await;
    let s = scrape_after_reconcile(&instance, port).await;
    let start_time = now();

    // controller-runtime, for both reconcilers.
    for controller in ["composite-metacontroller", "decorator-metacontroller"] {
        let c = ("controller", controller);
        for result in ["success", "error", "requeue", "requeue_after"] {
            value(
                &s,
                "controller_runtime_reconcile_total",
                &[c, ("result", result)],
            );
        }
        value(&s, "controller_runtime_reconcile_errors_total", &[c]);
        value(
            &s,
            "controller_runtime_terminal_reconcile_errors_total",
            &[c],
        );
        value(&s, "controller_runtime_reconcile_panics_total", &[c]);
        assert_eq!(
            value(&s, "controller_runtime_max_concurrent_reconciles", &[c]),
            1.0
        );
        let active = value(&s, "controller_runtime_active_workers", &[c]);
        assert!((0.0..=1.0).contains(&active), "{active}");
        value(
            &s,
            "controller_runtime_reconcile_time_seconds_bucket",
            &[c, ("le", "+Inf")],
        );
    }
    let cc = ("controller", "composite-metacontroller");
    let successes = value(
        &s,
        "controller_runtime_reconcile_total",
        &[cc, ("result", "success")],
    );
    assert!(successes >= 1.0, "{successes}");
    let observed = value(&s, "controller_runtime_reconcile_time_seconds_count", &[cc]);
    let total: f64 = find(&s, "controller_runtime_reconcile_total", &[cc])
        .iter()
        .map(|s| s.value)
        .sum();
    assert_eq!(observed, total, "every reconcile is timed");

    // Work queues: the hosted controller's and the reconcilers'.
    for queue in ["CompositeController-things", "composite-metacontroller"] {
        let q = [("name", queue), ("controller", queue)];
        let adds = value(&s, "workqueue_adds_total", &q);
        assert!(adds >= 1.0, "{queue}: {adds} adds");
        let depth = value(&s, "workqueue_depth", &q);
        assert!((0.0..=adds).contains(&depth), "{queue}: depth {depth}");
        value(&s, "workqueue_retries_total", &q);
        value(&s, "workqueue_unfinished_work_seconds", &q);
        value(&s, "workqueue_longest_running_processor_seconds", &q);
        let waited = value(&s, "workqueue_queue_duration_seconds_count", &q);
        let worked = value(&s, "workqueue_work_duration_seconds_count", &q);
        assert!(waited >= 1.0 && worked >= 1.0, "{queue}: {waited} {worked}");
        assert!(
            waited <= adds && worked <= waited,
            "{queue}: {adds} {waited} {worked}"
        );
        let mut q = q.to_vec();
        q.push(("le", "+Inf"));
        assert_eq!(
            value(&s, "workqueue_work_duration_seconds_bucket", &q),
            worked
        );
    }

    // REST client: reads and the child's creation, to the API server.
    let host = ("host", api_host.as_str());
    let gets = value(
        &s,
        "rest_client_requests_total",
        &[("code", "200"), ("method", "GET"), host],
    );
    assert!(gets >= 1.0, "{gets}");
    let creates = value(
        &s,
        "rest_client_requests_total",
        &[("code", "201"), ("method", "POST"), host],
    );
    assert!(creates >= 1.0, "{creates}");
    // Every GET is timed; the histogram's +Inf bucket holds them all.
    let timed = value(
        &s,
        "rest_client_request_duration_seconds_count",
        &[("verb", "GET"), host],
    );
    assert!(timed >= gets, "{timed} timed GETs, {gets} counted");
    assert_eq!(
        value(
            &s,
            "rest_client_request_duration_seconds_bucket",
            &[("verb", "GET"), host, ("le", "+Inf")],
        ),
        timed
    );

    // This process.
    assert!(value(&s, "process_cpu_seconds_total", &[]) > 0.0);
    assert!(value(&s, "process_resident_memory_bytes", &[]) > 1e6);
    let virt = value(&s, "process_virtual_memory_bytes", &[]);
    assert!(virt >= value(&s, "process_resident_memory_bytes", &[]));
    let fds = value(&s, "process_open_fds", &[]);
    assert!(
        fds >= 3.0 && fds <= value(&s, "process_max_fds", &[]),
        "{fds}"
    );
    value(&s, "process_virtual_memory_max_bytes", &[]);
    let started = value(&s, "process_start_time_seconds", &[]);
    assert!(
        started <= start_time + 1.0 && started > start_time - 300.0,
        "{started} vs {start_time}"
    );

    // The Lease and the hook.
    assert_eq!(
        value(
            &s,
            "leader_election_master_status",
            &[("name", "metacontroller")]
        ),
        1.0
    );
    let hook_calls: f64 = find(
        &s,
        "metacontroller_sync_requests_total",
        &[("code", "200"), ("controller_name", "things")],
    )
    .iter()
    .map(|s| s.value)
    .sum();
    assert!(hook_calls >= 1.0, "{hook_calls}");

    eprintln!(
        "composite-metacontroller: {successes} successful reconciles; \
         {gets} GETs and {creates} creates to {api_host}; {hook_calls} sync hook calls; \
         {fds} open fds"
    );

    // Formats.
    let (content_type, text) = scrape(port, "text/plain").unwrap();
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    assert!(text.contains("# TYPE controller_runtime_reconcile_total counter\n"));
    assert!(text.contains("# TYPE workqueue_depth gauge\n"));
    assert!(!text.contains("# EOF"));
    let (content_type, open) = scrape(port, PROMETHEUS_ACCEPT).unwrap();
    assert_eq!(
        content_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(open.contains("# TYPE controller_runtime_reconcile counter\n"));
    assert!(open.ends_with("# EOF\n"));

    instance.signal("TERM");
    wait_for(
        "the first instance to exit",
        Duration::from_secs(30),
        || {
            let exited = instance.try_wait().is_some();
            async move { exited.then_some(()) }
        },
    )
    .await;

    // 2. Without leader election.
    let port = free_port();
    let plain = start("b", &kubeconfig, port, false);
    let s = scrape_after_reconcile(&plain, port).await;
    assert!(
        find(&s, "leader_election_master_status", &[]).is_empty(),
        "{s:?}"
    );
    let (_, text) = scrape(port, "text/plain").unwrap();
    assert!(!text.contains("leader_election"), "{text}");
}
