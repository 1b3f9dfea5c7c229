//! What the journal keeps of one sync.

use serde::Serialize;
use serde_json::Value;

/// One sync of one parent (or decorator target) by one controller.
#[derive(Debug, Clone, Serialize)]
pub struct SyncRecord {
    /// Increases by one per sync recorded, across the journal.
    pub seq: u64,
    /// `CompositeController` or `DecoratorController`.
    pub controller_kind: String,
    /// The controller object's name.
    pub controller: String,
    /// The work-queue key of the parent.
    pub key: String,
    /// The parent as the first hook call saw it: `apiVersion`, `kind`,
    /// `namespace`, `name`, `uid`, `generation` (empty when no hook was
    /// called).
    pub parent: Value,
    /// When the sync started, RFC 3339.
    pub started: String,
    /// When the sync ended, RFC 3339.
    pub finished: String,
    /// How long the whole sync took, in milliseconds.
    pub duration_ms: f64,
    /// The hook calls, in order.
    pub calls: Vec<HookCall>,
    /// The writes to children or attachments, in the order they ended.
    pub actions: Vec<Action>,
    /// Why the sync failed, if it did.
    pub error: Option<String>,
}

impl SyncRecord {
    /// Which parent this is about: controller kind and name plus the
    /// work-queue key.
    pub fn parent_id(&self) -> String {
        format!("{}/{}/{}", self.controller_kind, self.controller, self.key)
    }
}

/// One hook call.
#[derive(Debug, Clone, Serialize)]
pub struct HookCall {
    /// `sync`, `finalize` or `customize`.
    pub hook: String,
    /// The hook's URL, credentials hidden.
    pub url: String,
    /// The request sent.
    pub request: Value,
    /// The answer, when one came back (a JSON value, or a string when it
    /// was not JSON).
    pub response: Option<Value>,
    /// From sending the request to the answer, in milliseconds.
    pub latency_ms: f64,
    /// Why the call failed, if it did.
    pub error: Option<String>,
}

/// One write the sync made.
#[derive(Debug, Clone, Serialize)]
pub struct Action {
    /// `create`, `update`, `delete` or `apply` (server-side apply).
    pub verb: String,
    /// The object: `Kind namespace/name`.
    pub object: String,
    /// For an update, the JSON patch from the observed object to the one
    /// written.
    pub diff: Option<Value>,
    /// Why the write failed, if it did.
    pub error: Option<String>,
}
