//! One entry of the corpus: a request, a poll until a condition holds, or a
//! bounded watch. Steps are plain data; `${var}` in a path, query or body
//! string is replaced by a value saved from an earlier response.

use serde_json::Value;

/// What a poll waits for in the response it repeats.
#[derive(Clone, Debug)]
pub enum Until {
    /// The HTTP status code.
    Code(u16),
    /// The value at a JSON pointer of the body (`Value::Null` = absent).
    Equals(&'static str, Value),
    /// Something is at a JSON pointer of the body.
    Present(&'static str),
}

#[derive(Clone, Debug)]
pub enum Kind {
    /// Sent once; the response is recorded.
    Once,
    /// Repeated (GET) until the condition holds or the deadline passes; the
    /// last response is recorded.
    Poll(Until),
    /// A watch with `timeoutSeconds`; the events it delivers are recorded.
    Watch,
}

#[derive(Clone, Debug)]
pub struct Step {
    pub id: String,
    pub method: &'static str,
    pub path: String,
    pub query: String,
    pub content_type: &'static str,
    pub body: Option<Value>,
    /// `(variable, JSON pointer into the response body)`.
    pub save: Vec<(String, String)>,
    pub kind: Kind,
}

pub const JSON: &str = "application/json";
pub const MERGE: &str = "application/merge-patch+json";
pub const JSON_PATCH: &str = "application/json-patch+json";
pub const STRATEGIC: &str = "application/strategic-merge-patch+json";
pub const APPLY: &str = "application/apply-patch+yaml";

impl Step {
    fn new(id: &str, method: &'static str, path: &str, body: Option<Value>) -> Step {
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (p.to_owned(), q.to_owned()),
            None => (path.to_owned(), String::new()),
        };
        Step {
            id: id.to_owned(),
            method,
            path,
            query,
            content_type: JSON,
            body,
            save: Vec::new(),
            kind: Kind::Once,
        }
    }

    pub fn get(id: &str, path: &str) -> Step {
        Step::new(id, "GET", path, None)
    }

    pub fn post(id: &str, path: &str, body: Value) -> Step {
        Step::new(id, "POST", path, Some(body))
    }

    pub fn put(id: &str, path: &str, body: Value) -> Step {
        Step::new(id, "PUT", path, Some(body))
    }

    pub fn patch(id: &str, path: &str, content_type: &'static str, body: Value) -> Step {
        let mut s = Step::new(id, "PATCH", path, Some(body));
        s.content_type = content_type;
        s
    }

    pub fn delete(id: &str, path: &str) -> Step {
        Step::new(id, "DELETE", path, None)
    }

    pub fn delete_with(id: &str, path: &str, options: Value) -> Step {
        Step::new(id, "DELETE", path, Some(options))
    }

    pub fn poll(id: &str, path: &str, until: Until) -> Step {
        let mut s = Step::new(id, "GET", path, None);
        s.kind = Kind::Poll(until);
        s
    }

    /// A watch of `path` from the saved resourceVersion `${rv_var}`, cut
    /// after `timeoutSeconds=1`.
    pub fn watch(id: &str, path: &str, extra_query: &str) -> Step {
        let mut s = Step::new(id, "GET", path, None);
        s.query = format!("watch=true&timeoutSeconds=1{extra_query}");
        s.kind = Kind::Watch;
        s
    }

    pub fn save(mut self, var: &str, pointer: &str) -> Step {
        self.save.push((var.to_owned(), pointer.to_owned()));
        self
    }
}
