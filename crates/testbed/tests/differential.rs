//! Differential fidelity of the embedded API server: the same corpus of raw
//! API requests is replayed, in the same order, against the embedded server
//! and a real kube-apiserver (with etcd and kube-controller-manager); the
//! responses are normalised and compared field by field.
//!
//! Runs only with `MC_TEST_CLUSTER=real`. Fails on any difference the
//! checked-in allow-list (`differential/allow-list.txt`) does not cover, and
//! on allow-list entries that no longer match anything. The full report is
//! written to `$CARGO_TARGET_TMPDIR/differential-report.md`, with the raw
//! normalised records beside it.

#[path = "differential/allow.rs"]
mod allow;
#[path = "differential/client.rs"]
mod client;
#[path = "differential/compare.rs"]
mod compare;
#[path = "differential/corpus/mod.rs"]
mod corpus;
#[path = "differential/normalise.rs"]
mod normalise;
#[path = "differential/report.rs"]
mod report;
#[path = "differential/step.rs"]
mod step;

use std::collections::HashSet;
use std::path::PathBuf;

use metacontroller_testbed::{ClusterKind, Options, RealCluster, TestCluster};
use serde_json::Value;

const ALLOW_LIST: &str = include_str!("differential/allow-list.txt");

async fn replay(name: &str, cluster: &TestCluster, steps: &[step::Step]) -> Vec<Value> {
    let client = cluster.client().await.expect("client");
    let mut runner = client::Runner::new(client);
    let mut out = Vec::with_capacity(steps.len());
    let start = std::time::Instant::now();
    for (i, s) in steps.iter().enumerate() {
        out.push(runner.run(s).await);
        if (i + 1) % 100 == 0 || i + 1 == steps.len() {
            eprintln!("{name}: {} steps in {:.1?}", i + 1, start.elapsed());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_server_matches_kube_apiserver() {
    let steps = corpus::all();
    let mut entries = allow::parse(ALLOW_LIST);
    eprintln!(
        "differential corpus: {} requests; allow-list: {} entries",
        steps.len(),
        entries.len()
    );
    let mut ids = HashSet::new();
    for s in &steps {
        assert!(ids.insert(s.id.clone()), "duplicate step id {}", s.id);
    }
    if ClusterKind::from_env().expect("MC_TEST_CLUSTER") != ClusterKind::Real {
        eprintln!("skipped: the differential suite needs MC_TEST_CLUSTER=real");
        return;
    }

    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    // The real cluster keeps its logs beside the report; a fresh etcd each run.
    let cluster_dir = dir.join("differential-cluster");
    let _ = std::fs::remove_dir_all(&cluster_dir);
    let (embedded, real) = tokio::join!(
        TestCluster::start_kind(ClusterKind::Embedded),
        RealCluster::start_with(Options {
            dir: Some(cluster_dir),
            apiserver_flags: Vec::new(),
        })
    );
    let embedded = embedded.expect("embedded server");
    let real = TestCluster::Real(Box::new(real.expect("real cluster")));
    let (mut left, mut right) = tokio::join!(
        replay("embedded", &embedded, &steps),
        replay("real", &real, &steps)
    );

    let (mut ln, mut rn) = (
        normalise::Normaliser::default(),
        normalise::Normaliser::default(),
    );
    let mut outcomes = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        ln.record(&s.id, &mut left[i]);
        rn.record(&s.id, &mut right[i]);
        for d in compare::diff(&s.id, &left[i], &right[i]) {
            let allowed_by = allow::allows(&mut entries, &d);
            outcomes.push(report::Outcome {
                diff: d,
                allowed_by,
            });
        }
    }

    let records = |side: &[Value]| {
        let map: serde_json::Map<String, Value> = steps
            .iter()
            .zip(side)
            .map(|(s, r)| (s.id.clone(), r.clone()))
            .collect();
        serde_json::to_string_pretty(&map).expect("json")
    };
    report::write(&dir.join("differential-embedded.json"), &records(&left));
    report::write(&dir.join("differential-real.json"), &records(&right));
    let text = report::render(steps.len(), &outcomes, &entries);
    let path = dir.join("differential-report.md");
    report::write(&path, &text);

    let unexpected: Vec<&report::Outcome> =
        outcomes.iter().filter(|o| o.allowed_by.is_none()).collect();
    let stale: Vec<&allow::Entry> = entries
        .iter()
        .filter(|e| e.used == 0 && !e.optional)
        .collect();
    eprintln!(
        "differences: {} ({} allowed, {} not allowed); stale allow-list entries: {}; report: {}",
        outcomes.len(),
        outcomes.len() - unexpected.len(),
        unexpected.len(),
        stale.len(),
        path.display()
    );
    for o in unexpected.iter().take(40) {
        eprintln!(
            "  {} {}: embedded {:?} / real {:?}",
            o.diff.id, o.diff.path, o.diff.embedded, o.diff.real
        );
    }
    for e in &stale {
        eprintln!("  stale allow-list line {}: {} {}", e.line, e.id, e.path);
    }
    assert!(
        unexpected.is_empty() && stale.is_empty(),
        "{} differences not in the allow-list, {} stale allow-list entries; see {}",
        unexpected.len(),
        stale.len(),
        path.display()
    );
}
