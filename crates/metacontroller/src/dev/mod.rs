//! The `dev` subcommand: the embedded API server, a kubeconfig for it, the
//! Metacontroller CRDs and the engine, all in one process; with `-f DIR`,
//! also a folder's manifests and hook processes, kept up to date while they
//! are edited (see [`folder`]).
//!
//! Laptop defaults, unlike `run`: every port on loopback (the API server
//! and the metrics and health endpoints on free ports, profiling off), no
//! client rate limit. Startup ([`dev`]) binds every port and brings up
//! everything before it writes the kubeconfig, marks itself ready (see
//! [`instance`]) and prints `export KUBECONFIG=...` as its last line of
//! startup output; `dev --wait` prints that line once a `dev` for the same
//! kubeconfig is ready, so scripts can start `dev` in the background and
//! wait for it. One `dev` per kubeconfig: a second one fails at once.

mod folder;
mod hooks;
mod instance;
mod manifests;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use kube::api::PostParams;
use kube::core::ApiResource;
use metacontroller_engine::metrics::register_process;
use metacontroller_engine::object::RawObject;
use metacontroller_engine::resync::ResyncHandle;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::{Endpoints, EngineArgs, cancel_on_signal, go_duration, run_engine};

#[derive(Args, Clone)]
#[command(
    mut_arg("metrics_address", |a| a.default_value("127.0.0.1:0")),
    mut_arg("health_probe_bind_address", |a| a.default_value("127.0.0.1:0")),
    mut_arg("client_go_qps", |a| a.default_value("0").help("Requests per second to the API server (0: no limit)")),
)]
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
    /// Apply the manifests of this folder and run the hooks of its
    /// dev.yaml, re-applying and restarting them when their files change.
    #[arg(short = 'f', long = "dir", value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Start nothing: wait until a `dev` for --kubeconfig-out is ready,
    /// then print its `export KUBECONFIG=...` line.
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits (Go duration).
    #[arg(long, default_value = "60s", value_parser = go_duration)]
    pub wait_timeout: Duration,
    #[command(flatten)]
    pub faults: crate::fault_injection::FaultInjectionArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// The line that points kubectl at the server.
fn export_line(kubeconfig: &Path) -> String {
    format!("export KUBECONFIG={}", kubeconfig.display())
}

/// Absolute `path`, without requiring it to exist.
fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    Ok(std::path::absolute(path)?)
}

/// `dev --wait`.
fn wait(args: &DevArgs) -> anyhow::Result<()> {
    let kubeconfig = absolute(&args.kubeconfig_out)?;
    instance::wait_ready(&kubeconfig, args.wait_timeout)?;
    println!("{}", export_line(&kubeconfig));
    Ok(())
}

/// What is running, printed once startup is complete: one `label  value`
/// line each. Startup steps add their own lines.
#[derive(Default)]
pub struct Summary {
    lines: Vec<(String, String)>,
}

impl Summary {
    pub fn add(&mut self, label: impl Into<String>, value: impl Into<String>) {
        self.lines.push((label.into(), value.into()));
    }

    fn print(&self) {
        let width = self.lines.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
        for (label, value) in &self.lines {
            eprintln!("  {label:width$}  {value}");
        }
    }
}

fn endpoint_line(listener: &Option<tokio::net::TcpListener>, path: &str) -> String {
    match listener.as_ref().and_then(|l| l.local_addr().ok()) {
        Some(addr) => format!("http://{addr}{path}"),
        None => "off".to_owned(),
    }
}

pub async fn dev(args: DevArgs) -> anyhow::Result<()> {
    if args.wait {
        return wait(&args);
    }
    // Validate the engine flags before starting anything.
    args.engine.engine_config()?;
    let kubeconfig_path = absolute(&args.kubeconfig_out)?;
    let mut instance = match instance::Instance::acquire(&kubeconfig_path) {
        Ok(instance) => instance,
        // One line, whatever the log and backtrace settings.
        Err(err @ instance::InstanceError::Busy { .. }) => {
            eprintln!("metacontroller dev: {err}");
            std::process::exit(1);
        }
        Err(err) => return Err(err.into()),
    };
    let mut summary = Summary::default();

    // 1. The embedded API server.
    let mut config = metacontroller_apiserver::Config {
        bind: SocketAddr::new(args.address, args.port),
        tls: args.tls,
        data_dir: args.data_dir.clone(),
        ..Default::default()
    };
    args.faults.configure(&mut config);
    let server = metacontroller_apiserver::ApiServer::start(config)
        .await
        .context("starting the embedded API server")?;
    tracing::info!(url = %server.url(), "embedded API server listening");
    summary.add("API server", server.url());
    if let Some(usage) = args.faults.usage(&server.url()) {
        eprintln!("{usage}");
    }

    // 2. Every other port, the live view's included (on its loopback port
    // unless told otherwise).
    let mut engine_args = args.engine.clone();
    if engine_args.view_address.is_none() {
        engine_args.view_address = Some(crate::view::DEV_ADDRESS.to_owned());
        engine_args.view_any_port = true;
    }
    let endpoints = Endpoints::bind(&engine_args).await?;
    summary.add("metrics", endpoint_line(&endpoints.metrics, "/metrics"));
    summary.add("health", endpoint_line(&endpoints.health, "/healthz"));
    summary.add("live view", endpoint_line(&endpoints.view, "/"));
    if endpoints.pprof.is_some() {
        summary.add(
            "profiling",
            endpoint_line(&endpoints.pprof, "/debug/pprof/"),
        );
    }

    // 3. A client, and the Metacontroller CRDs.
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

    // 4. The folder: hooks, then manifests.
    let folder = match &args.dir {
        Some(dir) => Some(folder::Folder::start(dir, client.clone(), &mut summary).await?),
        None => None,
    };

    // 5. Ready: the kubeconfig, the summary and the export line.
    write_kubeconfig(&server, &kubeconfig_path)?;
    instance.set_ready()?;
    summary.add("kubeconfig", kubeconfig_path.display().to_string());
    // What runs where goes to stderr; stdout carries only the export line,
    // so scripts can read it (or `eval` it) as before.
    eprintln!("metacontroller dev is ready:");
    summary.print();
    println!("{}", export_line(&kubeconfig_path));

    let cancel = CancellationToken::new();
    cancel_on_signal(cancel.clone());
    let resync = ResyncHandle::default();
    let watcher = folder.map(|folder| tokio::spawn(folder.watch(resync.clone(), cancel.clone())));
    let result = run_engine(
        client,
        registry,
        &engine_args,
        endpoints,
        resync,
        cancel.clone(),
    )
    .await;
    cancel.cancel();
    if let Some(watcher) = watcher {
        let _ = watcher.await;
    }
    server.stop();
    drop(instance);
    result
}

/// Writes the kubeconfig through a temporary file, so that a reader never
/// sees half of it.
fn write_kubeconfig(
    server: &metacontroller_apiserver::ApiServer,
    path: &Path,
) -> anyhow::Result<()> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    server
        .write_kubeconfig(&tmp)
        .and_then(|()| std::fs::rename(&tmp, path))
        .with_context(|| format!("writing {}", path.display()))
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
