//! The profiling endpoint of `--pprof-address`, in the shape of Go's
//! `net/http/pprof` so that `go tool pprof` can read it:
//!
//! - `GET /debug/pprof/profile?seconds=N`: samples this process's CPU for
//!   `N` seconds (default 30, at most 300) at 100 Hz and answers a
//!   gzip-compressed `perftools.profiles.Profile` protobuf. One profile runs
//!   at a time; a request while one is running gets `409 Conflict`.
//! - `GET /debug/pprof/heap`: `501 Not Implemented`. A heap profile needs an
//!   allocator that records allocation sites, and this build uses the
//!   system allocator.
//! - `GET /debug/pprof/`: a plain-text index of the two.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use flate2::Compression;
use flate2::write::GzEncoder;
use pprof::protos::Message;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Sampling frequency of CPU profiles, as Go's `runtime/pprof` uses.
const FREQUENCY_HZ: i32 = 100;
/// Length of a CPU profile when `seconds` is absent.
const DEFAULT_SECONDS: u64 = 30;
/// Longest CPU profile a request may ask for.
const MAX_SECONDS: u64 = 300;

const INDEX: &str = "\
Profiles:
  /debug/pprof/profile?seconds=N  CPU profile of N seconds (default 30, 1 to 300), \
gzip-compressed pprof protobuf
  /debug/pprof/heap               not available (501): see that path
";

const HEAP: &str = "\
heap profiles are not available: they need a profiling allocator that records \
allocation sites, and this build uses the system allocator; \
/debug/pprof/profile gives CPU profiles
";

/// Why a CPU profile could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// `seconds` is not an integer between 1 and 300.
    #[error("seconds must be an integer from 1 to {MAX_SECONDS}, got {0:?}")]
    Seconds(String),
    /// Another CPU profile is running.
    #[error("a CPU profile is already running; try again when it ends")]
    Busy,
    /// The sampler failed to start or to build its report.
    #[error("profiling failed: {0}")]
    Profiler(#[from] pprof::Error),
    /// Encoding or compressing the profile failed.
    #[error("encoding the profile failed: {0}")]
    Encode(#[from] std::io::Error),
    /// The sampling thread ended abnormally.
    #[error("the profiling task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl IntoResponse for ProfileError {
    fn into_response(self) -> Response {
        let status = match self {
            ProfileError::Seconds(_) => StatusCode::BAD_REQUEST,
            ProfileError::Busy => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, format!("{self}\n")).into_response()
    }
}

/// Serves the profiling endpoint on `listener` until `cancel` fires.
pub async fn serve(listener: TcpListener, cancel: CancellationToken) -> std::io::Result<()> {
    let busy = Arc::new(AtomicBool::new(false));
    let app = Router::new()
        .route("/debug/pprof/", get(|| async { INDEX }))
        .route("/debug/pprof/profile", get(profile))
        .route(
            "/debug/pprof/heap",
            get(|| async { (StatusCode::NOT_IMPLEMENTED, HEAP) }),
        )
        .with_state(busy);
    axum::serve(listener, app)
        .with_graceful_shutdown(cancel.cancelled_owned())
        .await
}

/// Releases the one-profile-at-a-time flag when dropped.
struct Running(Arc<AtomicBool>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

async fn profile(
    State(busy): State<Arc<AtomicBool>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ProfileError> {
    let seconds = parse_seconds(query.get("seconds"))?;
    if busy.swap(true, Ordering::AcqRel) {
        return Err(ProfileError::Busy);
    }
    let running = Running(busy);
    let body = tokio::task::spawn_blocking(move || {
        let _running = running;
        cpu_profile(Duration::from_secs(seconds))
    })
    .await??;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"profile\"",
            ),
        ],
        body,
    )
        .into_response())
}

/// The `seconds` parameter: absent means 30.
fn parse_seconds(value: Option<&String>) -> Result<u64, ProfileError> {
    let Some(text) = value else {
        return Ok(DEFAULT_SECONDS);
    };
    match text.trim().parse::<u64>() {
        Ok(n) if (1..=MAX_SECONDS).contains(&n) => Ok(n),
        _ => Err(ProfileError::Seconds(text.clone())),
    }
}

/// Samples the whole process for `length`, then encodes the samples as a
/// gzip-compressed pprof protobuf. Blocks the calling thread.
fn cpu_profile(length: Duration) -> Result<Vec<u8>, ProfileError> {
    let guard = pprof::ProfilerGuardBuilder::default()
        .frequency(FREQUENCY_HZ)
        // Unwinding through these libraries' frames can fault.
        .blocklist(&["libc", "libgcc", "pthread", "vdso"])
        .build()?;
    std::thread::sleep(length);
    let mut profile = guard.report().build()?.pprof()?;
    drop(guard);
    // A sample taken inside a blocklisted library has no frame to show.
    profile
        .sample
        .retain(|sample| !sample.location_id.is_empty());
    let mut gzip = GzEncoder::new(Vec::new(), Compression::default());
    gzip.write_all(&profile.encode_to_vec())?;
    Ok(gzip.finish()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_bounds() {
        assert_eq!(parse_seconds(None).unwrap(), 30);
        let s = |t: &str| parse_seconds(Some(&t.to_owned()));
        assert_eq!(s("1").unwrap(), 1);
        assert_eq!(s("300").unwrap(), 300);
        assert!(matches!(s("0"), Err(ProfileError::Seconds(_))));
        assert!(matches!(s("301"), Err(ProfileError::Seconds(_))));
        assert!(matches!(s("x"), Err(ProfileError::Seconds(_))));
    }
}
