//! Rate limiters: a token bucket (overall request rate with a burst) and a
//! per-item exponential back-off, as used by client-go's work queues and
//! client-side throttling.
//!
//! Both are plain data driven by explicit `Instant`s so they can be tested
//! without a clock.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// A token bucket that hands out reservations: each call takes one token and
/// says how long the caller must wait for it (zero while the burst lasts).
/// Like `golang.org/x/time/rate.Limiter.Reserve`, waiting callers queue up in
/// order, each one 1/rate later than the previous.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket refilled at `rate` tokens per second holding at most
    /// `burst` tokens. A rate that is not positive and finite means no limit.
    pub fn new(rate: f64, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Whether this bucket limits anything.
    pub fn is_unlimited(&self) -> bool {
        !(self.rate.is_finite() && self.rate > 0.0)
    }

    /// Takes a token and returns the wait before it may be used.
    pub fn reserve(&mut self, now: Instant) -> Duration {
        if self.is_unlimited() {
            return Duration::ZERO;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

/// Per-item exponential back-off: the n-th consecutive failure of an item
/// waits `base * 2^(n-1)`, capped at `max` (client-go's
/// `ItemExponentialFailureRateLimiter`).
#[derive(Debug)]
pub struct ItemBackoff<K> {
    base: Duration,
    max: Duration,
    failures: HashMap<K, u32>,
}

impl<K: Hash + Eq + Clone> ItemBackoff<K> {
    /// A back-off starting at `base` and capped at `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        ItemBackoff {
            base,
            max,
            failures: HashMap::new(),
        }
    }

    /// Records a failure of `item` and returns how long to wait.
    pub fn when(&mut self, item: &K) -> Duration {
        let n = self.failures.entry(item.clone()).or_insert(0);
        let exp = *n;
        *n = n.saturating_add(1);
        let factor = 2f64.powi(exp.min(1_000) as i32);
        let wait = self.base.as_secs_f64() * factor;
        if !wait.is_finite() || wait >= self.max.as_secs_f64() {
            self.max
        } else {
            Duration::from_secs_f64(wait)
        }
    }

    /// Forgets the failures of `item` (after a success).
    pub fn forget(&mut self, item: &K) {
        self.failures.remove(item);
    }

    /// Consecutive failures recorded for `item`.
    pub fn failures(&self, item: &K) -> u32 {
        self.failures.get(item).copied().unwrap_or(0)
    }
}

/// client-go's default controller rate limiter: the maximum of a per-item
/// exponential back-off (5 ms to 1000 s) and an overall token bucket
/// (10 per second, burst 100).
#[derive(Debug)]
pub struct ControllerRateLimiter<K> {
    backoff: ItemBackoff<K>,
    bucket: TokenBucket,
}

impl<K: Hash + Eq + Clone> ControllerRateLimiter<K> {
    /// With explicit settings.
    pub fn new(base: Duration, max: Duration, qps: f64, burst: u32) -> Self {
        ControllerRateLimiter {
            backoff: ItemBackoff::new(base, max),
            bucket: TokenBucket::new(qps, burst, Instant::now()),
        }
    }

    /// client-go's defaults.
    pub fn default_controller() -> Self {
        Self::new(
            Duration::from_millis(5),
            Duration::from_secs(1000),
            10.0,
            100,
        )
    }

    /// Records a failure and returns the delay before `item` is retried.
    pub fn when(&mut self, item: &K, now: Instant) -> Duration {
        self.backoff.when(item).max(self.bucket.reserve(now))
    }

    /// Forgets the failures of `item`.
    pub fn forget(&mut self, item: &K) {
        self.backoff.forget(item);
    }

    /// Consecutive failures of `item`.
    pub fn failures(&self, item: &K) -> u32 {
        self.backoff.failures(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_spaces_requests() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(5.0, 10, t0);
        for _ in 0..10 {
            assert_eq!(b.reserve(t0), Duration::ZERO);
        }
        let w1 = b.reserve(t0);
        let w2 = b.reserve(t0);
        assert!((w1.as_secs_f64() - 0.2).abs() < 1e-9, "{w1:?}");
        assert!((w2.as_secs_f64() - 0.4).abs() < 1e-9, "{w2:?}");
        // After enough time the bucket refills up to the burst, not beyond.
        let later = t0 + Duration::from_secs(100);
        for _ in 0..10 {
            assert_eq!(b.reserve(later), Duration::ZERO);
        }
        assert!(b.reserve(later) > Duration::ZERO);
    }

    #[test]
    fn unlimited_bucket() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(0.0, 1, t0);
        assert!(b.is_unlimited());
        for _ in 0..1000 {
            assert_eq!(b.reserve(t0), Duration::ZERO);
        }
    }

    #[test]
    fn exponential_backoff_doubles_and_caps() {
        let mut b = ItemBackoff::new(Duration::from_millis(5), Duration::from_secs(1000));
        let waits: Vec<_> = (0..4).map(|_| b.when(&"a")).collect();
        assert_eq!(waits, [5, 10, 20, 40].map(Duration::from_millis).to_vec());
        assert_eq!(b.failures(&"a"), 4);
        for _ in 0..100 {
            b.when(&"a");
        }
        assert_eq!(b.when(&"a"), Duration::from_secs(1000));
        assert_eq!(b.when(&"b"), Duration::from_millis(5));
        b.forget(&"a");
        assert_eq!(b.when(&"a"), Duration::from_millis(5));
    }

    #[test]
    fn controller_limiter_takes_the_maximum() {
        let t0 = Instant::now();
        let mut l = ControllerRateLimiter::new(
            Duration::from_millis(5),
            Duration::from_secs(1000),
            10.0,
            2,
        );
        assert_eq!(l.when(&1, t0), Duration::from_millis(5));
        assert_eq!(l.when(&2, t0), Duration::from_millis(5));
        // Bucket empty now: the third item waits for a token.
        let w = l.when(&3, t0);
        assert!((w.as_secs_f64() - 0.1).abs() < 1e-9, "{w:?}");
        l.forget(&1);
        assert_eq!(l.failures(&1), 0);
    }
}
