//! Fault injection for reliability tests and benchmarks: added latency per
//! verb/resource, and answering matching requests with an error.
//!
//! A [`Fault`] matches requests by verb and resource and applies its
//! [`FaultKind`] to
//!
//! - every matching request until cleared (the default),
//! - the next N matching requests ([`Fault::times`]), or
//! - a fraction of the matching requests ([`Fault::fraction`]), chosen by a
//!   generator seeded per rule ([`Fault::seed`]): with the same seed, the
//!   n-th matching request gets the same answer in every run, so a failing
//!   run can be repeated. With both, `times` counts the requests the fault
//!   was applied to.
//!
//! [`FaultKind::WatchDelay`] is not about answers: each event of a matching
//! watch reaches the client that much after the server sent it, as when one
//! watch stream lags behind another (a busy watch cache, a slow network).
//!
//! [`FaultKind::AnyOf`] mixes kinds: each request the rule applies to gets
//! one of them, picked by the same generator (for example 409, 429 and 500
//! mixed on half of all writes).

use std::time::Duration;

use parking_lot::Mutex;

use crate::error::{ApiError, Reason};

/// What a matching request gets.
#[derive(Clone, Debug, PartialEq)]
pub enum FaultKind {
    /// Wait this long, then serve normally.
    Latency(Duration),
    /// 429 TooManyRequests with `Retry-After: retry_after_seconds`.
    TooManyRequests {
        /// The `Retry-After` value.
        retry_after_seconds: u64,
    },
    /// 429 TooManyRequests without `Retry-After` (as a proxy in front of
    /// the server may answer).
    TooManyRequestsWithoutRetryAfter,
    /// 409 Conflict.
    Conflict,
    /// 500 InternalError.
    InternalError,
    /// 503 ServiceUnavailable.
    Unavailable,
    /// Events of a matching watch (verb `watch`) arrive this long after the
    /// server sent them; the watch request itself is answered at once.
    /// `times` counts the watches it is applied to. Only as a rule's own
    /// kind: drawn from an [`AnyOf`](FaultKind::AnyOf), it is no fault.
    WatchDelay(Duration),
    /// One of these kinds, picked at random (by the rule's seeded
    /// generator) for each request the rule applies to.
    AnyOf(Vec<FaultKind>),
}

/// One rule. `verb`/`resource` of `None` match everything; `resource` is the
/// counter form (`pods`, `deployments.apps`, `widgets.example.com/status`).
#[derive(Clone, Debug)]
pub struct Fault {
    /// The verb matched (`get`, `list`, `watch`, `create`, ...), or any.
    pub verb: Option<String>,
    /// The resource matched, in counter form, or any.
    pub resource: Option<String>,
    /// What a matching request gets.
    pub kind: FaultKind,
    /// How many requests it applies to; `None` = until cleared.
    pub times: Option<u64>,
    /// The fraction (0.0 to 1.0) of matching requests it applies to;
    /// `None` = all of them.
    pub fraction: Option<f64>,
    /// The seed of the generator that picks which requests a `fraction`
    /// rule applies to and which kind of an [`FaultKind::AnyOf`] they get.
    pub seed: u64,
    rng: Option<SplitMix64>,
}

impl Fault {
    /// A rule matching every request until cleared.
    pub fn new(kind: FaultKind) -> Self {
        Self {
            verb: None,
            resource: None,
            kind,
            times: None,
            fraction: None,
            seed: DEFAULT_SEED,
            rng: None,
        }
    }

    /// Matches only requests with this verb.
    pub fn verb(mut self, verb: &str) -> Self {
        self.verb = Some(verb.to_string());
        self
    }

    /// Matches only requests for this resource (counter form).
    pub fn resource(mut self, resource: &str) -> Self {
        self.resource = Some(resource.to_string());
        self
    }

    /// Applies to the next `n` matching requests only.
    pub fn times(mut self, n: u64) -> Self {
        self.times = Some(n);
        self
    }

    /// Applies to this fraction (clamped to 0.0..=1.0) of the matching
    /// requests only, picked by the rule's seeded generator.
    pub fn fraction(mut self, fraction: f64) -> Self {
        self.fraction = Some(if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        });
        self
    }

    /// Seeds the rule's generator (default [`DEFAULT_SEED`]).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self.rng = None;
        self
    }

    /// Whether this matching request gets the fault, and which kind.
    fn draw(&mut self) -> Option<FaultKind> {
        let seed = self.seed;
        let rng = self.rng.get_or_insert(SplitMix64(seed));
        if let Some(fraction) = self.fraction
            && rng.unit() >= fraction
        {
            return None;
        }
        let mut kind = &self.kind;
        while let FaultKind::AnyOf(kinds) = kind {
            if kinds.is_empty() {
                return None;
            }
            kind = &kinds[(rng.next() % kinds.len() as u64) as usize];
        }
        Some(kind.clone())
    }

    fn matches(&self, verb: &str, resource: &str) -> bool {
        self.verb.as_deref().is_none_or(|v| v == verb)
            && self.resource.as_deref().is_none_or(|r| r == resource)
    }
}

/// The seed of a rule's generator unless [`Fault::seed`] sets another.
pub const DEFAULT_SEED: u64 = 1;

/// Steele, Lea and Flood's SplitMix64: tiny, fast, and the same sequence on
/// every platform and in every version (a library generator may change its
/// algorithm between releases, which would change a seeded run).
#[derive(Clone, Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in [0, 1) with 53 random bits.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The active rules.
#[derive(Default)]
pub struct Faults {
    rules: Mutex<Vec<Fault>>,
}

impl Faults {
    /// Adds a rule; rules are tried in the order added.
    pub fn add(&self, fault: Fault) {
        self.rules.lock().push(fault);
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.rules.lock().clear();
    }

    /// Applies the rules to one request: sleeps for latency rules, and
    /// returns the error an error rule injects.
    pub async fn check(&self, verb: &str, resource: &str) -> Option<ApiError> {
        let (delay, error) = {
            let mut rules = self.rules.lock();
            if rules.is_empty() {
                return None;
            }
            let mut delay = Duration::ZERO;
            let mut error = None;
            for rule in rules.iter_mut() {
                if !rule.matches(verb, resource)
                    || rule.times == Some(0)
                    || matches!(rule.kind, FaultKind::WatchDelay(_))
                {
                    continue;
                }
                // An error rule is not consulted once an earlier one has
                // answered, so that its count and its generator only move
                // for requests it could have failed.
                if error.is_some() && !matches!(rule.kind, FaultKind::Latency(_)) {
                    continue;
                }
                match rule.draw() {
                    None => continue,
                    Some(FaultKind::Latency(d)) => delay += d,
                    // Drawn from an AnyOf: no fault for this request (watch
                    // delays apply only as a rule's own kind).
                    Some(FaultKind::WatchDelay(_)) => continue,
                    Some(kind) => error = Some(to_error(&kind)),
                }
                if let Some(n) = rule.times.as_mut() {
                    *n -= 1;
                }
            }
            rules.retain(|r| r.times != Some(0));
            (delay, error)
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        error
    }

    /// How late the events of a watch of `resource` starting now arrive
    /// ([`FaultKind::WatchDelay`]; the first matching rule applies).
    pub fn watch_delay(&self, resource: &str) -> Option<Duration> {
        let mut rules = self.rules.lock();
        let rule = rules.iter_mut().find(|r| {
            r.matches("watch", resource)
                && r.times != Some(0)
                && matches!(r.kind, FaultKind::WatchDelay(_))
        })?;
        let FaultKind::WatchDelay(delay) = rule.draw()? else {
            return None;
        };
        if let Some(n) = rule.times.as_mut() {
            *n -= 1;
        }
        rules.retain(|r| r.times != Some(0));
        Some(delay)
    }
}

fn to_error(kind: &FaultKind) -> ApiError {
    match kind {
        FaultKind::TooManyRequests {
            retry_after_seconds,
        } => {
            let mut e = ApiError::new(
                Reason::TooManyRequests,
                "the server has received too many requests and has asked us to try again later",
            );
            e.retry_after = Some(*retry_after_seconds);
            e
        }
        FaultKind::TooManyRequestsWithoutRetryAfter => ApiError::new(
            Reason::TooManyRequests,
            "the server has received too many requests and has asked us to try again later",
        ),
        FaultKind::Conflict => ApiError::new(
            Reason::Conflict,
            "Operation cannot be fulfilled: the object has been modified; please apply your changes to the latest version and try again",
        ),
        FaultKind::InternalError => ApiError::internal(
            "an error on the server (injected) has prevented the request from succeeding",
        ),
        FaultKind::Unavailable => {
            let mut e = ApiError::new(
                Reason::ServiceUnavailable,
                "the server is currently unable to handle the request",
            );
            e.retry_after = Some(1);
            e
        }
        FaultKind::Latency(_) | FaultKind::WatchDelay(_) | FaultKind::AnyOf(_) => {
            unreachable!("drawn kinds are errors")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn error_rules_count_down_and_match_by_verb_and_resource() {
        let f = Faults::default();
        f.add(
            Fault::new(FaultKind::InternalError)
                .verb("create")
                .resource("pods")
                .times(2),
        );
        assert!(f.check("get", "pods").await.is_none());
        assert!(f.check("create", "configmaps").await.is_none());
        assert_eq!(f.check("create", "pods").await.unwrap().code(), 500);
        assert_eq!(f.check("create", "pods").await.unwrap().code(), 500);
        assert!(f.check("create", "pods").await.is_none());
        f.add(
            Fault::new(FaultKind::TooManyRequests {
                retry_after_seconds: 3,
            })
            .times(1),
        );
        let e = f.check("list", "x").await.unwrap();
        assert_eq!((e.code(), e.retry_after), (429, Some(3)));
        f.add(Fault::new(FaultKind::TooManyRequestsWithoutRetryAfter).times(1));
        let e = f.check("list", "x").await.unwrap();
        assert_eq!((e.code(), e.retry_after), (429, None));
    }

    /// The codes 1000 matching requests get from a fresh `Faults` with `rule`.
    async fn codes(rule: Fault) -> Vec<u16> {
        let f = Faults::default();
        f.add(rule);
        let mut out = Vec::new();
        for _ in 0..1000 {
            out.push(f.check("create", "pods").await.map_or(200, |e| e.code()));
        }
        out
    }

    #[tokio::test]
    async fn a_fraction_rule_fails_that_share_of_requests_repeatably() {
        let rule = || Fault::new(FaultKind::InternalError).fraction(0.3);
        let first = codes(rule()).await;
        let failed = first.iter().filter(|c| **c == 500).count();
        assert!((250..=350).contains(&failed), "{failed} of 1000 failed");
        // The same seed gives the same sequence; another seed another one.
        assert_eq!(codes(rule()).await, first);
        assert_eq!(codes(rule().seed(1)).await, first);
        assert_ne!(codes(rule().seed(7)).await, first);
        // The ends of the range.
        assert!(
            codes(Fault::new(FaultKind::Conflict).fraction(0.0))
                .await
                .iter()
                .all(|c| *c == 200)
        );
        assert!(
            codes(Fault::new(FaultKind::Conflict).fraction(1.0))
                .await
                .iter()
                .all(|c| *c == 409)
        );
        // `times` counts the requests failed, not the ones matched.
        let limited = codes(rule().times(10)).await;
        assert_eq!(limited.iter().filter(|c| **c == 500).count(), 10);
        assert!(limited[..20].contains(&200), "{:?}", &limited[..20]);
    }

    #[tokio::test]
    async fn any_of_mixes_its_kinds() {
        let mixed = codes(
            Fault::new(FaultKind::AnyOf(vec![
                FaultKind::Conflict,
                FaultKind::TooManyRequests {
                    retry_after_seconds: 1,
                },
                FaultKind::InternalError,
            ]))
            .fraction(0.5),
        )
        .await;
        let count = |code| mixed.iter().filter(|c| **c == code).count();
        assert!((420..=580).contains(&(1000 - count(200))), "{mixed:?}");
        for code in [409, 429, 500] {
            assert!(
                (100..=240).contains(&count(code)),
                "{code}: {}",
                count(code)
            );
        }
        // Latency among the kinds delays without failing.
        let f = Faults::default();
        f.add(Fault::new(FaultKind::AnyOf(vec![FaultKind::Latency(
            Duration::from_millis(1),
        )])));
        assert!(f.check("get", "pods").await.is_none());
        // An empty AnyOf never fails.
        assert!(
            codes(Fault::new(FaultKind::AnyOf(vec![])))
                .await
                .iter()
                .all(|c| *c == 200)
        );
    }

    #[tokio::test]
    async fn watch_delays_apply_to_watches_only() {
        let f = Faults::default();
        let second = Duration::from_secs(1);
        f.add(
            Fault::new(FaultKind::WatchDelay(second))
                .resource("configmaps")
                .times(2),
        );
        // Requests are answered as usual, and don't use the rule up.
        assert!(f.check("watch", "configmaps").await.is_none());
        assert!(f.check("create", "configmaps").await.is_none());
        assert_eq!(f.watch_delay("pods"), None);
        assert_eq!(f.watch_delay("configmaps"), Some(second));
        assert_eq!(f.watch_delay("configmaps"), Some(second));
        assert_eq!(f.watch_delay("configmaps"), None, "two watches only");
        // Inside AnyOf it never fails a request.
        f.add(Fault::new(FaultKind::AnyOf(vec![FaultKind::WatchDelay(
            second,
        )])));
        assert!(f.check("get", "pods").await.is_none());
    }
}
