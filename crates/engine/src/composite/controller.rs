//! One hosted CompositeController: its parent and child types, hooks and
//! shared state, resolved once when it is built.

use std::sync::Arc;

use metacontroller_api::hook_wire::{controller_json, type_key};
use metacontroller_api::{ChildUpdateMethod, CompositeController, HookedController};
use metacontroller_selectors::Selector;
use serde_json::Value;

use crate::Context;
use crate::customize::Customizer;
use crate::discovery::ResourceInfo;
use crate::dynapi;
use crate::hook_target::ResolvedHook;
use crate::hosted::{BuildError, Finalizer, Hooks, discover};
use crate::informer::{Informer, InformerHandle, Interest};
use crate::object::{self, RawObject};
use crate::queue::WorkQueue;

use super::filter::Filter;
use super::rollout::Rolling;

/// The kind name used in events, metrics and logs.
pub(crate) const CONTROLLER_TYPE: &str = "CompositeController";

/// A declared child type.
pub(crate) struct ChildType {
    /// The resource, as discovered.
    pub info: ResourceInfo,
    /// The update method of the rule.
    pub method: ChildUpdateMethod,
    /// `Kind.apiVersion` key of hook object maps.
    pub type_key: String,
    /// The shared cache.
    pub informer: InformerHandle,
}

/// A hosted CompositeController.
pub(crate) struct ParentController {
    /// The CompositeController's name.
    pub name: String,
    /// The CompositeController it was built from.
    pub cc: Arc<CompositeController>,
    /// The CompositeController as sent to hooks.
    pub cc_json: Value,
    pub ctx: Arc<Context>,
    pub filter: Arc<Filter>,
    pub parent_informer: InformerHandle,
    pub children: Vec<ChildType>,
    pub sync_hook: Option<ResolvedHook>,
    pub finalize_hook: Option<ResolvedHook>,
    pub finalizer: Finalizer,
    pub queue: Arc<WorkQueue<String>>,
    pub customize: Customizer,
    /// ControllerRevisions, when some child type uses a rolling method.
    pub rolling: Option<Rolling>,
}

impl ParentController {
    /// Resolves everything the controller needs; nothing runs yet.
    pub async fn build(
        ctx: Arc<Context>,
        cc: &CompositeController,
        queue: Arc<WorkQueue<String>>,
    ) -> Result<Self, BuildError> {
        let name = cc.metadata.name.clone().unwrap_or_default();
        let spec = &cc.spec;
        let parent_rule = &spec.parent_resource;
        let parent = discover(&ctx, &parent_rule.api_version, &parent_rule.resource).await?;
        let mut child_infos = Vec::new();
        for rule in spec.child_resources() {
            let info = discover(&ctx, &rule.api_version, &rule.resource).await?;
            child_infos.push((info, rule.update_method(), rule.api_version.clone()));
        }
        let hooks = Hooks::resolve(&ctx, cc, CONTROLLER_TYPE).await?;
        let selector = match &parent_rule.label_selector {
            None => None,
            Some(ls) => {
                let value = serde_json::to_value(ls).map_err(BuildError::Encode)?;
                Some(Selector::from_label_selector(&value).map_err(|source| {
                    BuildError::Selector {
                        what: "invalid parentResource.labelSelector".into(),
                        source,
                    }
                })?)
            }
        };
        let rolling = Rolling::new(
            &ctx,
            parent_rule.revision_field_paths(),
            spec.child_resources()
                .iter()
                .zip(&child_infos)
                .map(|(rule, (info, method, _))| {
                    (
                        info.group().to_owned(),
                        info.kind().to_owned(),
                        *method,
                        rule.status_checks().to_vec(),
                    )
                }),
        );

        let parent_informer = ctx.informers.acquire(&parent);
        // The children caches keep only what this controller can claim.
        let interest = Interest::Children {
            group: parent.group().to_owned(),
            kind: parent.kind().to_owned(),
            orphan_label: spec
                .generates_selector()
                .then(|| metacontroller_api::CONTROLLER_UID_LABEL.to_owned()),
        };
        let children = child_infos
            .into_iter()
            .map(|(info, method, api_version)| ChildType {
                type_key: type_key(info.kind(), &api_version),
                informer: ctx.informers.acquire_for(&info, interest.clone()),
                info,
                method,
            })
            .collect();
        let finalizer = Finalizer {
            name: cc.finalizer_name(),
            enabled: hooks.finalize.is_some(),
        };
        let filter = Arc::new(Filter {
            selector,
            finalizer: finalizer.name.clone(),
            generate_selector: spec.generates_selector(),
            ignore_status_changes: parent_rule.ignores_status_changes(),
            parent,
            parent_informer: parent_informer.informer().clone(),
            queue: queue.clone(),
            expectations: Default::default(),
        });
        let cc_json = controller_json(cc);
        let customize =
            Customizer::new(ctx.clone(), hooks.customize, cc_json.clone(), queue.clone());
        Ok(ParentController {
            cc_json,
            customize,
            rolling,
            name,
            cc: Arc::new(cc.clone()),
            ctx,
            filter,
            parent_informer,
            children,
            sync_hook: hooks.sync,
            finalize_hook: hooks.finalize,
            finalizer,
            queue,
        })
    }

    /// Every cache the controller reads.
    pub fn informers(&self) -> impl Iterator<Item = &Arc<Informer>> {
        std::iter::once(self.parent_informer.informer())
            .chain(self.children.iter().map(|c| c.informer.informer()))
            .chain(self.rolling.iter().map(|r| r.store.informer().informer()))
    }

    /// Where `parent` is written.
    pub fn parent_api(&self, parent: &Value) -> kube::Api<RawObject> {
        dynapi::api(
            &self.ctx.client,
            &self.filter.parent,
            object::namespace(parent),
        )
    }
}
