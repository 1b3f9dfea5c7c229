//! The `dev` subcommand: the embedded API server, a kubeconfig for it, the
//! Metacontroller CRDs and the engine, all in one process.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use kube::api::PostParams;
use kube::core::ApiResource;
use metacontroller_engine::metrics::register_process;
use metacontroller_engine::object::RawObject;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::{EngineArgs, cancel_on_signal, run_engine};

#[derive(Args, Clone)]
pub struct DevArgs {
    /// Port of the embedded API server (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub address: std::net::IpAddr,
    /// Serve HTTPS with a generated self-signed certificate.
    #[arg(long)]
    pub tls: bool,
    /// Where to write the kubeconfig for kubectl and other clients.
    #[arg(long, default_value = ".metacontroller/kubeconfig")]
    pub kubeconfig_out: PathBuf,
    /// Keep the embedded server's objects in this directory across restarts
    /// (in memory when absent).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub engine: EngineArgs,
}

pub async fn dev(args: DevArgs) -> anyhow::Result<()> {
    // Validate the engine flags before starting anything.
    args.engine.engine_config()?;
    let config = metacontroller_apiserver::Config {
        bind: SocketAddr::new(args.address, args.port),
        tls: args.tls,
        data_dir: args.data_dir.clone(),
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

    let kubeconfig = kube::config::Kubeconfig::from_yaml(&server.kubeconfig())?;
    let client_config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    let mut registry = Registry::default();
    let rest_metrics = register_process(&mut registry);
    let client = metacontroller_engine::client::build_instrumented_client(
        client_config,
        args.engine.client_go_qps,
        args.engine.client_go_burst,
        &rest_metrics,
    )?;
    install_crds(&client).await?;
    println!("export KUBECONFIG={}", path.display());

    let cancel = CancellationToken::new();
    cancel_on_signal(cancel.clone());
    let result = run_engine(client, registry, &args.engine, cancel).await;
    server.stop();
    result
}

/// Creates the Metacontroller CRDs (existing ones are left alone).
async fn install_crds(client: &kube::Client) -> anyhow::Result<()> {
    let resource = ApiResource {
        group: "apiextensions.k8s.io".into(),
        version: "v1".into(),
        api_version: "apiextensions.k8s.io/v1".into(),
        kind: "CustomResourceDefinition".into(),
        plural: "customresourcedefinitions".into(),
    };
    let api: kube::Api<RawObject> = kube::Api::all_with(client.clone(), &resource);
    for crd in metacontroller_api::crds() {
        let value = serde_json::to_value(&crd)?;
        match api
            .create(&PostParams::default(), &RawObject::new(value))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.is_already_exists() => {}
            Err(err) => {
                return Err(err).with_context(|| {
                    format!(
                        "installing CRD {}",
                        crd.metadata.name.as_deref().unwrap_or_default()
                    )
                });
            }
        }
    }
    tracing::info!("Metacontroller CRDs installed");
    Ok(())
}
