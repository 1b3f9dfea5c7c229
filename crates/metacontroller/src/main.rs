//! The `metacontroller` binary.
//!
//! - `run` (the default when no subcommand is given): runs the controller
//!   engine (CompositeControllers and DecoratorControllers) against a cluster, configured in-cluster or from `--kubeconfig`
//!   / `$KUBECONFIG`. Flags keep Metacontroller's names and defaults, so
//!   existing manifests and Helm values work unchanged.
//! - `dev`: starts the embedded Kubernetes-compatible API server, writes a
//!   kubeconfig for it, installs the Metacontroller CRDs and runs the engine
//!   against it in-process: a cluster in one command, for development and
//!   examples.
//! - `rbac`: prints a least-privilege ClusterRole for a set of
//!   CompositeControllers and DecoratorControllers (see [`rbac`]).
//!
//! With `--leader-election`, every replica serves its probes and metrics,
//! but only the holder of the Lease (see [`leader`]) runs the engine.

/// jemalloc rather than the C library's allocator: a sync allocates and
/// frees many small JSON values (objects decoded from the caches, hook
/// requests and answers), where glibc's malloc took about a quarter of the
/// controller's CPU under load (musl's, in the container image, is slower
/// still), and jemalloc hands freed memory back to the system (settings in
/// `.cargo/config.toml`). Measured with `controller-bench` (W2, N = 10,000,
/// alternating runs): 12-15 % less controller CPU in W2 and 5 % less steady
/// RSS than glibc's malloc.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod dev;
mod fault_injection;
mod goflags;
mod leader;
mod listen;
mod logging;
mod profiling;
mod rbac;
mod render;
mod view;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{ArgAction, Args, Parser, Subcommand};
use metacontroller_api::GoDuration;
use metacontroller_engine::metrics::{LeaderMetrics, register_process};
use metacontroller_engine::resync::ResyncHandle;
use metacontroller_engine::serve::{serve_health, serve_metrics};
use metacontroller_engine::{ApplyStrategy, Engine, EngineConfig};
use metacontroller_selectors::Selector;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "metacontroller",
    version,
    about = "Turn a webhook into a Kubernetes controller",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controllers against a cluster (the default).
    Run(RunArgs),
    /// Run on the embedded API server: no cluster needed.
    Dev(dev::DevArgs),
    /// Print a least-privilege ClusterRole for the given controllers.
    Rbac(rbac::RbacArgs),
    /// Call a controller's hooks for parents given as files and print the
    /// desired children, status and what a sync would write.
    Render(render::RenderArgs),
}

#[derive(Args, Clone)]
struct RunArgs {
    /// Path to a kubeconfig; in-cluster configuration or $KUBECONFIG when
    /// unset.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    #[command(flatten)]
    engine: EngineArgs,
}

fn go_duration(text: &str) -> Result<Duration, String> {
    GoDuration::parse(text)
        .map_err(|e| e.to_string())?
        .to_std()
        .ok_or_else(|| format!("duration {text:?} must not be negative"))
}

/// Flags of the control loop, with Metacontroller's names and defaults.
#[derive(Args, Clone)]
struct EngineArgs {
    /// Workers (concurrent syncs) per hosted controller.
    #[arg(long, default_value_t = 5)]
    workers: usize,
    /// How often to refresh API discovery (Go duration).
    #[arg(long, default_value = "30s", value_parser = go_duration)]
    discovery_interval: Duration,
    /// How often watch caches redeliver every object (Go duration).
    #[arg(long, default_value = "30m", value_parser = go_duration)]
    cache_flush_interval: Duration,
    /// Requests per second to the API server.
    #[arg(long, default_value_t = 5.0)]
    client_go_qps: f64,
    /// Request burst to the API server.
    #[arg(long, default_value_t = 10)]
    client_go_burst: u32,
    /// Address of the /metrics endpoint; "0" disables it.
    #[arg(long, default_value = ":9999")]
    metrics_address: String,
    /// Address of the /healthz and /readyz endpoints; "0" disables them.
    #[arg(long, default_value = ":8081")]
    health_probe_bind_address: String,
    /// Log level: debug, info, error, panic, or an integer verbosity (higher
    /// is more verbose: 4 sync triggers and writes, 5 the engine's details,
    /// 6 hook bodies, 7 discovery). Default info (debug with --zap-devel).
    #[arg(long)]
    zap_log_level: Option<String>,
    /// Only host controllers whose labels match this selector.
    #[arg(long, default_value = "")]
    target_label_selector: String,
    /// How children and attachments are written: dynamic-apply or
    /// server-side-apply.
    #[arg(long, default_value = "dynamic-apply")]
    apply_strategy: String,
    /// Events per second allowed per object.
    #[arg(long, default_value_t = 1.0 / 300.0)]
    events_qps: f64,
    /// Event burst per object.
    #[arg(long, default_value_t = 25)]
    events_burst: u32,
    /// Field manager of server-side applies.
    #[arg(long, default_value = "metacontroller")]
    apply_strategy_ssa_field_manager: String,
    /// Address of the profiling endpoint; "0" or empty disables it.
    /// `/debug/pprof/profile?seconds=N` gives a CPU profile in pprof format
    /// (one at a time); `/debug/pprof/heap` answers 501, as heap profiles
    /// need a profiling allocator, which this build does not use.
    #[arg(long, default_value = "0")]
    pprof_address: String,
    /// Address of the live view, a web page of the hosted controllers, their
    /// parents' children and recent hook calls; off unless given ("0"
    /// disables it). `dev` serves it on 127.0.0.1:9595 by default.
    #[arg(long)]
    view_address: Option<String>,
    /// Whether a busy view port may be replaced by a free one (`dev`'s
    /// default address only).
    #[arg(skip)]
    view_any_port: bool,
    /// Run only while holding the leader Lease, so that several replicas
    /// can run with one active.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = ArgAction::Set, value_parser = goflags::parse_bool)]
    leader_election: bool,
    /// Kind of lock for leader election; only "leases" is supported.
    #[arg(long, default_value = "leases")]
    leader_election_resource_lock: String,
    /// Namespace of the leader Lease; in a cluster, the Pod's own namespace
    /// when empty (required elsewhere).
    #[arg(long, default_value = "")]
    leader_election_namespace: String,
    /// Name of the leader Lease.
    #[arg(long, default_value = "metacontroller")]
    leader_election_id: String,
    /// Development defaults: console encoder, debug level, stack traces
    /// from warn, ISO 8601 times.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = ArgAction::Set, value_parser = goflags::parse_bool)]
    zap_devel: bool,
    /// Log encoding: json (default) or console (default with --zap-devel).
    #[arg(long)]
    zap_encoder: Option<String>,
    /// Level from which log lines carry a stack trace: info, error or
    /// panic (default error; warn with --zap-devel).
    #[arg(long)]
    zap_stacktrace_level: Option<String>,
    /// Time encoding of log lines: epoch (default), millis, nano, iso8601
    /// (default with --zap-devel), rfc3339 or rfc3339nano.
    #[arg(long)]
    zap_time_encoding: Option<String>,
}

impl EngineArgs {
    /// The zap flags.
    fn log_flags(&self) -> logging::LogFlags {
        logging::LogFlags {
            level: self.zap_log_level.clone(),
            devel: self.zap_devel,
            encoder: self.zap_encoder.clone(),
            stacktrace_level: self.zap_stacktrace_level.clone(),
            time_encoding: self.zap_time_encoding.clone(),
        }
    }

    /// The leader election settings, when `--leader-election` is on.
    fn leader_config(&self) -> anyhow::Result<Option<leader::Config>> {
        if !self.leader_election {
            return Ok(None);
        }
        Ok(Some(leader::Config::from_flags(
            &self.leader_election_resource_lock,
            &self.leader_election_namespace,
            &self.leader_election_id,
        )?))
    }

    fn engine_config(&self) -> anyhow::Result<EngineConfig> {
        let apply_strategy: ApplyStrategy = self.apply_strategy.parse()?;
        if self.apply_strategy_ssa_field_manager.is_empty() {
            bail!("--apply-strategy-ssa-field-manager must not be empty");
        }
        let target_label_selector =
            Selector::parse(&self.target_label_selector).with_context(|| {
                format!(
                    "invalid --target-label-selector {:?}",
                    self.target_label_selector
                )
            })?;
        Ok(EngineConfig {
            workers: self.workers.max(1),
            discovery_interval: self.discovery_interval,
            cache_flush_interval: self.cache_flush_interval,
            target_label_selector,
            apply_strategy,
            ssa_field_manager: self.apply_strategy_ssa_field_manager.clone(),
            events_qps: self.events_qps,
            events_burst: self.events_burst,
        })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse_from(goflags::normalize(std::env::args_os()));
    let command = cli.command.unwrap_or(Command::Run(cli.run));
    let command = match command {
        Command::Render(args) => std::process::exit(render::main(args).await),
        other => other,
    };
    let log_flags = match &command {
        Command::Run(args) => args.engine.log_flags(),
        Command::Dev(args) => args.engine.log_flags(),
        Command::Rbac(args) => {
            print!("{}", rbac::generate(args)?);
            return Ok(());
        }
        Command::Render(_) => unreachable!("handled above"),
    };
    logging::init(&log_flags.resolve()?);
    match command {
        Command::Run(args) => run(args).await,
        Command::Dev(args) => dev::dev(args).await,
        Command::Rbac(_) => unreachable!("handled before logging starts"),
        Command::Render(_) => unreachable!("handled above"),
    }
}

/// Cancels the token on Ctrl-C or SIGTERM.
fn cancel_on_signal(cancel: CancellationToken) {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async {
                    match term.as_mut() {
                        Some(t) => { t.recv().await; }
                        None => std::future::pending::<()>().await,
                    }
                } => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
        cancel.cancel();
    });
}

async fn bind(what: &str, address: &str) -> anyhow::Result<Option<TcpListener>> {
    let Some(listener) = listen::bind(address).with_context(|| format!("{what}: {address}"))?
    else {
        return Ok(None);
    };
    tracing::info!(addr = %listener.local_addr()?, "{what} listening");
    Ok(Some(listener))
}

/// The listening sockets of the HTTP endpoints (metrics, health probes,
/// profiling, live view), bound before the engine starts so that a busy
/// port fails at once; `None` for a disabled one.
pub(crate) struct Endpoints {
    pub metrics: Option<TcpListener>,
    pub health: Option<TcpListener>,
    pub pprof: Option<TcpListener>,
    pub view: Option<TcpListener>,
}

impl Endpoints {
    async fn bind(args: &EngineArgs) -> anyhow::Result<Endpoints> {
        Ok(Endpoints {
            metrics: bind("metrics server", &args.metrics_address).await?,
            health: bind("health probes", &args.health_probe_bind_address).await?,
            pprof: bind("profiling server", &args.pprof_address).await?,
            view: args
                .view_address
                .as_deref()
                .map(|a| view::bind(a, args.view_any_port))
                .transpose()
                .context("live view")?
                .flatten(),
        })
    }
}

/// Runs the engine plus its HTTP endpoints until `cancel` fires; with
/// `leader`, the endpoints at once and the engine only once the Lease is held.
async fn run_engine(
    client: kube::Client,
    mut registry: Registry,
    args: &EngineArgs,
    endpoints: Endpoints,
    resync: ResyncHandle,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let config = args.engine_config()?;
    let leader = args.leader_config()?;
    // controller-runtime reports leadership only when it elects a leader.
    let leader_metrics = leader
        .as_ref()
        .map(|_| LeaderMetrics::register(&mut registry));
    let engine = Engine::new(client.clone(), config, Some(&mut registry)).with_resync(resync);
    let registry = Arc::new(registry);
    let mut servers = tokio::task::JoinSet::new();
    let engine = view::attach(engine, endpoints.view, &client, &mut servers, &cancel);
    if let Some(listener) = endpoints.metrics {
        servers.spawn(serve_metrics(listener, registry, cancel.clone()));
    }
    if let Some(listener) = endpoints.health {
        servers.spawn(serve_health(listener, cancel.clone()));
    }
    if let Some(listener) = endpoints.pprof {
        servers.spawn(profiling::serve(listener, cancel.clone()));
    }
    let result = match leader {
        None => engine
            .run(cancel.clone())
            .await
            .map_err(anyhow::Error::from),
        Some(leader) => run_as_leader(client, engine, leader, leader_metrics, cancel.clone()).await,
    };
    cancel.cancel();
    while servers.join_next().await.is_some() {}
    result
}

/// Waits for the Lease, then runs the engine while renewing it. Losing the
/// Lease ends the process at once with a non-zero status (another replica
/// may already be syncing); `cancel` stops the engine and then releases the
/// Lease, so a standby takes over without waiting for it to expire.
async fn run_as_leader(
    client: kube::Client,
    engine: Engine,
    config: leader::Config,
    metrics: Option<LeaderMetrics>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let mut elector = leader::Elector::new(client, config);
    if let Some(metrics) = metrics {
        elector = elector.with_metrics(metrics);
    }
    tracing::debug!(identity = elector.identity(), "leader election candidate");
    if !elector.acquire(&cancel).await {
        return Ok(());
    }
    let mut engine_task = tokio::spawn(engine.run(cancel.child_token()));
    let result = tokio::select! {
        lost = elector.hold(&cancel) => {
            if lost {
                tracing::error!("leader election lost");
                std::process::exit(1);
            }
            (&mut engine_task).await
        }
        result = &mut engine_task => result,
    };
    elector.release().await;
    result?.map_err(anyhow::Error::from)
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let config = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?
        }
        None => kube::Config::infer()
            .await
            .context("loading Kubernetes client configuration")?,
    };
    let mut registry = Registry::default();
    let rest_metrics = register_process(&mut registry);
    let client = metacontroller_engine::client::build_instrumented_client(
        config,
        args.engine.client_go_qps,
        args.engine.client_go_burst,
        &rest_metrics,
    )?;
    let endpoints = Endpoints::bind(&args.engine).await?;
    let cancel = CancellationToken::new();
    cancel_on_signal(cancel.clone());
    run_engine(
        client,
        registry,
        &args.engine,
        endpoints,
        ResyncHandle::default(),
        cancel,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_is_the_default_command() {
        let cli =
            Cli::try_parse_from(["metacontroller", "--workers=7", "--discovery-interval=20s"])
                .unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.run.engine.workers, 7);
        assert_eq!(cli.run.engine.discovery_interval, Duration::from_secs(20));
        let cli = Cli::try_parse_from(["metacontroller", "run", "--cache-flush-interval", "1m30s"])
            .unwrap();
        let Some(Command::Run(args)) = cli.command else {
            panic!("expected run")
        };
        assert_eq!(args.engine.cache_flush_interval, Duration::from_secs(90));
    }

    #[test]
    fn defaults_match_metacontroller() {
        let cli = Cli::try_parse_from(["metacontroller"]).unwrap();
        let e = &cli.run.engine;
        assert_eq!(e.workers, 5);
        assert_eq!(e.discovery_interval, Duration::from_secs(30));
        assert_eq!(e.cache_flush_interval, Duration::from_secs(1800));
        assert_eq!(e.client_go_qps, 5.0);
        assert_eq!(e.client_go_burst, 10);
        assert_eq!(e.metrics_address, ":9999");
        assert_eq!(e.health_probe_bind_address, ":8081");
        assert_eq!(e.apply_strategy, "dynamic-apply");
        assert_eq!(e.events_burst, 25);
        assert!(!e.leader_election);
        assert_eq!(e.leader_election_resource_lock, "leases");
        assert_eq!(e.leader_election_namespace, "");
        assert_eq!(e.leader_election_id, "metacontroller");
        assert!(e.leader_config().unwrap().is_none());
        let config = e.engine_config().unwrap();
        assert!(config.target_label_selector.is_everything());
    }

    #[test]
    fn manifest_flags_are_accepted() {
        let cli = Cli::try_parse_from([
            "metacontroller",
            "--zap-log-level=4",
            "--discovery-interval=20s",
            "--cache-flush-interval=30m",
            "--health-probe-bind-address=:8081",
            "--zap-devel",
            "--target-label-selector=controller-group=cicd",
        ])
        .unwrap();
        assert!(cli.run.engine.zap_devel);
        let config = cli.run.engine.engine_config().unwrap();
        assert_eq!(
            config.target_label_selector.to_string(),
            "controller-group=cicd"
        );
    }

    #[test]
    fn apply_strategies() {
        let cli = Cli::try_parse_from([
            "metacontroller",
            "--apply-strategy=server-side-apply",
            "--apply-strategy-ssa-field-manager=my-manager",
        ])
        .unwrap();
        let config = cli.run.engine.engine_config().unwrap();
        assert_eq!(config.apply_strategy, ApplyStrategy::ServerSideApply);
        assert_eq!(config.ssa_field_manager, "my-manager");
        let cli = Cli::try_parse_from(["metacontroller"]).unwrap();
        let config = cli.run.engine.engine_config().unwrap();
        assert_eq!(config.apply_strategy, ApplyStrategy::DynamicApply);
        assert_eq!(config.ssa_field_manager, "metacontroller");
    }

    #[test]
    fn unsupported_settings_are_rejected() {
        let cli = Cli::try_parse_from(["metacontroller", "--apply-strategy=bogus"]).unwrap();
        assert!(cli.run.engine.engine_config().is_err());
        let cli = Cli::try_parse_from([
            "metacontroller",
            "--leader-election",
            "--leader-election-resource-lock=endpoints",
            "--leader-election-namespace=ns",
        ])
        .unwrap();
        assert!(cli.run.engine.leader_config().is_err());
        assert!(Cli::try_parse_from(["metacontroller", "--discovery-interval=-1s"]).is_err());
        assert!(Cli::try_parse_from(["metacontroller", "--discovery-interval=soon"]).is_err());
    }

    #[test]
    fn leader_election_flags() {
        let cli = Cli::try_parse_from([
            "metacontroller",
            "--leader-election",
            "--leader-election-namespace=ops",
            "--leader-election-id=mc",
        ])
        .unwrap();
        let config = cli.run.engine.leader_config().unwrap().unwrap();
        assert_eq!(
            (config.namespace.as_str(), config.name.as_str()),
            ("ops", "mc")
        );
        let cli = Cli::try_parse_from(["metacontroller", "--leader-election=false"]).unwrap();
        assert!(cli.run.engine.leader_config().unwrap().is_none());
    }

    #[test]
    fn dev_keeps_its_flags() {
        let cli = Cli::try_parse_from([
            "metacontroller",
            "dev",
            "--port",
            "6443",
            "--tls",
            "--workers",
            "2",
        ])
        .unwrap();
        let Some(Command::Dev(args)) = cli.command else {
            panic!("expected dev")
        };
        assert_eq!(args.port, 6443);
        assert!(args.tls);
        assert_eq!(args.engine.workers, 2);
    }

    #[test]
    fn dev_has_laptop_defaults() {
        let cli = Cli::try_parse_from(["metacontroller", "dev"]).unwrap();
        let Some(Command::Dev(args)) = cli.command else {
            panic!("expected dev")
        };
        let e = &args.engine;
        assert_eq!(e.metrics_address, "127.0.0.1:0");
        assert_eq!(e.health_probe_bind_address, "127.0.0.1:0");
        assert_eq!(e.pprof_address, "0");
        assert_eq!(e.client_go_qps, 0.0);
        assert_eq!(args.address, std::net::Ipv4Addr::LOCALHOST);
        assert_eq!(args.port, 0);
        // Given explicitly, they are kept.
        let cli = Cli::try_parse_from([
            "metacontroller",
            "dev",
            "--metrics-address=:9999",
            "-f",
            "x",
        ])
        .unwrap();
        let Some(Command::Dev(args)) = cli.command else {
            panic!("expected dev")
        };
        assert_eq!(args.engine.metrics_address, ":9999");
        assert_eq!(args.dir.as_deref(), Some(std::path::Path::new("x")));
    }

    #[test]
    fn go_flag_spellings() {
        let args = goflags::normalize(
            [
                "metacontroller",
                "-workers=3",
                "-leader-election=T",
                "-leader-election-namespace",
                "ops",
                "--zap-devel=0",
                "-zap-log-level=5",
            ]
            .map(std::ffi::OsString::from),
        );
        let cli = Cli::try_parse_from(args).unwrap();
        let e = &cli.run.engine;
        assert_eq!(e.workers, 3);
        assert!(e.leader_election);
        assert_eq!(e.leader_election_namespace, "ops");
        assert!(!e.zap_devel);
        assert_eq!(e.zap_log_level.as_deref(), Some("5"));
        for value in ["1", "t", "TRUE", "True"] {
            let cli =
                Cli::try_parse_from(["metacontroller", &format!("--zap-devel={value}")]).unwrap();
            assert!(cli.run.engine.zap_devel, "{value}");
        }
        assert!(Cli::try_parse_from(["metacontroller", "--zap-devel=yes"]).is_err());
        // As in Go, a boolean flag does not take the next argument as its value.
        assert!(Cli::try_parse_from(["metacontroller", "--zap-devel", "false"]).is_err());
    }
}
