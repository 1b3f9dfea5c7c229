//! Kubernetes Events (`core/v1`), recorded the way Metacontroller's client-go
//! recorder does it.
//!
//! * Source component `metacontroller`; the Event lives in the namespace of
//!   the object it is about, or in `default` for cluster-scoped objects.
//! * Events are written by a background task, so recording never blocks a
//!   sync.
//! * Repeats of the same event (same object, type, reason and message) bump
//!   `count` and `lastTimestamp` of the existing Event instead of creating a
//!   new one.
//! * A per-object token bucket (`--events-qps`, default one per five minutes,
//!   `--events-burst`, default 25) drops events beyond that rate, as
//!   client-go's spam filter does.

use std::collections::HashMap;
use std::time::Instant;

use kube::api::{Patch, PatchParams, PostParams};
use kube::core::ApiResource;
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::object::RawObject;
use crate::ratelimit::TokenBucket;

/// Event type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    /// Informational.
    Normal,
    /// Something went wrong.
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// Event reasons used by Metacontroller.
pub mod reason {
    /// A hosted controller is starting.
    pub const STARTING: &str = "Starting";
    /// A hosted controller started.
    pub const STARTED: &str = "Started";
    /// A hosted controller is stopping.
    pub const STOPPING: &str = "Stopping";
    /// A hosted controller stopped.
    pub const STOPPED: &str = "Stopped";
    /// A hosted controller could not be created.
    pub const CREATE_ERROR: &str = "CreateError";
    /// A sync failed.
    pub const SYNC_ERROR: &str = "SyncError";
}

/// The object an event is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ObjectReference {
    /// `apiVersion` of the object.
    pub api_version: String,
    /// Kind of the object.
    pub kind: String,
    /// Namespace (`None` for cluster-scoped objects).
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// UID.
    pub uid: String,
    /// resourceVersion when the event was recorded.
    pub resource_version: String,
}

impl ObjectReference {
    /// Reference to a JSON object.
    pub fn from_value(obj: &Value) -> Self {
        ObjectReference {
            api_version: crate::object::api_version(obj).to_owned(),
            kind: crate::object::kind(obj).to_owned(),
            namespace: crate::object::namespace(obj).map(str::to_owned),
            name: crate::object::name(obj).to_owned(),
            uid: crate::object::uid(obj).to_owned(),
            resource_version: crate::object::resource_version(obj).to_owned(),
        }
    }

    /// Reference to a typed object.
    pub fn from_resource<K>(obj: &K) -> Self
    where
        K: kube::Resource<DynamicType = ()>,
    {
        let meta = obj.meta();
        ObjectReference {
            api_version: K::api_version(&()).into_owned(),
            kind: K::kind(&()).into_owned(),
            namespace: meta.namespace.clone().filter(|ns| !ns.is_empty()),
            name: meta.name.clone().unwrap_or_default(),
            uid: meta.uid.clone().unwrap_or_default(),
            resource_version: meta.resource_version.clone().unwrap_or_default(),
        }
    }

    fn event_namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or("default")
    }
}

struct Request {
    object: ObjectReference,
    type_: EventType,
    reason: String,
    message: String,
}

/// Records Events in the background. Cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::UnboundedSender<Request>,
}

/// Component name written into `source.component`.
pub const COMPONENT: &str = "metacontroller";

impl Recorder {
    /// Starts the writer task. It ends when every clone of the recorder is
    /// dropped, after writing what is still queued; the returned handle
    /// completes then.
    pub fn start(client: Client, qps: f64, burst: u32) -> (Recorder, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(Writer::new(client, qps, burst).run(rx));
        (Recorder { tx }, task)
    }

    /// A recorder that drops everything (for tests and tools).
    pub fn disabled() -> Recorder {
        let (tx, _rx) = mpsc::unbounded_channel();
        Recorder { tx }
    }

    /// Records an event about `object`.
    pub fn record(
        &self,
        object: &ObjectReference,
        type_: EventType,
        reason: &str,
        message: impl Into<String>,
    ) {
        let _ = self.tx.send(Request {
            object: object.clone(),
            type_,
            reason: reason.to_owned(),
            message: message.into(),
        });
    }
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct DedupKey {
    object: ObjectReference,
    type_: EventType,
    reason: String,
    message: String,
}

struct Recorded {
    name: String,
    namespace: String,
    count: i64,
}

/// Entries kept for deduplication and spam filtering before the caches are
/// cleared (client-go keeps LRU caches of 4096 entries).
const CACHE_LIMIT: usize = 4096;

struct Writer {
    api_resource: ApiResource,
    client: Client,
    spam: SpamFilter<(String, String, String, String)>,
    recorded: HashMap<DedupKey, Recorded>,
}

/// Per-key token buckets: each key may pass `burst` times at once and then
/// `qps` times per second; what exceeds that is dropped.
struct SpamFilter<K> {
    qps: f64,
    burst: u32,
    buckets: HashMap<K, TokenBucket>,
}

impl<K: std::hash::Hash + Eq> SpamFilter<K> {
    fn new(qps: f64, burst: u32) -> Self {
        SpamFilter {
            qps,
            burst,
            buckets: HashMap::new(),
        }
    }

    fn allow(&mut self, key: K, now: Instant) -> bool {
        if self.buckets.len() > CACHE_LIMIT {
            self.buckets.clear();
        }
        let (qps, burst) = (self.qps, self.burst);
        let bucket = self
            .buckets
            .entry(key)
            .or_insert_with(|| TokenBucket::new(qps, burst, now));
        // Only take the token when it is available right away.
        let mut probe = bucket.clone();
        if probe.reserve(now).is_zero() {
            *bucket = probe;
            true
        } else {
            false
        }
    }
}

fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

impl Writer {
    fn new(client: Client, qps: f64, burst: u32) -> Self {
        Writer {
            api_resource: ApiResource {
                group: String::new(),
                version: "v1".into(),
                api_version: "v1".into(),
                kind: "Event".into(),
                plural: "events".into(),
            },
            client,
            spam: SpamFilter::new(qps, burst),
            recorded: HashMap::new(),
        }
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Request>) {
        while let Some(request) = rx.recv().await {
            self.write(request).await;
        }
    }

    fn allowed(&mut self, object: &ObjectReference) -> bool {
        let key = (
            object.kind.clone(),
            object.namespace.clone().unwrap_or_default(),
            object.name.clone(),
            object.uid.clone(),
        );
        self.spam.allow(key, Instant::now())
    }

    async fn write(&mut self, request: Request) {
        if !self.allowed(&request.object) {
            tracing::debug!(reason = %request.reason, object = %request.object.name, "event dropped by the per-object rate limit");
            return;
        }
        let key = DedupKey {
            object: request.object.clone(),
            type_: request.type_,
            reason: request.reason.clone(),
            message: request.message.clone(),
        };
        let now = now_rfc3339();
        if let Some(previous) = self.recorded.get_mut(&key) {
            let api = Api::<RawObject>::namespaced_with(
                self.client.clone(),
                &previous.namespace,
                &self.api_resource,
            );
            let count = previous.count + 1;
            let patch = json!({"count": count, "lastTimestamp": now});
            match api
                .patch(
                    &previous.name,
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
            {
                Ok(_) => {
                    previous.count = count;
                    return;
                }
                Err(err) => {
                    tracing::debug!(error = %err, "could not update event; creating a new one");
                    self.recorded.remove(&key);
                }
            }
        }
        let object = &request.object;
        let namespace = object.event_namespace().to_owned();
        let name = format!(
            "{}.{:x}",
            object.name,
            jiff::Timestamp::now().as_nanosecond()
        );
        let mut involved = json!({
            "apiVersion": object.api_version,
            "kind": object.kind,
            "name": object.name,
            "uid": object.uid,
            "resourceVersion": object.resource_version,
        });
        if let Some(ns) = &object.namespace {
            involved["namespace"] = json!(ns);
        }
        let event = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": involved,
            "reason": request.reason,
            "message": request.message,
            "type": request.type_.as_str(),
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": "",
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        });
        let api =
            Api::<RawObject>::namespaced_with(self.client.clone(), &namespace, &self.api_resource);
        match api
            .create(&PostParams::default(), &RawObject::new(event))
            .await
        {
            Ok(_) => {
                if self.recorded.len() > CACHE_LIMIT {
                    self.recorded.clear();
                }
                self.recorded.insert(
                    key,
                    Recorded {
                        name,
                        namespace,
                        count: 1,
                    },
                );
            }
            Err(err) => {
                tracing::warn!(error = %err, reason = %request.reason, "could not record event");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn spam_filter_allows_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut f = SpamFilter::new(1.0 / 300.0, 25);
        assert!((0..25).all(|_| f.allow("a", t0)));
        assert!(!f.allow("a", t0));
        // Other objects have their own budget.
        assert!(f.allow("b", t0));
        // One more event per five minutes.
        assert!(!f.allow("a", t0 + Duration::from_secs(200)));
        assert!(f.allow("a", t0 + Duration::from_secs(301)));
        assert!(!f.allow("a", t0 + Duration::from_secs(302)));
    }

    #[test]
    fn object_references() {
        let obj = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "ns", "uid": "u", "resourceVersion": "3"}});
        let r = ObjectReference::from_value(&obj);
        assert_eq!(r.event_namespace(), "ns");
        let cluster =
            serde_json::json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}});
        assert_eq!(
            ObjectReference::from_value(&cluster).event_namespace(),
            "default"
        );
    }
}
