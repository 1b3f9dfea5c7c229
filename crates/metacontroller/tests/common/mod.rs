//! Helpers shared by the binary's cluster tests: a counting proxy in front of
//! the API server, a sync hook, and `metacontroller` processes whose logs are
//! kept.
#![allow(dead_code)]

pub mod cdp;
pub mod fault_hook;
pub mod fault_world;
pub mod hook;
pub mod instance;
pub mod kubectl;
pub mod paths;
pub mod proxy;
pub mod render_bed;
pub mod things;

use std::time::{Duration, Instant};

/// Polls `check` every 200 ms until it returns `Some`, or panics with `what`
/// after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
