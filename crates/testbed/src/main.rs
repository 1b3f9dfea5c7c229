//! `metacontroller-testbed`: a real Kubernetes control plane on loopback, for
//! people and scripts.
//!
//! - `metacontroller-testbed up`: builds the binaries if needed, starts etcd,
//!   kube-apiserver and kube-controller-manager, writes an admin kubeconfig,
//!   prints `export KUBECONFIG=...` and runs until interrupted (Ctrl-C,
//!   SIGTERM, or its standard input closing with `--stop-on-eof`), then stops
//!   every component.
//! - `metacontroller-testbed build`: only builds (or finds) the binaries and
//!   prints their folder; then does the same for `helm` and prints its path.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use metacontroller_testbed::{Options, RealCluster, binaries, helm};

#[derive(Parser)]
#[command(name = "metacontroller-testbed", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start a control plane and keep it running until interrupted.
    Up {
        /// Keep the cluster's files (certificates, etcd data, logs) here;
        /// default: a temporary folder removed at exit.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Also copy the admin kubeconfig here.
        #[arg(long)]
        kubeconfig_out: Option<PathBuf>,
        /// Stop when standard input reaches end of file.
        #[arg(long)]
        stop_on_eof: bool,
    },
    /// Build the binaries and helm (if not cached) and print where they are.
    Build,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube_client=off")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Cmd::Build => {
            let bins = tokio::task::spawn_blocking(|| binaries::ensure(None)).await??;
            println!("{}", bins.dir.display());
            let helm = tokio::task::spawn_blocking(|| helm::ensure(None)).await??;
            println!("{}", helm.display());
        }
        Cmd::Up {
            dir,
            kubeconfig_out,
            stop_on_eof,
        } => {
            let started = std::time::Instant::now();
            eprintln!(
                "starting Kubernetes {} (etcd {}); the first start builds the binaries",
                binaries::KUBERNETES_VERSION,
                binaries::ETCD_VERSION
            );
            let mut cluster = RealCluster::start_with(Options {
                dir,
                ..Options::default()
            })
            .await
            .context("starting the control plane")?;
            let kubeconfig = match kubeconfig_out {
                Some(path) => {
                    if let Some(parent) = path.parent() {
                        std::fs::create_dir_all(parent).ok();
                    }
                    std::fs::write(&path, cluster.kubeconfig())
                        .with_context(|| format!("writing {}", path.display()))?;
                    std::path::absolute(&path)?
                }
                None => cluster.kubeconfig_path().to_owned(),
            };
            eprintln!(
                "control plane ready at {} in {:.1}s (files in {})",
                cluster.url(),
                started.elapsed().as_secs_f64(),
                cluster.dir().display()
            );
            println!("export KUBECONFIG={}", kubeconfig.display());
            std::io::stdout().flush()?;
            wait_for_stop(stop_on_eof).await?;
            eprintln!("stopping the control plane");
            cluster.stop();
        }
    }
    Ok(())
}

async fn wait_for_stop(stop_on_eof: bool) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let eof = async {
        if stop_on_eof {
            let _ = tokio::task::spawn_blocking(|| {
                let mut sink = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink)
            })
            .await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        _ = eof => {}
    }
    Ok(())
}
