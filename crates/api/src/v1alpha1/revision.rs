//! ControllerRevision: the parent fields a CompositeController with a
//! rolling update method recorded, and the children that carry them.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::crd_schema::preserve_unknown_object_schema;

/// Contents of a Metacontroller ControllerRevision. These fields sit at the
/// top level of the object (there is no `spec`); on the Rust side they are
/// reached through [`ControllerRevision::spec`].
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "metacontroller.k8s.io",
    version = "v1alpha1",
    kind = "ControllerRevision",
    namespaced,
    no_spec,
    derive = "PartialEq",
    doc = "ControllerRevision: a snapshot of part of a CompositeController parent, with the children that belong to it."
)]
#[serde(rename_all = "camelCase")]
pub struct ControllerRevisionData {
    /// The recorded parent fields (the `revisionHistory.fieldPaths` subtrees).
    #[schemars(schema_with = "preserve_unknown_object_schema")]
    pub parent_patch: serde_json::Value,
    /// Children that belong to this revision, grouped by API group and kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub children: Option<Vec<ControllerRevisionChildren>>,
}

/// Children of one API group and kind that belong to a revision.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ControllerRevisionChildren {
    /// API group (no version; empty for the core group).
    pub api_group: String,
    /// Kind.
    pub kind: String,
    /// Object names.
    pub names: Vec<String>,
}
