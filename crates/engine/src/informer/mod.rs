//! Shared watch caches ("informers").
//!
//! One [`Informer`] per (apiVersion, resource) is shared by every hosted
//! controller that needs it. It runs a kube-rs [`watcher`] over all
//! namespaces and keeps each object as its compact JSON text, compressed
//! against a dictionary of the informer's own (see `codec`), next to the
//! little metadata queries need without decoding it (name, namespace, uid,
//! labels, controller UID, resourceVersion; see `entry`). Reads decode the
//! objects they return into fresh `Arc<Value>`s. A `serde_json::Value` costs
//! several times its JSON size (every JSON object is a B-tree with room for
//! eleven entries), so the compressed text is what keeps memory below the
//! size of the objects themselves when caches hold hundreds of thousands of
//! them; decoding the handful of objects one sync reads costs microseconds.
//!
//! Three indexes keep claiming children from scanning the whole cache:
//!
//! * by namespace,
//! * by the UID of the object's controller (the owner reference with
//!   `controller: true`),
//! * orphans (no controller), by namespace.
//!
//! Every consumer says which objects it needs ([`Interest`]); an object that
//! no consumer can use is not kept (a CompositeController's children
//! informer has no use for the Pods that ReplicaSets own). When a consumer
//! with a wider interest joins after objects were passed over, the informer
//! lists again.
//!
//! Subscribers implement [`EventHandler`]; after each change the store is
//! updated first and then every subscriber is called synchronously, so
//! handlers must be cheap (they enqueue keys). Every `--cache-flush-interval`
//! all cached objects are delivered again as updates with `old` and `new`
//! being the same `Arc`.
//!
//! [`InformerFactory::acquire`] hands out reference-counted
//! [`InformerHandle`]s; the watch stops when the last handle is dropped.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use parking_lot::{Mutex, RwLock};
use serde_json::Value;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::discovery::ResourceInfo;
use crate::object::{self, RawObject};

mod codec;
mod entry;

use codec::Codec;
use entry::Entry;
pub use entry::{CachedLabels, Meta};

/// Receives the changes of an informer.
pub trait EventHandler: Send + Sync {
    /// An object appeared (or was replayed on subscription).
    fn on_add(&self, obj: &Arc<Value>);
    /// An object changed; `old` and `new` are the same `Arc` for periodic
    /// redelivery.
    fn on_update(&self, old: &Arc<Value>, new: &Arc<Value>);
    /// An object disappeared (or stopped being of interest); `obj` is its
    /// last known state.
    fn on_delete(&self, obj: &Arc<Value>);
}

type Handlers = Arc<Vec<(u64, Arc<dyn EventHandler>)>>;

/// Which objects a consumer of an informer needs cached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Interest {
    /// Every object.
    All,
    /// What a CompositeController can claim as children: objects whose
    /// controller is of `kind` in API `group`, and objects without a
    /// controller that carry a label (`orphan_label`, when set: that label
    /// key). Objects controlled by anything else are never adopted, and no
    /// parent selector (which is never empty) matches an object without
    /// labels.
    Children {
        /// API group of the parent kind (`""` for the core group).
        group: String,
        /// The parent kind.
        kind: String,
        /// A label every adoptable orphan must carry (`controller-uid` with
        /// `generateSelector`).
        orphan_label: Option<String>,
    },
}

impl Interest {
    /// Whether a consumer with this interest needs `obj`.
    pub fn accepts(&self, obj: &Value) -> bool {
        match self {
            Interest::All => true,
            Interest::Children {
                group,
                kind,
                orphan_label,
            } => match metacontroller_apply::owner::controller_ref(obj) {
                Some(controller) => {
                    metacontroller_apply::owner::ref_group_kind(controller)
                        == (group.as_str(), kind.as_str())
                }
                None => {
                    let labels =
                        metacontroller_selectors::object_labels(obj).and_then(Value::as_object);
                    match orphan_label {
                        Some(key) => labels.is_some_and(|l| l.contains_key(key)),
                        None => labels.is_some_and(|l| !l.is_empty()),
                    }
                }
            },
        }
    }
}

type Key = Arc<str>;
type Index = HashMap<Box<str>, HashSet<Key>>;

#[derive(Default)]
struct Store {
    objects: HashMap<Key, Entry>,
    by_namespace: Index,
    by_owner: Index,
    orphans: Index,
}

fn index_insert(index: &mut Index, bucket: &str, key: &Key) {
    match index.get_mut(bucket) {
        Some(set) => {
            set.insert(key.clone());
        }
        None => {
            index.insert(bucket.into(), HashSet::from([key.clone()]));
        }
    }
}

fn index_remove(index: &mut Index, bucket: &str, key: &str) {
    if let Some(set) = index.get_mut(bucket) {
        set.remove(key);
        if set.is_empty() {
            index.remove(bucket);
        }
    }
}

impl Store {
    fn index(&mut self, key: &Key, controller: Option<&str>) {
        let ns = object::split_key(key).0.unwrap_or_default();
        index_insert(&mut self.by_namespace, ns, key);
        match controller {
            Some(uid) => index_insert(&mut self.by_owner, uid, key),
            None => index_insert(&mut self.orphans, ns, key),
        }
    }

    fn unindex(&mut self, key: &str, controller: Option<&str>) {
        let ns = object::split_key(key).0.unwrap_or_default();
        index_remove(&mut self.by_namespace, ns, key);
        match controller {
            Some(uid) => index_remove(&mut self.by_owner, uid, key),
            None => index_remove(&mut self.orphans, ns, key),
        }
    }

    /// Inserts or replaces; returns the previous entry.
    fn upsert(&mut self, key: &str, entry: Entry) -> Option<Entry> {
        let controller: Option<Box<str>> = entry.controller().map(Into::into);
        match self.objects.get_key_value(key).map(|(k, _)| k.clone()) {
            Some(shared) => {
                let old = self.objects.insert(shared.clone(), entry)?;
                if old.controller() != controller.as_deref() {
                    self.unindex(key, old.controller());
                    self.index(&shared, controller.as_deref());
                }
                Some(old)
            }
            None => {
                let shared: Key = key.into();
                self.objects.insert(shared.clone(), entry);
                self.index(&shared, controller.as_deref());
                None
            }
        }
    }

    fn remove(&mut self, key: &str) -> Option<Entry> {
        let old = self.objects.remove(key)?;
        self.unindex(key, old.controller());
        Some(old)
    }

    /// The JSON of the objects under `keys` that pass `keep`.
    fn texts<'a>(
        &self,
        keys: impl IntoIterator<Item = &'a Key>,
        keep: &impl Fn(&Meta) -> bool,
    ) -> Vec<Arc<[u8]>> {
        keys.into_iter()
            .filter_map(|k| {
                let entry = self.objects.get(k)?;
                keep(&entry.meta(k)).then(|| entry.text.clone())
            })
            .collect()
    }
}

/// A shared watch cache for one resource. See the
/// [module documentation](self).
pub struct Informer {
    resource: ResourceInfo,
    store: RwLock<Store>,
    /// How the store keeps each object's text.
    codec: Codec,
    handlers: RwLock<Handlers>,
    next_handler: AtomicU64,
    /// What the consumers need, one entry per handle.
    interests: RwLock<Vec<(u64, Interest)>>,
    /// Objects passed over since the current list began.
    passed_over: AtomicU64,
    /// Asks the watch to list again.
    relist: Notify,
    synced: watch::Sender<bool>,
    cancel: CancellationToken,
}

impl Informer {
    fn new(resource: ResourceInfo) -> Self {
        Informer {
            resource,
            store: RwLock::new(Store::default()),
            codec: Codec::default(),
            handlers: RwLock::new(Arc::new(Vec::new())),
            next_handler: AtomicU64::new(0),
            interests: RwLock::new(Vec::new()),
            passed_over: AtomicU64::new(0),
            relist: Notify::new(),
            synced: watch::channel(false).0,
            cancel: CancellationToken::new(),
        }
    }

    /// The watched resource.
    pub fn resource(&self) -> &ResourceInfo {
        &self.resource
    }

    /// The object with key `namespace/name` (or `name`).
    pub fn get(&self, key: &str) -> Option<Arc<Value>> {
        let text = self.store.read().objects.get(key)?.text.clone();
        Some(self.decode(&text))
    }

    /// What `look` makes of the cached metadata of the object with key
    /// `key`, without decoding it.
    pub fn peek<R>(&self, key: &str, look: impl FnOnce(&Meta) -> R) -> Option<R> {
        let store = self.store.read();
        let (key, entry) = store.objects.get_key_value(key)?;
        Some(look(&entry.meta(key)))
    }

    /// Objects whose controller has `uid`, optionally only in `namespace`.
    pub fn list_owned(&self, uid: &str, namespace: Option<&str>) -> Vec<Arc<Value>> {
        let texts = {
            let store = self.store.read();
            let Some(keys) = store.by_owner.get(uid) else {
                return Vec::new();
            };
            store.texts(keys, &|m: &Meta| {
                namespace.is_none_or(|ns| m.namespace == ns)
            })
        };
        self.decode_all(texts)
    }

    /// Objects without a controller, in `namespace` or in all namespaces.
    pub fn list_orphans(&self, namespace: Option<&str>) -> Vec<Arc<Value>> {
        self.select_orphans(namespace, |_| true)
    }

    /// Objects without a controller, in `namespace` or in all namespaces,
    /// whose metadata passes `keep` (only those are decoded).
    pub fn select_orphans(
        &self,
        namespace: Option<&str>,
        keep: impl Fn(&Meta) -> bool,
    ) -> Vec<Arc<Value>> {
        let texts = {
            let store = self.store.read();
            match namespace {
                Some(ns) => store
                    .orphans
                    .get(ns)
                    .map(|keys| store.texts(keys, &keep))
                    .unwrap_or_default(),
                None => store
                    .orphans
                    .values()
                    .flat_map(|keys| store.texts(keys, &keep))
                    .collect(),
            }
        };
        self.decode_all(texts)
    }

    /// Objects in `namespace` (`""` for cluster-scoped objects).
    pub fn list_namespace(&self, namespace: &str) -> Vec<Arc<Value>> {
        self.select(Some(namespace), |_| true)
    }

    /// Objects in `namespace` (every object with `None`) whose metadata
    /// passes `keep` (only those are decoded).
    pub fn select(&self, namespace: Option<&str>, keep: impl Fn(&Meta) -> bool) -> Vec<Arc<Value>> {
        let texts = {
            let store = self.store.read();
            match namespace {
                Some(ns) => store
                    .by_namespace
                    .get(ns)
                    .map(|keys| store.texts(keys, &keep))
                    .unwrap_or_default(),
                None => store.texts(store.objects.keys(), &keep),
            }
        };
        self.decode_all(texts)
    }

    /// Every cached object.
    pub fn list(&self) -> Vec<Arc<Value>> {
        self.select(None, |_| true)
    }

    /// Number of cached objects.
    pub fn len(&self) -> usize {
        self.store.read().objects.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held for the cached objects' text (compressed; see
    /// `informer::codec`).
    pub fn cached_bytes(&self) -> usize {
        self.store
            .read()
            .objects
            .values()
            .map(|e| e.text.len())
            .sum()
    }

    /// The object whose text [`Entry::new`] stored.
    fn decode(&self, text: &[u8]) -> Arc<Value> {
        let value = self
            .codec
            .decode(text)
            .map_err(|err| err.to_string())
            .and_then(|json| serde_json::from_slice(&json).map_err(|err| err.to_string()));
        Arc::new(value.unwrap_or_else(|err| {
            tracing::error!(resource = %self.resource.api_resource.plural, error = %err, "cached object does not decode");
            Value::Null
        }))
    }

    fn decode_all(&self, texts: Vec<Arc<[u8]>>) -> Vec<Arc<Value>> {
        texts.iter().map(|t| self.decode(t)).collect()
    }

    /// Whether the initial list has completed.
    pub fn has_synced(&self) -> bool {
        *self.synced.borrow()
    }

    /// Waits until the initial list has completed.
    pub async fn wait_synced(&self) {
        let mut rx = self.synced.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// Adds a handler. With `replay`, the handler first receives `on_add` for
    /// every cached object. Returns an id for [`Informer::unsubscribe`].
    pub fn subscribe(&self, handler: Arc<dyn EventHandler>, replay: bool) -> u64 {
        let id = self.next_handler.fetch_add(1, Ordering::Relaxed);
        {
            let mut handlers = self.handlers.write();
            let mut list: Vec<_> = handlers.iter().cloned().collect();
            list.push((id, handler.clone()));
            *handlers = Arc::new(list);
        }
        if replay {
            for obj in self.list() {
                handler.on_add(&obj);
            }
        }
        id
    }

    /// Removes a handler.
    pub fn unsubscribe(&self, id: u64) {
        let mut handlers = self.handlers.write();
        let list: Vec<_> = handlers.iter().filter(|(i, _)| *i != id).cloned().collect();
        *handlers = Arc::new(list);
    }

    fn handlers(&self) -> Handlers {
        self.handlers.read().clone()
    }

    /// Registers what a new handle needs; lists again when objects it may
    /// need were passed over.
    fn add_interest(&self, id: u64, interest: Interest) {
        let mut interests = self.interests.write();
        let covered = interests
            .iter()
            .any(|(_, i)| *i == Interest::All || *i == interest);
        interests.push((id, interest));
        drop(interests);
        if !covered && self.passed_over.load(Ordering::Relaxed) > 0 {
            tracing::debug!(api_version = %self.resource.api_version(), resource = %self.resource.plural(), "a wider interest joined; listing again");
            self.relist.notify_one();
        }
    }

    fn remove_interest(&self, id: u64) {
        self.interests.write().retain(|(i, _)| *i != id);
    }

    /// Whether some consumer needs `obj`.
    fn wanted(&self, obj: &Value) -> bool {
        self.interests.read().iter().any(|(_, i)| i.accepts(obj))
    }

    /// Sets `apiVersion` and `kind` when the server left them out (list
    /// items of built-in types usually carry neither).
    fn with_type(&self, raw: RawObject) -> Value {
        let mut value = raw.into_value();
        if let Some(root) = value.as_object_mut() {
            for (field, text) in [
                ("apiVersion", self.resource.api_version()),
                ("kind", self.resource.kind()),
            ] {
                if root
                    .get(field)
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    root.insert(field.to_owned(), Value::String(text.to_owned()));
                }
            }
        }
        value
    }

    fn apply(&self, raw: RawObject, seen: Option<&mut HashSet<String>>) {
        let obj = Arc::new(self.with_type(raw));
        let key = object::key(&obj);
        if !self.wanted(&obj) {
            // Not (or no longer) of interest: forget it.
            self.passed_over.fetch_add(1, Ordering::Relaxed);
            let removed = self.store.write().remove(&key);
            if let Some(old) = removed {
                let old = self.decode(&old.text);
                self.handlers().iter().for_each(|(_, h)| h.on_delete(&old));
            }
            return;
        }
        if let Some(seen) = seen {
            seen.insert(key.clone());
        }
        // A relist returns unchanged objects again; nothing to tell.
        let unchanged = |store: &Store| {
            store.objects.get(key.as_str()).is_some_and(|current| {
                current.resource_version() == object::resource_version(&obj)
                    && !current.resource_version().is_empty()
            })
        };
        if unchanged(&self.store.read()) {
            return;
        }
        // Encoded before the store is locked: readers don't wait for it.
        let entry = Entry::new(&obj, &self.codec);
        let old = {
            let mut store = self.store.write();
            if unchanged(&store) {
                return;
            }
            store.upsert(&key, entry)
        };
        match old {
            None => self.handlers().iter().for_each(|(_, h)| h.on_add(&obj)),
            Some(old) => {
                let handlers = self.handlers();
                if handlers.is_empty() {
                    return;
                }
                let old = self.decode(&old.text);
                handlers.iter().for_each(|(_, h)| h.on_update(&old, &obj));
            }
        }
    }

    fn delete(&self, raw: RawObject) {
        let value = self.with_type(raw);
        let key = object::key(&value);
        let removed = self.store.write().remove(&key);
        let last = match removed {
            Some(entry) => self.decode(&entry.text),
            // Never cached: nobody was told it existed.
            None if !self.wanted(&value) => return,
            None => Arc::new(value),
        };
        self.handlers().iter().for_each(|(_, h)| h.on_delete(&last));
    }

    /// Drops objects that a completed relist did not return.
    fn prune(&self, seen: &HashSet<String>) {
        let gone: Vec<Entry> = {
            let mut store = self.store.write();
            let stale: Vec<Key> = store
                .objects
                .keys()
                .filter(|k| !seen.contains(&***k))
                .cloned()
                .collect();
            stale.iter().filter_map(|k| store.remove(k)).collect()
        };
        if gone.is_empty() {
            return;
        }
        let handlers = self.handlers();
        for entry in &gone {
            let obj = self.decode(&entry.text);
            handlers.iter().for_each(|(_, h)| h.on_delete(&obj));
        }
    }

    /// Delivers every cached object again as an update.
    pub fn flush(&self) {
        let handlers = self.handlers();
        if handlers.is_empty() {
            return;
        }
        for obj in self.list() {
            handlers.iter().for_each(|(_, h)| h.on_update(&obj, &obj));
        }
    }

    async fn run(self: Arc<Self>, api: Api<RawObject>, flush_interval: Duration) {
        let flush_interval = flush_interval.max(Duration::from_secs(1));
        let mut flush =
            tokio::time::interval_at(tokio::time::Instant::now() + flush_interval, flush_interval);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let plural = self.resource.plural().to_owned();
        let api_version = self.resource.api_version().to_owned();
        'watch: loop {
            let stream =
                watcher::watcher(api.clone(), watcher::Config::default()).default_backoff();
            futures::pin_mut!(stream);
            let mut relist: Option<HashSet<String>> = None;
            loop {
                tokio::select! {
                    _ = self.cancel.cancelled() => break 'watch,
                    _ = self.relist.notified() => continue 'watch,
                    _ = flush.tick() => self.flush(),
                    event = stream.next() => match event {
                        None => break 'watch,
                        Some(Ok(Event::Init)) => {
                            self.passed_over.store(0, Ordering::Relaxed);
                            relist = Some(HashSet::new());
                        }
                        Some(Ok(Event::InitApply(obj))) => self.apply(obj, relist.as_mut()),
                        Some(Ok(Event::InitDone)) => {
                            if let Some(seen) = relist.take() {
                                self.prune(&seen);
                            }
                            self.synced.send_replace(true);
                            tracing::debug!(%api_version, resource = %plural, objects = self.len(), "watch cache synced");
                        }
                        Some(Ok(Event::Apply(obj))) => self.apply(obj, None),
                        Some(Ok(Event::Delete(obj))) => self.delete(obj),
                        Some(Err(err)) => {
                            tracing::warn!(verb = "watch", %api_version, resource = %plural, error = %crate::request_context::describe_watch(&err), "watch failed; retrying");
                        }
                    }
                }
            }
        }
        tracing::debug!(%api_version, resource = %plural, "watch stopped");
    }
}

struct Slot {
    informer: Arc<Informer>,
    refs: usize,
}

/// Creates and shares [`Informer`]s. See the [module documentation](self).
pub struct InformerFactory {
    client: kube::Client,
    flush_interval: Duration,
    informers: Mutex<HashMap<(String, String), Slot>>,
    next_interest: AtomicU64,
}

impl InformerFactory {
    /// A factory whose informers redeliver their objects every
    /// `flush_interval`.
    pub fn new(client: kube::Client, flush_interval: Duration) -> Arc<Self> {
        Arc::new(InformerFactory {
            client,
            flush_interval,
            informers: Mutex::new(HashMap::new()),
            next_interest: AtomicU64::new(0),
        })
    }

    /// A handle on the informer of `resource` that keeps every object,
    /// starting the informer if needed.
    pub fn acquire(self: &Arc<Self>, resource: &ResourceInfo) -> InformerHandle {
        self.acquire_for(resource, Interest::All)
    }

    /// A handle on the informer of `resource` for a consumer that needs the
    /// objects `interest` accepts, starting the informer if needed.
    pub fn acquire_for(
        self: &Arc<Self>,
        resource: &ResourceInfo,
        interest: Interest,
    ) -> InformerHandle {
        let key = (
            resource.api_version().to_owned(),
            resource.plural().to_owned(),
        );
        let interest_id = self.next_interest.fetch_add(1, Ordering::Relaxed);
        let mut informers = self.informers.lock();
        let mut fresh = false;
        let slot = informers.entry(key.clone()).or_insert_with(|| {
            fresh = true;
            let informer = Arc::new(Informer::new(resource.clone()));
            // Before the watch starts: nothing has been passed over yet.
            informer.add_interest(interest_id, interest.clone());
            let api = Api::<RawObject>::all_with(self.client.clone(), &resource.api_resource);
            tracing::debug!(api_version = %key.0, resource = %key.1, "starting watch");
            tokio::spawn(informer.clone().run(api, self.flush_interval));
            Slot { informer, refs: 0 }
        });
        if !fresh {
            slot.informer.add_interest(interest_id, interest);
        }
        slot.refs += 1;
        InformerHandle {
            informer: slot.informer.clone(),
            factory: self.clone(),
            key,
            interest_id,
        }
    }

    fn release(&self, key: &(String, String), interest_id: u64) {
        let mut informers = self.informers.lock();
        if let Some(slot) = informers.get_mut(key) {
            slot.informer.remove_interest(interest_id);
            slot.refs -= 1;
            if slot.refs == 0 {
                slot.informer.cancel.cancel();
                informers.remove(key);
            }
        }
    }

    /// Number of running informers.
    pub fn len(&self) -> usize {
        self.informers.lock().len()
    }

    /// Whether no informer runs.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops every informer.
    pub fn shutdown(&self) {
        for (_, slot) in self.informers.lock().drain() {
            slot.informer.cancel.cancel();
        }
    }
}

/// A counted reference to a shared [`Informer`]; dropping the last one stops
/// the watch.
pub struct InformerHandle {
    informer: Arc<Informer>,
    factory: Arc<InformerFactory>,
    key: (String, String),
    interest_id: u64,
}

impl InformerHandle {
    /// The shared informer itself (not counted).
    pub fn informer(&self) -> &Arc<Informer> {
        &self.informer
    }
}

impl std::ops::Deref for InformerHandle {
    type Target = Informer;

    fn deref(&self) -> &Informer {
        &self.informer
    }
}

impl Drop for InformerHandle {
    fn drop(&mut self) {
        self.factory.release(&self.key, self.interest_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metacontroller_selectors::Labels;
    use serde_json::json;

    fn obj(ns: &str, name: &str, owner: Option<&str>) -> Value {
        let mut v = json!({"metadata": {"name": name, "namespace": ns, "resourceVersion": "1",
            "labels": {"b": "2", "a": "1"}}});
        if let Some(uid) = owner {
            v["metadata"]["ownerReferences"] = json!([{"uid": uid, "controller": true, "kind": "P", "name": "p", "apiVersion": "v1"}]);
        }
        v
    }

    fn statefulsets() -> Informer {
        Informer::new(ResourceInfo {
            api_resource: kube::core::ApiResource {
                group: "apps".into(),
                version: "v1".into(),
                api_version: "apps/v1".into(),
                kind: "StatefulSet".into(),
                plural: "statefulsets".into(),
            },
            namespaced: true,
            has_status: true,
        })
    }

    #[test]
    fn list_items_get_their_type() {
        let informer = statefulsets();
        let bare = RawObject::new(json!({"metadata": {"name": "web", "namespace": "ns"}}));
        let typed = informer.with_type(bare);
        assert_eq!(typed["apiVersion"], "apps/v1");
        assert_eq!(typed["kind"], "StatefulSet");
        // Objects that carry a type keep it.
        let own = RawObject::new(json!({"apiVersion": "apps/v1beta2", "kind": "StatefulSet"}));
        assert_eq!(informer.with_type(own)["apiVersion"], "apps/v1beta2");
    }

    #[test]
    fn indexes_follow_updates_and_removals() {
        let mut s = Store::default();
        s.upsert("a/x", Entry::new(&obj("a", "x", None), &Codec::default()));
        s.upsert(
            "a/y",
            Entry::new(&obj("a", "y", Some("u1")), &Codec::default()),
        );
        s.upsert(
            "b/z",
            Entry::new(&obj("b", "z", Some("u1")), &Codec::default()),
        );
        assert_eq!(s.orphans["a"].len(), 1);
        assert_eq!(s.by_owner["u1"].len(), 2);
        assert_eq!(s.by_namespace["a"].len(), 2);
        // Adoption moves x from the orphans to the owner index.
        s.upsert(
            "a/x",
            Entry::new(&obj("a", "x", Some("u2")), &Codec::default()),
        );
        assert!(!s.orphans.contains_key("a"));
        assert_eq!(s.by_owner["u2"].len(), 1);
        // Release moves y back.
        s.upsert("a/y", Entry::new(&obj("a", "y", None), &Codec::default()));
        assert_eq!(s.by_owner["u1"].len(), 1);
        assert!(s.orphans["a"].contains("a/y"));
        s.remove("b/z");
        assert!(!s.by_owner.contains_key("u1"));
        assert!(!s.by_namespace.contains_key("b"));
        assert_eq!(s.objects.len(), 2);
        // Keys are shared between the map and the indexes.
        let (key, _) = s.objects.get_key_value("a/x").unwrap();
        assert!(Arc::ptr_eq(key, s.by_owner["u2"].get("a/x").unwrap()));
    }

    #[test]
    fn objects_come_back_as_they_were_cached() {
        let informer = statefulsets();
        informer.add_interest(0, Interest::All);
        let mut original = obj("ns", "web", Some("u1"));
        original["spec"] =
            json!({"replicas": 3, "ratio": 0.5, "big": u64::MAX, "neg": -7, "none": null});
        informer.apply(RawObject::new(original.clone()), None);
        let got = informer.get("ns/web").unwrap();
        original["apiVersion"] = json!("apps/v1");
        original["kind"] = json!("StatefulSet");
        assert_eq!(*got, original);
        assert_eq!(informer.list_owned("u1", Some("ns")).len(), 1);
        assert!(informer.list_owned("u1", Some("other")).is_empty());
        let selected = informer.select(Some("ns"), |m| {
            m.name == "web" && m.uid.is_empty() && m.labels.get("a") == Some("1")
        });
        assert_eq!(selected.len(), 1);
        assert!(
            informer
                .select(None, |m| m.labels.get("c").is_some())
                .is_empty()
        );
        // One object: it is its own dictionary, and compresses to a fraction.
        let json = serde_json::to_string(&original).unwrap().len();
        assert!(informer.cached_bytes() > 0 && informer.cached_bytes() < json);
    }

    #[test]
    fn children_interest_keeps_only_what_can_be_claimed() {
        let interest = Interest::Children {
            group: "example.com".into(),
            kind: "Parent".into(),
            orphan_label: Some("controller-uid".into()),
        };
        let owned_by = |api_version: &str, kind: &str| {
            json!({"metadata": {"name": "c", "ownerReferences": [
                {"apiVersion": api_version, "kind": kind, "name": "p", "uid": "u", "controller": true}]}})
        };
        assert!(interest.accepts(&owned_by("example.com/v1", "Parent")));
        assert!(interest.accepts(&owned_by("example.com/v2", "Parent")));
        assert!(!interest.accepts(&owned_by("apps/v1", "ReplicaSet")));
        assert!(!interest.accepts(&owned_by("other.com/v1", "Parent")));
        let orphan = |labels: Value| json!({"metadata": {"name": "o", "labels": labels}});
        assert!(interest.accepts(&orphan(json!({"controller-uid": "u"}))));
        assert!(!interest.accepts(&orphan(json!({"app": "x"}))));
        let any_labels = Interest::Children {
            group: "".into(),
            kind: "ConfigMap".into(),
            orphan_label: None,
        };
        assert!(any_labels.accepts(&orphan(json!({"app": "x"}))));
        assert!(!any_labels.accepts(&orphan(json!({}))));
        assert!(!any_labels.accepts(&json!({"metadata": {"name": "bare"}})));
        assert!(any_labels.accepts(&owned_by("v1", "ConfigMap")));
    }

    #[test]
    fn objects_that_stop_mattering_are_dropped() {
        struct Deletes(Mutex<Vec<String>>);
        impl EventHandler for Deletes {
            fn on_add(&self, _: &Arc<Value>) {}
            fn on_update(&self, _: &Arc<Value>, _: &Arc<Value>) {}
            fn on_delete(&self, obj: &Arc<Value>) {
                self.0.lock().push(object::name(obj).to_owned());
            }
        }
        let informer = statefulsets();
        informer.add_interest(
            0,
            Interest::Children {
                group: "".into(),
                kind: "P".into(),
                orphan_label: None,
            },
        );
        let deletes = Arc::new(Deletes(Mutex::new(Vec::new())));
        informer.subscribe(deletes.clone(), false);
        informer.apply(RawObject::new(obj("ns", "mine", Some("u1"))), None);
        assert_eq!(informer.len(), 1);
        // Taken over by another kind of controller: gone from the cache,
        // and its subscribers hear of it.
        let mut taken = obj("ns", "mine", None);
        taken["metadata"]["resourceVersion"] = json!("2");
        taken["metadata"]["ownerReferences"] = json!([{"uid": "rs", "controller": true, "kind": "ReplicaSet", "name": "r", "apiVersion": "apps/v1"}]);
        informer.apply(RawObject::new(taken.clone()), None);
        assert!(informer.is_empty());
        assert_eq!(*deletes.0.lock(), ["mine"]);
        // Deleting what was never cached tells nobody.
        informer.delete(RawObject::new(taken));
        assert_eq!(deletes.0.lock().len(), 1);
        assert_eq!(informer.passed_over.load(Ordering::Relaxed), 1);
    }
}
