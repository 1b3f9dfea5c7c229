//! The steps of one CompositeController sync that need no API server, for
//! objects given as values: see [`CompositeRender`].

use std::collections::BTreeMap;
use std::sync::Arc;

use metacontroller_api::hook_wire::{
    CompositeHookResponse, CustomizeHookResponse, controller_json, decode_response, type_key,
};
use metacontroller_api::{
    ChildUpdateMethod, CompositeController, HookVersion, HookedController, ResponseUnmarshallMode,
};
use metacontroller_apply::owner::controller_uid;
use metacontroller_selectors::Selector;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{Catalog, RenderError, group};
use crate::children::{self, ChildGroup, Children};
use crate::composite::filter::child_selector;
use crate::composite::hook::HookRequest;
use crate::composite::prepare::prepare_child;
use crate::composite::rollout::Strategies;
use crate::customize::{CustomizeRequest, Related, Rule, rule_matches};
use crate::discovery::ResourceInfo;
use crate::hosted::Finalizer;
use crate::hosted::desired;
use crate::hosted::exchange::normalize;
use crate::object;

/// A declared child type.
#[derive(Clone, Debug)]
pub(super) struct ChildType {
    type_key: String,
    pub(super) info: ResourceInfo,
    method: ChildUpdateMethod,
}

/// The related objects a `customize` answer selects for one parent.
#[derive(Clone, Debug, Default)]
pub struct RelatedObjects(pub(super) Related);

impl RelatedObjects {
    /// The selected objects, by type key and `namespace/name`.
    pub fn objects(&self) -> impl Iterator<Item = &Value> {
        self.0
            .groups
            .values()
            .flat_map(|g| g.values().map(|o| &**o))
    }
}

/// One CompositeController, ready to render syncs of its parents.
pub struct CompositeRender {
    pub(super) controller: CompositeController,
    controller_json: Value,
    pub(super) parent: ResourceInfo,
    pub(super) children: Vec<ChildType>,
    pub(super) finalizer: Finalizer,
    /// The update strategies of the child types.
    pub(super) strategies: Strategies,
    /// `parentResource.labelSelector`.
    parent_selector: Option<Selector>,
}

impl CompositeRender {
    /// Resolves `controller`'s parent and child types in `catalog`.
    pub fn new(controller: &CompositeController, catalog: &Catalog) -> Result<Self, RenderError> {
        let lookup = |api_version: &str, resource: &str| {
            catalog.get(api_version, resource).cloned().ok_or_else(|| {
                RenderError::UnknownResource {
                    api_version: api_version.to_owned(),
                    resource: resource.to_owned(),
                }
            })
        };
        let rule = &controller.spec.parent_resource;
        let parent = lookup(&rule.api_version, &rule.resource)?;
        let parent_selector = match &rule.label_selector {
            None => None,
            Some(ls) => {
                let value =
                    serde_json::to_value(ls).map_err(|e| RenderError::Controller(e.to_string()))?;
                Some(Selector::from_label_selector(&value).map_err(|e| {
                    RenderError::Controller(format!("invalid parentResource.labelSelector: {e}"))
                })?)
            }
        };
        let children = controller
            .spec
            .child_resources()
            .iter()
            .map(|rule| {
                let info = lookup(&rule.api_version, &rule.resource)?;
                Ok(ChildType {
                    type_key: type_key(info.kind(), &rule.api_version),
                    info,
                    method: rule.update_method(),
                })
            })
            .collect::<Result<Vec<_>, RenderError>>()?;
        let strategies =
            Strategies::new(controller.spec.child_resources().iter().zip(&children).map(
                |(rule, child)| {
                    (
                        child.info.group().to_owned(),
                        child.info.kind().to_owned(),
                        child.method,
                        rule.status_checks().to_vec(),
                    )
                },
            ));
        Ok(CompositeRender {
            strategies,
            controller: controller.clone(),
            controller_json: controller_json(controller),
            parent,
            children,
            finalizer: Finalizer {
                name: controller.finalizer_name(),
                enabled: controller.finalize_hook().is_some(),
            },
            parent_selector,
        })
    }

    /// The controller.
    pub fn controller(&self) -> &CompositeController {
        &self.controller
    }

    /// The parent type.
    pub fn parent_type(&self) -> &ResourceInfo {
        &self.parent
    }

    /// The name of the finalizer the controller puts on its parents.
    pub fn finalizer_name(&self) -> &str {
        &self.finalizer.name
    }

    /// `parent` as the sync sees it: with the controller's finalizer when
    /// there is a `finalize` hook and the parent is selected (the sync adds
    /// it before calling a hook);
    /// marked as being deleted when `deleting`.
    pub fn prepare_parent(&self, parent: &Value, deleting: bool) -> Value {
        let mut parent = parent.clone();
        if self.finalizer.enabled && !object::is_deleting(&parent) && self.selected(&parent) {
            object::add_finalizer(&mut parent, &self.finalizer.name);
        }
        if deleting
            && !object::is_deleting(&parent)
            && let Some(meta) = object::metadata_mut(&mut parent)
        {
            meta.insert(
                "deletionTimestamp".into(),
                Value::String("1970-01-01T00:00:00Z".into()),
            );
        }
        parent
    }

    /// Whether `parent` matches `parentResource.labelSelector`.
    pub fn selected(&self, parent: &Value) -> bool {
        self.parent_selector
            .as_ref()
            .is_none_or(|s| s.matches_object_labels(parent))
    }

    /// Whether the controller syncs `parent` at all: it is selected or
    /// still carries the controller's finalizer.
    pub fn wants(&self, parent: &Value) -> bool {
        object::has_finalizer(parent, &self.finalizer.name) || self.selected(parent)
    }

    /// Whether the sync calls the `finalize` hook rather than `sync`: there
    /// is one, and the parent is being deleted or no longer selected.
    pub fn finalizing(&self, parent: &Value) -> bool {
        self.finalizer.enabled && (object::is_deleting(parent) || !self.selected(parent))
    }

    /// The selector children must match.
    pub fn selector(&self, parent: &Value) -> Result<Selector, RenderError> {
        Ok(child_selector(
            parent,
            self.controller.spec.generates_selector(),
        )?)
    }

    /// Among `objects`, the children `parent` claims: of a declared type, in
    /// the parent's namespace (any, for a cluster-scoped parent), controlled
    /// by the parent and matching `selector`, or orphans matching it (the
    /// sync adopts those; none while the parent is being deleted).
    pub fn observed(
        &self,
        parent: &Value,
        selector: &Selector,
        objects: &[Value],
    ) -> Children<Arc<Value>> {
        let namespace = if self.parent.namespaced {
            object::namespace(parent)
        } else {
            None
        };
        let deleting = object::is_deleting(parent);
        let mut out = Children::new();
        for child in &self.children {
            let claimed = objects
                .iter()
                .filter(|obj| {
                    object::kind(obj) == child.info.kind()
                        && object::api_version(obj) == child.info.api_version()
                        && namespace.is_none_or(|ns| object::namespace(obj) == Some(ns))
                })
                .filter(|obj| {
                    let matches = selector.matches_object_labels(obj);
                    match controller_uid(obj) {
                        Some(uid) => uid == object::uid(parent) && matches,
                        None => !deleting && matches && !object::is_deleting(obj),
                    }
                })
                .map(|obj| (object::key(obj), Arc::new(obj.clone())))
                .collect();
            out.insert(
                child.type_key.clone(),
                ChildGroup {
                    resource: child.info.clone(),
                    method: child.method,
                    objects: claimed,
                },
            );
        }
        out
    }

    /// The body of the `customize` request for `parent`.
    pub fn customize_request(&self, parent: &Value) -> Result<Vec<u8>, RenderError> {
        encode(&CustomizeRequest {
            controller: &self.controller_json,
            parent,
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

    /// The related objects among `objects` the rules of a `customize`
    /// answer select for `parent`, as a hook of `version` sees them.
    pub fn related(
        &self,
        answer: &CustomizeHookResponse,
        version: HookVersion,
        parent: &Value,
        objects: &[Value],
        catalog: &Catalog,
    ) -> Result<RelatedObjects, RenderError> {
        related_objects(
            answer,
            version,
            self.parent.namespaced,
            parent,
            objects,
            catalog,
        )
    }

    /// The body of the sync (or, `finalizing`, finalize) request for
    /// `parent`, for a hook of `version`.
    pub fn sync_request(
        &self,
        parent: &Value,
        observed: &Children<Arc<Value>>,
        related: &RelatedObjects,
        version: HookVersion,
        finalizing: bool,
    ) -> Result<Vec<u8>, RenderError> {
        let parent_ns = object::namespace(parent);
        let type_keys = self.children.iter().map(|c| c.type_key.as_str());
        encode(&HookRequest {
            controller: &self.controller_json,
            parent,
            children: children::hook_map(observed, type_keys, version, parent_ns),
            related: related.0.keyed(version, parent_ns),
            finalizing,
        })
    }

    /// Decodes a sync or finalize answer in response mode `mode`, with its
    /// numbers normalised as the engine does.
    pub fn decode_sync(
        &self,
        body: &[u8],
        mode: ResponseUnmarshallMode,
    ) -> Result<CompositeHookResponse, RenderError> {
        let mut response: CompositeHookResponse = decode(body, mode)?;
        normalize(&mut response.children, &mut response.status);
        Ok(response)
    }

    /// The desired children of an answer, checked, labelled and grouped as
    /// the sync does; children the parent can't own are returned as
    /// refusals (the sync reports them and manages the others). An error
    /// when the answer fails the checks that fail the whole sync.
    pub fn desired(
        &self,
        parent: &Value,
        selector: &Selector,
        answer_children: Vec<Value>,
        catalog: &Catalog,
    ) -> Result<(Children<Value>, Vec<String>), RenderError> {
        let generate = self.controller.spec.generates_selector();
        let checked = desired::check(parent, answer_children, "child", |child| {
            prepare_child(child, parent, generate, selector)
        })?;
        let rules = self.children.iter().map(|c| (&c.info, c.method));
        Ok(group::by_type(checked, rules, parent, "child", catalog))
    }

    /// Whether the sync manages children of `parent` (a parent being
    /// deleted keeps them managed only while it carries the controller's
    /// finalizer and no garbage-collector finalizer).
    pub fn manages_children(&self, parent: &Value) -> bool {
        !object::is_deleting(parent) || self.finalizer.manages_while_deleting(parent)
    }

    /// The parent's status after the sync: the hook's (an absent one is
    /// `{}`) with `observedGeneration`.
    pub fn status(&self, parent: &Value, answer: &CompositeHookResponse) -> Value {
        let mut status = answer.status.clone().unwrap_or_default();
        status.insert(
            "observedGeneration".into(),
            Value::from(object::generation(parent)),
        );
        Value::Object(status)
    }

    /// Whether `status` differs from the parent's (so the sync writes it).
    pub fn status_changes(&self, parent: &Value, status: &Value) -> bool {
        !parent
            .get("status")
            .is_some_and(|current| object::semantic_eq(current, status))
    }
}

pub(super) fn encode(request: &impl serde::Serialize) -> Result<Vec<u8>, RenderError> {
    metacontroller_api::gojson::to_go_json(request).map_err(RenderError::Encode)
}

pub(super) fn decode<T>(body: &[u8], mode: ResponseUnmarshallMode) -> Result<T, RenderError>
where
    T: metacontroller_api::hook_wire::HookResponse + DeserializeOwned,
{
    decode_response::<T>(body, mode)
        .map(|d| d.response)
        .map_err(RenderError::Decode)
}

/// The related objects among `objects` the rules of a `customize` answer
/// select for `parent` (of a namespaced type when `namespaced`), as a hook
/// of `version` sees them.
pub(super) fn related_objects(
    answer: &CustomizeHookResponse,
    version: HookVersion,
    namespaced: bool,
    parent: &Value,
    objects: &[Value],
    catalog: &Catalog,
) -> Result<RelatedObjects, RenderError> {
    let parent_namespace = if namespaced {
        Some(object::namespace(parent).unwrap_or_default())
    } else {
        None
    };
    let namespaces: BTreeMap<&str, &Value> = objects
        .iter()
        .filter(|o| object::kind(o) == "Namespace" && object::api_version(o) == "v1")
        .map(|o| (object::name(o), o))
        .collect();
    let mut related = Related::default();
    for rule in answer.related_resources.iter().map(Rule::new) {
        let failed = |reason: String| RenderError::Related {
            api_version: rule.api_version.clone(),
            resource: rule.resource.clone(),
            reason,
        };
        let compiled = rule
            .compiled
            .as_ref()
            .map_err(|err| failed(err.to_string()))?;
        let info = catalog
            .get(&rule.api_version, &rule.resource)
            .ok_or_else(|| failed("unknown resource".to_owned()))?;
        let group = related
            .groups
            .entry(type_key(info.kind(), &rule.api_version))
            .or_default();
        for obj in objects.iter().filter(|o| {
            object::kind(o) == info.kind() && object::api_version(o) == info.api_version()
        }) {
            if rule_matches(version, parent_namespace, compiled, info, obj, |ns| {
                namespaces.get(ns).copied()
            }) {
                group.insert(object::key(obj), Arc::new(obj.clone()));
            }
        }
    }
    Ok(RelatedObjects(related))
}
