//! Optional admin endpoints (see [`crate::Config::admin`]) that drive fault
//! injection over HTTP, for clients in other processes:
//!
//! - `POST /admin/faults` adds a rule, given as JSON:
//!   `{"kind": "TooManyRequests", "retryAfterSeconds": 1, "verb": "create",
//!   "resource": "configmaps", "times": 3}`; `kind` is one of `Latency`
//!   (with `latencyMillis`), `WatchDelay` (with `latencyMillis`: the events
//!   of matching watches arrive that much late), `TooManyRequests` (with
//!   `retryAfterSeconds`, default 1), `Conflict`, `InternalError`,
//!   `Unavailable`; `verb`,
//!   `resource` (the counter form: `pods`, `deployments.apps`,
//!   `widgets.example.com/status`) and `times` are optional.
//!   Instead of `kind`, `kinds` (a list of the same names) answers each
//!   faulted request with one of them, picked at random. `fraction` (0.0 to
//!   1.0) applies the rule to that share of the matching requests only,
//!   picked by a generator seeded with `seed` (default 1), so that the same
//!   rule gives the same sequence of answers in every run:
//!   `{"kinds": ["Conflict", "TooManyRequests", "InternalError"],
//!   "verb": "create", "fraction": 0.5, "seed": 7}` fails half of all
//!   creates with 409, 429 or 500. With `times`, it counts the requests
//!   the rule was applied to.
//! - `DELETE /admin/faults` removes every rule.
//! - `POST /admin/close-watches` ends every open watch stream.
//! - `POST /admin/compact` forgets watch history up to the current
//!   resourceVersion, so that watches from older ones get 410 Gone.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use http::header;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::faults::{Fault, FaultKind};
use crate::state::Shared;

pub fn router(shared: Arc<Shared>) -> axum::Router {
    axum::Router::new()
        .route("/admin/faults", post(add_fault).delete(clear_faults))
        .route("/admin/close-watches", post(close_watches))
        .route("/admin/compact", post(compact))
        .with_state(shared)
}

fn respond(code: u16, v: &Value) -> Response {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(serde_json::to_vec(v).unwrap_or_default()))
        .unwrap()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FaultRule {
    kind: Option<String>,
    kinds: Option<Vec<String>>,
    verb: Option<String>,
    resource: Option<String>,
    times: Option<u64>,
    fraction: Option<f64>,
    seed: Option<u64>,
    latency_millis: Option<u64>,
    retry_after_seconds: Option<u64>,
}

impl FaultRule {
    fn into_fault(self) -> Result<Fault, String> {
        let kind = match (&self.kind, &self.kinds) {
            (Some(kind), None) => self.kind(kind)?,
            (None, Some(kinds)) if !kinds.is_empty() => FaultKind::AnyOf(
                kinds
                    .iter()
                    .map(|k| self.kind(k))
                    .collect::<Result<_, _>>()?,
            ),
            (None, Some(_)) => return Err("kinds must not be empty".into()),
            _ => return Err("give either kind or kinds".into()),
        };
        if let Some(f) = self.fraction
            && !(0.0..=1.0).contains(&f)
        {
            return Err(format!("fraction {f} is not between 0 and 1"));
        }
        let mut fault = Fault::new(kind);
        fault.verb = self.verb;
        fault.resource = self.resource;
        fault.times = self.times;
        if let Some(f) = self.fraction {
            fault = fault.fraction(f);
        }
        if let Some(seed) = self.seed {
            fault = fault.seed(seed);
        }
        Ok(fault)
    }

    fn kind(&self, name: &str) -> Result<FaultKind, String> {
        Ok(match name {
            "Latency" => FaultKind::Latency(Duration::from_millis(
                self.latency_millis
                    .ok_or("a Latency rule needs latencyMillis")?,
            )),
            "TooManyRequests" => FaultKind::TooManyRequests {
                retry_after_seconds: self.retry_after_seconds.unwrap_or(1),
            },
            "WatchDelay" => FaultKind::WatchDelay(Duration::from_millis(
                self.latency_millis
                    .ok_or("a WatchDelay rule needs latencyMillis")?,
            )),
            "Conflict" => FaultKind::Conflict,
            "InternalError" => FaultKind::InternalError,
            "Unavailable" => FaultKind::Unavailable,
            other => {
                return Err(format!(
                    "unknown fault kind {other:?}: expected Latency, WatchDelay, TooManyRequests, Conflict, InternalError or Unavailable"
                ));
            }
        })
    }
}

async fn add_fault(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let rule = serde_json::from_slice::<FaultRule>(&body)
        .map_err(|e| e.to_string())
        .and_then(FaultRule::into_fault);
    match rule {
        Ok(fault) => {
            let echo = json!({
                "kind": format!("{:?}", fault.kind),
                "verb": fault.verb,
                "resource": fault.resource,
                "times": fault.times,
                "fraction": fault.fraction,
                "seed": fault.seed,
            });
            shared.faults.add(fault);
            respond(201, &echo)
        }
        Err(e) => {
            let e = ApiError::bad_request(format!("invalid fault rule: {e}"));
            respond(e.code(), &e.to_status())
        }
    }
}

async fn clear_faults(State(shared): State<Arc<Shared>>) -> Response {
    shared.faults.clear();
    respond(200, &json!({"cleared": true}))
}

async fn close_watches(State(shared): State<Arc<Shared>>) -> Response {
    shared.watch_closer.send_modify(|g| *g += 1);
    respond(200, &json!({"closed": true}))
}

async fn compact(State(shared): State<Arc<Shared>>) -> Response {
    let rv = {
        let mut inner = shared.inner.lock();
        let rv = inner.current_rv();
        inner.compact(rv);
        rv
    };
    respond(200, &json!({"resourceVersion": rv.to_string()}))
}
