//! The journal: what the hosted controllers did lately, for a live view.
//!
//! A [`Journal`] keeps, per parent (or decorator target), a bounded ring
//! of its most recent syncs ([`SyncRecord`]): each hook call of the sync
//! with its request, response, latency and failure, the child writes it
//! led to (created, updated with the JSON patch of the change, deleted),
//! and the sync's outcome. It also keeps the health of every hosted
//! controller ([`ControllerHealth`]). Each change is broadcast to
//! subscribers ([`Journal::subscribe`]) as a [`JournalEvent`].
//!
//! Memory is bounded: [`PER_PARENT`] syncs per parent, [`MAX_PARENTS`]
//! parents (the least recently synced is forgotten first). An engine
//! without a journal records nothing: the hooks into the sync
//! ([`scope`](self::scope)) cost one `Option` check.
//!
//! What the journal keeps has the hook's credentials and the data of
//! Secrets replaced by `<redacted>` ([`redact`]).

mod record;
mod redact;
pub(crate) mod scope;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::broadcast;

pub use record::{Action, HookCall, SyncRecord};
pub use redact::redact_secrets;

/// Syncs kept per parent.
pub const PER_PARENT: usize = 20;
/// Parents kept.
pub const MAX_PARENTS: usize = 1000;
/// Events a slow subscriber may fall behind before it misses some.
const CHANNEL: usize = 256;

/// Whether a hosted controller runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ControllerState {
    /// Waiting for its caches.
    Starting,
    /// Its workers run.
    Running,
    /// Stopped (deleted or rebuilt).
    Stopped,
}

/// The health of one hosted controller.
#[derive(Debug, Clone, Serialize)]
pub struct ControllerHealth {
    /// `CompositeController` or `DecoratorController`.
    pub kind: String,
    /// The controller object's name.
    pub name: String,
    /// Whether it runs.
    pub state: ControllerState,
    /// When it was (last) started, RFC 3339.
    pub since: String,
    /// Syncs recorded.
    pub syncs: u64,
    /// Syncs that failed.
    pub failures: u64,
    /// The last failure, if the last sync of some parent failed.
    pub last_error: Option<String>,
    /// When the last sync ended, RFC 3339.
    pub last_sync: Option<String>,
}

/// One change, as broadcast to subscribers.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum JournalEvent {
    /// A controller started, ran, stopped or synced.
    Controller(ControllerHealth),
    /// A sync ended.
    Sync(Arc<SyncRecord>),
}

/// Everything the journal holds, for a new subscriber.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// Every controller seen.
    pub controllers: Vec<ControllerHealth>,
    /// Every parent kept, with its syncs oldest first.
    pub parents: Vec<ParentHistory>,
    /// The sequence number of the last sync recorded (0 when none).
    pub last_seq: u64,
}

/// The syncs kept for one parent.
#[derive(Debug, Clone, Serialize)]
pub struct ParentHistory {
    /// The parent's id ([`SyncRecord::parent_id`]).
    pub id: String,
    /// Oldest first.
    pub syncs: Vec<Arc<SyncRecord>>,
}

#[derive(Default)]
struct State {
    controllers: BTreeMap<(String, String), ControllerHealth>,
    parents: HashMap<String, (u64, VecDeque<Arc<SyncRecord>>)>,
}

struct Inner {
    state: Mutex<State>,
    seq: AtomicU64,
    events: broadcast::Sender<JournalEvent>,
}

/// See the [module documentation](self). Cheap to clone.
#[derive(Clone)]
pub struct Journal {
    inner: Arc<Inner>,
}

impl Default for Journal {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").finish_non_exhaustive()
    }
}

impl Journal {
    /// An empty journal.
    pub fn new() -> Self {
        Journal {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                seq: AtomicU64::new(0),
                events: broadcast::channel(CHANNEL).0,
            }),
        }
    }

    /// The changes from now on. Take it before [`snapshot`](Self::snapshot)
    /// so that nothing falls between the two (a sync may then arrive twice:
    /// tell them apart by [`SyncRecord::seq`]).
    pub fn subscribe(&self) -> broadcast::Receiver<JournalEvent> {
        self.inner.events.subscribe()
    }

    /// What the journal holds now.
    pub fn snapshot(&self) -> Snapshot {
        let state = self.inner.state.lock();
        let mut parents: Vec<ParentHistory> = state
            .parents
            .iter()
            .map(|(id, (_, syncs))| ParentHistory {
                id: id.clone(),
                syncs: syncs.iter().cloned().collect(),
            })
            .collect();
        parents.sort_by(|a, b| a.id.cmp(&b.id));
        Snapshot {
            controllers: state.controllers.values().cloned().collect(),
            parents,
            last_seq: self.inner.seq.load(Ordering::SeqCst),
        }
    }

    /// Records that a controller changed state.
    pub(crate) fn controller(&self, kind: &str, name: &str, state: ControllerState) {
        let health = {
            let mut all = self.inner.state.lock();
            let entry = all
                .controllers
                .entry((kind.to_owned(), name.to_owned()))
                .or_insert_with(|| ControllerHealth {
                    kind: kind.to_owned(),
                    name: name.to_owned(),
                    state,
                    since: now(),
                    syncs: 0,
                    failures: 0,
                    last_error: None,
                    last_sync: None,
                });
            if state == ControllerState::Starting {
                entry.since = now();
            }
            entry.state = state;
            entry.clone()
        };
        let _ = self.inner.events.send(JournalEvent::Controller(health));
    }

    /// Records a finished sync (its `seq` is set here).
    pub(crate) fn sync(&self, mut record: SyncRecord) {
        record.seq = self.inner.seq.fetch_add(1, Ordering::SeqCst) + 1;
        let record = Arc::new(record);
        let health = {
            let mut state = self.inner.state.lock();
            let id = record.parent_id();
            let (touched, ring) = state.parents.entry(id).or_default();
            *touched = record.seq;
            ring.push_back(record.clone());
            while ring.len() > PER_PARENT {
                ring.pop_front();
            }
            if state.parents.len() > MAX_PARENTS
                && let Some(oldest) = state
                    .parents
                    .iter()
                    .min_by_key(|(_, (touched, _))| *touched)
                    .map(|(id, _)| id.clone())
            {
                state.parents.remove(&oldest);
            }
            let key = (record.controller_kind.clone(), record.controller.clone());
            state.controllers.get_mut(&key).map(|health| {
                health.syncs += 1;
                if record.error.is_some() {
                    health.failures += 1;
                }
                health.last_error = record.error.clone();
                health.last_sync = Some(record.finished.clone());
                health.clone()
            })
        };
        let _ = self.inner.events.send(JournalEvent::Sync(record));
        if let Some(health) = health {
            let _ = self.inner.events.send(JournalEvent::Controller(health));
        }
    }
}

/// Now, RFC 3339.
fn now() -> String {
    jiff::Timestamp::now().to_string()
}

#[cfg(test)]
mod tests;
