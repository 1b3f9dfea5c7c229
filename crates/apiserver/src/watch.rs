//! Watch streams. Each watcher keeps its own position (a resourceVersion)
//! and reads the table's history from there, so a slow watcher never makes
//! the server buffer per-watcher queues; one that falls behind the kept
//! history gets `410 Gone` as a watch `ERROR` event, as from the real server
//! (`staging/src/k8s.io/apiserver/pkg/storage/cacher`).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::error::{ApiError, ApiResult, Reason};
use crate::meta::at_version;
use crate::query::{FieldSelector, matches, selectors};
use crate::registry::ResourceInfo;
use crate::response::{stream_body, watch_response};
use crate::state::Shared;
use crate::store::EventType;
use metacontroller_selectors::Selector;

/// Default watch length when the client gives no `timeoutSeconds`
/// (the real server picks 30–60 minutes).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);
/// Events are sent in chunks of about this many bytes.
const CHUNK_BYTES: usize = 64 * 1024;
/// How often a BOOKMARK is sent to clients that allow them.
const BOOKMARK_EVERY: Duration = Duration::from_secs(10);

struct Filter {
    namespace: Option<String>,
    labels: Selector,
    fields: FieldSelector,
    info: ResourceInfo,
}

impl Filter {
    fn matches(&self, obj: &Value) -> bool {
        if let Some(ns) = &self.namespace
            && obj["metadata"]["namespace"].as_str() != Some(ns.as_str())
        {
            return false;
        }
        matches(&self.info, obj, &self.labels, &self.fields)
    }
}

fn gone_event(message: String) -> bytes::Bytes {
    let e = ApiError::new(Reason::Expired, message);
    let mut status = e.to_status();
    status["code"] = json!(410);
    event_line("ERROR", &status)
}

fn bookmark(info: &ResourceInfo, rv: u64, initial_end: bool) -> bytes::Bytes {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    event_line(
        "BOOKMARK",
        &json!({"kind": info.kind, "apiVersion": info.api_version(), "metadata": meta}),
    )
}

/// Serves a watch; `delay` holds every event back that long
/// ([`crate::FaultKind::WatchDelay`]).
pub fn watch(
    shared: Arc<Shared>,
    info: ResourceInfo,
    namespace: Option<String>,
    q: &HashMap<String, String>,
    table: bool,
    delay: Option<Duration>,
) -> ApiResult<Response> {
    let _ = table; // watch events carry full objects; clients that asked for tables accept them
    let (labels, fields) = selectors(&info, q)?;
    let bookmarks = q.get("allowWatchBookmarks").is_some_and(|v| v == "true");
    let send_initial = q.get("sendInitialEvents").map(|v| v == "true");
    if send_initial.is_some()
        && q.get("resourceVersionMatch").map(String::as_str) != Some("NotOlderThan")
    {
        return Err(ApiError::invalid(
            "meta.k8s.io",
            "ListOptions",
            "",
            &[(
                "resourceVersionMatch",
                "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            )],
        ));
    }
    if send_initial == Some(true) && !bookmarks {
        return Err(ApiError::invalid(
            "meta.k8s.io",
            "ListOptions",
            "",
            &[(
                "allowWatchBookmarks",
                "Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true",
            )],
        ));
    }
    let timeout = match q.get("timeoutSeconds") {
        Some(t) => Duration::from_secs(
            t.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid timeoutSeconds: {t}")))?,
        ),
        None => DEFAULT_TIMEOUT,
    };
    let rv_param = q.get("resourceVersion").map(String::as_str).unwrap_or("");
    let from: Option<u64> = match rv_param {
        "" | "0" => None,
        s => Some(
            s.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {s}")))?,
        ),
    };
    let gr = info.group_resource();
    let filter = Filter {
        namespace: namespace.clone(),
        labels,
        fields,
        info: info.clone(),
    };
    let (tx, rx) = mpsc::channel::<bytes::Bytes>(64);
    let mut initial: Vec<Arc<Value>> = Vec::new();
    let (mut pos, mut changes, too_old) = {
        let inner = shared.inner.lock();
        let changes = inner.subscribe(&gr).ok_or_else(|| {
            ApiError::new(
                Reason::NotFound,
                "the server could not find the requested resource",
            )
        })?;
        let current = inner.current_rv();
        let with_initial = send_initial.unwrap_or(from.is_none());
        if with_initial {
            let objs = inner.objects_in(&gr, namespace.as_deref());
            initial = objs.into_iter().filter(|o| filter.matches(o)).collect();
        }
        let pos = if with_initial {
            current
        } else {
            from.unwrap_or(current)
        };
        let too_old = match inner.events_after(&gr, pos, 0) {
            Err(old) => Some(old.oldest),
            Ok(_) => None,
        };
        (pos, changes, too_old)
    };
    shared.counters.watch_started();
    let shared2 = shared.clone();
    let mut closer = shared.watch_closer.subscribe();
    tokio::spawn(async move {
        let _guard = WatchGuard(shared2.clone());
        if let Some(oldest) = too_old {
            let _ = tx
                .send(gone_event(format!(
                    "too old resource version: {pos} ({})",
                    oldest + 1
                )))
                .await;
            return;
        }
        for obj in initial {
            if tx
                .send(event_line("ADDED", &at_version(&obj, &info)))
                .await
                .is_err()
            {
                return;
            }
        }
        if send_initial == Some(true) && tx.send(bookmark(&info, pos, true)).await.is_err() {
            return;
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut next_bookmark = tokio::time::Instant::now() + BOOKMARK_EVERY;
        loop {
            let batch = shared2.inner.lock().events_after(&gr, pos, 256);
            match batch {
                Err(old) => {
                    let _ = tx
                        .send(gone_event(format!(
                            "too old resource version: {pos} ({})",
                            old.oldest + 1
                        )))
                        .await;
                    return;
                }
                Ok(None) => return,
                Ok(Some(events)) if !events.is_empty() => {
                    // The lines of a batch go out as few chunks: one wakeup
                    // and one socket write for many events.
                    let mut chunk = Vec::new();
                    for ev in events {
                        pos = ev.rv;
                        let now = filter.matches(&ev.object);
                        let before = ev.prev.as_ref().map(|p| filter.matches(p));
                        if let Some(ty) = visible_type(ev.ty, before, now) {
                            let obj = at_version(&ev.object, &info);
                            if Arc::ptr_eq(&obj, &ev.object) {
                                push_event_line(&mut chunk, ty, ev.object_json());
                            } else {
                                chunk.extend_from_slice(&event_line(ty, &obj));
                            }
                            if chunk.len() >= CHUNK_BYTES {
                                let full = std::mem::take(&mut chunk);
                                if tx.send(full.into()).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                    if !chunk.is_empty() && tx.send(chunk.into()).await.is_err() {
                        return;
                    }
                    continue;
                }
                Ok(Some(_)) => {}
            }
            tokio::select! {
                changed = changes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    // Let concurrent writes land first, so that a busy
                    // table is read in batches rather than event by event.
                    tokio::task::yield_now().await;
                }
                _ = tokio::time::sleep_until(deadline) => return,
                _ = tokio::time::sleep_until(next_bookmark), if bookmarks => {
                    next_bookmark = tokio::time::Instant::now() + BOOKMARK_EVERY;
                    if tx.send(bookmark(&info, pos, false)).await.is_err() {
                        return;
                    }
                }
                _ = tx.closed() => return,
                _ = closer.changed() => return,
            }
        }
    });
    let rx = match delay {
        Some(delay) => delayed(rx, delay),
        None => rx,
    };
    Ok(watch_response(stream_body(rx)))
}

/// Relays what `rx` receives, each chunk `delay` after it arrived.
fn delayed(mut rx: mpsc::Receiver<Bytes>, delay: Duration) -> mpsc::Receiver<Bytes> {
    let (tx, out) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut held: VecDeque<(Instant, Bytes)> = VecDeque::new();
        let mut open = true;
        while open || !held.is_empty() {
            let due = held.front().map(|(at, _)| *at);
            tokio::select! {
                chunk = rx.recv(), if open => match chunk {
                    Some(chunk) => held.push_back((Instant::now() + delay, chunk)),
                    None => open = false,
                },
                _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                    if let Some((_, chunk)) = held.pop_front()
                        && tx.send(chunk).await.is_err()
                    {
                        return;
                    }
                }
                _ = tx.closed() => return,
            }
        }
    });
    out
}

/// Appends a watch event line around an object already encoded as JSON
/// (the same bytes as [`event_line`] produces).
fn push_event_line(out: &mut Vec<u8>, ty: &str, object: &[u8]) {
    out.reserve(object.len() + ty.len() + 24);
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(ty.as_bytes());
    out.extend_from_slice(b"\",\"object\":");
    out.extend_from_slice(object);
    out.extend_from_slice(b"}\n");
}

struct WatchGuard(Arc<Shared>);

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.0.counters.watch_ended();
    }
}

/// Builds a watch event line.
pub fn event_line(ty: &str, obj: &Value) -> Bytes {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(ty.as_bytes());
    out.extend_from_slice(b"\",\"object\":");
    let _ = serde_json::to_writer(&mut out, obj);
    out.extend_from_slice(b"}\n");
    Bytes::from(out)
}

/// Maps a stored event to what a watcher with these filters sees
/// (selector transitions turn into ADDED/DELETED, as the watch cache does).
pub fn visible_type(
    ty: EventType,
    prev_matches: Option<bool>,
    now_matches: bool,
) -> Option<&'static str> {
    match ty {
        EventType::Added => now_matches.then_some("ADDED"),
        EventType::Deleted => (prev_matches.unwrap_or(now_matches)).then_some("DELETED"),
        EventType::Modified => match (prev_matches.unwrap_or(false), now_matches) {
            (true, true) => Some("MODIFIED"),
            (false, true) => Some("ADDED"),
            (true, false) => Some("DELETED"),
            (false, false) => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_transitions_match_the_watch_cache() {
        assert_eq!(
            visible_type(EventType::Modified, Some(true), false),
            Some("DELETED")
        );
        assert_eq!(
            visible_type(EventType::Modified, Some(false), true),
            Some("ADDED")
        );
        assert_eq!(visible_type(EventType::Modified, Some(false), false), None);
        assert_eq!(visible_type(EventType::Added, None, false), None);
        assert_eq!(
            visible_type(EventType::Deleted, Some(true), true),
            Some("DELETED")
        );
    }
}
