//! Resync on demand: [`ResyncHandle::resync_all`] queues every object of
//! every hosted controller at once, as a `resyncPeriodSeconds` tick queues
//! one controller's. For a caller that knows the hooks changed behind the
//! engine's back (a hook process restarted with new code), since nothing in
//! the cluster changes then to bring the next sync.

use std::sync::Arc;

use tokio::sync::watch;

/// Asks every running hosted controller to resync. Cheap to clone.
#[derive(Clone)]
pub struct ResyncHandle {
    requests: Arc<watch::Sender<u64>>,
}

impl Default for ResyncHandle {
    fn default() -> Self {
        ResyncHandle {
            requests: Arc::new(watch::channel(0).0),
        }
    }
}

impl ResyncHandle {
    /// Queues every object of every hosted controller running now.
    pub fn resync_all(&self) {
        self.requests.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that sees the requests made from now on.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.requests.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_see_later_requests_only() {
        let handle = ResyncHandle::default();
        handle.resync_all();
        let mut rx = handle.subscribe();
        assert!(!rx.has_changed().unwrap());
        handle.clone().resync_all();
        rx.changed().await.unwrap();
        assert!(!rx.has_changed().unwrap());
    }
}
