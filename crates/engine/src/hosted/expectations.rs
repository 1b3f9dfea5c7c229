//! The creates a sync made that the cache has not shown yet (client-go's
//! `ControllerExpectations`, for creates only).
//!
//! A sync creates children and returns; the children's watch events arrive
//! later, on their own watch stream. Anything that queues the parent in the
//! meantime (its own status write, the first of its children to arrive, a
//! resync) would start a sync that sees only part of what the last one
//! created: the hook is called with that partial view, answers the same
//! children again, and every create the cache has not shown yet is sent
//! again, to be refused as `AlreadyExists`. With many workers and a busy API
//! server that is a write or two per parent.
//!
//! So before a sync sends its creates it records how many it sends
//! ([`expect`](Expectations::expect)); each create that fails, and each
//! created child the cache then shows ([`observed`](Expectations::observed)),
//! takes one off. While some are outstanding, the parent's syncs wait: the
//! last child's event queues the parent again. A record older than
//! [`TIMEOUT`] no longer holds anything back (an event lost to a relist, a
//! child deleted before it was seen), so a sync can be late by at most that
//! much, and then works as it would without this.
//!
//! Records are keyed by the parent's UID (what a child's controller
//! reference names); a parent's deletion, or its replacement by a parent of
//! the same name, drops its record. Only a count is kept: an add event the
//! last record no longer waited for (it timed out, or the create was
//! refused and the child showed up anyway) counts towards the next one,
//! which then ends early; the sync after it works as it would without
//! this, never later than it would.
//!
//! Metacontroller has no such bookkeeping: there, such a sync calls the hook
//! with the partial view and repeats the creates.
//!
//! This module must not depend on the controller kinds.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// How long outstanding creates hold a parent's syncs back at most.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy)]
struct Record {
    /// Creates not yet seen; the record is dropped when this reaches zero.
    creates: i64,
    /// When they stop holding syncs back: [`TIMEOUT`] after the sync
    /// recorded them.
    deadline: Instant,
    /// Whether a sync was held back by this record.
    held: bool,
}

/// Outstanding creates per parent UID. See the [module documentation](self).
#[derive(Debug, Default)]
pub(crate) struct Expectations {
    records: Mutex<HashMap<String, Record>>,
}

impl Expectations {
    /// A sync of parent `uid` is about to send `creates` creates (none:
    /// nothing to wait for, and any older record is dropped).
    pub fn expect(&self, uid: &str, creates: usize) {
        let mut records = self.records.lock();
        if creates == 0 {
            records.remove(uid);
            return;
        }
        records.insert(
            uid.to_owned(),
            Record {
                creates: i64::try_from(creates).unwrap_or(i64::MAX),
                deadline: Instant::now() + TIMEOUT,
                held: false,
            },
        );
    }

    /// One create for parent `uid` was seen in the cache, or failed.
    pub fn observed(&self, uid: &str) {
        let mut records = self.records.lock();
        if let Some(record) = records.get_mut(uid) {
            record.creates -= 1;
            if record.creates <= 0 {
                records.remove(uid);
            }
        }
    }

    /// How much longer parent `uid`'s syncs wait for creates to be seen;
    /// `None` when they need not (nothing outstanding, or the record is
    /// older than [`TIMEOUT`], which drops it).
    pub fn pending(&self, uid: &str) -> Option<Duration> {
        let mut records = self.records.lock();
        let record = *records.get(uid)?;
        let left = Some(record.deadline.saturating_duration_since(Instant::now()))
            .filter(|d| !d.is_zero());
        if left.is_none() {
            records.remove(uid);
        }
        left
    }

    /// A sync of parent `uid` is held back by its record: `Some(deadline)`
    /// the first time for this record, when the caller must make sure the
    /// parent is synced at `deadline` unless [`expired`](Self::expired)
    /// then says the record was satisfied (the last child's event has
    /// queued the parent) or replaced (a later sync made a new one) in the
    /// meantime. Every later hold returns `None`.
    pub fn hold(&self, uid: &str) -> Option<Instant> {
        let mut records = self.records.lock();
        let record = records.get_mut(uid)?;
        if record.held {
            return None;
        }
        record.held = true;
        Some(record.deadline)
    }

    /// Whether the record [`hold`](Self::hold) returned `deadline` for is
    /// still there, unsatisfied, at its deadline; it is then dropped, and
    /// the parent must be queued.
    pub fn expired(&self, uid: &str, deadline: Instant) -> bool {
        let mut records = self.records.lock();
        let Some(record) = records.get(uid) else {
            return false;
        };
        if record.deadline != deadline || Instant::now() < deadline {
            return false;
        }
        records.remove(uid);
        true
    }

    /// Parent `uid` is gone.
    pub fn forget(&self, uid: &str) {
        self.records.lock().remove(uid);
    }

    /// Parents with a record.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.records.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn creates_hold_syncs_until_seen() {
        let e = Expectations::default();
        assert_eq!(e.pending("p"), None);
        e.expect("p", 3);
        assert_eq!(e.pending("p"), Some(TIMEOUT));
        e.observed("p");
        e.observed("other");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(e.pending("p"), Some(TIMEOUT - Duration::from_secs(1)));
        e.observed("p");
        assert!(e.pending("p").is_some());
        e.observed("p");
        assert_eq!(e.pending("p"), None);
        assert_eq!(e.len(), 0, "a satisfied record is dropped");
        // Seen more often than created (a refused create whose child shows
        // up anyway): still nothing to wait for.
        e.observed("p");
        assert_eq!(e.pending("p"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn records_expire() {
        let e = Expectations::default();
        e.expect("p", 2);
        tokio::time::advance(TIMEOUT - Duration::from_millis(1)).await;
        assert_eq!(e.pending("p"), Some(Duration::from_millis(1)));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(e.pending("p"), None);
        assert_eq!(e.len(), 0, "an expired record is dropped");
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_sync_is_released_once_at_the_deadline() {
        let e = Expectations::default();
        assert_eq!(e.hold("p"), None, "nothing to hold back");
        e.expect("p", 2);
        let deadline = e.hold("p").expect("first hold");
        assert_eq!(deadline, Instant::now() + TIMEOUT);
        assert_eq!(e.hold("p"), None, "one deadline per record");
        assert!(!e.expired("p", deadline), "not yet");
        tokio::time::advance(TIMEOUT).await;
        assert!(e.expired("p", deadline));
        assert!(!e.expired("p", deadline), "released once");
        assert_eq!(e.len(), 0);

        // Satisfied before the deadline: the children's events queued it.
        e.expect("p", 1);
        let deadline = e.hold("p").unwrap();
        e.observed("p");
        tokio::time::advance(TIMEOUT).await;
        assert!(!e.expired("p", deadline));

        // Replaced by a later sync's record: that record has its own.
        e.expect("p", 1);
        let deadline = e.hold("p").unwrap();
        tokio::time::advance(Duration::from_secs(1)).await;
        e.expect("p", 1);
        tokio::time::advance(TIMEOUT).await;
        assert!(!e.expired("p", deadline));
        assert!(e.hold("p").is_some(), "the new record was never held");
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_sync_replaces_the_record() {
        let e = Expectations::default();
        e.expect("p", 2);
        tokio::time::advance(TIMEOUT / 2).await;
        e.expect("p", 1);
        assert_eq!(e.pending("p"), Some(TIMEOUT));
        e.expect("p", 0);
        assert_eq!(e.pending("p"), None);
        e.expect("p", 4);
        e.expect("q", 1);
        e.forget("p");
        assert_eq!(e.pending("p"), None);
        assert!(e.pending("q").is_some());
    }
}
