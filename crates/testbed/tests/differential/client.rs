//! Sends one step to one server over raw HTTP and records what came back.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kube::Client;
use serde_json::{Value, json};

use super::step::{Kind, Step, Until};

/// How long a poll may wait (the real garbage collector runs promptly for
/// built-in kinds; this bounds a server that never converges).
const POLL_DEADLINE: Duration = Duration::from_secs(30);
/// Bounds one exchange (watches end after their own `timeoutSeconds`).
const REQUEST_DEADLINE: Duration = Duration::from_secs(20);
const POLL_EVERY: Duration = Duration::from_millis(200);

/// One server's answer to one step: `{"code": u16, "body": ...}`, or for a
/// watch `{"code": u16, "events": [...]}`.
pub type Record = Value;

pub struct Runner {
    client: Client,
    vars: HashMap<String, String>,
}

impl Runner {
    pub fn new(client: Client) -> Runner {
        Runner {
            client,
            vars: HashMap::new(),
        }
    }

    fn expand(&self, s: &str) -> String {
        let mut out = s.to_owned();
        for (k, v) in &self.vars {
            out = out.replace(&format!("${{{k}}}"), v);
        }
        out
    }

    fn expand_value(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.expand(s)),
            Value::Array(a) => Value::Array(a.iter().map(|x| self.expand_value(x)).collect()),
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, x)| (k.clone(), self.expand_value(x)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    async fn send(&self, step: &Step) -> (u16, Vec<u8>) {
        let path = self.expand(&step.path);
        let query = self.expand(&step.query);
        let uri = if query.is_empty() {
            path
        } else {
            format!("{path}?{query}")
        };
        let body = match &step.body {
            Some(b) => serde_json::to_vec(&self.expand_value(b)).expect("json"),
            None => Vec::new(),
        };
        let mut req = http::Request::builder()
            .method(step.method)
            .uri(uri)
            .header("accept", "application/json");
        if step.body.is_some() {
            req = req.header("content-type", step.content_type);
        }
        let req = req.body(kube::client::Body::from(body)).expect("request");
        // A transport failure is recorded as code 0 with the error as body.
        let exchange = async {
            let resp = match self.client.send(req).await {
                Ok(resp) => resp,
                Err(e) => return (0, format!("sending: {e}").into_bytes()),
            };
            let code = resp.status().as_u16();
            match resp.into_body().collect_bytes().await {
                Ok(bytes) => (code, bytes.to_vec()),
                Err(e) => (0, format!("reading the body: {e}").into_bytes()),
            }
        };
        tokio::time::timeout(REQUEST_DEADLINE, exchange)
            .await
            .unwrap_or_else(|_| (0, b"no answer in time".to_vec()))
    }

    fn parse(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
    }

    /// Runs one step and returns its record.
    pub async fn run(&mut self, step: &Step) -> Record {
        let record = match &step.kind {
            Kind::Once => {
                let (code, bytes) = self.send(step).await;
                json!({"code": code, "body": Self::parse(&bytes)})
            }
            Kind::Watch => {
                let (code, bytes) = self.send(step).await;
                let events: Vec<Value> = String::from_utf8_lossy(&bytes)
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| Self::parse(l.as_bytes()))
                    .collect();
                if code == 200 {
                    json!({"code": code, "events": events})
                } else {
                    json!({"code": code, "body": Self::parse(&bytes)})
                }
            }
            Kind::Poll(until) => {
                let start = Instant::now();
                loop {
                    let (code, bytes) = self.send(step).await;
                    let body = Self::parse(&bytes);
                    if holds(until, code, &body) || start.elapsed() > POLL_DEADLINE {
                        break json!({"code": code, "body": body});
                    }
                    tokio::time::sleep(POLL_EVERY).await;
                }
            }
        };
        for (var, pointer) in &step.save {
            // A value the response lacks is saved as a marker: the steps
            // that use it then fail visibly on this server only.
            let text = match record["body"].pointer(pointer) {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => format!("missing-{var}"),
            };
            self.vars.insert(var.clone(), text);
        }
        record
    }
}

fn holds(until: &Until, code: u16, body: &Value) -> bool {
    match until {
        Until::Code(c) => code == *c,
        Until::Equals(p, v) => body.pointer(p).unwrap_or(&Value::Null) == v,
        Until::Present(p) => body.pointer(p).is_some_and(|v| !v.is_null()),
    }
}
