//! The journal as JSON and as a stream of server-sent events.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::Response;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use metacontroller_engine::journal::JournalEvent;
use tokio::sync::broadcast::{Receiver, error::RecvError};

use super::{Handles, json};

/// `GET /api/snapshot`.
pub async fn snapshot(State(handles): State<Handles>) -> Response {
    json(&handles.journal.snapshot())
}

/// `GET /api/stream`: a `snapshot` event, then `sync` and `controller`
/// events as they happen.
pub async fn stream(
    State(handles): State<Handles>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    // Subscribe before the snapshot: nothing falls between them.
    let events = handles.journal.subscribe();
    let first = snapshot_event(&handles);
    let state = (events, Some(first), handles);
    let stream = futures::stream::unfold(state, |(mut events, first, handles)| async move {
        if let Some(first) = first {
            return Some((Ok(first), (events, None, handles)));
        }
        let event = next(&mut events, &handles).await?;
        Some((Ok(event), (events, None, handles)))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

async fn next(events: &mut Receiver<JournalEvent>, handles: &Handles) -> Option<Event> {
    match events.recv().await {
        Ok(event) => {
            let name = match &event {
                JournalEvent::Sync(_) => "sync",
                JournalEvent::Controller(_) => "controller",
            };
            Some(json_event(name, &event))
        }
        // Fell behind: start over from what the journal holds now.
        Err(RecvError::Lagged(_)) => Some(snapshot_event(handles)),
        Err(RecvError::Closed) => None,
    }
}

fn snapshot_event(handles: &Handles) -> Event {
    json_event("snapshot", &handles.journal.snapshot())
}

fn json_event(name: &str, data: &impl serde::Serialize) -> Event {
    Event::default()
        .event(name)
        .data(serde_json::to_string(data).unwrap_or_default())
}
