//! A rate-limited, deduplicating work queue (client-go's
//! `TypedRateLimitingQueue`).
//!
//! * A key is queued at most once. A key that is added again while a worker
//!   processes it is marked dirty and queued again once the worker calls
//!   [`WorkQueue::done`], so it is never processed by two workers at once and
//!   no change is missed.
//! * [`WorkQueue::add_after`] delays an add; of several delayed adds of the
//!   same key the earliest wins.
//! * [`WorkQueue::add_rate_limited`] delays by the rate limiter: per-key
//!   exponential back-off combined with an overall token bucket.
//!   [`WorkQueue::forget`] resets the key's back-off after a success.
//!
//! Delayed adds are driven by one timer task per queue, started by
//! [`WorkQueue::new`] (so it must be called inside a Tokio runtime); it keeps
//! the queue alive until [`WorkQueue::shutdown`] is called.
//!
//! A queue made with [`WorkQueue::with_metrics`] reports client-go's
//! work-queue series ([`crate::metrics::QueueMetrics`]); a second task
//! refreshes its in-progress gauges every 500 ms, like client-go's
//! `updateUnfinishedWorkLoop`.

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::metrics::QueueMetrics;
use crate::ratelimit::ControllerRateLimiter;

/// How often the in-progress gauges of a queue with metrics are refreshed.
const UNFINISHED_WORK_UPDATE: Duration = Duration::from_millis(500);

/// Key types usable in a [`WorkQueue`].
pub trait QueueKey: Clone + Eq + Hash + Ord + Send + Sync + 'static {}
impl<T: Clone + Eq + Hash + Ord + Send + Sync + 'static> QueueKey for T {}

/// See the [module documentation](self).
pub struct WorkQueue<K: QueueKey> {
    state: Mutex<State<K>>,
    ready: Notify,
    delayed: Mutex<Delayed<K>>,
    timer_wake: Notify,
    limiter: Mutex<ControllerRateLimiter<K>>,
    metrics: Option<QueueMetrics<K>>,
}

struct State<K> {
    queue: VecDeque<K>,
    dirty: HashSet<K>,
    processing: HashSet<K>,
    shutting_down: bool,
}

struct Delayed<K> {
    heap: BinaryHeap<Reverse<(Instant, u64, K)>>,
    due: HashMap<K, Instant>,
    seq: u64,
}

impl<K: QueueKey> WorkQueue<K> {
    /// A queue with client-go's default controller rate limiter.
    pub fn new() -> Arc<Self> {
        Self::with_limiter(ControllerRateLimiter::default_controller())
    }

    /// A queue with the given rate limiter.
    pub fn with_limiter(limiter: ControllerRateLimiter<K>) -> Arc<Self> {
        Self::build(limiter, None)
    }

    /// A queue with client-go's default controller rate limiter that
    /// reports to `metrics`.
    pub fn with_metrics(metrics: QueueMetrics<K>) -> Arc<Self> {
        let queue = Self::build(ControllerRateLimiter::default_controller(), Some(metrics));
        tokio::spawn(Self::update_unfinished(Arc::downgrade(&queue)));
        queue
    }

    fn build(limiter: ControllerRateLimiter<K>, metrics: Option<QueueMetrics<K>>) -> Arc<Self> {
        let queue = Arc::new(WorkQueue {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                dirty: HashSet::new(),
                processing: HashSet::new(),
                shutting_down: false,
            }),
            ready: Notify::new(),
            delayed: Mutex::new(Delayed {
                heap: BinaryHeap::new(),
                due: HashMap::new(),
                seq: 0,
            }),
            timer_wake: Notify::new(),
            limiter: Mutex::new(limiter),
            metrics,
        });
        tokio::spawn(Self::run_timer(queue.clone()));
        queue
    }

    /// Queues `key` unless it is already queued.
    pub fn add(&self, key: K) {
        let mut state = self.state.lock();
        if state.shutting_down || state.dirty.contains(&key) {
            return;
        }
        if let Some(metrics) = &self.metrics {
            metrics.add(&key);
        }
        state.dirty.insert(key.clone());
        if state.processing.contains(&key) {
            return;
        }
        state.queue.push_back(key);
        drop(state);
        self.ready.notify_one();
    }

    /// Queues `key` after `delay`.
    pub fn add_after(&self, key: K, delay: Duration) {
        if let Some(metrics) = &self.metrics
            && !self.is_shutting_down()
        {
            metrics.retry();
        }
        if delay.is_zero() {
            self.add(key);
            return;
        }
        if self.state.lock().shutting_down {
            return;
        }
        let Some(at) = Instant::now().checked_add(delay) else {
            return;
        };
        let mut delayed = self.delayed.lock();
        let earliest_before = delayed.heap.peek().map(|Reverse((t, _, _))| *t);
        match delayed.due.entry(key.clone()) {
            Entry::Occupied(mut e) => {
                if *e.get() <= at {
                    return;
                }
                e.insert(at);
            }
            Entry::Vacant(e) => {
                e.insert(at);
            }
        }
        delayed.seq += 1;
        let seq = delayed.seq;
        delayed.heap.push(Reverse((at, seq, key)));
        drop(delayed);
        if earliest_before.is_none_or(|t| at < t) {
            self.timer_wake.notify_one();
        }
    }

    /// Queues `key` after the rate limiter's delay (a failure of `key`).
    pub fn add_rate_limited(&self, key: K) {
        let delay = self.limiter.lock().when(&key, std::time::Instant::now());
        self.add_after(key, delay);
    }

    /// Resets the back-off of `key`.
    pub fn forget(&self, key: &K) {
        self.limiter.lock().forget(key);
    }

    /// Consecutive failures recorded for `key`.
    pub fn failures(&self, key: &K) -> u32 {
        self.limiter.lock().failures(key)
    }

    /// Waits for the next key; `None` once the queue is shut down. The caller
    /// must call [`WorkQueue::done`] when finished with the key.
    pub async fn get(&self) -> Option<K> {
        loop {
            {
                let mut state = self.state.lock();
                if state.shutting_down {
                    return None;
                }
                if let Some(key) = state.queue.pop_front() {
                    state.dirty.remove(&key);
                    state.processing.insert(key.clone());
                    if let Some(metrics) = &self.metrics {
                        metrics.get(&key);
                    }
                    let more = !state.queue.is_empty();
                    drop(state);
                    if more {
                        // Pass the wake-up on so idle workers pick up the rest.
                        self.ready.notify_one();
                    }
                    return Some(key);
                }
            }
            self.ready.notified().await;
        }
    }

    /// Marks `key` as processed; a key re-added meanwhile is queued again.
    pub fn done(&self, key: &K) {
        let mut state = self.state.lock();
        state.processing.remove(key);
        if let Some(metrics) = &self.metrics {
            metrics.done(key);
        }
        if state.dirty.contains(key) && !state.shutting_down {
            state.queue.push_back(key.clone());
            drop(state);
            self.ready.notify_one();
        }
    }

    /// Number of keys waiting to be processed (not counting delayed ones).
    pub fn len(&self) -> usize {
        self.state.lock().queue.len()
    }

    /// Whether no key is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops the queue: [`WorkQueue::get`] returns `None` from now on and
    /// adds are ignored.
    pub fn shutdown(&self) {
        self.state.lock().shutting_down = true;
        self.ready.notify_waiters();
        self.timer_wake.notify_one();
    }

    /// Whether [`WorkQueue::shutdown`] was called.
    pub fn is_shutting_down(&self) -> bool {
        self.state.lock().shutting_down
    }

    /// Moves due delayed keys into the queue; returns the next deadline.
    fn fire_due(&self) -> Option<Instant> {
        let now = Instant::now();
        let mut due_keys = Vec::new();
        let next = {
            let mut delayed = self.delayed.lock();
            loop {
                let Some(Reverse((at, _, _))) = delayed.heap.peek() else {
                    break None;
                };
                if *at > now {
                    break Some(*at);
                }
                let Some(Reverse((at, _, key))) = delayed.heap.pop() else {
                    break None;
                };
                // Skip entries superseded by an earlier add_after.
                if delayed.due.get(&key) == Some(&at) {
                    delayed.due.remove(&key);
                    due_keys.push(key);
                }
            }
        };
        for key in due_keys {
            self.add(key);
        }
        next
    }

    async fn update_unfinished(queue: Weak<Self>) {
        let mut ticker = tokio::time::interval(UNFINISHED_WORK_UPDATE);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let Some(queue) = queue.upgrade() else {
                return;
            };
            if queue.is_shutting_down() {
                return;
            }
            if let Some(metrics) = &queue.metrics {
                metrics.update_unfinished();
            }
        }
    }

    async fn run_timer(queue: Arc<Self>) {
        loop {
            let wake = queue.timer_wake.notified();
            tokio::pin!(wake);
            wake.as_mut().enable();
            if queue.is_shutting_down() {
                return;
            }
            match queue.fire_due() {
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = &mut wake => {}
                    }
                }
                None => wake.await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dedups_queued_keys() {
        let q = WorkQueue::<String>::new();
        q.add("a".into());
        q.add("a".into());
        q.add("b".into());
        assert_eq!(q.len(), 2);
        assert_eq!(q.get().await.as_deref(), Some("a"));
        assert_eq!(q.get().await.as_deref(), Some("b"));
        assert!(q.is_empty());
        q.shutdown();
    }

    #[tokio::test]
    async fn readds_while_processing_are_processed_after_done() {
        let q = WorkQueue::<String>::new();
        q.add("a".into());
        let k = q.get().await.unwrap();
        q.add("a".into());
        // Not handed out a second time while being processed.
        assert!(q.is_empty());
        q.done(&k);
        assert_eq!(q.len(), 1);
        assert_eq!(q.get().await.as_deref(), Some("a"));
        q.done(&"a".to_string());
        assert!(q.is_empty());
        q.shutdown();
    }

    #[tokio::test(start_paused = true)]
    async fn delayed_adds_fire_in_order_and_earliest_wins() {
        let q = WorkQueue::<String>::new();
        q.add_after("late".into(), Duration::from_secs(10));
        q.add_after("early".into(), Duration::from_secs(1));
        q.add_after("late".into(), Duration::from_secs(2));
        q.add_after("late".into(), Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(q.len(), 1);
        assert_eq!(q.get().await.as_deref(), Some("early"));
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(q.get().await.as_deref(), Some("late"));
        // The superseded 10s and 30s entries do not fire again.
        q.done(&"early".to_string());
        q.done(&"late".to_string());
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(q.is_empty());
        q.shutdown();
    }

    #[tokio::test]
    async fn get_returns_none_after_shutdown() {
        let q = WorkQueue::<String>::new();
        let q2 = q.clone();
        let waiter = tokio::spawn(async move { q2.get().await });
        tokio::task::yield_now().await;
        q.shutdown();
        assert_eq!(waiter.await.unwrap(), None);
        q.add("x".into());
        assert!(q.is_empty());
    }

    /// The value of the `workqueue_<family>` series of queue `q` in
    /// `registry`'s Prometheus text.
    fn series(registry: &prometheus_client::registry::Registry, family: &str) -> String {
        let (_, text) = crate::metrics::text::render(registry, None).unwrap();
        let prefix = format!("workqueue_{family}{{name=\"q\",controller=\"q\"}} ");
        text.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {prefix} in {text}"))
            .to_owned()
    }

    #[tokio::test]
    async fn metrics_follow_the_queue() {
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = crate::metrics::WorkqueueMetrics::register(&mut registry);
        let q = WorkQueue::<String>::with_metrics(metrics.queue("q"));
        q.add("a".into());
        q.add("a".into());
        q.add("b".into());
        assert_eq!(series(&registry, "adds_total"), "2");
        assert_eq!(series(&registry, "depth"), "2");
        let a = q.get().await.unwrap();
        assert_eq!(series(&registry, "depth"), "1");
        assert_eq!(series(&registry, "queue_duration_seconds_count"), "1");
        // Re-added while processing: counted now, handed out after done.
        q.add("a".into());
        assert_eq!(series(&registry, "adds_total"), "3");
        assert_eq!(series(&registry, "depth"), "2");
        q.done(&a);
        assert_eq!(series(&registry, "work_duration_seconds_count"), "1");
        q.add_rate_limited("b".into());
        q.add_after("c".into(), Duration::ZERO);
        assert_eq!(series(&registry, "retries_total"), "2");
        assert_eq!(series(&registry, "adds_total"), "4");
        let first = q.get().await.unwrap();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let unfinished: f64 = series(&registry, "unfinished_work_seconds")
            .parse()
            .unwrap();
        let longest: f64 = series(&registry, "longest_running_processor_seconds")
            .parse()
            .unwrap();
        assert!(
            longest >= 0.5 && unfinished >= longest,
            "{unfinished} {longest}"
        );
        q.done(&first);
        q.shutdown();
    }

    #[tokio::test]
    async fn rate_limited_adds_back_off() {
        let q = WorkQueue::<String>::new();
        q.add_rate_limited("a".into());
        assert_eq!(q.failures(&"a".to_string()), 1);
        q.add_rate_limited("a".into());
        assert_eq!(q.failures(&"a".to_string()), 2);
        q.forget(&"a".to_string());
        assert_eq!(q.failures(&"a".to_string()), 0);
        // The 5 ms retry arrives.
        let got = tokio::time::timeout(Duration::from_secs(5), q.get()).await;
        assert_eq!(got.unwrap().as_deref(), Some("a"));
        q.shutdown();
    }
}
