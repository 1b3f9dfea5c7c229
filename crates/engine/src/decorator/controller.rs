//! One hosted DecoratorController: its target and attachment types, hooks
//! and shared state, resolved once when it is built.

use std::sync::Arc;

use metacontroller_api::hook_wire::{controller_json, type_key};
use metacontroller_api::{
    ChildUpdateMethod, DecoratorController, DecoratorControllerResourceRule, HookedController,
};
use metacontroller_selectors::Selector;
use serde_json::Value;

use crate::Context;
use crate::customize::Customizer;
use crate::discovery::ResourceInfo;
use crate::dynapi;
use crate::hook_target::ResolvedHook;
use crate::hosted::{BuildError, Finalizer, Hooks, discover};
use crate::informer::InformerHandle;
use crate::object::{self, RawObject};
use crate::queue::WorkQueue;

use super::filter::{Filter, TargetType};

/// The kind name used in events, metrics and logs.
pub(crate) const CONTROLLER_TYPE: &str = "DecoratorController";

/// An `attachments[]` rule.
pub(crate) struct AttachmentType {
    /// The resource, as discovered.
    pub info: ResourceInfo,
    /// The update method (rolling methods act like their plain twins).
    pub method: ChildUpdateMethod,
    /// `Kind.apiVersion` key of hook object maps.
    pub type_key: String,
    /// The shared cache.
    pub informer: InformerHandle,
}

/// A hosted DecoratorController.
pub(crate) struct Decorator {
    /// The DecoratorController's name.
    pub name: String,
    /// The DecoratorController it was built from.
    pub dc: Arc<DecoratorController>,
    /// The DecoratorController as sent to hooks.
    pub dc_json: Value,
    pub ctx: Arc<Context>,
    pub filter: Arc<Filter>,
    /// The counted handles of the target caches.
    pub target_informers: Vec<InformerHandle>,
    pub attachments: Vec<AttachmentType>,
    pub sync_hook: Option<ResolvedHook>,
    pub finalize_hook: Option<ResolvedHook>,
    pub finalizer: Finalizer,
    pub customize: Customizer,
    pub queue: Arc<WorkQueue<String>>,
}

pub(crate) fn target_selectors(
    rule: &DecoratorControllerResourceRule,
) -> Result<(Selector, Selector), BuildError> {
    let labels = match &rule.label_selector {
        None => Selector::everything(),
        Some(ls) => {
            let value = serde_json::to_value(ls).map_err(BuildError::Encode)?;
            Selector::from_label_selector(&value).map_err(|source| BuildError::Selector {
                what: format!(
                    "can't convert label selector for parent resource {:?} in apiVersion {:?}",
                    rule.resource, rule.api_version
                ),
                source,
            })?
        }
    };
    let annotations = match &rule.annotation_selector {
        None => Selector::everything(),
        Some(sel) => {
            let value = serde_json::to_value(sel).map_err(BuildError::Encode)?;
            Selector::from_annotation_selector(&value).map_err(|source| BuildError::Selector {
                what: format!(
                    "can't convert annotation selector for parent resource {:?} in apiVersion {:?}",
                    rule.resource, rule.api_version
                ),
                source,
            })?
        }
    };
    Ok((labels, annotations))
}

impl Decorator {
    /// Resolves everything the controller needs; nothing runs yet.
    pub async fn build(
        ctx: Arc<Context>,
        dc: &DecoratorController,
        queue: Arc<WorkQueue<String>>,
    ) -> Result<Self, BuildError> {
        let name = dc.metadata.name.clone().unwrap_or_default();
        let mut targets = Vec::new();
        for rule in &dc.spec.resources {
            let info = discover(&ctx, &rule.api_version, &rule.resource).await?;
            let (labels, annotations) = target_selectors(rule)?;
            targets.push((info, labels, annotations, rule.ignores_status_changes()));
        }
        let mut attachment_infos = Vec::new();
        for rule in dc.spec.attachments() {
            let info = discover(&ctx, &rule.api_version, &rule.resource).await?;
            attachment_infos.push((info, rule.update_method(), rule.api_version.clone()));
        }
        let hooks = Hooks::resolve(&ctx, dc, CONTROLLER_TYPE).await?;

        let mut target_informers = Vec::new();
        let targets = targets
            .into_iter()
            .map(|(info, labels, annotations, ignore_status_changes)| {
                let handle = ctx.informers.acquire(&info);
                let informer = handle.informer().clone();
                target_informers.push(handle);
                TargetType {
                    info,
                    labels,
                    annotations,
                    ignore_status_changes,
                    informer,
                }
            })
            .collect();
        let attachments = attachment_infos
            .into_iter()
            .map(|(info, method, api_version)| AttachmentType {
                type_key: type_key(info.kind(), &api_version),
                informer: ctx.informers.acquire(&info),
                info,
                method,
            })
            .collect();
        let finalizer = Finalizer {
            name: dc.finalizer_name(),
            enabled: hooks.finalize.is_some(),
        };
        let filter = Arc::new(Filter {
            targets,
            finalizer: finalizer.name.clone(),
            queue: queue.clone(),
        });
        let dc_json = controller_json(dc);
        let customize =
            Customizer::new(ctx.clone(), hooks.customize, dc_json.clone(), queue.clone());
        Ok(Decorator {
            dc_json,
            name,
            dc: Arc::new(dc.clone()),
            ctx,
            filter,
            target_informers,
            attachments,
            sync_hook: hooks.sync,
            finalize_hook: hooks.finalize,
            finalizer,
            customize,
            queue,
        })
    }

    /// Where `obj`, a target of `target_type`, is written.
    pub fn target_api(&self, target_type: &TargetType, obj: &Value) -> kube::Api<RawObject> {
        dynapi::api(&self.ctx.client, &target_type.info, object::namespace(obj))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selectors_default_to_everything() {
        let rule: DecoratorControllerResourceRule =
            serde_json::from_value(json!({"apiVersion": "v1", "resource": "pods"})).unwrap();
        let (l, a) = target_selectors(&rule).unwrap();
        assert!(l.is_everything() && a.is_everything());
        let rule: DecoratorControllerResourceRule = serde_json::from_value(json!({
            "apiVersion": "v1", "resource": "pods",
            "labelSelector": {"matchLabels": {"app": "x"}},
            "annotationSelector": {"matchAnnotations": {"note": "free text, allowed"},
                "matchExpressions": [{"key": "skip", "operator": "DoesNotExist"}]}
        }))
        .unwrap();
        let (l, a) = target_selectors(&rule).unwrap();
        let obj = json!({"metadata": {"labels": {"app": "x"},
            "annotations": {"note": "free text, allowed"}}});
        assert!(l.matches_object_labels(&obj) && a.matches_object_annotations(&obj));
        let skipped = json!({"metadata": {"labels": {"app": "x"},
            "annotations": {"note": "free text, allowed", "skip": ""}}});
        assert!(!a.matches_object_annotations(&skipped));
        let bad: DecoratorControllerResourceRule = serde_json::from_value(json!({
            "apiVersion": "v1", "resource": "pods",
            "labelSelector": {"matchExpressions": [{"key": "k", "operator": "In"}]}
        }))
        .unwrap();
        assert!(
            target_selectors(&bad)
                .unwrap_err()
                .to_string()
                .contains("can't convert label selector")
        );
    }
}
