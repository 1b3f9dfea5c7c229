//! # metacontroller-engine
//!
//! The Metacontroller control loop. It talks to Kubernetes only through
//! kube-rs and works against any API server.
//!
//! ## How it runs
//!
//! [`Engine::run`] checks that the API server answers, runs discovery and
//! then watches `CompositeController` and `DecoratorController` objects. For
//! each one (matching `--target-label-selector`) it hosts a controller:
//!
//! ```text
//!  CompositeController ──► manager ──► hosted controller (one per CC)
//!                                        │  informer subscriptions (parent + child types)
//!                                        │  work queue (dedup, back-off, delayed adds)
//!                                        └► N workers ──► sync(parent)
//!                                               ├─ finalizer add/remove
//!                                               ├─ claim children (owner / orphan indexes)
//!                                               ├─ sync or finalize hook (HTTP)
//!                                               ├─ create / update / delete children
//!                                               └─ status (+ observedGeneration)
//!
//!  DecoratorController ──► manager ──► hosted controller (one per DC)
//!                                        │  one queue over every target type
//!                                        └► N workers ──► sync(target)
//!                                               ├─ finalizer add/remove
//!                                               ├─ attachments (owner index + annotation)
//!                                               ├─ sync or finalize hook (HTTP)
//!                                               ├─ labels / annotations / status of the target
//!                                               └─ create / update / delete attachments
//! ```
//!
//! * **Shared caches** ([`informer`]): one watch per (apiVersion, resource),
//!   shared and reference-counted across hosted controllers, indexed by
//!   namespace, controller UID and orphan status. Objects are
//!   `Arc<serde_json::Value>`s; nothing is deep-copied to sync a parent.
//! * **Work queues** ([`queue`]): deduplicated keys, per-key exponential
//!   back-off (5 ms to 1000 s) combined with an overall 10/s, burst 100
//!   bucket; `resyncAfterSeconds` and HTTP 429 `Retry-After` become delayed
//!   adds; `resyncPeriodSeconds` re-queues every parent periodically.
//! * **Sync** (`composite::sync`): Metacontroller's algorithm step by step;
//!   a sync that changes nothing makes no API write.
//! * **Children** ([`children`]): dynamic apply (three-way merge against the
//!   last-applied annotation) or, with `--apply-strategy=server-side-apply`,
//!   server-side apply ([`ssa`]), with the `OnDelete`, `Recreate` and
//!   `InPlace` update methods.
//! * **Rolling updates** (`composite::rolling`): `RollingRecreate` and
//!   `RollingInPlace` children move one at a time from old
//!   ControllerRevisions to the latest one, gated on the children already
//!   moved being up to date and passing `statusChecks`; the parent's
//!   `Updated` condition reports the rollout.
//! * **Hooks** ([`hook_target`]): URL or service form, timeouts, ETag caching,
//!   TLS and credentials resolved from Secrets and ConfigMaps when a hosted
//!   controller is built; requests use Go-compatible JSON.
//! * **Events** ([`events`]): `Starting`, `Started`, `Stopping`, `Stopped`,
//!   `CreateError`, `SyncError`, deduplicated and rate-limited per object.
//! * **Client** ([`client`]): request throttling (`--client-go-qps`,
//!   `--client-go-burst`) as a tower layer.
//! * **Discovery** ([`discovery`]): refreshed every `--discovery-interval`,
//!   and early when a lookup misses.
//! * **Metrics** ([`metrics`]): hook metrics plus controller-runtime's
//!   families: reconciles of the controller objects, work queues, REST
//!   client requests, process, leader election.
//! * **Journal** ([`journal`]): with [`Engine::with_journal`], the last
//!   syncs of each parent (hook requests and answers, latencies, child
//!   writes with diffs) and each hosted controller's health, for a live view.
//! * **Endpoints** ([`serve`]): `/metrics` (Prometheus text or OpenMetrics)
//!   and `/healthz`/`/readyz`.
//!
//! * **Related objects** (`customize`): the `customize` hook's rules are
//!   cached per parent UID and generation; related objects come from the
//!   shared caches, and their changes re-queue the parents that select them.
//! * **DecoratorControllers** (`decorator`): targets of any type (built-in
//!   or custom, namespaced or cluster-scoped, with or without `/status`),
//!   label and annotation selectors, attachments managed like children.
//!
//! Not implemented yet: leader election.
//!
//! ## Example
//!
//! ```no_run
//! use metacontroller_engine::{Engine, EngineConfig, client::build_client};
//! use tokio_util::sync::CancellationToken;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let config = kube::Config::infer().await?;
//! let client = build_client(config, 5.0, 10)?;
//! let mut registry = prometheus_client::registry::Registry::default();
//! let engine = Engine::new(client, EngineConfig::default(), Some(&mut registry));
//! engine.run(CancellationToken::new()).await?;
//! # Ok(())
//! # }
//! ```

pub mod aggregate;
pub mod children;
pub mod client;
mod composite;
pub mod config;
mod customize;
mod decorator;
pub mod discovery;
pub mod dynapi;
pub mod events;
pub mod hook_target;
mod hosted;
pub mod informer;
pub mod journal;
pub mod metrics;
pub mod object;
pub mod ownership;
pub mod queue;
pub mod ratelimit;
pub mod render;
pub mod request_context;
pub mod resync;
pub mod serve;
pub mod ssa;

use std::sync::Arc;
use std::time::Duration;

use metacontroller_hooks::HookMetrics;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

pub use config::{ApplyStrategy, EngineConfig};

use crate::discovery::ResourceMap;
use crate::events::Recorder;
use crate::informer::InformerFactory;

/// Why the engine could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server could not be reached.
    #[error("can't reach the Kubernetes API server: {0}")]
    Unreachable(#[source] kube::Error),
}

/// What every part of the engine shares.
pub(crate) struct Context {
    pub client: kube::Client,
    pub resources: Arc<ResourceMap>,
    pub informers: Arc<InformerFactory>,
    pub recorder: Recorder,
    pub hook_metrics: Option<HookMetrics>,
    /// The reconcile and work-queue families, when a registry was given.
    pub metrics: Option<metrics::EngineMetrics>,
    pub config: EngineConfig,
    /// How children and attachments are written.
    pub apply: ssa::ApplyOptions,
    /// Resync requests from outside ([`Engine::with_resync`]).
    pub resync: resync::ResyncHandle,
    /// Where syncs are recorded for a live view, if anywhere.
    pub journal: Option<journal::Journal>,
}

/// The control loop. See the [crate documentation](crate).
pub struct Engine {
    client: kube::Client,
    config: EngineConfig,
    hook_metrics: Option<HookMetrics>,
    metrics: Option<metrics::EngineMetrics>,
    resync: resync::ResyncHandle,
    journal: Option<journal::Journal>,
}

/// Attempts of the start-up connectivity check, and the pause between them.
const CONNECT_ATTEMPTS: u32 = 6;
const CONNECT_PAUSE: Duration = Duration::from_secs(5);

impl Engine {
    /// An engine using `client`. With a registry, the hook metrics and the
    /// reconcile and work-queue families ([`metrics::EngineMetrics`]) are
    /// registered on it.
    pub fn new(
        client: kube::Client,
        config: EngineConfig,
        registry: Option<&mut Registry>,
    ) -> Self {
        let (hook_metrics, metrics) = match registry {
            Some(registry) => (
                Some(HookMetrics::register(registry)),
                Some(metrics::EngineMetrics::register(registry)),
            ),
            None => (None, None),
        };
        Engine {
            client,
            config,
            hook_metrics,
            metrics,
            resync: resync::ResyncHandle::default(),
            journal: None,
        }
    }

    /// Resyncs every hosted controller on each request made through
    /// `handle` while the engine runs.
    pub fn with_resync(mut self, handle: resync::ResyncHandle) -> Self {
        self.resync = handle;
        self
    }

    /// Records every sync and the controllers' health in `journal`
    /// (see [`journal`]).
    pub fn with_journal(mut self, journal: journal::Journal) -> Self {
        self.journal = Some(journal);
        self
    }

    /// Runs until `cancel` fires, then stops every hosted controller and
    /// flushes pending events.
    pub async fn run(self, cancel: CancellationToken) -> Result<(), Error> {
        // The API server may not be reachable right away (service mesh
        // sidecars); retry for a while like Metacontroller does.
        let mut attempt = 0;
        loop {
            match self.client.list_core_api_versions().await {
                Ok(_) => break,
                Err(err) => {
                    attempt += 1;
                    if attempt >= CONNECT_ATTEMPTS {
                        return Err(Error::Unreachable(err));
                    }
                    tracing::info!(error = %err, "communication with the API server failed; retrying");
                    tokio::select! {
                        _ = cancel.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(CONNECT_PAUSE) => {}
                    }
                }
            }
        }
        tracing::info!("communication with the API server successful");

        let resources = Arc::new(ResourceMap::new(self.client.clone()));
        if let Err(err) = resources.refresh().await {
            tracing::warn!(error = %err, "initial discovery failed; will retry");
        }
        let (recorder, recorder_task) = Recorder::start(
            self.client.clone(),
            self.config.events_qps,
            self.config.events_burst,
        );
        let informers = InformerFactory::new(self.client.clone(), self.config.cache_flush_interval);
        let ctx = Arc::new(Context {
            client: self.client.clone(),
            resources: resources.clone(),
            informers: informers.clone(),
            recorder,
            hook_metrics: self.hook_metrics.clone(),
            metrics: self.metrics.clone(),
            apply: ssa::ApplyOptions::from_config(&self.config),
            config: self.config.clone(),
            resync: self.resync.clone(),
            journal: self.journal.clone(),
        });

        let discovery = tokio::spawn(
            resources
                .clone()
                .run(self.config.discovery_interval, cancel.child_token()),
        );
        let manager = hosted::Manager::<composite::ParentController>::new(ctx.clone());
        let decorators = hosted::Manager::<decorator::Decorator>::new(ctx.clone());
        tracing::info!(workers = self.config.workers, "engine started");
        tokio::join!(
            manager.clone().run(cancel.clone()),
            decorators.clone().run(cancel.clone())
        );

        // Shutting down: everything hosted has stopped.
        drop(manager);
        drop(decorators);
        drop(ctx);
        informers.shutdown();
        let _ = discovery.await;
        if tokio::time::timeout(Duration::from_secs(5), recorder_task)
            .await
            .is_err()
        {
            tracing::warn!("gave up writing pending events");
        }
        tracing::info!("engine stopped");
        Ok(())
    }

    /// Runs the engine in a background task; the returned handle stops it.
    pub fn spawn(self) -> RunningEngine {
        let cancel = CancellationToken::new();
        let task = tokio::spawn(self.run(cancel.clone()));
        RunningEngine { cancel, task }
    }
}

/// An engine running in the background (see [`Engine::spawn`]).
pub struct RunningEngine {
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), Error>>,
}

impl RunningEngine {
    /// Stops the engine and waits for it.
    pub async fn shutdown(self) -> Result<(), Error> {
        self.cancel.cancel();
        match self.task.await {
            Ok(result) => result,
            Err(err) => {
                tracing::error!(error = %err, "engine task failed");
                Ok(())
            }
        }
    }

    /// Whether the engine task has ended (for instance on a fatal error).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}
