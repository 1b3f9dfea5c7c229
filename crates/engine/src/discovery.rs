//! API discovery: which resources the server serves, their kinds, scope and
//! whether they have a `status` subresource.
//!
//! [`ResourceMap`] holds the result of the last discovery run (aggregated
//! discovery, two requests, falling back to per-group discovery) and is
//! refreshed every `--discovery-interval` by [`ResourceMap::run`]. Lookups
//! that miss trigger an early refresh (at most four per second), so a CRD
//! created just before the controller that uses it is found without waiting
//! for the next interval.
//!
//! Per-group discovery skips a group version that fails (an aggregated API
//! whose backend is down, for one) and logs it, keeping that group
//! version's resources from the previous run, instead of failing the whole
//! refresh: client-go's discovery also returns the groups it could read
//! (`ErrGroupDiscoveryFailed`, `k8s.io/client-go/discovery/discovery_client.go`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::Client;
use kube::core::ApiResource;
use kube::core::GroupVersion;
use kube::discovery::{ApiGroup, Discovery, Scope};
use parking_lot::RwLock;
use tokio_util::sync::CancellationToken;

/// A served resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceInfo {
    /// Group, version, kind and plural name.
    pub api_resource: ApiResource,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Whether the `status` subresource exists.
    pub has_status: bool,
}

#[cfg(test)]
impl ResourceInfo {
    /// Core `v1` ConfigMaps, as unit tests describe a child type.
    pub(crate) fn configmaps() -> ResourceInfo {
        ResourceInfo {
            api_resource: ApiResource {
                group: String::new(),
                version: "v1".into(),
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                plural: "configmaps".into(),
            },
            namespaced: true,
            has_status: false,
        }
    }
}

impl ResourceInfo {
    /// `apiVersion` of the resource.
    pub fn api_version(&self) -> &str {
        &self.api_resource.api_version
    }

    /// Kind of the resource.
    pub fn kind(&self) -> &str {
        &self.api_resource.kind
    }

    /// API group (empty for the core group).
    pub fn group(&self) -> &str {
        &self.api_resource.group
    }

    /// Plural resource name.
    pub fn plural(&self) -> &str {
        &self.api_resource.plural
    }
}

#[derive(Default)]
struct Snapshot {
    by_resource: HashMap<(String, String), ResourceInfo>,
    by_kind: HashMap<(String, String), ResourceInfo>,
}

impl Snapshot {
    fn add_group(&mut self, group: &ApiGroup) {
        for version in group.versions() {
            for (ar, caps) in group.versioned_resources(version) {
                self.insert(ResourceInfo {
                    namespaced: caps.scope == Scope::Namespaced,
                    has_status: caps.subresources.iter().any(|(s, _)| s.plural == "status"),
                    api_resource: ar,
                });
            }
        }
    }

    fn insert(&mut self, info: ResourceInfo) {
        let av = info.api_resource.api_version.clone();
        self.by_kind
            .entry((av.clone(), info.api_resource.kind.clone()))
            .or_insert_with(|| info.clone());
        self.by_resource
            .insert((av, info.api_resource.plural.clone()), info);
    }
}

/// See the [module documentation](self).
pub struct ResourceMap {
    client: Client,
    snapshot: RwLock<Arc<Snapshot>>,
    refresh: tokio::sync::Mutex<Option<Instant>>,
}

/// How long one group version's discovery may take. The client retries
/// 503 answers (an aggregated API whose backend is down) with a long
/// back-off; discovery gives up on the group version instead.
const GROUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Minimum time between two refreshes triggered by lookup misses.
const MIN_ON_DEMAND_INTERVAL: Duration = Duration::from_millis(250);

impl ResourceMap {
    /// An empty map; call [`ResourceMap::refresh`] or [`ResourceMap::run`].
    pub fn new(client: Client) -> Self {
        ResourceMap {
            client,
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            refresh: tokio::sync::Mutex::new(None),
        }
    }

    /// Runs discovery now and replaces the map.
    pub async fn refresh(&self) -> Result<(), kube::Error> {
        let mut last = self.refresh.lock().await;
        self.refresh_locked().await?;
        *last = Some(Instant::now());
        Ok(())
    }

    async fn refresh_locked(&self) -> Result<(), kube::Error> {
        let mut snapshot = Snapshot::default();
        let failed = match Discovery::new(self.client.clone()).run_aggregated().await {
            // A server without aggregated discovery may answer with the
            // plain group list, which decodes as an empty aggregated list:
            // every server serves the core group, so its absence means that.
            Ok(discovery) if discovery.has_group(ApiGroup::CORE_GROUP) => {
                discovery.groups().for_each(|g| snapshot.add_group(g));
                Vec::new()
            }
            result => {
                if let Err(err) = result {
                    tracing::debug!(error = %err, "aggregated discovery failed, using per-group discovery");
                } else {
                    tracing::debug!("aggregated discovery not served, using per-group discovery");
                }
                let (groups, failed) = self.per_group().await?;
                groups.iter().for_each(|g| snapshot.add_group(g));
                failed
            }
        };
        if !failed.is_empty() {
            let previous = self.snapshot.read().clone();
            for info in previous.by_resource.values() {
                if failed.contains(&info.api_resource.api_version) {
                    snapshot.insert(info.clone());
                }
            }
        }
        tracing::trace!(
            resources = snapshot.by_resource.len(),
            "discovery refreshed"
        );
        *self.snapshot.write() = Arc::new(snapshot);
        Ok(())
    }

    /// Discovery of each group version (concurrently); a group version that
    /// fails is logged and returned in the second list instead of failing
    /// the run.
    async fn per_group(&self) -> Result<(Vec<ApiGroup>, Vec<String>), kube::Error> {
        let mut versions: Vec<GroupVersion> = self
            .client
            .list_core_api_versions()
            .await?
            .versions
            .iter()
            .map(|v| GroupVersion::gv("", v))
            .collect();
        for group in self.client.list_api_groups().await?.groups {
            for v in &group.versions {
                versions.push(GroupVersion::gv(&group.name, &v.version));
            }
        }
        let queries = versions.into_iter().map(|gv| async move {
            let query = kube::discovery::pinned_group(&self.client, &gv);
            let result = match tokio::time::timeout(GROUP_TIMEOUT, query).await {
                Ok(result) => result.map_err(|e| e.to_string()),
                Err(_) => Err(format!("no answer within {GROUP_TIMEOUT:?}")),
            };
            (gv, result)
        });
        let mut groups = Vec::new();
        let mut failed = Vec::new();
        for (gv, result) in futures::future::join_all(queries).await {
            match result {
                Ok(group) => groups.push(group),
                Err(error) => {
                    let api_version = gv.api_version();
                    tracing::warn!(%api_version, %error, "discovery of an API group version failed; skipping it");
                    failed.push(api_version);
                }
            }
        }
        Ok((groups, failed))
    }

    /// Refreshes unless a refresh finished less than 250 ms ago (or is
    /// running: then waits for it).
    async fn refresh_if_stale(&self) {
        let mut last = self.refresh.lock().await;
        if last.is_some_and(|t| t.elapsed() < MIN_ON_DEMAND_INTERVAL) {
            return;
        }
        if let Err(err) = self.refresh_locked().await {
            tracing::warn!(error = %err, "discovery failed");
        }
        *last = Some(Instant::now());
    }

    /// The resource `resource` (plural) in `api_version`, from the last
    /// discovery run.
    pub fn get(&self, api_version: &str, resource: &str) -> Option<ResourceInfo> {
        self.snapshot
            .read()
            .by_resource
            .get(&(api_version.to_owned(), resource.to_owned()))
            .cloned()
    }

    /// The resource serving `kind` in `api_version`, from the last discovery
    /// run.
    pub fn get_by_kind(&self, api_version: &str, kind: &str) -> Option<ResourceInfo> {
        self.snapshot
            .read()
            .by_kind
            .get(&(api_version.to_owned(), kind.to_owned()))
            .cloned()
    }

    /// Like [`ResourceMap::get`], refreshing once on a miss.
    pub async fn resolve(&self, api_version: &str, resource: &str) -> Option<ResourceInfo> {
        if let Some(info) = self.get(api_version, resource) {
            return Some(info);
        }
        self.refresh_if_stale().await;
        self.get(api_version, resource)
    }

    /// Like [`ResourceMap::get_by_kind`], refreshing once on a miss.
    pub async fn resolve_kind(&self, api_version: &str, kind: &str) -> Option<ResourceInfo> {
        if let Some(info) = self.get_by_kind(api_version, kind) {
            return Some(info);
        }
        self.refresh_if_stale().await;
        self.get_by_kind(api_version, kind)
    }

    /// Refreshes every `interval` until `cancel` fires.
    pub async fn run(self: Arc<Self>, interval: Duration, cancel: CancellationToken) {
        let interval = interval.max(Duration::from_millis(100));
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = ticker.tick() => {
                    if let Err(err) = self.refresh().await {
                        tracing::warn!(error = %err, "discovery failed");
                    }
                }
            }
        }
    }
}
