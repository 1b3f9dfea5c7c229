//! The related-resource rules a `customize` hook returns.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A rule returned by a `customize` hook selecting related objects to include
/// in sync requests.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RelatedResourceRule {
    /// API version of the related resource.
    pub api_version: String,
    /// Plural resource name of the related resource.
    pub resource: String,
    /// Label selector; absent or empty selects everything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<LabelSelector>,
    /// Selects the namespaces searched (namespaced related resources only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// Single namespace searched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Object names to select.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub names: Option<Vec<String>>,
}

/// How a [`RelatedResourceRule`] selects objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelatedSelection {
    /// `namespaceSelector` (with optional `labelSelector`): list in every
    /// namespace whose labels match.
    NamespaceSelector,
    /// `namespace` plus `labelSelector`.
    NamespaceAndLabels,
    /// `namespace` and/or `names`.
    NamespaceAndNames,
    /// `labelSelector` (or nothing) across all namespaces.
    Labels,
}

/// Invalid field combination in a [`RelatedResourceRule`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RelatedRuleError {
    /// `names` together with a selector.
    #[error("related rule cannot have both names and labelSelector/namespaceSelector specified")]
    NamesWithSelector,
    /// `namespace` together with `namespaceSelector`.
    #[error("related rule cannot have both namespace and namespaceSelector specified")]
    NamespaceWithNamespaceSelector,
}

impl RelatedResourceRule {
    /// The namespace, treating an empty string as unset.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref().filter(|n| !n.is_empty())
    }

    /// The names, empty when unset.
    pub fn names(&self) -> &[String] {
        self.names.as_deref().unwrap_or_default()
    }

    /// Classifies the rule; names cannot be combined with selectors and a
    /// namespace cannot be combined with a namespace selector.
    pub fn selection(&self) -> Result<RelatedSelection, RelatedRuleError> {
        let has_labels = self.label_selector.is_some();
        let has_ns_selector = self.namespace_selector.is_some();
        let has_namespace = self.namespace().is_some();
        let has_names = !self.names().is_empty();
        if has_names && (has_labels || has_ns_selector) {
            return Err(RelatedRuleError::NamesWithSelector);
        }
        if has_namespace && has_ns_selector {
            return Err(RelatedRuleError::NamespaceWithNamespaceSelector);
        }
        Ok(if has_ns_selector {
            RelatedSelection::NamespaceSelector
        } else if has_labels && has_namespace {
            RelatedSelection::NamespaceAndLabels
        } else if has_namespace || has_names {
            RelatedSelection::NamespaceAndNames
        } else {
            RelatedSelection::Labels
        })
    }
}
