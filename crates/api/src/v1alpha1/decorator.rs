//! DecoratorController: attachments and labels, annotations and status
//! added to existing objects of any type (Metacontroller's
//! `DecoratorControllerSpec` and related types), with the accessors for its
//! runtime defaults.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::composite::ChildUpdateMethod;
use super::crd_schema::{label_selector_schema, requirement_list_schema};
use super::hook_config::{EndpointConfig, Hook};

/// Specification of a DecoratorController: adds labels, annotations, status
/// and attachments to existing objects of any type.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "metacontroller.k8s.io",
    version = "v1alpha1",
    kind = "DecoratorController",
    status = "DecoratorControllerStatus",
    shortname = "dec",
    shortname = "decorators",
    derive = "PartialEq",
    doc = "DecoratorController: attaches labels, annotations, status and objects to existing resources."
)]
#[serde(rename_all = "camelCase")]
pub struct DecoratorControllerSpec {
    /// Target resource types; an object is a target when it matches any rule.
    pub resources: Vec<DecoratorControllerResourceRule>,
    /// Attachment resource types owned by the targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachments: Option<Vec<DecoratorControllerAttachmentRule>>,
    /// Hook endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<DecoratorControllerHooks>,
    /// Connection settings (TLS, credentials) applied to hooks by URL host,
    /// unless a hook sets its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_configs: Option<Vec<EndpointConfig>>,
    /// Period of the periodic re-sync of every target, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resync_period_seconds: Option<i32>,
}

/// Status of a DecoratorController. Always empty.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct DecoratorControllerStatus {}

/// A target resource type of a DecoratorController.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DecoratorControllerResourceRule {
    /// API version of the target resource.
    pub api_version: String,
    /// Plural resource name of the target.
    pub resource: String,
    /// Only objects whose labels match are targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "label_selector_schema")]
    pub label_selector: Option<LabelSelector>,
    /// Only objects whose annotations match are targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotation_selector: Option<AnnotationSelector>,
    /// Ignore target updates that change only the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_status_changes: Option<bool>,
}

/// A label-selector-like query evaluated against annotations.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnnotationSelector {
    /// Annotations that must be present with exactly these values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_annotations: Option<BTreeMap<String, String>>,
    /// Requirements on annotations (`In`, `NotIn`, `Exists`, `DoesNotExist`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "requirement_list_schema")]
    pub match_expressions: Option<Vec<LabelSelectorRequirement>>,
}

/// An attachment resource type of a DecoratorController.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DecoratorControllerAttachmentRule {
    /// API version of the attachment resource.
    pub api_version: String,
    /// Plural resource name of the attachment.
    pub resource: String,
    /// How existing attachments are updated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_strategy: Option<DecoratorControllerAttachmentUpdateStrategy>,
}

/// Update strategy of a DecoratorController attachment type.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DecoratorControllerAttachmentUpdateStrategy {
    /// Update method (default `OnDelete`; rolling methods act like their
    /// non-rolling counterparts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<ChildUpdateMethod>,
}

/// Hooks of a DecoratorController.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DecoratorControllerHooks {
    /// Declares related objects to send along with sync requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customize: Option<Hook>,
    /// Computes labels, annotations, status and desired attachments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<Hook>,
    /// Called instead of sync while the target is being finalized.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finalize: Option<Hook>,
}

impl DecoratorControllerResourceRule {
    /// `ignoreStatusChanges`, false when unset.
    pub fn ignores_status_changes(&self) -> bool {
        self.ignore_status_changes.unwrap_or(false)
    }
}

impl DecoratorControllerAttachmentRule {
    /// The update method, `OnDelete` when unset.
    pub fn update_method(&self) -> ChildUpdateMethod {
        self.update_strategy
            .as_ref()
            .and_then(|s| s.method)
            .unwrap_or_default()
    }
}

impl DecoratorControllerSpec {
    /// The attachment rules (empty when unset).
    pub fn attachments(&self) -> &[DecoratorControllerAttachmentRule] {
        self.attachments.as_deref().unwrap_or_default()
    }
}
