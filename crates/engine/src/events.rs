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
//! * A token bucket (`--events-qps`, default one per five minutes,
//!   `--events-burst`, default 25) drops events beyond that rate, as
//!   client-go's spam filter does. Unlike client-go's, whose bucket is per
//!   object, the bucket is per object, type, reason and kind of message
//!   (see [`Recorder::record_kind`]): a new reason, or a new kind of
//!   failure, is never hidden behind repeats of an old one.
//! * The recorder also keeps count of each object's failed syncs in a row,
//!   so that the first good sync after failures can be announced
//!   ([`Recorder::sync_failed`], [`Recorder::sync_succeeded`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use kube::api::{Patch, PatchParams, PostParams};
use kube::core::ApiResource;
use kube::{Api, Client};
use parking_lot::Mutex;
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
    /// A sync succeeded after failures (Metacontroller has no such event).
    pub const SYNC_RECOVERED: &str = "SyncRecovered";
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

    /// `Kind namespace/name` (or `Kind name`), for logs.
    pub fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }

    fn identity(&self) -> String {
        if self.uid.is_empty() {
            format!(
                "{}/{}/{}",
                self.kind,
                self.namespace.as_deref().unwrap_or_default(),
                self.name
            )
        } else {
            self.uid.clone()
        }
    }
}

struct Request {
    object: ObjectReference,
    type_: EventType,
    reason: String,
    kind: String,
    message: String,
}

/// Records Events in the background. Cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::UnboundedSender<Request>,
    /// Failed syncs in a row, per object identity.
    failing: Arc<Mutex<HashMap<String, u32>>>,
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
        (Recorder::with_sender(tx), task)
    }

    fn with_sender(tx: mpsc::UnboundedSender<Request>) -> Recorder {
        Recorder {
            tx,
            failing: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A recorder that drops everything (for tests and tools).
    pub fn disabled() -> Recorder {
        let (tx, _rx) = mpsc::unbounded_channel();
        Recorder::with_sender(tx)
    }

    /// Records an event about `object`; the rate limit counts it with the
    /// other events of the same type and reason.
    pub fn record(
        &self,
        object: &ObjectReference,
        type_: EventType,
        reason: &str,
        message: impl Into<String>,
    ) {
        self.record_kind(object, type_, reason, "", message);
    }

    /// Records an event about `object` whose message is of kind `kind`
    /// (e.g. the kind of failure): the rate limit counts it only with the
    /// events of the same type, reason and kind.
    pub fn record_kind(
        &self,
        object: &ObjectReference,
        type_: EventType,
        reason: &str,
        kind: &str,
        message: impl Into<String>,
    ) {
        let _ = self.tx.send(Request {
            object: object.clone(),
            type_,
            reason: reason.to_owned(),
            kind: kind.to_owned(),
            message: message.into(),
        });
    }

    /// Notes a failed sync of `object`; returns the failures in a row so
    /// far.
    pub fn sync_failed(&self, object: &ObjectReference) -> u32 {
        let mut failing = self.failing.lock();
        if failing.len() >= CACHE_LIMIT {
            failing.clear();
        }
        let count = failing.entry(object.identity()).or_default();
        *count = count.saturating_add(1);
        *count
    }

    /// Whether any object's last sync failed (a cheap check before
    /// [`Recorder::sync_succeeded`]).
    pub fn any_failing(&self) -> bool {
        !self.failing.lock().is_empty()
    }

    /// Notes a good sync of `object`; returns how many failed syncs in a row
    /// it ends, if any.
    pub fn sync_succeeded(&self, object: &ObjectReference) -> Option<u32> {
        let mut failing = self.failing.lock();
        if failing.is_empty() {
            return None;
        }
        failing.remove(&object.identity())
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
    spam: SpamFilter<SpamKey>,
    recorded: HashMap<DedupKey, Recorded>,
}

/// What the rate limit counts together: the object, the event's type and
/// reason, and the kind of its message.
#[derive(PartialEq, Eq, Hash)]
struct SpamKey {
    object: (String, String, String, String),
    type_: EventType,
    reason: String,
    kind: String,
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

    fn allowed(&mut self, request: &Request) -> bool {
        let object = &request.object;
        let key = SpamKey {
            object: (
                object.kind.clone(),
                object.namespace.clone().unwrap_or_default(),
                object.name.clone(),
                object.uid.clone(),
            ),
            type_: request.type_,
            reason: request.reason.clone(),
            kind: request.kind.clone(),
        };
        self.spam.allow(key, Instant::now())
    }

    async fn write(&mut self, request: Request) {
        if !self.allowed(&request) {
            tracing::debug!(reason = %request.reason, kind = %request.kind, object = %request.object.describe(), "event dropped by the rate limit");
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
                    tracing::debug!(verb = "patch", resource = "events", object = %format!("{}/{}", previous.namespace, previous.name), error = %err, "could not update event; creating a new one");
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
                tracing::warn!(verb = "create", resource = "events", object = %format!("{namespace}/{name}"), about = %object.describe(), reason = %request.reason, error = %err, "could not record event");
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
    fn new_reasons_and_kinds_have_their_own_budget() {
        let t0 = Instant::now();
        let key = |reason: &str, kind: &str| SpamKey {
            object: ("K".into(), "ns".into(), "p".into(), "u".into()),
            type_: EventType::Warning,
            reason: reason.into(),
            kind: kind.into(),
        };
        let mut f = SpamFilter::new(1.0 / 300.0, 3);
        assert!((0..3).all(|_| f.allow(key("SyncError", "sync hook status 500"), t0)));
        assert!(!f.allow(key("SyncError", "sync hook status 500"), t0));
        assert!(f.allow(key("SyncError", "sync hook timeout"), t0));
        assert!(f.allow(key("SyncRecovered", ""), t0));
    }

    #[test]
    fn failures_in_a_row() {
        let r = Recorder::disabled();
        let obj = ObjectReference::from_value(&serde_json::json!({"apiVersion": "v1",
            "kind": "Pod", "metadata": {"name": "p", "namespace": "ns", "uid": "u"}}));
        assert_eq!(r.sync_succeeded(&obj), None);
        assert_eq!(r.sync_failed(&obj), 1);
        assert_eq!(r.clone().sync_failed(&obj), 2);
        assert_eq!(r.sync_succeeded(&obj), Some(2));
        assert_eq!(r.sync_succeeded(&obj), None);
        assert_eq!(obj.describe(), "Pod ns/p");
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
