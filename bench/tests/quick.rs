//! Runs `controller-bench --quick` for metacontroller (tuned: 16 workers,
//! no client throttling) and the floor with the Rust null hook at N = 100,
//! and fails when the controller is wrong:
//!
//! * every parent converged with exactly M children (M + 1 after the W3
//!   spec change) and `status.ready` equal to it, every deleted child came
//!   back, and every parent and child went away on deletion;
//! * W1, a cold start over the converged world, writes no object (the
//!   controller's own Starting/Started Events are reported apart);
//! * W4, idle, writes nothing and calls no hook.
//!
//! Metacontroller's default client throttling (QPS 5) needs at least
//! N × (M + 1) / 5 = 120 s for W2 alone at N = 100, too long for the test
//! suite; the full harness runs `ours-defaults` too. kopf only runs in the
//! full harness.
//!
//! It runs on the server `MC_TEST_CLUSTER` names (`controller-bench
//! --cluster embedded|real`): the embedded API server, or a real control
//! plane per run, where the contender's requests are read from the audit
//! log.
//!
//! The harness uses the `metacontroller` binary of the same target
//! directory (built by `cargo test --workspace`; built here when missing).

use std::process::{Command, Stdio};

use serde_json::Value;

/// The server `MC_TEST_CLUSTER` names (`embedded` when unset).
fn cluster() -> String {
    std::env::var("MC_TEST_CLUSTER")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "embedded".into())
}

#[test]
fn quick_run_converges_without_idle_or_cold_start_writes() {
    let out = tempfile::tempdir().unwrap();
    let cluster = cluster();
    let status = Command::new(env!("CARGO_BIN_EXE_controller-bench"))
        .args(["--cluster", &cluster])
        .args([
            "--quick",
            "--no-build",
            "--contenders",
            "ours-tuned,floor",
            "--hook",
            "rust",
            "--n",
            "100",
            "--idle-secs",
            "5",
        ])
        .arg("--out")
        .arg(out.path())
        .stdout(Stdio::null())
        .status()
        .expect("running controller-bench");
    let report = std::fs::read(out.path().join("controller-bench.json"))
        .expect("controller-bench wrote no report");
    let report: Value = serde_json::from_slice(&report).unwrap();
    assert_eq!(report["settings"]["cluster"], cluster.as_str());
    let runs = report["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2, "one run per contender: {report:#}");
    for run in runs {
        let name = run["contender"].as_str().unwrap();
        assert_eq!(run["cluster"], cluster.as_str());
        let problems = &run["problems"];
        assert_eq!(
            run["converged"], true,
            "{name} did not converge: {problems}"
        );
        assert_eq!(run["w2"]["converged"], 100, "{name} W2: {problems}");
        assert_eq!(run["w3"]["converged"], 10, "{name} W3: {problems}");
        assert_eq!(run["w5"]["converged"], 5, "{name} W5: {problems}");
        assert!(
            problems.as_array().unwrap().is_empty(),
            "{name}: {problems}"
        );
        if name == "floor" {
            // The knee search ran at every level and chose one of them.
            let floor = &run["floor"];
            let probes = floor["probes"].as_array().expect("floor probes");
            assert_eq!(probes.len(), 5, "{floor}");
            let chosen = floor["concurrency"].as_u64().unwrap();
            assert!(probes.iter().any(|p| p["concurrency"] == chosen), "{floor}");
            assert!(floor["w2_writes_done_seconds"].as_f64().unwrap() > 0.0);
        }
        let writes = |w: &str| {
            let a = &run[w]["activity"];
            a["writes"].as_u64().unwrap() - a["event_writes"].as_u64().unwrap()
        };
        let hook_calls = |w: &str| {
            let h = &run[w]["activity"]["hook"];
            h["sync_calls"].as_u64().unwrap() + h["finalize_calls"].as_u64().unwrap()
        };
        assert_eq!(
            writes("w1"),
            0,
            "{name} wrote on a cold start: {}",
            run["w1"]["activity"]["requests_by_resource"]
        );
        assert_eq!(
            run["w4"]["activity"]["writes"], 0,
            "{name} wrote while idle: {}",
            run["w4"]["activity"]["requests_by_resource"]
        );
        assert_eq!(hook_calls("w4"), 0, "{name} called its hook while idle");
        // The floor writes exactly M + 1 per parent; the controller at least
        // that many.
        let w2_writes = writes("w2");
        if name == "floor" {
            assert_eq!(w2_writes, 600);
        } else {
            assert!(w2_writes >= 600, "{name}: {w2_writes} writes in W2");
            assert!(hook_calls("w2") >= 100, "{name}: too few hook calls");
        }
    }
    assert!(status.success(), "controller-bench failed: {status}");
    for plot in [
        "w2-throughput.png",
        "w2-latency.png",
        "w2-latency-cdf-n100.png",
        "cost-curve.png",
    ] {
        assert!(out.path().join(plot).is_file(), "{plot} missing");
    }
    assert!(out.path().join("controller-bench.md").is_file());
}
