//! `apiserver-throughput`: write and watch throughput of the embedded API
//! server, in memory and with a data directory. See the crate documentation.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use metacontroller_bench::throughput::{self, Params, Storage};
use metacontroller_bench::{Machine, throughput::RunReport};

/// Measures how fast the embedded API server takes writes while watchers
/// receive every event.
#[derive(Parser, Debug)]
#[command(name = "apiserver-throughput")]
struct Args {
    /// ConfigMaps to create per run.
    #[arg(long, default_value_t = 50_000)]
    count: usize,
    /// A short run for CI: 2,000 objects (unless --count is given too).
    #[arg(long)]
    quick: bool,
    /// Concurrent writing clients, one request in flight each.
    #[arg(long, default_value_t = 10)]
    writers: usize,
    /// Watch streams that must each receive every event in order.
    #[arg(long, default_value_t = 10)]
    watchers: usize,
    /// Bytes of payload per ConfigMap (900 makes a stored object of ~1 KiB).
    #[arg(long, default_value_t = 900)]
    payload_bytes: usize,
    /// Storage modes to run, in order.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Storage::Memory, Storage::Disk])]
    storage: Vec<Storage>,
    /// Where to write the JSON report.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/out/apiserver-throughput.json"))]
    out: PathBuf,
    /// Fail when the in-memory run writes fewer objects per second.
    #[arg(long)]
    min_writes_per_sec: Option<f64>,
    /// Give up on a run after this many seconds.
    #[arg(long, default_value_t = 900)]
    timeout_secs: u64,
}

/// The throughput the in-memory server is expected to reach on a 2-core machine.
const TARGET_WRITES_PER_SEC: f64 = 5_000.0;

#[derive(serde::Serialize)]
struct Report<'a> {
    benchmark: &'static str,
    machine: Machine,
    target_writes_per_sec_in_memory: f64,
    runs: &'a [RunReport],
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let count_given = std::env::args().any(|a| a == "--count" || a.starts_with("--count="));
    let count = if args.quick && !count_given {
        2_000
    } else {
        args.count
    };
    let machine = Machine::detect();
    eprintln!(
        "apiserver-throughput: {count} objects, {} writers, {} watchers, {:?} ({} build, {} CPUs)",
        args.writers, args.watchers, args.storage, machine.profile, machine.cpus
    );
    let mut runs = Vec::new();
    for storage in &args.storage {
        let params = Params {
            storage: *storage,
            count,
            writers: args.writers,
            watchers: args.watchers,
            payload_bytes: args.payload_bytes,
            timeout: Duration::from_secs(args.timeout_secs),
        };
        let report = throughput::run(&params)
            .await
            .with_context(|| format!("{storage:?} run failed"))?;
        eprintln!(
            "  {storage:?}: {:.0} writes/s, create p99 {:.2} ms, {} events verified",
            report.writes_per_sec, report.create_latency_ms.p99, report.events_verified
        );
        runs.push(report);
    }

    let report = Report {
        benchmark: "apiserver-throughput",
        machine,
        target_writes_per_sec_in_memory: TARGET_WRITES_PER_SEC,
        runs: &runs,
    };
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&args.out, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("writing {}", args.out.display()))?;

    println!("## apiserver-throughput\n");
    println!(
        "{} CPUs ({}), {:.1} GiB memory, {} build. Every watcher received every event once, in resourceVersion order.\n",
        report.machine.cpus,
        report.machine.cpu_model,
        report.machine.memory_total_kib as f64 / (1024.0 * 1024.0),
        report.machine.profile
    );
    print!("{}", throughput::markdown(&runs));
    println!("\nReport: {}", args.out.display());

    if let Some(memory) = runs.iter().find(|r| r.params.storage == Storage::Memory) {
        let min = args.min_writes_per_sec;
        if let Some(min) = min
            && memory.writes_per_sec < min
        {
            anyhow::bail!(
                "in-memory throughput {:.0} writes/s is below the required {min:.0}",
                memory.writes_per_sec
            );
        }
    }
    Ok(())
}
