//! Object storage: one table of objects per [`GroupResource`], a single
//! cluster-wide resourceVersion counter (like etcd's revision), a bounded
//! per-table event history that watches read from, and the uid and
//! owner-reference indexes the garbage collector needs.
//!
//! The history is bounded twice: by a number of events and by the
//! approximate JSON size of the objects it holds ([`json_size`]). Each event
//! holds a whole object (and its encoded JSON once a watcher has read it),
//! so a count alone lets memory grow with object size times write rate: at
//! 100,000 events per resource a busy resource kept over a gigabyte of
//! objects that were long deleted. Watches resuming from a position older
//! than the history get `410 Gone` and relist, as from kube-apiserver,
//! whose watch cache is likewise a bounded window
//! (`staging/src/k8s.io/apiserver/pkg/storage/cacher/watch_cache.go`).
//!
//! This module knows nothing of HTTP or of Kubernetes verb semantics; those
//! live in `objects`. Every write funnels through [`Inner::put`] and
//! [`Inner::remove`], which is where a [`WriteLog`] (persistence) hooks in.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use imbl::OrdMap;
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use crate::registry::{GroupResource, ResourceInfo};

/// `(namespace, name)`; the namespace is empty for cluster-scoped objects.
pub type Key = (String, String);

/// A reference to one stored object.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjRef {
    /// The object's resource.
    pub gr: GroupResource,
    /// Its namespace; empty when cluster-scoped.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl ObjRef {
    /// The store key (namespace, name).
    pub fn key(&self) -> Key {
        (self.namespace.clone(), self.name.clone())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
/// The type of a watch event.
pub enum EventType {
    /// The object was created.
    Added,
    /// The object was changed.
    Modified,
    /// The object was removed.
    Deleted,
}

impl EventType {
    /// The event type as a watch stream spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change to one object, as kept in a table's history.
#[derive(Clone, Debug)]
pub struct Event {
    /// The resourceVersion of the change.
    pub rv: u64,
    /// What happened.
    pub ty: EventType,
    /// The object after the change (for deletes: its last state, carrying the
    /// resourceVersion of the deletion, as etcd-backed watches report it).
    pub object: Arc<Value>,
    /// The object before the change, for selector transitions (`None` for
    /// deletes: `object` is then the last state itself).
    pub prev: Option<Arc<Value>>,
    /// [`json_size`] of `object`, counted against the history's budget.
    pub size: usize,
    /// `object` as JSON, encoded once and shared by every watcher.
    pub encoded: Arc<std::sync::OnceLock<Vec<u8>>>,
}

impl Event {
    /// `object` serialised as JSON (computed on first use).
    pub fn object_json(&self) -> &[u8] {
        self.encoded
            .get_or_init(|| serde_json::to_vec(&*self.object).unwrap_or_default())
    }
}

/// How many bytes of history each resource keeps by default (approximate
/// JSON size of the objects; the memory they take is a few times more).
pub const DEFAULT_HISTORY_BYTES: usize = 32 << 20;

/// About how many bytes `value` takes as compact JSON, without encoding it
/// (keys and strings are counted without escapes, numbers at 8 bytes).
pub fn json_size(value: &Value) -> usize {
    match value {
        Value::Null => 4,
        Value::Bool(_) => 5,
        Value::Number(_) => 8,
        Value::String(s) => s.len() + 2,
        Value::Array(items) => 2 + items.iter().map(|v| json_size(v) + 1).sum::<usize>(),
        Value::Object(map) => {
            2 + map
                .iter()
                .map(|(k, v)| k.len() + 4 + json_size(v))
                .sum::<usize>()
        }
    }
}

/// A durable record of one committed write, for persistence.
#[derive(Clone, Debug)]
pub struct WriteRecord<'a> {
    /// The resourceVersion of the write.
    pub rv: u64,
    /// The object's resource.
    pub gr: &'a GroupResource,
    /// The object's key.
    pub key: &'a Key,
    /// `None` for a removal.
    pub object: Option<&'a Value>,
}

/// Receives every committed write, in order, before it becomes visible.
pub trait WriteLog: Send {
    /// Records one write; an error fails the write.
    fn append(&mut self, record: &WriteRecord<'_>) -> std::io::Result<()>;
}

/// Work for the lifecycle controllers (garbage collector, namespace and CRD
/// cleanup), derived from committed writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LifecycleWork {
    /// An object with this uid is gone: its dependents may be orphans now.
    OwnerRemoved(String),
    /// An object is being deleted with `orphan` or `foregroundDeletion`.
    OwnerDeleting(ObjRef),
    /// An object references owners that may not exist.
    CheckOwners(ObjRef),
    /// A namespace is terminating.
    NamespaceDeleting(String),
    /// A CustomResourceDefinition is terminating.
    CrdDeleting(String),
}

/// The objects of one resource, with the history watches read from.
pub struct Table {
    /// The objects, ordered by key (namespace, name).
    pub objects: OrdMap<Key, Arc<Value>>,
    history: VecDeque<Event>,
    /// Sum of [`json_size`] over the objects in `history`.
    history_bytes: usize,
    /// Every event with a resourceVersion greater than this is in `history`.
    compacted_rv: u64,
    tx: watch::Sender<u64>,
}

impl Table {
    fn new(rv: u64) -> Self {
        Self {
            objects: OrdMap::new(),
            history: VecDeque::new(),
            history_bytes: 0,
            compacted_rv: 0,
            tx: watch::channel(rv).0,
        }
    }
}

/// Watch position error: the requested resourceVersion is older than the
/// kept history.
#[derive(Debug, Clone, Copy)]
pub struct TooOld {
    /// The oldest resourceVersion still in the history.
    pub oldest: u64,
}

/// The served resources, indexed.
#[derive(Clone, Default)]
pub struct Resources {
    /// Every served resource at every served version, in priority order.
    pub list: Arc<Vec<ResourceInfo>>,
    /// Distinct for every distinct set (a process-wide counter), so caches
    /// derived from the set can tell when it changed.
    pub generation: u64,
    by_gvr: HashMap<(String, String, String), usize>,
    by_gr: HashMap<GroupResource, usize>,
}

impl Resources {
    /// Indexes `list`.
    pub fn new(list: Vec<ResourceInfo>) -> Self {
        let mut by_gvr = HashMap::new();
        let mut by_gr = HashMap::new();
        for (i, r) in list.iter().enumerate() {
            by_gvr.insert((r.group.clone(), r.version.clone(), r.plural.clone()), i);
            if r.version == r.storage_version {
                by_gr.insert(r.group_resource(), i);
            }
        }
        static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Self {
            list: Arc::new(list),
            generation: GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            by_gvr,
            by_gr,
        }
    }

    /// The resource served at this group, version and plural name.
    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceInfo> {
        self.by_gvr
            .get(&(group.to_string(), version.to_string(), plural.to_string()))
            .map(|i| &self.list[*i])
    }

    /// The storage-version entry of a resource.
    pub fn storage(&self, gr: &GroupResource) -> Option<&ResourceInfo> {
        self.by_gr.get(gr).map(|i| &self.list[*i])
    }

    /// Is any version of this group served?
    pub fn has_group_version(&self, group: &str, version: &str) -> bool {
        self.list
            .iter()
            .any(|r| r.group == group && r.version == version)
    }
}

/// Everything behind the server's one lock.
pub struct Inner {
    rv: u64,
    tables: HashMap<GroupResource, Table>,
    uids: HashMap<String, ObjRef>,
    /// owner uid → objects whose ownerReferences name it.
    dependents: HashMap<String, BTreeSet<ObjRef>>,
    /// The served resources.
    pub resources: Resources,
    history_limit: usize,
    history_bytes: usize,
    log: Option<Box<dyn WriteLog>>,
    background: mpsc::UnboundedSender<LifecycleWork>,
}

fn metadata(obj: &Value) -> Option<&serde_json::Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

/// `metadata.uid`.
pub fn uid_of(obj: &Value) -> Option<&str> {
    metadata(obj)?.get("uid")?.as_str()
}

/// uids named by the object's ownerReferences.
pub fn owner_uids(obj: &Value) -> Vec<String> {
    metadata(obj)
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter_map(|r| r.get("uid").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `metadata.finalizers`.
pub fn finalizers(obj: &Value) -> Vec<&str> {
    metadata(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|f| f.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Whether `metadata.deletionTimestamp` is set.
pub fn is_deleting(obj: &Value) -> bool {
    metadata(obj)
        .and_then(|m| m.get("deletionTimestamp"))
        .is_some_and(|v| !v.is_null())
}

/// The finalizer of a delete with `propagationPolicy: Orphan`.
pub const ORPHAN_FINALIZER: &str = "orphan";
/// The finalizer of a delete with `propagationPolicy: Foreground`.
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";

impl Inner {
    /// An empty store serving `resources`, keeping `history_limit` events per
    /// resource and sending lifecycle work to `background`.
    pub fn new(
        resources: Resources,
        history_limit: usize,
        background: mpsc::UnboundedSender<LifecycleWork>,
    ) -> Self {
        let mut inner = Self {
            rv: 0,
            tables: HashMap::new(),
            uids: HashMap::new(),
            dependents: HashMap::new(),
            resources,
            history_limit: history_limit.max(1),
            history_bytes: DEFAULT_HISTORY_BYTES,
            log: None,
            background,
        };
        let grs: Vec<GroupResource> = inner
            .resources
            .list
            .iter()
            .map(ResourceInfo::group_resource)
            .collect();
        for gr in grs {
            inner.ensure_table(&gr);
        }
        inner
    }

    /// Bounds each table's history to about `bytes` of objects (as JSON);
    /// the newest event is always kept.
    pub fn set_history_bytes(&mut self, bytes: usize) {
        self.history_bytes = bytes;
    }

    /// Sends every later write to `log` before it becomes visible.
    pub fn set_log(&mut self, log: Box<dyn WriteLog>) {
        self.log = Some(log);
    }

    /// Restores the counter after loading persisted state.
    pub fn set_rv(&mut self, rv: u64) {
        self.rv = self.rv.max(rv);
    }

    /// The resourceVersion of the last write.
    pub fn current_rv(&self) -> u64 {
        self.rv
    }

    /// Creates the table of `gr` if it does not exist.
    pub fn ensure_table(&mut self, gr: &GroupResource) {
        let rv = self.rv;
        self.tables
            .entry(gr.clone())
            .or_insert_with(|| Table::new(rv));
    }

    /// Drops a whole table (a deleted CRD); open watches on it end.
    pub fn drop_table(&mut self, gr: &GroupResource) {
        if let Some(table) = self.tables.remove(gr) {
            for obj in table.objects.values() {
                if let Some(uid) = uid_of(obj) {
                    self.uids.remove(uid);
                }
            }
        }
    }

    /// The table of `gr`.
    pub fn table(&self, gr: &GroupResource) -> Option<&Table> {
        self.tables.get(gr)
    }

    /// One stored object.
    pub fn get(&self, gr: &GroupResource, key: &Key) -> Option<&Arc<Value>> {
        self.tables.get(gr)?.objects.get(key)
    }

    /// The object with this uid, if it exists.
    pub fn lookup_uid(&self, uid: &str) -> Option<&ObjRef> {
        self.uids.get(uid)
    }

    /// The object with this uid, with its reference.
    pub fn get_by_uid(&self, uid: &str) -> Option<(&ObjRef, &Arc<Value>)> {
        let r = self.uids.get(uid)?;
        Some((r, self.get(&r.gr, &r.key())?))
    }

    /// The objects whose ownerReferences name `uid`.
    pub fn dependents_of(&self, uid: &str) -> Vec<ObjRef> {
        self.dependents
            .get(uid)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// All objects of a table in one namespace (or all, for `None`).
    pub fn objects_in(&self, gr: &GroupResource, namespace: Option<&str>) -> Vec<Arc<Value>> {
        let Some(table) = self.tables.get(gr) else {
            return Vec::new();
        };
        match namespace {
            None => table.objects.values().cloned().collect(),
            Some(ns) => table
                .objects
                .range((ns.to_string(), String::new())..)
                .take_while(|((n, _), _)| n == ns)
                .map(|(_, v)| v.clone())
                .collect(),
        }
    }

    /// Watch events kept for `gr` (0 when it has no table).
    pub fn history_len(&self, gr: &GroupResource) -> usize {
        self.tables.get(gr).map_or(0, |t| t.history.len())
    }

    /// Approximate JSON size of the objects in `gr`'s history.
    pub fn history_bytes(&self, gr: &GroupResource) -> usize {
        self.tables.get(gr).map_or(0, |t| t.history_bytes)
    }

    /// Objects indexed by uid.
    pub fn uid_count(&self) -> usize {
        self.uids.len()
    }

    /// Owners with at least one dependent indexed.
    pub fn owner_count(&self) -> usize {
        self.dependents.len()
    }

    /// Every table's resource.
    pub fn table_names(&self) -> Vec<GroupResource> {
        self.tables.keys().cloned().collect()
    }

    /// A consistent copy of a table (cheap: structural sharing).
    pub fn snapshot(&self, gr: &GroupResource) -> Option<(u64, OrdMap<Key, Arc<Value>>)> {
        Some((self.rv, self.tables.get(gr)?.objects.clone()))
    }

    /// A receiver woken with the resourceVersion of each write to `gr`.
    pub fn subscribe(&self, gr: &GroupResource) -> Option<watch::Receiver<u64>> {
        Some(self.tables.get(gr)?.tx.subscribe())
    }

    /// Events after `rv`, at most `max`. `Err` when `rv` is older than the
    /// kept history; `Ok(None)` when the table no longer exists.
    pub fn events_after(
        &self,
        gr: &GroupResource,
        rv: u64,
        max: usize,
    ) -> Result<Option<Vec<Event>>, TooOld> {
        let Some(table) = self.tables.get(gr) else {
            return Ok(None);
        };
        if rv < table.compacted_rv {
            return Err(TooOld {
                oldest: table.compacted_rv,
            });
        }
        let start = table.history.partition_point(|e| e.rv <= rv);
        Ok(Some(
            table.history.range(start..).take(max).cloned().collect(),
        ))
    }

    /// Forgets history up to and including `rv` in every table, so that
    /// watches from older resourceVersions get 410 Gone.
    pub fn compact(&mut self, rv: u64) {
        let current = self.rv;
        for table in self.tables.values_mut() {
            while table.history.front().is_some_and(|e| e.rv <= rv) {
                if let Some(old) = table.history.pop_front() {
                    table.history_bytes -= old.size;
                }
            }
            table.compacted_rv = table.compacted_rv.max(rv.min(current));
        }
    }

    fn commit_log(&mut self, gr: &GroupResource, key: &Key, rv: u64, obj: Option<&Value>) {
        if let Some(log) = self.log.as_mut() {
            let record = WriteRecord {
                rv,
                gr,
                key,
                object: obj,
            };
            if let Err(e) = log.append(&record) {
                // An unlogged write must not become visible: a durable store
                // that cannot write is a fatal condition for the process.
                panic!("write log failed, refusing to continue: {e}");
            }
        }
    }

    /// Loads an object as it was persisted: no event, no new resourceVersion.
    pub fn restore(&mut self, gr: &GroupResource, key: Key, obj: Value) {
        self.ensure_table(gr);
        let obj = Arc::new(obj);
        self.index(gr, &key, None, Some(&obj));
        self.tables.get_mut(gr).unwrap().objects.insert(key, obj);
    }

    /// Stores `obj` under a new resourceVersion and publishes the event.
    pub fn put(&mut self, gr: &GroupResource, key: Key, mut obj: Value) -> Arc<Value> {
        self.rv += 1;
        let rv = self.rv;
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
        }
        self.commit_log(gr, &key, rv, Some(&obj));
        self.ensure_table(gr);
        let obj = Arc::new(obj);
        let prev = self
            .tables
            .get_mut(gr)
            .unwrap()
            .objects
            .insert(key.clone(), obj.clone());
        self.index(gr, &key, prev.as_deref(), Some(&obj));
        let ty = if prev.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.publish(
            gr,
            Event {
                rv,
                ty,
                size: json_size(&obj),
                object: obj.clone(),
                prev: prev.clone(),
                encoded: Default::default(),
            },
        );
        self.derive_background(gr, &key, prev.as_deref(), Some(&obj));
        obj
    }

    /// Removes an object; returns its last state stamped with the deletion's
    /// resourceVersion.
    pub fn remove(&mut self, gr: &GroupResource, key: &Key) -> Option<Arc<Value>> {
        let table = self.tables.get(gr)?;
        table.objects.get(key)?;
        self.rv += 1;
        let rv = self.rv;
        self.commit_log(gr, key, rv, None);
        let prev = self.tables.get_mut(gr)?.objects.remove(key)?;
        self.index(gr, key, Some(&prev), None);
        let mut last = (*prev).clone();
        if let Some(meta) = last.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
        }
        let last = Arc::new(last);
        self.publish(
            gr,
            Event {
                rv,
                ty: EventType::Deleted,
                size: json_size(&last),
                object: last.clone(),
                prev: None,
                encoded: Default::default(),
            },
        );
        self.derive_background(gr, key, Some(&prev), None);
        Some(last)
    }

    fn publish(&mut self, gr: &GroupResource, event: Event) {
        let (limit, bytes) = (self.history_limit, self.history_bytes);
        let table = self.tables.get_mut(gr).unwrap();
        let rv = event.rv;
        table.history_bytes += event.size;
        table.history.push_back(event);
        while table.history.len() > limit
            || (table.history_bytes > bytes && table.history.len() > 1)
        {
            if let Some(old) = table.history.pop_front() {
                table.history_bytes -= old.size;
                table.compacted_rv = old.rv;
            }
        }
        table.tx.send_replace(rv);
    }

    fn index(&mut self, gr: &GroupResource, key: &Key, prev: Option<&Value>, next: Option<&Value>) {
        let me = ObjRef {
            gr: gr.clone(),
            namespace: key.0.clone(),
            name: key.1.clone(),
        };
        if let Some(uid) = prev.and_then(uid_of)
            && next.and_then(uid_of) != Some(uid)
        {
            self.uids.remove(uid);
        }
        if let Some(uid) = next.and_then(uid_of) {
            self.uids.insert(uid.to_string(), me.clone());
        }
        let before = prev.map(owner_uids).unwrap_or_default();
        let after = next.map(owner_uids).unwrap_or_default();
        for uid in before.iter().filter(|u| !after.contains(u)) {
            if let Some(set) = self.dependents.get_mut(uid) {
                set.remove(&me);
                if set.is_empty() {
                    self.dependents.remove(uid);
                }
            }
        }
        for uid in after.iter().filter(|u| !before.contains(u)) {
            self.dependents
                .entry(uid.clone())
                .or_default()
                .insert(me.clone());
        }
    }

    fn derive_background(
        &mut self,
        gr: &GroupResource,
        key: &Key,
        prev: Option<&Value>,
        next: Option<&Value>,
    ) {
        let me = || ObjRef {
            gr: gr.clone(),
            namespace: key.0.clone(),
            name: key.1.clone(),
        };
        let mut work = Vec::new();
        match next {
            None => {
                if let Some(prev) = prev {
                    if let Some(uid) = uid_of(prev)
                        && self.dependents.contains_key(uid)
                    {
                        work.push(LifecycleWork::OwnerRemoved(uid.to_string()));
                    }
                    // A dependent went away: owners waiting in the foreground
                    // may be able to finish.
                    for owner in owner_uids(prev) {
                        if let Some((oref, o)) = self.get_by_uid(&owner)
                            && is_deleting(o)
                            && finalizers(o).contains(&FOREGROUND_FINALIZER)
                        {
                            work.push(LifecycleWork::OwnerDeleting(oref.clone()));
                        }
                    }
                }
            }
            Some(obj) => {
                if is_deleting(obj) {
                    let f = finalizers(obj);
                    if f.contains(&ORPHAN_FINALIZER) || f.contains(&FOREGROUND_FINALIZER) {
                        work.push(LifecycleWork::OwnerDeleting(me()));
                    }
                    if gr.group.is_empty() && gr.resource == "namespaces" {
                        work.push(LifecycleWork::NamespaceDeleting(key.1.clone()));
                    }
                    if gr.group == "apiextensions.k8s.io"
                        && gr.resource == "customresourcedefinitions"
                    {
                        work.push(LifecycleWork::CrdDeleting(key.1.clone()));
                    }
                }
                let owners = owner_uids(obj);
                if !owners.is_empty()
                    && prev.map(owner_uids).as_ref() != Some(&owners)
                    && owners.iter().any(|u| !self.uids.contains_key(u))
                {
                    work.push(LifecycleWork::CheckOwners(me()));
                }
            }
        }
        for w in work {
            let _ = self.background.send(w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn inner() -> (Inner, mpsc::UnboundedReceiver<LifecycleWork>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Inner::new(Resources::default(), 3, tx), rx)
    }

    fn gr() -> GroupResource {
        GroupResource::new("", "configmaps")
    }

    #[test]
    fn put_and_remove_advance_the_resource_version_and_history() {
        let (mut s, _rx) = inner();
        let key = ("ns".to_string(), "a".to_string());
        let o = s.put(
            &gr(),
            key.clone(),
            json!({"metadata": {"name": "a", "uid": "u1"}}),
        );
        assert_eq!(o["metadata"]["resourceVersion"], "1");
        let o = s.put(
            &gr(),
            key.clone(),
            json!({"metadata": {"name": "a", "uid": "u1"}}),
        );
        assert_eq!(o["metadata"]["resourceVersion"], "2");
        let gone = s.remove(&gr(), &key).unwrap();
        assert_eq!(gone["metadata"]["resourceVersion"], "3");
        let ev = s.events_after(&gr(), 0, 10).unwrap().unwrap();
        let types: Vec<_> = ev.iter().map(|e| e.ty).collect();
        assert_eq!(
            types,
            vec![EventType::Added, EventType::Modified, EventType::Deleted]
        );
        assert_eq!(s.events_after(&gr(), 2, 10).unwrap().unwrap().len(), 1);
        assert!(s.lookup_uid("u1").is_none());
    }

    #[test]
    fn history_is_bounded_and_old_positions_are_gone() {
        let (mut s, _rx) = inner();
        for i in 0..5 {
            s.put(
                &gr(),
                ("ns".into(), format!("o{i}")),
                json!({"metadata": {}}),
            );
        }
        assert!(s.events_after(&gr(), 1, 10).is_err());
        assert_eq!(s.events_after(&gr(), 2, 10).unwrap().unwrap().len(), 3);
        s.compact(4);
        assert!(s.events_after(&gr(), 3, 10).is_err());
        assert_eq!(s.events_after(&gr(), 4, 10).unwrap().unwrap().len(), 1);
    }

    #[test]
    fn history_of_deleted_objects_stays_within_the_byte_budget() {
        let (tx, _rx) = mpsc::unbounded_channel();
        let mut s = Inner::new(Resources::default(), 100_000, tx);
        s.set_history_bytes(256 * 1024);
        let payload = "x".repeat(1000);
        for round in 0..3 {
            for i in 0..500 {
                let key = ("ns".to_string(), format!("o{i}"));
                let obj = json!({"metadata": {"name": key.1, "uid": format!("u{round}-{i}")},
                                 "data": {"payload": payload}});
                s.put(&gr(), key.clone(), obj.clone());
                s.put(&gr(), key, obj);
            }
            for i in 0..500 {
                s.remove(&gr(), &("ns".to_string(), format!("o{i}")));
            }
        }
        // Nothing is stored and no index refers to anything.
        assert!(s.objects_in(&gr(), None).is_empty());
        assert_eq!((s.uid_count(), s.owner_count()), (0, 0));
        // The history holds what the budget allows, not all 4,500 events.
        let kept = s.history_len(&gr());
        assert!(
            s.history_bytes(&gr()) <= 256 * 1024,
            "{}",
            s.history_bytes(&gr())
        );
        assert!(kept > 100 && kept < 300, "{kept} events kept");
        assert!(s.events_after(&gr(), 0, 1).is_err());
        // The newest events are the ones kept; older positions are gone.
        let rv = s.current_rv();
        assert_eq!(
            s.events_after(&gr(), rv - 10, usize::MAX)
                .unwrap()
                .unwrap()
                .len(),
            10
        );
        assert!(s.events_after(&gr(), rv - kept as u64 - 1, 1).is_err());
    }

    #[test]
    fn json_size_follows_the_encoded_length() {
        let v = json!({"metadata": {"name": "a-name", "labels": {"app": "x"}},
                       "data": {"k": "v".repeat(300)}, "list": [1, true, null]});
        let exact = serde_json::to_vec(&v).unwrap().len();
        let approx = json_size(&v);
        assert!(
            approx >= exact && approx <= exact + 32,
            "{approx} vs {exact}"
        );
    }

    #[test]
    fn owner_index_tracks_references_and_signals_the_collector() {
        let (mut s, mut rx) = inner();
        let owner_key = ("ns".to_string(), "owner".to_string());
        s.put(&gr(), owner_key.clone(), json!({"metadata": {"uid": "o"}}));
        s.put(
            &gr(),
            ("ns".into(), "dep".into()),
            json!({"metadata": {"uid": "d", "ownerReferences": [{"uid": "o"}]}}),
        );
        assert_eq!(s.dependents_of("o").len(), 1);
        s.remove(&gr(), &owner_key);
        assert_eq!(
            rx.try_recv().unwrap(),
            LifecycleWork::OwnerRemoved("o".into())
        );
        // A dependent created for a missing owner is checked.
        s.put(
            &gr(),
            ("ns".into(), "dep2".into()),
            json!({"metadata": {"uid": "d2", "ownerReferences": [{"uid": "missing"}]}}),
        );
        assert!(matches!(
            rx.try_recv().unwrap(),
            LifecycleWork::CheckOwners(_)
        ));
    }
}
