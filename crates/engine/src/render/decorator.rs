//! The steps of one DecoratorController sync that need no API server, for
//! objects given as values: see [`DecoratorRender`].

use std::sync::Arc;

use metacontroller_api::hook_wire::{
    CustomizeHookResponse, DecoratorHookResponse, controller_json, type_key,
};
use metacontroller_api::{
    ChildUpdateMethod, DECORATOR_CONTROLLER_ANNOTATION, DecoratorController, HookVersion,
    HookedController, ResponseUnmarshallMode,
};
use metacontroller_apply::owner::controller_uid;
use metacontroller_selectors::Selector;
use serde_json::Value;

use super::composite::{decode, encode, related_objects};
use super::{Catalog, RelatedObjects, RenderError, group};
use crate::children::{self, ChildGroup, Children};
use crate::customize::CustomizeRequest;
use crate::decorator::controller::target_selectors;
use crate::decorator::sync::{HookRequest, stamp_attachment, target_change};
use crate::discovery::ResourceInfo;
use crate::hosted::Finalizer;
use crate::hosted::desired;
use crate::hosted::exchange::normalize;
use crate::object;

/// A `resources[]` rule.
struct TargetType {
    info: ResourceInfo,
    labels: Selector,
    annotations: Selector,
}

/// A declared attachment type.
struct AttachmentType {
    type_key: String,
    info: ResourceInfo,
    method: ChildUpdateMethod,
}

/// What a sync answer changes on the target.
#[derive(Clone, Debug)]
pub struct TargetUpdate {
    /// The target after the merge of labels, annotations and status (and
    /// without the finalizer when it goes).
    pub updated: Value,
    /// Whether labels, annotations or finalizers change.
    pub metadata_changed: bool,
    /// Whether the status changes.
    pub status_changed: bool,
}

/// One DecoratorController, ready to render syncs of its targets.
pub struct DecoratorRender {
    controller: DecoratorController,
    controller_json: Value,
    name: String,
    targets: Vec<TargetType>,
    attachments: Vec<AttachmentType>,
    finalizer: Finalizer,
}

impl DecoratorRender {
    /// Resolves `controller`'s target and attachment types in `catalog`.
    pub fn new(controller: &DecoratorController, catalog: &Catalog) -> Result<Self, RenderError> {
        let lookup = |api_version: &str, resource: &str| {
            catalog.get(api_version, resource).cloned().ok_or_else(|| {
                RenderError::UnknownResource {
                    api_version: api_version.to_owned(),
                    resource: resource.to_owned(),
                }
            })
        };
        let targets = controller
            .spec
            .resources
            .iter()
            .map(|rule| {
                let info = lookup(&rule.api_version, &rule.resource)?;
                let (labels, annotations) =
                    target_selectors(rule).map_err(|e| RenderError::Controller(e.to_string()))?;
                Ok(TargetType {
                    info,
                    labels,
                    annotations,
                })
            })
            .collect::<Result<Vec<_>, RenderError>>()?;
        let attachments = controller
            .spec
            .attachments()
            .iter()
            .map(|rule| {
                let info = lookup(&rule.api_version, &rule.resource)?;
                Ok(AttachmentType {
                    type_key: type_key(info.kind(), &rule.api_version),
                    info,
                    method: rule.update_method(),
                })
            })
            .collect::<Result<Vec<_>, RenderError>>()?;
        Ok(DecoratorRender {
            controller: controller.clone(),
            controller_json: controller_json(controller),
            name: controller.metadata.name.clone().unwrap_or_default(),
            targets,
            attachments,
            finalizer: Finalizer {
                name: controller.finalizer_name(),
                enabled: controller.finalize_hook().is_some(),
            },
        })
    }

    /// The controller.
    pub fn controller(&self) -> &DecoratorController {
        &self.controller
    }

    /// The name of the finalizer the controller puts on its targets.
    pub fn finalizer_name(&self) -> &str {
        &self.finalizer.name
    }

    fn target_type(&self, obj: &Value) -> Option<&TargetType> {
        self.targets.iter().find(|t| {
            object::kind(obj) == t.info.kind() && object::api_version(obj) == t.info.api_version()
        })
    }

    /// Whether `obj` is of one of the `resources[]` types.
    pub fn is_target_type(&self, obj: &Value) -> bool {
        self.target_type(obj).is_some()
    }

    /// Whether `obj` matches both selectors of its type.
    pub fn selected(&self, obj: &Value) -> bool {
        self.target_type(obj).is_some_and(|t| {
            t.labels.matches_object_labels(obj) && t.annotations.matches_object_annotations(obj)
        })
    }

    /// Whether the controller syncs `obj`: it is selected or still carries
    /// the controller's finalizer.
    pub fn wants(&self, obj: &Value) -> bool {
        self.is_target_type(obj)
            && (object::has_finalizer(obj, &self.finalizer.name) || self.selected(obj))
    }

    /// Whether the sync calls `finalize` rather than `sync`.
    pub fn finalizing(&self, target: &Value) -> bool {
        self.finalizer.enabled && (object::is_deleting(target) || !self.selected(target))
    }

    /// `target` as the sync sees it: with the finalizer when there is a
    /// `finalize` hook and it is not being deleted; marked as being deleted
    /// when `deleting`.
    pub fn prepare_target(&self, target: &Value, deleting: bool) -> Value {
        let mut target = target.clone();
        if self.finalizer.enabled && !object::is_deleting(&target) {
            object::add_finalizer(&mut target, &self.finalizer.name);
        }
        if deleting
            && !object::is_deleting(&target)
            && let Some(meta) = object::metadata_mut(&mut target)
        {
            meta.insert(
                "deletionTimestamp".into(),
                Value::String("1970-01-01T00:00:00Z".into()),
            );
        }
        target
    }

    /// Among `objects`, the target's attachments: of a declared type, in
    /// the target's namespace (any, for a cluster-scoped target), controlled
    /// by the target and annotated with this controller's name. Nothing is
    /// adopted.
    pub fn observed(&self, target: &Value, objects: &[Value]) -> Children<Arc<Value>> {
        let namespace = object::namespace(target);
        let uid = object::uid(target);
        self.attachments
            .iter()
            .map(|a| {
                let owned = objects
                    .iter()
                    .filter(|obj| {
                        object::kind(obj) == a.info.kind()
                            && object::api_version(obj) == a.info.api_version()
                            && namespace.is_none_or(|ns| object::namespace(obj) == Some(ns))
                            && controller_uid(obj) == Some(uid)
                            && obj
                                .pointer("/metadata/annotations")
                                .and_then(|m| m.get(DECORATOR_CONTROLLER_ANNOTATION))
                                .and_then(Value::as_str)
                                == Some(self.name.as_str())
                    })
                    .map(|obj| (object::key(obj), Arc::new(obj.clone())))
                    .collect();
                (
                    a.type_key.clone(),
                    ChildGroup {
                        resource: a.info.clone(),
                        method: a.method,
                        objects: owned,
                    },
                )
            })
            .collect()
    }

    /// The body of the `customize` request for `target`.
    pub fn customize_request(&self, target: &Value) -> Result<Vec<u8>, RenderError> {
        encode(&CustomizeRequest {
            controller: &self.controller_json,
            parent: target,
        })
    }

    /// Decodes a `customize` answer, in response mode `mode`.
    pub fn decode_customize(
        &self,
        body: &[u8],
        mode: ResponseUnmarshallMode,
    ) -> Result<CustomizeHookResponse, RenderError> {
        decode(body, mode)
    }

    /// The related objects among `objects` a `customize` answer selects.
    pub fn related(
        &self,
        answer: &CustomizeHookResponse,
        version: HookVersion,
        target: &Value,
        objects: &[Value],
        catalog: &Catalog,
    ) -> Result<RelatedObjects, RenderError> {
        let namespaced = self.target_type(target).is_some_and(|t| t.info.namespaced);
        related_objects(answer, version, namespaced, target, objects, catalog)
    }

    /// The body of the sync (or finalize) request for `target`.
    pub fn sync_request(
        &self,
        target: &Value,
        observed: &Children<Arc<Value>>,
        related: &RelatedObjects,
        version: HookVersion,
        finalizing: bool,
    ) -> Result<Vec<u8>, RenderError> {
        let ns = object::namespace(target);
        let type_keys = self.attachments.iter().map(|a| a.type_key.as_str());
        encode(&HookRequest {
            controller: &self.controller_json,
            object: target,
            attachments: children::hook_map(observed, type_keys, version, ns),
            related: related.0.keyed(version, ns),
            finalizing,
        })
    }

    /// Decodes a sync or finalize answer, numbers normalised as the engine
    /// does.
    pub fn decode_sync(
        &self,
        body: &[u8],
        mode: ResponseUnmarshallMode,
    ) -> Result<DecoratorHookResponse, RenderError> {
        let mut response: DecoratorHookResponse = decode(body, mode)?;
        normalize(&mut response.attachments, &mut response.status);
        Ok(response)
    }

    /// What `answer` changes on `target`: labels, annotations, status, and
    /// the finalizer when the answer says `finalized` (or the controller
    /// has no `finalize` hook) while it is on.
    pub fn target_update(&self, target: &Value, answer: &DecoratorHookResponse) -> TargetUpdate {
        let on = object::has_finalizer(target, &self.finalizer.name);
        let finalize = on && (answer.finalized || !self.finalizer.enabled);
        let change = target_change(target, answer, finalize.then_some(&*self.finalizer.name));
        TargetUpdate {
            updated: change.updated,
            metadata_changed: change.metadata_changed,
            status_changed: change.status_changed,
        }
    }

    /// The desired attachments of an answer, checked, annotated and grouped
    /// as the sync does; attachments the target can't own are refusals.
    pub fn desired(
        &self,
        target: &Value,
        answer_attachments: Vec<Value>,
        catalog: &Catalog,
    ) -> Result<(Children<Value>, Vec<String>), RenderError> {
        let checked = desired::check(target, answer_attachments, "attachment", |a| {
            stamp_attachment(a, &self.name)
        })?;
        let rules = self.attachments.iter().map(|a| (&a.info, a.method));
        Ok(group::by_type(
            checked,
            rules,
            target,
            "attachment",
            catalog,
        ))
    }

    /// Whether the sync manages attachments of `target`.
    pub fn manages_attachments(&self, target: &Value) -> bool {
        !object::is_deleting(target) || self.finalizer.manages_while_deleting(target)
    }
}
