//! Shared watch caches ("informers").
//!
//! One [`Informer`] per (apiVersion, resource) is shared by every hosted
//! controller that needs it. It runs a kube-rs [`watcher`] over all
//! namespaces, keeps the objects as `Arc<Value>`s keyed `namespace/name`, and
//! maintains three indexes so that claiming children never scans the whole
//! cache:
//!
//! * by namespace,
//! * by the UID of the object's controller (the owner reference with
//!   `controller: true`),
//! * orphans (no controller), by namespace.
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
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::discovery::ResourceInfo;
use crate::object::{self, RawObject};

/// Receives the changes of an informer.
pub trait EventHandler: Send + Sync {
    /// An object appeared (or was replayed on subscription).
    fn on_add(&self, obj: &Arc<Value>);
    /// An object changed; `old` and `new` are the same `Arc` for periodic
    /// redelivery.
    fn on_update(&self, old: &Arc<Value>, new: &Arc<Value>);
    /// An object disappeared; `obj` is its last known state.
    fn on_delete(&self, obj: &Arc<Value>);
}

type Handlers = Arc<Vec<(u64, Arc<dyn EventHandler>)>>;

#[derive(Default)]
struct Store {
    objects: HashMap<String, Arc<Value>>,
    by_namespace: HashMap<String, HashSet<String>>,
    by_owner: HashMap<String, HashSet<String>>,
    orphans: HashMap<String, HashSet<String>>,
}

fn index_insert(index: &mut HashMap<String, HashSet<String>>, bucket: &str, key: &str) {
    index
        .entry(bucket.to_owned())
        .or_default()
        .insert(key.to_owned());
}

fn index_remove(index: &mut HashMap<String, HashSet<String>>, bucket: &str, key: &str) {
    if let Some(set) = index.get_mut(bucket) {
        set.remove(key);
        if set.is_empty() {
            index.remove(bucket);
        }
    }
}

impl Store {
    fn index(&mut self, key: &str, obj: &Value) {
        let ns = object::namespace(obj).unwrap_or_default();
        index_insert(&mut self.by_namespace, ns, key);
        match metacontroller_apply::owner::controller_uid(obj) {
            Some(uid) => index_insert(&mut self.by_owner, uid, key),
            None => index_insert(&mut self.orphans, ns, key),
        }
    }

    fn unindex(&mut self, key: &str, obj: &Value) {
        let ns = object::namespace(obj).unwrap_or_default();
        index_remove(&mut self.by_namespace, ns, key);
        match metacontroller_apply::owner::controller_uid(obj) {
            Some(uid) => index_remove(&mut self.by_owner, uid, key),
            None => index_remove(&mut self.orphans, ns, key),
        }
    }

    /// Inserts or replaces; returns the previous object.
    fn upsert(&mut self, key: String, obj: Arc<Value>) -> Option<Arc<Value>> {
        let old = self.objects.insert(key.clone(), obj.clone());
        if let Some(old) = &old {
            let same_index = object::namespace(old) == object::namespace(&obj)
                && metacontroller_apply::owner::controller_uid(old)
                    == metacontroller_apply::owner::controller_uid(&obj);
            if same_index {
                return Some(old.clone());
            }
            self.unindex(&key, old);
        }
        self.index(&key, &obj);
        old
    }

    fn remove(&mut self, key: &str) -> Option<Arc<Value>> {
        let old = self.objects.remove(key)?;
        self.unindex(key, &old);
        Some(old)
    }

    fn collect<'a>(&self, keys: impl IntoIterator<Item = &'a String>) -> Vec<Arc<Value>> {
        keys.into_iter()
            .filter_map(|k| self.objects.get(k).cloned())
            .collect()
    }
}

/// A shared watch cache for one resource. See the
/// [module documentation](self).
pub struct Informer {
    resource: ResourceInfo,
    store: RwLock<Store>,
    handlers: RwLock<Handlers>,
    next_handler: AtomicU64,
    synced: watch::Sender<bool>,
    cancel: CancellationToken,
}

impl Informer {
    /// The watched resource.
    pub fn resource(&self) -> &ResourceInfo {
        &self.resource
    }

    /// The object with key `namespace/name` (or `name`).
    pub fn get(&self, key: &str) -> Option<Arc<Value>> {
        self.store.read().objects.get(key).cloned()
    }

    /// Objects whose controller has `uid`, optionally only in `namespace`.
    pub fn list_owned(&self, uid: &str, namespace: Option<&str>) -> Vec<Arc<Value>> {
        let store = self.store.read();
        let Some(keys) = store.by_owner.get(uid) else {
            return Vec::new();
        };
        match namespace {
            None => store.collect(keys),
            Some(ns) => keys
                .iter()
                .filter_map(|k| store.objects.get(k))
                .filter(|o| object::namespace(o) == Some(ns))
                .cloned()
                .collect(),
        }
    }

    /// Objects without a controller, in `namespace` or in all namespaces.
    pub fn list_orphans(&self, namespace: Option<&str>) -> Vec<Arc<Value>> {
        let store = self.store.read();
        match namespace {
            Some(ns) => store
                .orphans
                .get(ns)
                .map(|keys| store.collect(keys))
                .unwrap_or_default(),
            None => store
                .orphans
                .values()
                .flat_map(|keys| store.collect(keys))
                .collect(),
        }
    }

    /// Objects in `namespace` (`""` for cluster-scoped objects).
    pub fn list_namespace(&self, namespace: &str) -> Vec<Arc<Value>> {
        let store = self.store.read();
        store
            .by_namespace
            .get(namespace)
            .map(|keys| store.collect(keys))
            .unwrap_or_default()
    }

    /// Every cached object.
    pub fn list(&self) -> Vec<Arc<Value>> {
        self.store.read().objects.values().cloned().collect()
    }

    /// Number of cached objects.
    pub fn len(&self) -> usize {
        self.store.read().objects.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
        if let Some(seen) = seen {
            seen.insert(key.clone());
        }
        let old = self.store.write().upsert(key, obj.clone());
        match old {
            None => self.handlers().iter().for_each(|(_, h)| h.on_add(&obj)),
            Some(old) => {
                // A relist returns unchanged objects again; nothing to tell.
                if object::resource_version(&old) == object::resource_version(&obj)
                    && !object::resource_version(&obj).is_empty()
                {
                    return;
                }
                self.handlers()
                    .iter()
                    .for_each(|(_, h)| h.on_update(&old, &obj));
            }
        }
    }

    fn delete(&self, raw: RawObject) {
        let value = self.with_type(raw);
        let key = object::key(&value);
        let removed = self.store.write().remove(&key);
        let last = removed.unwrap_or_else(|| Arc::new(value));
        self.handlers().iter().for_each(|(_, h)| h.on_delete(&last));
    }

    /// Drops objects that a completed relist did not return.
    fn prune(&self, seen: &HashSet<String>) {
        let gone: Vec<Arc<Value>> = {
            let mut store = self.store.write();
            let stale: Vec<String> = store
                .objects
                .keys()
                .filter(|k| !seen.contains(*k))
                .cloned()
                .collect();
            stale.iter().filter_map(|k| store.remove(k)).collect()
        };
        if gone.is_empty() {
            return;
        }
        let handlers = self.handlers();
        for obj in &gone {
            handlers.iter().for_each(|(_, h)| h.on_delete(obj));
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
        let stream = watcher::watcher(api, watcher::Config::default()).default_backoff();
        futures::pin_mut!(stream);
        let flush_interval = flush_interval.max(Duration::from_secs(1));
        let mut flush =
            tokio::time::interval_at(tokio::time::Instant::now() + flush_interval, flush_interval);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut relist: Option<HashSet<String>> = None;
        let plural = self.resource.plural().to_owned();
        let api_version = self.resource.api_version().to_owned();
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => break,
                _ = flush.tick() => self.flush(),
                event = stream.next() => match event {
                    None => break,
                    Some(Ok(Event::Init)) => relist = Some(HashSet::new()),
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
                        tracing::warn!(%api_version, resource = %plural, error = %err, "watch failed; retrying");
                    }
                }
            }
        }
        tracing::debug!(%api_version, resource = %plural, "watch stopped");
    }
}

struct Entry {
    informer: Arc<Informer>,
    refs: usize,
}

/// Creates and shares [`Informer`]s. See the [module documentation](self).
pub struct InformerFactory {
    client: kube::Client,
    flush_interval: Duration,
    informers: Mutex<HashMap<(String, String), Entry>>,
}

impl InformerFactory {
    /// A factory whose informers redeliver their objects every
    /// `flush_interval`.
    pub fn new(client: kube::Client, flush_interval: Duration) -> Arc<Self> {
        Arc::new(InformerFactory {
            client,
            flush_interval,
            informers: Mutex::new(HashMap::new()),
        })
    }

    /// A handle on the informer of `resource`, starting it if needed.
    pub fn acquire(self: &Arc<Self>, resource: &ResourceInfo) -> InformerHandle {
        let key = (
            resource.api_version().to_owned(),
            resource.plural().to_owned(),
        );
        let mut informers = self.informers.lock();
        let entry = informers.entry(key.clone()).or_insert_with(|| {
            let informer = Arc::new(Informer {
                resource: resource.clone(),
                store: RwLock::new(Store::default()),
                handlers: RwLock::new(Arc::new(Vec::new())),
                next_handler: AtomicU64::new(0),
                synced: watch::channel(false).0,
                cancel: CancellationToken::new(),
            });
            let api = Api::<RawObject>::all_with(self.client.clone(), &resource.api_resource);
            tracing::debug!(api_version = %key.0, resource = %key.1, "starting watch");
            tokio::spawn(informer.clone().run(api, self.flush_interval));
            Entry { informer, refs: 0 }
        });
        entry.refs += 1;
        InformerHandle {
            informer: entry.informer.clone(),
            factory: self.clone(),
            key,
        }
    }

    fn release(&self, key: &(String, String)) {
        let mut informers = self.informers.lock();
        if let Some(entry) = informers.get_mut(key) {
            entry.refs -= 1;
            if entry.refs == 0 {
                entry.informer.cancel.cancel();
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
        for (_, entry) in self.informers.lock().drain() {
            entry.informer.cancel.cancel();
        }
    }
}

/// A counted reference to a shared [`Informer`]; dropping the last one stops
/// the watch.
pub struct InformerHandle {
    informer: Arc<Informer>,
    factory: Arc<InformerFactory>,
    key: (String, String),
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
        self.factory.release(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(ns: &str, name: &str, owner: Option<&str>) -> Arc<Value> {
        let mut v = json!({"metadata": {"name": name, "namespace": ns, "resourceVersion": "1"}});
        if let Some(uid) = owner {
            v["metadata"]["ownerReferences"] = json!([{"uid": uid, "controller": true, "kind": "P", "name": "p", "apiVersion": "v1"}]);
        }
        Arc::new(v)
    }

    #[test]
    fn list_items_get_their_type() {
        let informer = Informer {
            resource: ResourceInfo {
                api_resource: kube::core::ApiResource {
                    group: "apps".into(),
                    version: "v1".into(),
                    api_version: "apps/v1".into(),
                    kind: "StatefulSet".into(),
                    plural: "statefulsets".into(),
                },
                namespaced: true,
                has_status: true,
            },
            store: RwLock::new(Store::default()),
            handlers: RwLock::new(Arc::new(Vec::new())),
            next_handler: AtomicU64::new(0),
            synced: watch::channel(false).0,
            cancel: CancellationToken::new(),
        };
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
        s.upsert("a/x".into(), obj("a", "x", None));
        s.upsert("a/y".into(), obj("a", "y", Some("u1")));
        s.upsert("b/z".into(), obj("b", "z", Some("u1")));
        assert_eq!(s.orphans["a"].len(), 1);
        assert_eq!(s.by_owner["u1"].len(), 2);
        assert_eq!(s.by_namespace["a"].len(), 2);
        // Adoption moves x from the orphans to the owner index.
        s.upsert("a/x".into(), obj("a", "x", Some("u2")));
        assert!(!s.orphans.contains_key("a"));
        assert_eq!(s.by_owner["u2"].len(), 1);
        // Release moves y back.
        s.upsert("a/y".into(), obj("a", "y", None));
        assert_eq!(s.by_owner["u1"].len(), 1);
        assert!(s.orphans["a"].contains("a/y"));
        s.remove("b/z");
        assert!(!s.by_owner.contains_key("u1"));
        assert!(!s.by_namespace.contains_key("b"));
        assert_eq!(s.objects.len(), 2);
    }
}
