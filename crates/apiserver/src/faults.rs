//! Fault injection for reliability tests and benchmarks: added latency per
//! verb/resource, and answering the next N matching requests with an error.

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
    /// 409 Conflict.
    Conflict,
    /// 500 InternalError.
    InternalError,
    /// 503 ServiceUnavailable.
    Unavailable,
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
}

impl Fault {
    /// A rule matching every request until cleared.
    pub fn new(kind: FaultKind) -> Self {
        Self {
            verb: None,
            resource: None,
            kind,
            times: None,
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

    fn matches(&self, verb: &str, resource: &str) -> bool {
        self.verb.as_deref().is_none_or(|v| v == verb)
            && self.resource.as_deref().is_none_or(|r| r == resource)
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
                if !rule.matches(verb, resource) || rule.times == Some(0) {
                    continue;
                }
                match &rule.kind {
                    FaultKind::Latency(d) => delay += *d,
                    kind if error.is_none() => error = Some(to_error(kind)),
                    _ => continue,
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
        FaultKind::Latency(_) => unreachable!("latency is not an error"),
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
    }
}
