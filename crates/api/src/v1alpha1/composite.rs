//! CompositeController: a parent resource whose objects own children
//! computed by the `sync` hook (Metacontroller's `CompositeControllerSpec`
//! and related types), with the accessors for its runtime defaults.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::crd_schema::label_selector_schema;
use super::hook_config::{EndpointConfig, Hook};

/// Specification of a CompositeController: a parent resource whose objects
/// own a set of child objects computed by the `sync` hook.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "metacontroller.k8s.io",
    version = "v1alpha1",
    kind = "CompositeController",
    status = "CompositeControllerStatus",
    shortname = "cc",
    shortname = "cctl",
    derive = "PartialEq",
    doc = "CompositeController: a parent resource whose objects own children computed by webhooks."
)]
#[serde(rename_all = "camelCase")]
pub struct CompositeControllerSpec {
    /// The parent resource watched by this controller.
    pub parent_resource: CompositeControllerParentResourceRule,
    /// Child resource types owned by the parents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child_resources: Option<Vec<CompositeControllerChildResourceRule>>,
    /// Hook endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<CompositeControllerHooks>,
    /// Connection settings (TLS, credentials) applied to hooks by URL host,
    /// unless a hook sets its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_configs: Option<Vec<EndpointConfig>>,
    /// Period of the periodic re-sync of every parent, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resync_period_seconds: Option<i32>,
    /// Select children with a generated `controller-uid` label instead of
    /// the parent's `spec.selector`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate_selector: Option<bool>,
}

/// Status of a CompositeController. Always empty: Metacontroller reports on
/// its controllers through Events only.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct CompositeControllerStatus {}

/// The parent resource of a CompositeController.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompositeControllerParentResourceRule {
    /// API version of the parent resource (`group/version`, or `v1`).
    pub api_version: String,
    /// Plural resource name of the parent.
    pub resource: String,
    /// Which parts of the parent are recorded in ControllerRevisions
    /// (rolling updates only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_history: Option<CompositeControllerRevisionHistory>,
    /// Only parents matching this selector are handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "label_selector_schema")]
    pub label_selector: Option<LabelSelector>,
    /// Ignore parent updates that change only the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_status_changes: Option<bool>,
}

/// Parent fields tracked by ControllerRevisions.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompositeControllerRevisionHistory {
    /// Dot-separated field paths of the parent (default `["spec"]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_paths: Option<Vec<String>>,
}

/// A child resource type of a CompositeController.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompositeControllerChildResourceRule {
    /// API version of the child resource.
    pub api_version: String,
    /// Plural resource name of the child.
    pub resource: String,
    /// How existing children are brought to their desired state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_strategy: Option<CompositeControllerChildUpdateStrategy>,
}

/// Update strategy of a CompositeController child type.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompositeControllerChildUpdateStrategy {
    /// Update method (default `OnDelete`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<ChildUpdateMethod>,
    /// Conditions that updated children must report before a rolling update
    /// continues.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_checks: Option<ChildUpdateStatusChecks>,
}

/// How Metacontroller updates an existing child (or attachment) whose desired
/// state differs from the observed one.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[allow(
    missing_docs,
    reason = "a doc comment on a variant would change the derived CRD schema; each variant is described by the comment above it"
)]
pub enum ChildUpdateMethod {
    // Never update existing objects; only create missing ones.
    #[default]
    OnDelete,
    // Delete and re-create objects that differ.
    Recreate,
    // Update objects in place.
    InPlace,
    // Recreate, one child at a time, across ControllerRevisions.
    RollingRecreate,
    // In-place, one child at a time, across ControllerRevisions.
    RollingInPlace,
}

impl ChildUpdateMethod {
    /// `true` for `RollingRecreate` and `RollingInPlace`.
    pub fn is_rolling(self) -> bool {
        matches!(
            self,
            ChildUpdateMethod::RollingRecreate | ChildUpdateMethod::RollingInPlace
        )
    }

    /// The method with the rolling aspect removed: `RollingRecreate` →
    /// `Recreate`, `RollingInPlace` → `InPlace`. DecoratorControllers use this,
    /// since they have no rollout logic.
    pub fn without_rolling(self) -> ChildUpdateMethod {
        match self {
            ChildUpdateMethod::RollingRecreate => ChildUpdateMethod::Recreate,
            ChildUpdateMethod::RollingInPlace => ChildUpdateMethod::InPlace,
            other => other,
        }
    }

    /// The JSON spelling (`OnDelete`, `RollingInPlace`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ChildUpdateMethod::OnDelete => "OnDelete",
            ChildUpdateMethod::Recreate => "Recreate",
            ChildUpdateMethod::InPlace => "InPlace",
            ChildUpdateMethod::RollingRecreate => "RollingRecreate",
            ChildUpdateMethod::RollingInPlace => "RollingInPlace",
        }
    }
}

/// Readiness checks used by rolling updates.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChildUpdateStatusChecks {
    /// Every listed condition must be present (and match) on updated children.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<StatusConditionCheck>>,
}

/// Expected entry of a child's `status.conditions`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusConditionCheck {
    /// Condition type that must be present.
    #[serde(rename = "type")]
    pub type_: String,
    /// Required condition status, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Required condition reason, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Hooks of a CompositeController.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompositeControllerHooks {
    /// Declares related objects to send along with sync requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customize: Option<Hook>,
    /// Computes parent status and desired children.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<Hook>,
    /// Called instead of sync while the parent is being finalized.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finalize: Option<Hook>,
    /// Accepted for compatibility; never called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_update_child: Option<Hook>,
    /// Accepted for compatibility; never called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_update_child: Option<Hook>,
}

impl CompositeControllerParentResourceRule {
    /// Parent fields recorded in ControllerRevisions: the configured
    /// `fieldPaths` when non-empty, else `["spec"]`.
    pub fn revision_field_paths(&self) -> Vec<String> {
        match self
            .revision_history
            .as_ref()
            .and_then(|r| r.field_paths.as_ref())
        {
            Some(paths) if !paths.is_empty() => paths.clone(),
            _ => crate::constants::DEFAULT_REVISION_FIELD_PATHS
                .iter()
                .map(|p| (*p).to_owned())
                .collect(),
        }
    }

    /// `ignoreStatusChanges`, false when unset.
    pub fn ignores_status_changes(&self) -> bool {
        self.ignore_status_changes.unwrap_or(false)
    }
}

impl CompositeControllerChildResourceRule {
    /// The update method, `OnDelete` when unset.
    pub fn update_method(&self) -> ChildUpdateMethod {
        self.update_strategy
            .as_ref()
            .and_then(|s| s.method)
            .unwrap_or_default()
    }

    /// Configured status condition checks (empty when unset).
    pub fn status_checks(&self) -> &[StatusConditionCheck] {
        self.update_strategy
            .as_ref()
            .and_then(|s| s.status_checks.as_ref())
            .and_then(|c| c.conditions.as_deref())
            .unwrap_or_default()
    }
}

impl CompositeControllerSpec {
    /// The child resource rules (empty when unset).
    pub fn child_resources(&self) -> &[CompositeControllerChildResourceRule] {
        self.child_resources.as_deref().unwrap_or_default()
    }

    /// `generateSelector`, false when unset.
    pub fn generates_selector(&self) -> bool {
        self.generate_selector.unwrap_or(false)
    }
}
