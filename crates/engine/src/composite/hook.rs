//! The sync and finalize request of a CompositeController: `{controller,
//! parent, children, related, finalizing}`, children keyed per the hook's
//! version; the answer's numbers normalised as Go would decode them.

use std::collections::BTreeMap;
use std::sync::Arc;

use metacontroller_api::hook_wire::CompositeHookResponse;
use serde::Serialize;
use serde_json::Value;

use crate::children::{self, Children};
use crate::customize::Related;
use crate::hook_target::ResolvedHook;
use crate::hosted::exchange::normalize;
use crate::hosted::{SyncError, exchange};
use crate::object;

use super::controller::ParentController;

#[derive(Serialize)]
pub(crate) struct HookRequest<'a> {
    pub(crate) controller: &'a Value,
    pub(crate) parent: &'a Value,
    pub(crate) children: BTreeMap<&'a str, BTreeMap<String, &'a Value>>,
    pub(crate) related: BTreeMap<&'a str, BTreeMap<String, &'a Value>>,
    pub(crate) finalizing: bool,
}

impl ParentController {
    /// Calls `hook` for `parent` with its observed children and related
    /// objects.
    pub(super) async fn call_hook(
        &self,
        hook: &ResolvedHook,
        parent: &Value,
        observed: &Children<Arc<Value>>,
        related: &Related,
        finalizing: bool,
    ) -> Result<CompositeHookResponse, SyncError> {
        let parent_ns = object::namespace(parent);
        let type_keys = self.children.iter().map(|c| c.type_key.as_str());
        let children = children::hook_map(observed, type_keys, hook.version, parent_ns);
        let request = HookRequest {
            controller: &self.cc_json,
            parent,
            children,
            related: related.keyed(hook.version, parent_ns),
            finalizing,
        };
        let mut response: CompositeHookResponse =
            exchange(hook, &request, parent, &self.name).await?;
        normalize(&mut response.children, &mut response.status);
        Ok(response)
    }
}
