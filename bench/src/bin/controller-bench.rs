//! `controller-bench`: metacontroller-rs against kopf, a hand-written
//! kube-rs controller and the API floor, on the embedded API server or
//! (`--cluster real`) on a real control plane.
//!
//! ```text
//! cargo run --release -p metacontroller-bench --bin controller-bench
//! cargo run --release -p metacontroller-bench --bin controller-bench -- --quick
//! cargo run --release -p metacontroller-bench --bin controller-bench -- --n 10000 --contenders ours-tuned,kube-rs,floor
//! cargo run --release -p metacontroller-bench --bin controller-bench -- --cluster real --n 1000 --repeats 1
//! cargo run --release -p metacontroller-bench --bin controller-bench -- --n 100000 --repeats 1 --contenders ours-tuned,kube-rs --hooks rust --skip w3,w4,w5,w6 --unrelated 0
//! ```
//!
//! For each N, each repeat and each contender it runs every workload on a
//! fresh server (with `--cluster real`, a fresh etcd, kube-apiserver and
//! kube-controller-manager from `metacontroller-testbed`) (see `metacontroller_bench::controller::run`), then writes
//! `<out>/controller-bench.json` (every run, the medians and the target
//! checks), `<out>/controller-bench.md` and PNG plots, and prints the
//! Markdown. It exits non-zero when a run fails to converge.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use metacontroller_bench::Machine;
use metacontroller_bench::controller::hook::HookKind;
use metacontroller_bench::controller::process::{Contender, Programs};
use metacontroller_bench::controller::run::{self, Options, Phase, RunResult};
use metacontroller_bench::controller::{plot, report};
use metacontroller_testbed::ClusterKind;
use serde::Serialize;

/// Compares controllers on the same logic and the same API server.
#[derive(Parser, Debug)]
#[command(name = "controller-bench")]
struct Args {
    /// A short run: N = 100, one repeat, 10 s idle, 1 s quiet window, no
    /// unrelated objects (each unless given explicitly).
    #[arg(long)]
    quick: bool,
    /// The server: `embedded` (this process's API server) or `real` (etcd,
    /// kube-apiserver and kube-controller-manager, started fresh per run).
    #[arg(long, default_value = "embedded")]
    cluster: ClusterKind,
    /// Parent counts to run (M = 5 children each).
    #[arg(long, value_delimiter = ',', default_values_t = [100, 1000])]
    n: Vec<usize>,
    /// Repeats per contender and N; the report shows medians.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Contenders, in order.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [
        Contender::OursDefaults, Contender::OursTuned, Contender::KubeRs, Contender::Kopf, Contender::Floor
    ])]
    contenders: Vec<Contender>,
    /// Hooks of the `ours` contenders: the first serves every `ours`
    /// contender; each further one adds an `ours-tuned+<hook>` contender.
    #[arg(long = "hooks", alias = "hook", value_enum, value_delimiter = ',', default_values_t = [
        HookKind::Rust, HookKind::Python, HookKind::Rust1ms, HookKind::Rust10ms
    ])]
    hooks: Vec<HookKind>,
    /// Output directory (JSON, Markdown, PNG, contender logs).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/out"))]
    out: PathBuf,
    /// Length of the W4 idle window, seconds.
    #[arg(long, default_value_t = 30)]
    idle_secs: u64,
    /// No request and no hook call for this long means quiet, milliseconds.
    #[arg(long, default_value_t = 1500)]
    quiet_ms: u64,
    /// Unrelated ConfigMaps for W9 (largest N, first repeat; 0 skips).
    #[arg(long, default_value_t = 100_000)]
    unrelated: usize,
    /// ours-defaults runs only up to this N: at client QPS 5 every parent
    /// costs at least (M+1)/5 s, so N = 1,000 takes 20 minutes per workload.
    #[arg(long, default_value_t = 100)]
    defaults_max_n: usize,
    /// Repeats of ours-defaults: its time is set by its client QPS (every
    /// request waits for a token), so repeats only add minutes.
    #[arg(long, default_value_t = 1)]
    defaults_repeats: usize,
    /// Keep each run's server files (a real cluster's component and audit
    /// logs) under `<out>/logs/`.
    #[arg(long)]
    keep_server_files: bool,
    /// Do not run `cargo build` for metacontroller and kube-rs-baseline
    /// (they are still built when missing).
    #[arg(long)]
    no_build: bool,
    /// Workloads to leave out (W2 and W1 always run), e.g. `w3,w4,w5,w6`
    /// for a large N.
    #[arg(long, value_enum, value_delimiter = ',')]
    skip: Vec<Phase>,
    /// Requests in flight the floor's knee search tries.
    #[arg(long, value_delimiter = ',', default_values_t = metacontroller_bench::controller::floor::LEVELS.to_vec())]
    floor_levels: Vec<usize>,
    /// Creates per probe of the floor's knee search (0: 100 with --quick,
    /// else 1.5 N between 300 and 4,000).
    #[arg(long, default_value_t = 0)]
    floor_probe: usize,
    /// Earlier reports (`controller-bench.json`) whose ours-tuned and
    /// kube-rs points join this run's in the cost curve.
    #[arg(long, value_delimiter = ',')]
    cost_from: Vec<PathBuf>,
    /// Run nothing: write the report of an earlier `controller-bench.json`
    /// again into `--out` (this build's targets and Markdown; plots from
    /// its summaries).
    #[arg(long)]
    render_from: Option<PathBuf>,
}

#[derive(Serialize)]
struct Settings {
    cluster: &'static str,
    n: Vec<usize>,
    repeats: usize,
    contenders: Vec<&'static str>,
    hooks: Vec<&'static str>,
    idle_secs: u64,
    quiet_ms: u64,
    unrelated: usize,
    skip: Vec<Phase>,
    floor_levels: Vec<usize>,
    defaults_max_n: usize,
    defaults_repeats: usize,
    children_per_parent: i64,
}

#[derive(Serialize)]
struct Report<'a> {
    benchmark: &'static str,
    machine: &'a Machine,
    settings: &'a Settings,
    summaries: &'a [report::Summary],
    targets: &'a [report::Target],
    runs: &'a [RunResult],
}

fn given(flag: &str) -> bool {
    std::env::args().any(|a| a == flag || a.starts_with(&format!("{flag}=")))
}

fn write_report(
    args: &Args,
    machine: &Machine,
    settings: &Settings,
    runs: &[RunResult],
) -> Result<(Vec<report::Summary>, String)> {
    let summaries = report::summarize(runs);
    let targets = report::targets(&summaries);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let json = Report {
        benchmark: "controller-bench",
        machine,
        settings,
        summaries: &summaries,
        targets: &targets,
        runs,
    };
    std::fs::write(
        args.out.join("controller-bench.json"),
        serde_json::to_vec_pretty(&json)?,
    )?;
    let mut md = header(
        &serde_json::to_value(machine)?,
        &serde_json::to_value(settings)?,
    );
    md.push_str(&report::markdown(&summaries, &targets, settings.repeats));
    std::fs::write(args.out.join("controller-bench.md"), &md)?;
    Ok((summaries, md))
}

/// The report's first lines, from the machine and the settings as JSON.
fn header(machine: &serde_json::Value, settings: &serde_json::Value) -> String {
    let server = match settings["cluster"].as_str() {
        Some("real") => format!(
            "a real control plane (etcd {}, kube-apiserver and kube-controller-manager {}; the contender's requests counted from the audit log)",
            metacontroller_testbed::binaries::ETCD_VERSION,
            metacontroller_testbed::binaries::KUBERNETES_VERSION
        ),
        _ => "the embedded API server".to_owned(),
    };
    let list = |v: &serde_json::Value| {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let skipped = list(&settings["skip"]);
    let skipped = if skipped.is_empty() {
        String::new()
    } else {
        format!(" Left out: {skipped} (their columns are empty).")
    };
    format!(
        "## controller-bench\n\nServer: {server}, a fresh one per run. Machine: {} CPUs ({}), {:.1} GiB memory, {} build. Hooks: {} (the first for every `ours` contender, the others for `ours-tuned+<hook>`). Idle window {} s.{skipped}\n\n",
        machine["cpus"],
        machine["cpu_model"].as_str().unwrap_or("?"),
        machine["memory_total_kib"].as_f64().unwrap_or(0.0) / (1024.0 * 1024.0),
        machine["profile"].as_str().unwrap_or("?"),
        list(&settings["hooks"]),
        settings["idle_secs"],
    )
}

/// Writes the report of an earlier run again (`--render-from`): the
/// summaries of its JSON with this build's targets, Markdown and the plots
/// drawn from summaries (not the per-run latency distributions).
fn render_from(args: &Args, path: &std::path::Path) -> Result<()> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut json: serde_json::Value = serde_json::from_slice(&text)?;
    let summaries: Vec<report::Summary> =
        serde_json::from_value(json["summaries"].clone()).context("the report's summaries")?;
    let targets = report::targets(&summaries);
    json["targets"] = serde_json::to_value(&targets)?;
    let repeats = json["settings"]["repeats"].as_u64().unwrap_or(1) as usize;
    let mut md = header(&json["machine"], &json["settings"]);
    md.push_str(&report::markdown(&summaries, &targets, repeats));
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(args.out.join("controller-bench.md"), &md)?;
    std::fs::write(
        args.out.join("controller-bench.json"),
        serde_json::to_vec_pretty(&json)?,
    )?;
    let earlier = earlier_costs(args)?;
    for f in plot::draw_all(&args.out, &summaries, &[], &earlier)? {
        eprintln!("  plot: {}", f.display());
    }
    println!("{md}");
    Ok(())
}

/// Cost-curve points of the reports `--cost-from` names.
fn earlier_costs(args: &Args) -> Result<Vec<plot::CostPoint>> {
    let mut earlier = Vec::new();
    for path in &args.cost_from {
        let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        earlier.extend(plot::cost_points_of_report(&serde_json::from_slice(&text)?));
    }
    Ok(earlier)
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = Args::parse();
    if let Some(path) = args.render_from.clone() {
        return render_from(&args, &path);
    }
    if args.quick {
        if !given("--n") {
            args.n = vec![100];
        }
        if !given("--repeats") {
            args.repeats = 1;
        }
        if !given("--idle-secs") {
            args.idle_secs = 10;
        }
        if !given("--quiet-ms") {
            args.quiet_ms = 1000;
        }
        if !given("--unrelated") {
            args.unrelated = 0;
        }
    }
    args.repeats = args.repeats.max(1);
    let machine = Machine::detect();
    let programs = if args.contenders.iter().any(|c| c.has_process()) {
        Some(Programs::locate(!args.no_build)?)
    } else {
        None
    };
    if args.contenders.contains(&Contender::Kopf)
        && let Some(p) = &programs
    {
        p.kopf()?;
    }
    let settings = Settings {
        cluster: args.cluster.name(),
        n: args.n.clone(),
        repeats: args.repeats,
        contenders: args.contenders.iter().map(|c| c.name()).collect(),
        hooks: args.hooks.iter().map(|h| h.name()).collect(),
        idle_secs: args.idle_secs,
        quiet_ms: args.quiet_ms,
        unrelated: args.unrelated,
        skip: args.skip.clone(),
        floor_levels: args.floor_levels.clone(),
        defaults_max_n: args.defaults_max_n,
        defaults_repeats: args.defaults_repeats,
        children_per_parent: metacontroller_bench::controller::CHILDREN,
    };
    let largest = args.n.iter().copied().max().unwrap_or(0);
    eprintln!(
        "controller-bench: {} server, N {:?}, {} repeat(s), contenders {:?}, hooks {:?} ({} build, {} CPUs)",
        settings.cluster,
        args.n,
        args.repeats,
        settings.contenders,
        settings.hooks,
        machine.profile,
        machine.cpus
    );

    let started = Instant::now();
    let mut runs: Vec<RunResult> = Vec::new();
    let mut failed = Vec::new();
    for &n in &args.n {
        for repeat in 0..args.repeats {
            // Every contender with the first hook, then ours-tuned with each
            // further hook.
            let first_hook = args.hooks.first().copied().unwrap_or(HookKind::Rust);
            let mut plan: Vec<(Contender, HookKind)> =
                args.contenders.iter().map(|&c| (c, first_hook)).collect();
            if args.contenders.contains(&Contender::OursTuned) {
                plan.extend(
                    args.hooks
                        .iter()
                        .skip(1)
                        .map(|&h| (Contender::OursTuned, h)),
                );
            }
            // Each repeat starts one contender further down the list: the
            // harness process grows with every run (up to 1.5 GB at N =
            // 10,000), and whoever runs later in it runs slower (at N =
            // 10,000, single runs: the floor took 6.3 s when it ran first and
            // 8.4 s when it ran third), so with as many repeats as contenders
            // each takes every place once.
            if !plan.is_empty() {
                let first = repeat % plan.len();
                plan.rotate_left(first);
            }
            for (contender, hook) in plan {
                let label = if contender.is_ours() && hook != first_hook {
                    format!("{}+{}", contender.name(), hook.name())
                } else {
                    contender.name().to_owned()
                };
                if contender == Contender::OursDefaults {
                    if n > args.defaults_max_n {
                        if repeat == 0 {
                            eprintln!(
                                "  skipping ours-defaults at N={n} (--defaults-max-n {})",
                                args.defaults_max_n
                            );
                        }
                        continue;
                    }
                    if repeat >= args.defaults_repeats {
                        continue;
                    }
                }
                let opts = Options {
                    cluster: args.cluster,
                    n,
                    repeat,
                    hook,
                    idle: Duration::from_secs(args.idle_secs),
                    quiet: Duration::from_millis(args.quiet_ms),
                    unrelated: if n == largest
                        && repeat == 0
                        && contender.has_process()
                        && hook == first_hook
                    {
                        args.unrelated
                    } else {
                        0
                    },
                    log_dir: args.out.join("logs"),
                    keep_server_files: args.keep_server_files,
                    skip: args.skip.clone(),
                    floor_levels: args.floor_levels.clone(),
                    floor_probe: match args.floor_probe {
                        0 if args.quick => 100,
                        0 => (n * 3 / 2).clamp(300, 4000),
                        k => k,
                    },
                };
                let t = Instant::now();
                eprintln!("  {label} N={n} repeat {}…", repeat + 1);
                let result = run::run(contender, programs.as_ref(), &opts)
                    .await
                    .map(|mut r| {
                        r.contender = label.clone();
                        r
                    })
                    .with_context(|| format!("{label} N={n} repeat {}", repeat + 1));
                match result {
                    Ok(r) => {
                        eprintln!(
                            "    W2 {:.2} s ({:.0} parents/s, p99 {:.1} ms, {:.2} writes/parent), W1 {} object writes, W4 {} writes / {} hook calls, converged: {} [{:.0} s]",
                            r.w2.seconds,
                            r.w2.per_sec,
                            r.w2.latency_ms.p99,
                            r.w2.activity.writes as f64 / n as f64,
                            r.w1.activity.object_writes(),
                            r.w4.activity.writes,
                            r.w4.activity.hook.calls(),
                            r.converged,
                            t.elapsed().as_secs_f64()
                        );
                        for p in &r.problems {
                            eprintln!("    problem: {p}");
                        }
                        if !r.converged {
                            failed.push(format!("{} N={n} repeat {}", r.contender, repeat + 1));
                        }
                        runs.push(r);
                    }
                    Err(err) => {
                        eprintln!("    failed: {err:#}");
                        failed.push(format!("{err:#}"));
                    }
                }
                write_report(&args, &machine, &settings, &runs)?;
            }
        }
    }

    let (summaries, md) = write_report(&args, &machine, &settings, &runs)?;
    let earlier = earlier_costs(&args)?;
    match plot::draw_all(&args.out, &summaries, &runs, &earlier) {
        Ok(files) => {
            for f in files {
                eprintln!("  plot: {}", f.display());
            }
        }
        Err(err) => eprintln!("  plots failed: {err:#}"),
    }
    println!("{md}");
    println!(
        "Report: {} ({:.0} s)",
        args.out.join("controller-bench.json").display(),
        started.elapsed().as_secs_f64()
    );
    if !failed.is_empty() {
        anyhow::bail!(
            "runs that failed or did not converge: {}",
            failed.join("; ")
        );
    }
    Ok(())
}
