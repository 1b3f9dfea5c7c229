//! Recording into the journal from inside a sync.
//!
//! The worker runs each sync inside [`sync`], which makes a draft record
//! current for the sync's task; [`hook_call`] (from the one place hooks
//! are called) and [`action`] (from the child writes) add to it, and the
//! draft goes into the journal when the sync ends. Outside such a scope
//! (no journal) [`watching`] is false and both do nothing.

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use metacontroller_hooks::HookError;
use parking_lot::Mutex;
use serde_json::{Value, json};

use super::redact::{redact_patch, redact_secrets};
use super::{Action, HookCall, Journal, SyncRecord, now};
use crate::hook_target::ResolvedHook;
use crate::hosted::SyncError;
use crate::object;

#[derive(Default)]
struct Draft {
    parent: Value,
    calls: Vec<HookCall>,
    actions: Vec<Action>,
}

tokio::task_local! {
    static CURRENT: Arc<Mutex<Draft>>;
}

/// Runs `sync` (the sync of `key` by controller `name` of `kind`) and, with
/// a journal, records it there when it called a hook or failed in a way
/// that is reported.
pub(crate) async fn sync<F>(
    journal: Option<&Journal>,
    kind: &str,
    name: &str,
    key: &str,
    sync: F,
) -> Result<(), SyncError>
where
    F: Future<Output = Result<(), SyncError>>,
{
    let Some(journal) = journal else {
        return sync.await;
    };
    let draft = Arc::new(Mutex::new(Draft::default()));
    let (started, clock) = (now(), Instant::now());
    let result = CURRENT.scope(draft.clone(), sync).await;
    let draft = std::mem::take(&mut *draft.lock());
    let reported = matches!(&result, Err(err) if err.is_reported());
    if draft.calls.is_empty() && !reported {
        return result;
    }
    journal.sync(SyncRecord {
        seq: 0,
        controller_kind: kind.to_owned(),
        controller: name.to_owned(),
        key: key.to_owned(),
        parent: draft.parent,
        started,
        finished: now(),
        duration_ms: millis(clock.elapsed()),
        calls: draft.calls,
        actions: draft.actions,
        error: result.as_ref().err().map(ToString::to_string),
    });
    result
}

/// Whether a journal is recording this sync.
pub(crate) fn watching() -> bool {
    CURRENT.try_with(|_| ()).is_ok()
}

/// Records one call of `hook`: the request body sent, the answer or the
/// failure, and how long it took.
pub(crate) fn hook_call<B: AsRef<[u8]>>(
    hook: &ResolvedHook,
    request: &[u8],
    answer: &Result<B, HookError>,
    latency: Duration,
) {
    let _ = CURRENT.try_with(|draft| {
        let client = &hook.client;
        let text = |s: &str| client.redact(s);
        let mut request: Value = serde_json::from_slice(request).unwrap_or(Value::Null);
        redact_secrets(&mut request, &text);
        let (response, error) = match answer {
            Ok(bytes) => {
                let bytes = bytes.as_ref();
                let mut body = serde_json::from_slice(bytes)
                    .unwrap_or_else(|_| Value::String(client.snippet(bytes)));
                redact_secrets(&mut body, &text);
                (Some(body), None)
            }
            Err(err) => (None, Some(client.redact(&err.to_string()))),
        };
        let mut draft = draft.lock();
        if draft.parent.is_null() {
            draft.parent = summary(request.get("parent").or(request.get("object")));
        }
        draft.calls.push(HookCall {
            hook: hook.kind.as_str().to_owned(),
            url: client.url().to_owned(),
            request,
            response,
            latency_ms: millis(latency),
            error,
        });
    });
}

/// Records a write of `obj` (`verb` is `create`, `update`, `delete` or
/// `apply`) and how it ended; `diff` is the JSON patch of an update.
pub(crate) fn action<E: Display>(
    verb: &str,
    obj: &Value,
    diff: Option<Value>,
    result: &Result<(), E>,
) {
    let _ = CURRENT.try_with(|draft| {
        let mut diff = diff;
        if object::kind(obj) == "Secret"
            && let Some(diff) = &mut diff
        {
            redact_patch(diff);
        }
        draft.lock().actions.push(Action {
            verb: verb.to_owned(),
            object: object::describe(obj),
            diff,
            error: result.as_ref().err().map(ToString::to_string),
        });
    });
}

/// The identifying fields of a parent.
fn summary(parent: Option<&Value>) -> Value {
    let Some(parent) = parent else {
        return Value::Null;
    };
    let meta = &parent["metadata"];
    json!({
        "apiVersion": parent["apiVersion"],
        "kind": parent["kind"],
        "namespace": meta["namespace"],
        "name": meta["name"],
        "uid": meta["uid"],
        "generation": meta["generation"],
    })
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
