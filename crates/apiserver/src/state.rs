//! The state every request handler and background task shares: the store,
//! the request counters, the fault rules and the caches of the HTTP layer.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};

use parking_lot::Mutex;
use tokio::sync::watch as tokio_watch;

use crate::caches::{DocCache, Snapshots};
use crate::faults::Faults;
use crate::store;

/// Request counters by verb and resource, readable from tests.
#[derive(Default)]
pub struct Counters {
    by_key: Mutex<HashMap<(String, String), u64>>,
    watches: AtomicI64,
}

/// The verbs that write.
pub const WRITE_VERBS: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];

impl Counters {
    pub(crate) fn inc(&self, verb: &str, resource: &str) {
        *self
            .by_key
            .lock()
            .entry((verb.to_string(), resource.to_string()))
            .or_default() += 1;
    }

    pub(crate) fn watch_started(&self) {
        self.watches.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn watch_ended(&self) {
        self.watches.fetch_sub(1, Ordering::Relaxed);
    }

    /// Requests seen for `verb` on `resource` (`pods`, `deployments.apps`,
    /// `widgets.example.com/status`, ...).
    pub fn get(&self, verb: &str, resource: &str) -> u64 {
        self.by_key
            .lock()
            .get(&(verb.to_string(), resource.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// Every counter, keyed `(verb, resource)`.
    pub fn snapshot(&self) -> BTreeMap<(String, String), u64> {
        self.by_key
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    /// All write requests (any resource).
    pub fn writes(&self) -> u64 {
        self.by_key
            .lock()
            .iter()
            .filter(|((verb, _), _)| WRITE_VERBS.contains(&verb.as_str()))
            .map(|(_, v)| *v)
            .sum()
    }

    /// Watches currently open.
    pub fn open_watches(&self) -> i64 {
        self.watches.load(Ordering::Relaxed)
    }

    pub(crate) fn render(&self) -> String {
        let mut out = String::from(
            "# HELP apiserver_request_total Requests by verb and resource.\n# TYPE apiserver_request_total counter\n",
        );
        for ((verb, res), n) in self.snapshot() {
            out.push_str(&format!(
                "apiserver_request_total{{verb=\"{verb}\",resource=\"{res}\"}} {n}\n"
            ));
        }
        out.push_str(&format!(
            "# TYPE apiserver_open_watches gauge\napiserver_open_watches {}\n",
            self.open_watches()
        ));
        out
    }
}

/// State shared by all requests and background tasks.
pub struct Shared {
    /// The store, behind the one lock every write takes.
    pub inner: Mutex<store::Inner>,
    /// Requests seen so far.
    pub counters: Counters,
    /// Faults injected into matching requests.
    pub faults: Faults,
    pub(crate) snapshots: Mutex<Snapshots>,
    pub(crate) docs: DocCache,
    /// Bumping it ends every open watch stream.
    pub(crate) watch_closer: tokio_watch::Sender<u64>,
    pub(crate) address: String,
}
