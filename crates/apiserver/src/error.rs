//! API errors, rendered as Kubernetes `Status` objects with the `reason` and
//! `code` real clients switch on (`k8s.io/apimachinery/pkg/api/errors`).

use serde_json::{Value, json};

/// The `reason` field of a failed `Status` (`metav1.StatusReason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// 404: the object or URL does not exist.
    NotFound,
    /// 409: a create names an object that exists.
    AlreadyExists,
    /// 409: a precondition or resourceVersion does not match.
    Conflict,
    /// 422: the object fails validation.
    Invalid,
    /// 400: the request cannot be understood.
    BadRequest,
    /// 410: a watch position older than the kept history.
    Gone,
    /// 410: a `continue` token older than the kept snapshots.
    Expired,
    /// 405: the verb is not served for this resource.
    MethodNotAllowed,
    /// 406: no representation the `Accept` header allows.
    NotAcceptable,
    /// 415: a body type the verb does not take.
    UnsupportedMediaType,
    /// 429: retry after the time given.
    TooManyRequests,
    /// 403: refused (e.g. a write into a terminating namespace).
    Forbidden,
    /// 500.
    InternalError,
    /// 503: retry after the time given.
    ServiceUnavailable,
    /// 504.
    Timeout,
}

impl Reason {
    /// The reason as the `Status` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NotFound => "NotFound",
            Reason::AlreadyExists => "AlreadyExists",
            Reason::Conflict => "Conflict",
            Reason::Invalid => "Invalid",
            Reason::BadRequest => "BadRequest",
            Reason::Gone => "Gone",
            Reason::Expired => "Expired",
            Reason::MethodNotAllowed => "MethodNotAllowed",
            Reason::NotAcceptable => "NotAcceptable",
            Reason::UnsupportedMediaType => "UnsupportedMediaType",
            Reason::TooManyRequests => "TooManyRequests",
            Reason::Forbidden => "Forbidden",
            Reason::InternalError => "InternalError",
            Reason::ServiceUnavailable => "ServiceUnavailable",
            Reason::Timeout => "Timeout",
        }
    }

    /// The HTTP status code of the reason.
    pub fn code(self) -> u16 {
        match self {
            Reason::NotFound => 404,
            Reason::AlreadyExists | Reason::Conflict => 409,
            Reason::Invalid => 422,
            Reason::BadRequest => 400,
            Reason::Gone | Reason::Expired => 410,
            Reason::MethodNotAllowed => 405,
            Reason::NotAcceptable => 406,
            Reason::UnsupportedMediaType => 415,
            Reason::TooManyRequests => 429,
            Reason::Forbidden => 403,
            Reason::InternalError => 500,
            Reason::ServiceUnavailable => 503,
            Reason::Timeout => 504,
        }
    }
}

/// An error answered to a client as a `Status`.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{reason:?}: {message}")]
pub struct ApiError {
    /// The `reason` of the Status.
    pub reason: Reason,
    /// The `message` of the Status, worded as the real server words it.
    pub message: String,
    /// `details` of the Status (`name`, `group`, `kind`, `causes`, ...).
    pub details: Option<Value>,
    /// Overrides the HTTP code of the reason (e.g. 500 vs 503 for injected faults).
    pub code: Option<u16>,
    /// `Retry-After` seconds, for 429 and 503.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with this reason and message and no details.
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
            details: None,
            code: None,
            retry_after: None,
        }
    }

    /// Sets the `details` of the Status.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// The HTTP status code answered.
    pub fn code(&self) -> u16 {
        self.code.unwrap_or(self.reason.code())
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(Reason::BadRequest, message)
    }

    /// The 404 of a URL that names no served resource or document (the
    /// real server's mux answers `404 page not found`).
    pub fn path_not_found() -> Self {
        Self::new(
            Reason::NotFound,
            "the server could not find the requested resource",
        )
        .with_details(json!({"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]}))
    }

    /// `<resource>[.<group>] "<name>" not found`, as the real server words it.
    pub fn not_found(group: &str, resource: &str, name: &str) -> Self {
        Self::new(
            Reason::NotFound,
            format!("{} \"{name}\" not found", qualified(group, resource)),
        )
        .with_details(details(name, group, resource))
    }

    /// `<resource>[.<group>] "<name>" already exists`.
    pub fn already_exists(group: &str, resource: &str, name: &str) -> Self {
        Self::new(
            Reason::AlreadyExists,
            format!("{} \"{name}\" already exists", qualified(group, resource)),
        )
        .with_details(details(name, group, resource))
    }

    /// The optimistic-concurrency conflict every controller retries on.
    pub fn conflict(group: &str, resource: &str, name: &str, why: &str) -> Self {
        Self::new(
            Reason::Conflict,
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                qualified(group, resource)
            ),
        )
        .with_details(details(name, group, resource))
    }

    /// The conflict of a write based on an outdated resourceVersion.
    pub fn stale(group: &str, resource: &str, name: &str) -> Self {
        Self::conflict(
            group,
            resource,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 with one cause per invalid field.
    pub fn invalid(
        group: &str,
        kind: &str,
        name: &str,
        causes: &[(&str, &str)], // (field, message)
    ) -> Self {
        let text: Vec<String> = causes.iter().map(|(f, m)| format!("{f}: {m}")).collect();
        let body = if text.len() == 1 {
            text[0].clone()
        } else {
            format!("[{}]", text.join(", "))
        };
        let message = format!("{} \"{name}\" is invalid: {body}", qualified(group, kind));
        let mut details = details(name, group, kind);
        details["causes"] = causes
            .iter()
            .map(|(f, m)| json!({"reason": "FieldValueInvalid", "message": m, "field": f}))
            .collect();
        Self::new(Reason::Invalid, message).with_details(details)
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(Reason::MethodNotAllowed, message)
    }

    /// 410 Gone.
    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(Reason::Gone, message)
    }

    /// 500 InternalError.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Reason::InternalError, message)
    }

    /// The `Status` object for this error.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason.as_str(),
            "code": self.code(),
        });
        if let Some(details) = &self.details {
            let mut details = details.clone();
            if let Some(secs) = self.retry_after {
                details["retryAfterSeconds"] = json!(secs);
            }
            status["details"] = details;
        } else if let Some(secs) = self.retry_after {
            status["details"] = json!({"retryAfterSeconds": secs});
        }
        status
    }
}

fn qualified(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

/// The result of anything that answers a request.
pub type ApiResult<T> = Result<T, ApiError>;

/// `Status.details` naming an object. `group` is omitted when empty, as the
/// Go type's `omitempty` does (k8s.io/apimachinery/pkg/apis/meta/v1/types.go,
/// `StatusDetails`).
pub fn details(name: &str, group: &str, kind: &str) -> Value {
    let mut d = json!({"name": name, "kind": kind});
    if !group.is_empty() {
        d["group"] = json!(group);
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_is_worded_like_kubernetes() {
        let e = ApiError::not_found("apps", "deployments", "web");
        let s = e.to_status();
        assert_eq!(s["message"], "deployments.apps \"web\" not found");
        assert_eq!(s["reason"], "NotFound");
        assert_eq!(s["code"], 404);
        assert_eq!(
            ApiError::not_found("", "pods", "p").message,
            "pods \"p\" not found"
        );
    }

    #[test]
    fn invalid_lists_causes() {
        let e = ApiError::invalid("", "ConfigMap", "x", &[("metadata.name", "Required value")]);
        assert_eq!(e.code(), 422);
        assert_eq!(
            e.message,
            "ConfigMap \"x\" is invalid: metadata.name: Required value"
        );
        let e = ApiError::invalid("example.com", "Widget", "x", &[("a", "b"), ("c", "d")]);
        assert_eq!(
            e.message,
            "Widget.example.com \"x\" is invalid: [a: b, c: d]"
        );
    }
}
