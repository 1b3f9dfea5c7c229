//! Leader election on a `coordination.k8s.io/v1` Lease, so that several
//! replicas can run and exactly one of them syncs.
//!
//! The algorithm is client-go's (`k8s.io/client-go/tools/leaderelection/
//! leaderelection.go`, `tryAcquireOrRenew`), which Metacontroller uses through
//! controller-runtime, with controller-runtime's timings
//! (`sigs.k8s.io/controller-runtime/pkg/manager/manager.go`: lease 15 s,
//! renew deadline 10 s, retry period 2 s):
//!
//! - A candidate reads the Lease every retry period (with up to 20 % jitter).
//!   It takes the Lease when there is none (create), when it has no holder,
//!   or when the record it sees has not changed for the record's
//!   `leaseDurationSeconds` as timed on this process's own clock (so clock
//!   skew between machines does not matter). Taking over an existing Lease is
//!   an update carrying the `resourceVersion` read, so of two candidates
//!   only one wins.
//! - The holder renews every retry period (`renewTime`, again an update with
//!   the `resourceVersion`). When renewals keep failing for the renew
//!   deadline, the lease counts as lost.
//! - On release (graceful shutdown) the holder empties `holderIdentity` and
//!   sets `leaseDurationSeconds` to 1, so a standby takes over at its next
//!   retry instead of waiting for the lease to expire.
//!
//! The log lines at the start of the attempt and on success are client-go's
//! words (`attempting to acquire leader lease <ns>/<name>...`,
//! `successfully acquired lease <ns>/<name>`), as scripts check for them.
//!
//! `kube-lease-manager` (which supports kube 5) was considered: its standby
//! sleeps until the holder's lease would expire, so a released Lease is taken
//! only after up to the whole lease duration, and its timings are a duration
//! and a grace in whole seconds rather than client-go's renew deadline and
//! retry period.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use metacontroller_engine::metrics::LeaderMetrics;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// controller-runtime's default lease duration.
pub const LEASE_DURATION: Duration = Duration::from_secs(15);
/// controller-runtime's default renew deadline.
pub const RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// controller-runtime's default retry period.
pub const RETRY_PERIOD: Duration = Duration::from_secs(2);
/// client-go's `JitterFactor`: waits between attempts are stretched by up to
/// this fraction of the retry period.
const JITTER: f64 = 0.2;

/// Where in-cluster Pods find their namespace.
const SERVICE_ACCOUNT_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading Lease {lease}: {source}")]
    Read { lease: String, source: kube::Error },
    #[error("writing Lease {lease}: {source}")]
    Write { lease: String, source: kube::Error },
    #[error(
        "unsupported --leader-election-resource-lock {0:?}: only \"leases\" is supported (client-go removed the others)"
    )]
    UnsupportedLock(String),
    #[error(
        "--leader-election-namespace is required when not running in a cluster (no {SERVICE_ACCOUNT_NAMESPACE})"
    )]
    NoNamespace,
    #[error("--leader-election-id must not be empty")]
    NoName,
}

/// Where the Lease is, who we are, and the timings.
#[derive(Clone, Debug)]
pub struct Config {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl Config {
    /// The configuration from Metacontroller's flags: the namespace is the
    /// flag's, else the Pod's own (in-cluster); the identity is the host name
    /// and a random suffix, as controller-runtime makes it.
    pub fn from_flags(lock: &str, namespace: &str, name: &str) -> Result<Config, Error> {
        if lock != "leases" {
            return Err(Error::UnsupportedLock(lock.to_owned()));
        }
        if name.is_empty() {
            return Err(Error::NoName);
        }
        let namespace = if namespace.is_empty() {
            std::fs::read_to_string(SERVICE_ACCOUNT_NAMESPACE)
                .map(|s| s.trim().to_owned())
                .ok()
                .filter(|s| !s.is_empty())
                .ok_or(Error::NoNamespace)?
        } else {
            namespace.to_owned()
        };
        Ok(Config {
            namespace,
            name: name.to_owned(),
            identity: format!("{}_{}", host_name(), uuid::Uuid::new_v4()),
            lease_duration: LEASE_DURATION,
            renew_deadline: RENEW_DEADLINE,
            retry_period: RETRY_PERIOD,
        })
    }

    fn describe(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "metacontroller".to_owned())
}

/// The last Lease record seen, and when (on our clock) it was first seen.
struct Observed {
    spec: LeaseSpec,
    at: Instant,
}

/// One candidate for the Lease.
pub struct Elector {
    api: Api<Lease>,
    config: Config,
    observed: Option<Observed>,
    metrics: Option<LeaderMetrics>,
}

/// The outcome of one attempt.
enum Attempt {
    Held,
    HeldByOther,
}

impl Elector {
    pub fn new(client: kube::Client, config: Config) -> Elector {
        Elector {
            api: Api::namespaced(client, &config.namespace),
            config,
            observed: None,
            metrics: None,
        }
    }

    /// Reports leadership in `leader_election_master_status{name=<lease>}`:
    /// 0 from now on, 1 while the Lease is held (client-go's leader metric).
    pub fn with_metrics(mut self, metrics: LeaderMetrics) -> Elector {
        metrics.set(&self.config.name, false);
        self.metrics = Some(metrics);
        self
    }

    fn report(&self, leading: bool) {
        if let Some(metrics) = &self.metrics {
            metrics.set(&self.config.name, leading);
        }
    }

    pub fn identity(&self) -> &str {
        &self.config.identity
    }

    /// Waits until this candidate holds the Lease (`true`) or `cancel` fires
    /// (`false`).
    pub async fn acquire(&mut self, cancel: &CancellationToken) -> bool {
        let lease = self.config.describe();
        tracing::info!("attempting to acquire leader lease {lease}...");
        loop {
            match self.try_acquire_or_renew().await {
                Ok(Attempt::Held) => {
                    tracing::info!("successfully acquired lease {lease}");
                    self.report(true);
                    return true;
                }
                Ok(Attempt::HeldByOther) => {
                    let holder = self.holder().unwrap_or_default();
                    tracing::debug!(%holder, "lease {lease} is held by another candidate");
                }
                Err(err) => tracing::warn!(error = %err, "failed to acquire lease {lease}"),
            }
            tokio::select! {
                _ = cancel.cancelled() => return false,
                _ = tokio::time::sleep(jittered(self.config.retry_period)) => {}
            }
        }
    }

    /// Renews the Lease every retry period; returns when renewing has failed
    /// for the renew deadline (the lease is lost) or `cancel` fires.
    /// Returns `true` when the lease was lost.
    pub async fn hold(&mut self, cancel: &CancellationToken) -> bool {
        let lease = self.config.describe();
        let mut last_renewed = Instant::now();
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return false,
                _ = tokio::time::sleep(self.config.retry_period) => {}
            }
            let deadline = last_renewed + self.config.renew_deadline;
            let attempt = tokio::time::timeout_at(deadline, self.try_acquire_or_renew()).await;
            match attempt {
                Ok(Ok(Attempt::Held)) => last_renewed = Instant::now(),
                Ok(Ok(Attempt::HeldByOther)) => {
                    let holder = self.holder().unwrap_or_default();
                    tracing::error!(%holder, "lease {lease} was taken by another candidate");
                    self.report(false);
                    return true;
                }
                Ok(Err(err)) => tracing::warn!(error = %err, "failed to renew lease {lease}"),
                Err(_) => {}
            }
            if Instant::now() >= deadline {
                tracing::error!(
                    "failed to renew lease {lease}: renew deadline of {:?} exceeded",
                    self.config.renew_deadline
                );
                self.report(false);
                return true;
            }
        }
    }

    /// Gives the Lease up if this candidate holds it: no holder, a duration
    /// of one second, so a standby takes it at its next attempt.
    pub async fn release(&mut self) {
        self.report(false);
        let lease = self.config.describe();
        let current = match self.api.get_opt(&self.config.name).await {
            Ok(Some(current)) => current,
            Ok(None) => return,
            Err(err) => {
                tracing::warn!(error = %err, "releasing lease {lease}: reading it failed");
                return;
            }
        };
        let spec = current.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return;
        }
        let now = now();
        let released = Lease {
            metadata: current.metadata,
            spec: Some(LeaseSpec {
                holder_identity: None,
                lease_duration_seconds: Some(1),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: spec.lease_transitions,
                ..LeaseSpec::default()
            }),
        };
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &released)
            .await
        {
            Ok(_) => tracing::info!("released lease {lease}"),
            Err(err) => tracing::warn!(error = %err, "releasing lease {lease} failed"),
        }
    }

    fn holder(&self) -> Option<String> {
        self.observed
            .as_ref()
            .and_then(|o| o.spec.holder_identity.clone())
    }

    /// One round of client-go's `tryAcquireOrRenew`.
    async fn try_acquire_or_renew(&mut self) -> Result<Attempt, Error> {
        let now_time = now();
        let me = self.config.identity.clone();
        let duration_seconds = self.config.lease_duration.as_secs() as i32;
        let current = self
            .api
            .get_opt(&self.config.name)
            .await
            .map_err(|source| Error::Read {
                lease: self.config.describe(),
                source,
            })?;
        let Some(current) = current else {
            let spec = LeaseSpec {
                holder_identity: Some(me),
                lease_duration_seconds: Some(duration_seconds),
                acquire_time: Some(now_time.clone()),
                renew_time: Some(now_time),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            };
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(spec.clone()),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => {
                    self.observe(spec);
                    Ok(Attempt::Held)
                }
                Err(source) => Err(Error::Write {
                    lease: self.config.describe(),
                    source,
                }),
            };
        };
        let old = current.spec.clone().unwrap_or_default();
        self.observe(old.clone());
        let holder = old.holder_identity.clone().unwrap_or_default();
        let held_by_me = holder == me;
        if !holder.is_empty() && !held_by_me {
            let observed_at = self
                .observed
                .as_ref()
                .map(|o| o.at)
                .unwrap_or_else(Instant::now);
            let seconds = old.lease_duration_seconds.unwrap_or(0).max(0) as u64;
            if observed_at + Duration::from_secs(seconds) > Instant::now() {
                return Ok(Attempt::HeldByOther);
            }
        }
        let (acquire_time, transitions) = if held_by_me {
            (old.acquire_time.clone(), old.lease_transitions)
        } else {
            (
                Some(now_time.clone()),
                Some(old.lease_transitions.unwrap_or(0) + 1),
            )
        };
        let spec = LeaseSpec {
            holder_identity: Some(me),
            lease_duration_seconds: Some(duration_seconds),
            acquire_time,
            renew_time: Some(now_time),
            lease_transitions: transitions,
            ..old
        };
        let updated = Lease {
            metadata: current.metadata,
            spec: Some(spec.clone()),
        };
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &updated)
            .await
        {
            Ok(_) => {
                self.observe(spec);
                Ok(Attempt::Held)
            }
            Err(source) => Err(Error::Write {
                lease: self.config.describe(),
                source,
            }),
        }
    }

    /// Records `spec` as seen, restarting the clock only when it changed.
    fn observe(&mut self, spec: LeaseSpec) {
        if self.observed.as_ref().is_some_and(|o| o.spec == spec) {
            return;
        }
        self.observed = Some(Observed {
            spec,
            at: Instant::now(),
        });
    }
}

fn now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

/// `period` stretched by a random part of up to [`JITTER`] of itself.
fn jittered(period: Duration) -> Duration {
    period.mul_f64(1.0 + JITTER * rand::random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_leases_are_supported() {
        let config = Config::from_flags("leases", "ns", "metacontroller").unwrap();
        assert_eq!(config.describe(), "ns/metacontroller");
        assert_eq!(config.lease_duration, Duration::from_secs(15));
        assert_eq!(config.renew_deadline, Duration::from_secs(10));
        assert_eq!(config.retry_period, Duration::from_secs(2));
        assert!(matches!(
            Config::from_flags("endpoints", "ns", "x"),
            Err(Error::UnsupportedLock(_))
        ));
        assert!(matches!(
            Config::from_flags("leases", "ns", ""),
            Err(Error::NoName)
        ));
    }

    #[test]
    fn identities_differ_per_process_start() {
        let a = Config::from_flags("leases", "ns", "x").unwrap();
        let b = Config::from_flags("leases", "ns", "x").unwrap();
        assert_ne!(a.identity, b.identity);
        assert!(a.identity.starts_with(&format!("{}_", host_name())));
    }

    #[test]
    fn jitter_stays_within_a_fifth() {
        for _ in 0..100 {
            let d = jittered(Duration::from_secs(2));
            assert!(d >= Duration::from_secs(2) && d <= Duration::from_millis(2400));
        }
    }
}
