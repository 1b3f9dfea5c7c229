//! What the HTTP layer keeps between requests: the discovery and OpenAPI
//! documents already built, and the frozen views that paginated lists
//! continue from.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use imbl::OrdMap;
use serde_json::Value;

use crate::registry::GroupResource;
use crate::store::Key;

/// OpenAPI documents, built once per set of served resources (they are
/// pure functions of it and costly to build).
#[derive(Default)]
pub struct DocCache {
    entries: parking_lot::Mutex<(u64, HashMap<String, Option<Bytes>>)>,
}

impl DocCache {
    pub(crate) fn get_or_build(
        &self,
        generation: u64,
        key: &str,
        build: impl FnOnce() -> Option<Vec<u8>>,
    ) -> Option<Bytes> {
        {
            let e = self.entries.lock();
            if e.0 == generation
                && let Some(v) = e.1.get(key)
            {
                return v.clone();
            }
        }
        let built = build().map(Bytes::from);
        let mut e = self.entries.lock();
        if e.0 != generation {
            *e = (generation, HashMap::new());
        }
        e.1.insert(key.to_string(), built.clone());
        built
    }
}

/// A paginated list's frozen view, kept so that `continue` reads a
/// consistent snapshot as etcd-backed lists do.
type Snapshot = OrdMap<Key, Arc<Value>>;

/// The frozen views of paginated lists, by resource and resourceVersion.
pub struct Snapshots {
    entries: HashMap<(GroupResource, u64), (Instant, Snapshot)>,
}

/// How long a continue token stays valid (etcd's default compaction interval).
const SNAPSHOT_TTL: Duration = Duration::from_secs(300);
const MAX_SNAPSHOTS: usize = 256;

impl Snapshots {
    /// No views kept.
    pub fn new() -> Self {
        Self {
            entries: HashMap::new(),
        }
    }

    pub(crate) fn keep(&mut self, gr: &GroupResource, rv: u64, map: OrdMap<Key, Arc<Value>>) {
        let now = Instant::now();
        self.entries
            .retain(|_, (t, _)| now.duration_since(*t) < SNAPSHOT_TTL);
        if self.entries.len() >= MAX_SNAPSHOTS
            && let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, (t, _))| *t)
                .map(|(k, _)| k.clone())
        {
            self.entries.remove(&oldest);
        }
        self.entries.entry((gr.clone(), rv)).or_insert((now, map));
    }

    pub(crate) fn get(&self, gr: &GroupResource, rv: u64) -> Option<OrdMap<Key, Arc<Value>>> {
        let (t, m) = self.entries.get(&(gr.clone(), rv))?;
        (t.elapsed() < SNAPSHOT_TTL).then(|| m.clone())
    }
}

impl Default for Snapshots {
    fn default() -> Self {
        Self::new()
    }
}
