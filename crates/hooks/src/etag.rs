//! In-memory ETag cache of one hook: the last `200` response (and its ETag)
//! per root object.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::HeaderValue;

use crate::EtagConfig;

/// What a call needs from a cache hit: the ETag to send as `If-None-Match`
/// and the body to replay on `304`/`412`.
#[derive(Clone, Debug)]
pub(crate) struct CachedResponse {
    pub(crate) etag: HeaderValue,
    pub(crate) body: Bytes,
}

#[derive(Debug)]
struct Entry {
    response: CachedResponse,
    expires_at: Option<Instant>,
}

impl Entry {
    fn is_live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|t| now < t)
    }
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<String, Entry>,
    next_sweep: Option<Instant>,
}

#[derive(Debug)]
pub(crate) struct EtagCache {
    timeout: Option<Duration>,
    cleanup: Option<Duration>,
    state: Mutex<State>,
}

impl EtagCache {
    pub(crate) fn new(config: EtagConfig) -> Self {
        Self {
            timeout: (!config.cache_timeout.is_zero()).then_some(config.cache_timeout),
            cleanup: (!config.cache_cleanup.is_zero()).then_some(config.cache_cleanup),
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state holds no invariant a panicking holder could break.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops expired entries if a cleanup interval is set and has elapsed.
    fn maybe_sweep(&self, state: &mut State, now: Instant) {
        let Some(every) = self.cleanup else { return };
        match state.next_sweep {
            Some(at) if now < at => {}
            Some(_) => {
                state.entries.retain(|_, e| e.is_live(now));
                state.next_sweep = Some(now + every);
            }
            None => state.next_sweep = Some(now + every),
        }
    }

    pub(crate) fn get(&self, key: &str, now: Instant) -> Option<CachedResponse> {
        let mut state = self.lock();
        self.maybe_sweep(&mut state, now);
        state
            .entries
            .get(key)
            .filter(|e| e.is_live(now))
            .map(|e| e.response.clone())
    }

    pub(crate) fn put(&self, key: &str, etag: HeaderValue, body: Bytes, now: Instant) {
        let mut state = self.lock();
        self.maybe_sweep(&mut state, now);
        let expires_at = self.timeout.and_then(|t| now.checked_add(t));
        state.entries.insert(
            key.to_owned(),
            Entry {
                response: CachedResponse { etag, body },
                expires_at,
            },
        );
    }

    pub(crate) fn remove(&self, key: &str) {
        self.lock().entries.remove(key);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(timeout_ms: u64, cleanup_ms: u64) -> EtagConfig {
        EtagConfig {
            cache_timeout: Duration::from_millis(timeout_ms),
            cache_cleanup: Duration::from_millis(cleanup_ms),
        }
    }

    #[test]
    fn entries_expire_after_timeout() {
        let c = EtagCache::new(cfg(1000, 0));
        let t0 = Instant::now();
        c.put(
            "k",
            HeaderValue::from_static("\"v1\""),
            Bytes::from_static(b"b"),
            t0,
        );
        let hit = c.get("k", t0 + Duration::from_millis(999)).unwrap();
        assert_eq!(hit.etag, "\"v1\"");
        assert_eq!(hit.body, "b");
        assert!(c.get("k", t0 + Duration::from_millis(1000)).is_none());
        assert!(c.get("other", t0).is_none());
    }

    #[test]
    fn zero_timeout_never_expires() {
        let c = EtagCache::new(cfg(0, 0));
        let t0 = Instant::now();
        c.put("k", HeaderValue::from_static("x"), Bytes::new(), t0);
        assert!(c.get("k", t0 + Duration::from_secs(86_400 * 365)).is_some());
    }

    #[test]
    fn put_replaces_and_refreshes() {
        let c = EtagCache::new(cfg(1000, 0));
        let t0 = Instant::now();
        c.put(
            "k",
            HeaderValue::from_static("a"),
            Bytes::from_static(b"1"),
            t0,
        );
        let t1 = t0 + Duration::from_millis(800);
        c.put(
            "k",
            HeaderValue::from_static("b"),
            Bytes::from_static(b"2"),
            t1,
        );
        let hit = c.get("k", t0 + Duration::from_millis(1500)).unwrap();
        assert_eq!(hit.etag, "b");
        assert_eq!(hit.body, "2");
    }

    #[test]
    fn sweep_drops_expired_entries() {
        let c = EtagCache::new(cfg(100, 500));
        let t0 = Instant::now();
        c.put("a", HeaderValue::from_static("a"), Bytes::new(), t0);
        c.put("b", HeaderValue::from_static("b"), Bytes::new(), t0);
        assert_eq!(c.len(), 2);
        // Expired but the sweep interval has not elapsed yet.
        assert!(c.get("zzz", t0 + Duration::from_millis(200)).is_none());
        assert_eq!(c.len(), 2);
        // Past the sweep interval: expired entries are dropped.
        c.put(
            "c",
            HeaderValue::from_static("c"),
            Bytes::new(),
            t0 + Duration::from_millis(600),
        );
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn no_sweep_without_cleanup_interval() {
        let c = EtagCache::new(cfg(100, 0));
        let t0 = Instant::now();
        c.put("a", HeaderValue::from_static("a"), Bytes::new(), t0);
        c.put(
            "b",
            HeaderValue::from_static("b"),
            Bytes::new(),
            t0 + Duration::from_secs(10),
        );
        assert_eq!(c.len(), 2);
        c.remove("a");
        assert_eq!(c.len(), 1);
    }
}
