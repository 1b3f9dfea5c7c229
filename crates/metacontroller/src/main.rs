//! The `metacontroller` binary.
//!
//! - `dev`: starts the embedded Kubernetes-compatible API server, writes a
//!   kubeconfig for it and installs the Metacontroller CRDs: a cluster in one
//!   command, for development and examples.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "metacontroller",
    version,
    about = "Turn a webhook into a Kubernetes controller"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run on the embedded API server: no cluster needed.
    Dev(DevArgs),
}

#[derive(clap::Args)]
struct DevArgs {
    /// Port of the embedded API server (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    address: std::net::IpAddr,
    /// Serve HTTPS with a generated self-signed certificate.
    #[arg(long)]
    tls: bool,
    /// Where to write the kubeconfig for kubectl and other clients.
    #[arg(long, default_value = ".metacontroller/kubeconfig")]
    kubeconfig_out: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Dev(args) => dev(args).await,
    }
}

async fn dev(args: DevArgs) -> anyhow::Result<()> {
    let config = metacontroller_apiserver::Config {
        bind: SocketAddr::new(args.address, args.port),
        tls: args.tls,
        ..Default::default()
    };
    let server = metacontroller_apiserver::ApiServer::start(config)
        .await
        .context("starting the embedded API server")?;
    server
        .write_kubeconfig(&args.kubeconfig_out)
        .with_context(|| format!("writing {}", args.kubeconfig_out.display()))?;
    let path = std::fs::canonicalize(&args.kubeconfig_out)?;
    tracing::info!(url = %server.url(), "embedded API server listening");
    println!("export KUBECONFIG={}", path.display());
    tokio::signal::ctrl_c().await?;
    tracing::info!("shutting down");
    Ok(())
}
