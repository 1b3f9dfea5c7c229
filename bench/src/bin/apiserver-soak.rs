//! `apiserver-soak`: RSS of the embedded API server over create/delete
//! rounds. See `metacontroller_bench::soak`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use metacontroller_bench::Machine;
use metacontroller_bench::soak::{self, Params};

/// Creates and deletes parents with children, round after round, and reports
/// the server's resident set size after each round.
#[derive(Parser, Debug)]
#[command(name = "apiserver-soak")]
struct Args {
    /// Create/delete rounds.
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// Parents per round.
    #[arg(long, default_value_t = 1_000)]
    parents: usize,
    /// Children per parent.
    #[arg(long, default_value_t = 5)]
    children: usize,
    /// Concurrent writing clients.
    #[arg(long, default_value_t = 10)]
    writers: usize,
    /// Bytes of payload per object.
    #[arg(long, default_value_t = 900)]
    payload_bytes: usize,
    /// The early round of the comparison (1-based).
    #[arg(long, default_value_t = 3)]
    early_round: usize,
    /// The late round of the comparison.
    #[arg(long, default_value_t = 10)]
    late_round: usize,
    /// Allowed RSS ratio late / early.
    #[arg(long, default_value_t = 1.2)]
    max_growth: f64,
    /// The server's history budget per resource in MiB (default: the
    /// server's own); a huge value shows the server bounded by event count
    /// alone.
    #[arg(long)]
    history_mib: Option<usize>,
    /// Where to write the JSON report.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/out/apiserver-soak.json"))]
    out: PathBuf,
    /// Exit non-zero when the growth target is missed.
    #[arg(long)]
    check: bool,
}

#[derive(serde::Serialize)]
struct Report<'a> {
    benchmark: &'static str,
    machine: Machine,
    soak: &'a soak::SoakReport,
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = Args::parse();
    let params = Params {
        rounds: a.rounds,
        parents: a.parents,
        children: a.children,
        writers: a.writers,
        payload_bytes: a.payload_bytes,
        early_round: a.early_round,
        late_round: a.late_round,
        max_growth: a.max_growth,
        history_bytes: a.history_mib.map(|m| m.saturating_mul(1 << 20)),
    };
    let report = soak::run(&params).await?;
    let machine = Machine::detect();
    if let Some(dir) = a.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let json = serde_json::to_vec_pretty(&Report {
        benchmark: "apiserver-soak",
        machine,
        soak: &report,
    })?;
    std::fs::write(&a.out, json).with_context(|| format!("writing {}", a.out.display()))?;
    println!("{}", soak::markdown(&report));
    if a.check && report.met == Some(false) {
        anyhow::bail!("RSS grew more than {}×", a.max_growth);
    }
    Ok(())
}
