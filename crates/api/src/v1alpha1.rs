//! `metacontroller.k8s.io/v1alpha1`: CompositeController, DecoratorController
//! and ControllerRevision.
//!
//! Field names, optionality and JSON shapes follow Metacontroller's Go API.
//! Optional fields are `Option`s that are left out when `None`, so an object
//! read from the cluster serializes back to the same JSON. Defaults that
//! Metacontroller applies at runtime are exposed as accessor methods
//! (for example [`Hook::version`], [`ChildUpdateMethod::default`]) rather than
//! being written into the structs.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use kube::CustomResource;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use crate::duration::{DurationError, hook_timeout};

// ---------------------------------------------------------------------------
// CompositeController
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// DecoratorController
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Hooks and connection settings
// ---------------------------------------------------------------------------

/// A hook: protocol version plus the webhook that implements it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Hook {
    /// Hook protocol version (default `v1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "v1"))]
    pub version: Option<HookVersion>,
    /// Webhook endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Webhook>,
}

/// Hook protocol version.
///
/// `v1` keys namespaced objects relative to the parent and restricts related
/// objects to the parent's namespace; `v2` always uses `namespace/name` keys
/// and decodes responses strictly by default.
#[derive(
    Serialize,
    Deserialize,
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    JsonSchema,
)]
pub enum HookVersion {
    #[default]
    #[serde(rename = "v1")]
    V1,
    #[serde(rename = "v2")]
    V2,
}

impl HookVersion {
    /// `"v1"` or `"v2"`.
    pub fn as_str(self) -> &'static str {
        match self {
            HookVersion::V1 => "v1",
            HookVersion::V2 => "v2",
        }
    }

    /// Response decoding mode used when the webhook does not set one:
    /// loose for v1, strict for v2.
    pub fn default_unmarshall_mode(self) -> ResponseUnmarshallMode {
        match self {
            HookVersion::V1 => ResponseUnmarshallMode::Loose,
            HookVersion::V2 => ResponseUnmarshallMode::Strict,
        }
    }
}

impl std::fmt::Display for HookVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How hook responses are decoded.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ResponseUnmarshallMode {
    // Unknown and duplicated fields are ignored.
    Loose,
    // Unknown and duplicated fields fail the sync.
    Strict,
}

impl ResponseUnmarshallMode {
    /// `"loose"` or `"strict"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseUnmarshallMode::Loose => "loose",
            ResponseUnmarshallMode::Strict => "strict",
        }
    }
}

impl std::fmt::Display for ResponseUnmarshallMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Hook {
    /// The hook version, `v1` when unset.
    pub fn version(&self) -> HookVersion {
        self.version.unwrap_or_default()
    }

    /// The effective response decoding mode: the webhook's
    /// `responseUnMarshallMode` if set, else loose for v1 and strict for v2.
    pub fn response_unmarshall_mode(&self) -> ResponseUnmarshallMode {
        self.webhook
            .as_ref()
            .and_then(|w| w.response_unmarshall_mode)
            .unwrap_or_else(|| self.version().default_unmarshall_mode())
    }

    /// The effective webhook timeout (see [`Webhook::effective_timeout`]);
    /// 10s when no webhook is configured.
    pub fn timeout(&self) -> Result<Duration, DurationError> {
        match &self.webhook {
            Some(w) => w.effective_timeout(),
            None => hook_timeout(None),
        }
    }
}

/// Webhook endpoint and connection settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// Full URL of the hook; takes precedence over `service` and `path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Request timeout as a Go duration (`10s`, `1m30s`, `500ms`); default 10s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "duration_schema")]
    pub timeout: Option<String>,
    /// Response caching keyed by ETag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<WebhookEtagConfig>,
    /// URL path, used together with `service`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// In-cluster Service hosting the hook, used together with `path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceReference>,
    /// `loose` ignores unknown or repeated response fields, `strict` rejects
    /// them. Default: loose for v1 hooks, strict for v2 hooks.
    #[serde(
        rename = "responseUnMarshallMode",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub response_unmarshall_mode: Option<ResponseUnmarshallMode>,
    /// CA certificates trusted for the hook's TLS certificate (replaces the
    /// system roots). Set exactly one source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<CaBundle>,
    /// Client certificate for mutual TLS.
    #[serde(rename = "clientTLS", default, skip_serializing_if = "Option::is_none")]
    pub client_tls: Option<ClientTls>,
    /// Credential sent in the Authorization header; excludes `basicAuth`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    /// HTTP Basic credentials; excludes `authorization`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
}

/// Why a webhook has no usable URL.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WebhookConfigError {
    /// Neither `url` nor both `service` and `path` are set.
    #[error(
        "invalid webhook config: must specify either a full 'url', or both 'service' and 'path'"
    )]
    MissingUrl,
    /// `service.name` or `service.namespace` is empty.
    #[error("invalid webhook config: 'service' must specify both 'name' and 'namespace'")]
    IncompleteService,
}

impl Webhook {
    /// The URL requests are sent to: `url` verbatim if set, otherwise
    /// `<protocol>://<name>.<namespace>:<port><path>` built from `service`
    /// (protocol `http` and port 80 by default).
    pub fn endpoint_url(&self) -> Result<String, WebhookConfigError> {
        if let Some(url) = &self.url {
            return Ok(url.clone());
        }
        let (Some(service), Some(path)) = (&self.service, &self.path) else {
            return Err(WebhookConfigError::MissingUrl);
        };
        if service.name.is_empty() || service.namespace.is_empty() {
            return Err(WebhookConfigError::IncompleteService);
        }
        Ok(format!(
            "{}://{}.{}:{}{}",
            service.protocol(),
            service.name,
            service.namespace,
            service.port(),
            path
        ))
    }

    /// The timeout: absent, zero or negative values give 10s.
    pub fn effective_timeout(&self) -> Result<Duration, DurationError> {
        hook_timeout(self.timeout.as_deref())
    }

    /// `true` when `etag.enabled` is `true`.
    pub fn etag_enabled(&self) -> bool {
        self.etag.as_ref().and_then(|e| e.enabled).unwrap_or(false)
    }

    /// `true` when the webhook sets any connection setting itself (`caBundle`,
    /// `clientTLS`, `authorization`, `basicAuth`); matching `endpointConfigs`
    /// are then ignored entirely.
    pub fn has_connection_settings(&self) -> bool {
        self.ca_bundle.is_some()
            || self.client_tls.is_some()
            || self.authorization.is_some()
            || self.basic_auth.is_some()
    }
}

/// ETag response caching.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEtagConfig {
    /// Send `If-None-Match` and replay cached responses on 304/412.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Lifetime of a cached response, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_timeout_seconds: Option<i32>,
    /// Interval between purges of expired entries, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_cleanup_seconds: Option<i32>,
}

/// In-cluster Service reference (resolved through cluster DNS).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceReference {
    /// Service name.
    pub name: String,
    /// Service namespace.
    pub namespace: String,
    /// Port (default 80).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    /// URL scheme (default `http`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

impl ServiceReference {
    /// The port, 80 when unset.
    pub fn port(&self) -> i32 {
        self.port.unwrap_or(80)
    }

    /// The scheme, `http` when unset.
    pub fn protocol(&self) -> &str {
        self.protocol.as_deref().unwrap_or("http")
    }
}

/// Source of PEM-encoded CA certificates; exactly one field must be set.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaBundle {
    /// PEM certificates given directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline: Option<String>,
    /// Key of a Secret holding the certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<ResourceKeyRef>,
    /// Key of a ConfigMap holding the certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<ResourceKeyRef>,
}

/// A key of a Secret or ConfigMap.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceKeyRef {
    /// Object name.
    pub name: String,
    /// Object namespace.
    pub namespace: String,
    /// Data key (default `ca.crt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "ca.crt"))]
    pub key: Option<String>,
}

impl ResourceKeyRef {
    /// The data key, `ca.crt` when unset or empty.
    pub fn key(&self) -> &str {
        non_empty_or(self.key.as_deref(), "ca.crt")
    }
}

/// A Secret, by name and namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Secret name.
    pub name: String,
    /// Secret namespace.
    pub namespace: String,
}

/// A key of a Secret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Secret name.
    pub name: String,
    /// Secret namespace.
    pub namespace: String,
    /// Data key.
    pub key: String,
}

/// Authorization header credential (`<type> <secret value>`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Authorization {
    /// Header scheme, case-insensitive (default `Bearer`; `Basic` is refused,
    /// use `basicAuth`).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "Bearer"))]
    pub type_: Option<String>,
    /// Secret key holding the credential.
    pub secret_ref: SecretKeyRef,
}

impl Authorization {
    /// The scheme, `Bearer` when unset or empty.
    pub fn auth_type(&self) -> &str {
        non_empty_or(self.type_.as_deref(), "Bearer")
    }
}

/// HTTP Basic credentials read from one Secret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BasicAuth {
    /// Secret holding username and password.
    pub secret_ref: SecretRef,
    /// Key of the username (default `username`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "username"))]
    pub username_key: Option<String>,
    /// Key of the password (default `password`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "password"))]
    pub password_key: Option<String>,
}

impl BasicAuth {
    /// The username key, `username` when unset or empty.
    pub fn username_key(&self) -> &str {
        non_empty_or(self.username_key.as_deref(), "username")
    }

    /// The password key, `password` when unset or empty.
    pub fn password_key(&self) -> &str {
        non_empty_or(self.password_key.as_deref(), "password")
    }
}

/// Client certificate and key read from one Secret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientTls {
    /// Secret holding certificate and key.
    pub secret_ref: SecretRef,
    /// Key of the PEM certificate (default `tls.crt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "tls.crt"))]
    pub cert_key: Option<String>,
    /// Key of the PEM private key (default `tls.key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "tls.key"))]
    pub private_key_key: Option<String>,
}

impl ClientTls {
    /// The certificate key, `tls.crt` when unset or empty.
    pub fn cert_key(&self) -> &str {
        non_empty_or(self.cert_key.as_deref(), "tls.crt")
    }

    /// The private key key, `tls.key` when unset or empty.
    pub fn private_key_key(&self) -> &str {
        non_empty_or(self.private_key_key.as_deref(), "tls.key")
    }
}

/// Connection settings for hooks whose URL host matches `host`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointConfig {
    /// Host or host:port matched against hook URLs.
    pub host: String,
    /// CA certificates trusted for the server certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<CaBundle>,
    /// Client certificate for mutual TLS.
    #[serde(rename = "clientTLS", default, skip_serializing_if = "Option::is_none")]
    pub client_tls: Option<ClientTls>,
    /// Authorization header credential; excludes `basicAuth`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    /// HTTP Basic credentials; excludes `authorization`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
}

fn non_empty_or<'a>(value: Option<&'a str>, default: &'a str) -> &'a str {
    match value {
        Some(v) if !v.is_empty() => v,
        _ => default,
    }
}

// ---------------------------------------------------------------------------
// RelatedResourceRule (customize hook response)
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// ControllerRevision
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Runtime defaults and shared accessors
// ---------------------------------------------------------------------------

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

impl DecoratorControllerSpec {
    /// The attachment rules (empty when unset).
    pub fn attachments(&self) -> &[DecoratorControllerAttachmentRule] {
        self.attachments.as_deref().unwrap_or_default()
    }
}

/// Accessors shared by CompositeController and DecoratorController.
pub trait HookedController {
    /// The `sync` hook, if any.
    fn sync_hook(&self) -> Option<&Hook>;
    /// The `finalize` hook, if any.
    fn finalize_hook(&self) -> Option<&Hook>;
    /// The `customize` hook, if any.
    fn customize_hook(&self) -> Option<&Hook>;
    /// `true` when `spec.hooks` is present at all.
    fn has_hooks(&self) -> bool;
    /// `spec.endpointConfigs` (empty when unset).
    fn endpoint_configs(&self) -> &[EndpointConfig];
    /// `spec.resyncPeriodSeconds`.
    fn resync_period_seconds(&self) -> Option<i32>;
    /// Name of the finalizer this controller puts on its parents/targets.
    fn finalizer_name(&self) -> String;
}

impl HookedController for CompositeController {
    fn sync_hook(&self) -> Option<&Hook> {
        self.spec.hooks.as_ref()?.sync.as_ref()
    }
    fn finalize_hook(&self) -> Option<&Hook> {
        self.spec.hooks.as_ref()?.finalize.as_ref()
    }
    fn customize_hook(&self) -> Option<&Hook> {
        self.spec.hooks.as_ref()?.customize.as_ref()
    }
    fn has_hooks(&self) -> bool {
        self.spec.hooks.is_some()
    }
    fn endpoint_configs(&self) -> &[EndpointConfig] {
        self.spec.endpoint_configs.as_deref().unwrap_or_default()
    }
    fn resync_period_seconds(&self) -> Option<i32> {
        self.spec.resync_period_seconds
    }
    fn finalizer_name(&self) -> String {
        crate::constants::composite_finalizer(self.metadata.name.as_deref().unwrap_or_default())
    }
}

impl HookedController for DecoratorController {
    fn sync_hook(&self) -> Option<&Hook> {
        self.spec.hooks.as_ref()?.sync.as_ref()
    }
    fn finalize_hook(&self) -> Option<&Hook> {
        self.spec.hooks.as_ref()?.finalize.as_ref()
    }
    fn customize_hook(&self) -> Option<&Hook> {
        self.spec.hooks.as_ref()?.customize.as_ref()
    }
    fn has_hooks(&self) -> bool {
        self.spec.hooks.is_some()
    }
    fn endpoint_configs(&self) -> &[EndpointConfig] {
        self.spec.endpoint_configs.as_deref().unwrap_or_default()
    }
    fn resync_period_seconds(&self) -> Option<i32> {
        self.spec.resync_period_seconds
    }
    fn finalizer_name(&self) -> String {
        crate::constants::decorator_finalizer(self.metadata.name.as_deref().unwrap_or_default())
    }
}

// ---------------------------------------------------------------------------
// Schema helpers for fields whose CRD schema is not the plain derived one
// ---------------------------------------------------------------------------

/// `metav1.LabelSelector` as it appears in CRDs: an atomic map whose
/// expression list and value lists are atomic too.
fn label_selector_schema(generator: &mut SchemaGenerator) -> Schema {
    let mut schema = generator.subschema_for::<LabelSelector>();
    if let Some(obj) = schema.as_object_mut() {
        obj.insert("x-kubernetes-map-type".into(), "atomic".into());
        if let Some(props) = obj.get_mut("properties").and_then(|p| p.as_object_mut()) {
            props.insert("matchExpressions".into(), requirement_list(generator, true));
        }
    }
    schema
}

/// A list of `LabelSelectorRequirement`s whose `values` lists are atomic.
fn requirement_list_schema(generator: &mut SchemaGenerator) -> Schema {
    Schema::from(
        requirement_list(generator, false)
            .as_object()
            .cloned()
            .unwrap_or_default(),
    )
}

fn requirement_list(generator: &mut SchemaGenerator, atomic: bool) -> serde_json::Value {
    let mut item = generator
        .subschema_for::<LabelSelectorRequirement>()
        .to_value();
    if let Some(values) = item
        .pointer_mut("/properties/values")
        .and_then(|v| v.as_object_mut())
    {
        values.insert("x-kubernetes-list-type".into(), "atomic".into());
    }
    let mut list = serde_json::json!({ "type": "array", "items": item });
    if atomic {
        list["description"] =
            "matchExpressions is a list of label selector requirements. The requirements are ANDed.".into();
        list["x-kubernetes-list-type"] = "atomic".into();
    }
    list
}

/// A Go duration string.
fn duration_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "format": "duration" })
}

/// An arbitrary JSON object kept as-is by the API server.
fn preserve_unknown_object_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "object", "x-kubernetes-preserve-unknown-fields": true })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::Resource;

    const CATSET: &str = r#"
apiVersion: metacontroller.k8s.io/v1alpha1
kind: CompositeController
metadata:
  name: catset-controller
spec:
  parentResource:
    apiVersion: ctl.enisoc.com/v1
    resource: catsets
    revisionHistory:
      fieldPaths:
      - spec.template
    labelSelector:
      matchLabels:
        team: cats
      matchExpressions:
      - key: tier
        operator: In
        values: [frontend, backend]
    ignoreStatusChanges: true
  childResources:
  - apiVersion: v1
    resource: pods
    updateStrategy:
      method: RollingRecreate
      statusChecks:
        conditions:
        - type: Ready
          status: "True"
        - type: Synced
          reason: Done
  - apiVersion: v1
    resource: persistentvolumeclaims
  resyncPeriodSeconds: 30
  generateSelector: true
  hooks:
    sync:
      version: v2
      webhook:
        url: http://catset-controller.metacontroller/sync
        timeout: 1m30s
        responseUnMarshallMode: loose
        etag:
          enabled: true
          cacheTimeoutSeconds: 60
          cacheCleanupSeconds: 120
    finalize:
      webhook:
        service:
          name: catset-controller
          namespace: metacontroller
          port: 8080
          protocol: https
        path: /finalize
        caBundle:
          configMapRef:
            name: ca
            namespace: metacontroller
        clientTLS:
          secretRef:
            name: client
            namespace: metacontroller
          certKey: cert.pem
        authorization:
          type: Bearer
          secretRef:
            name: token
            namespace: metacontroller
            key: token
    customize:
      version: v1
      webhook:
        url: http://catset-controller.metacontroller/customize
        basicAuth:
          secretRef:
            name: basic
            namespace: metacontroller
          usernameKey: user
    preUpdateChild:
      webhook:
        url: http://x/pre
    postUpdateChild:
      webhook:
        url: http://x/post
  endpointConfigs:
  - host: catset-controller.metacontroller
    caBundle:
      inline: |
        -----BEGIN CERTIFICATE-----
        MIIB
        -----END CERTIFICATE-----
    basicAuth:
      secretRef:
        name: basic
        namespace: metacontroller
      passwordKey: pw
"#;

    const SERVICE_PER_POD: &str = r#"
apiVersion: metacontroller.k8s.io/v1alpha1
kind: DecoratorController
metadata:
  name: service-per-pod
spec:
  resources:
  - apiVersion: apps/v1
    resource: statefulsets
    annotationSelector:
      matchExpressions:
      - {key: service-per-pod-label, operator: Exists}
      matchAnnotations:
        enabled: "yes"
    labelSelector:
      matchLabels:
        app: nginx
  attachments:
  - apiVersion: v1
    resource: services
    updateStrategy:
      method: InPlace
  resyncPeriodSeconds: 5
  hooks:
    sync:
      webhook:
        url: http://service-per-pod.metacontroller/sync-service-per-pod
        timeout: 500ms
    finalize:
      version: v2
      webhook:
        url: http://service-per-pod.metacontroller/finalize-service-per-pod
        responseUnMarshallMode: strict
"#;

    fn yaml_to_json(yaml: &str) -> serde_json::Value {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn composite_controller_round_trips() {
        let original = yaml_to_json(CATSET);
        let cc: CompositeController = serde_json::from_value(original.clone()).unwrap();
        assert_eq!(serde_json::to_value(&cc).unwrap(), original);

        let sync = cc.sync_hook().unwrap();
        assert_eq!(sync.version(), HookVersion::V2);
        assert_eq!(
            sync.response_unmarshall_mode(),
            ResponseUnmarshallMode::Loose
        );
        assert_eq!(sync.timeout().unwrap(), Duration::from_secs(90));
        assert!(sync.webhook.as_ref().unwrap().etag_enabled());

        let finalize = cc.finalize_hook().unwrap();
        assert_eq!(finalize.version(), HookVersion::V1);
        assert_eq!(
            finalize.response_unmarshall_mode(),
            ResponseUnmarshallMode::Loose
        );
        let webhook = finalize.webhook.as_ref().unwrap();
        assert_eq!(
            webhook.endpoint_url().unwrap(),
            "https://catset-controller.metacontroller:8080/finalize"
        );
        assert!(webhook.has_connection_settings());
        let tls = webhook.client_tls.as_ref().unwrap();
        assert_eq!(tls.cert_key(), "cert.pem");
        assert_eq!(tls.private_key_key(), "tls.key");
        let ca = webhook
            .ca_bundle
            .as_ref()
            .unwrap()
            .config_map_ref
            .as_ref()
            .unwrap();
        assert_eq!(ca.key(), "ca.crt");

        let customize = cc.customize_hook().unwrap();
        let basic = customize
            .webhook
            .as_ref()
            .unwrap()
            .basic_auth
            .as_ref()
            .unwrap();
        assert_eq!(basic.username_key(), "user");
        assert_eq!(basic.password_key(), "password");

        let children = cc.spec.child_resources();
        assert_eq!(
            children[0].update_method(),
            ChildUpdateMethod::RollingRecreate
        );
        assert!(children[0].update_method().is_rolling());
        assert_eq!(children[0].status_checks().len(), 2);
        assert_eq!(children[1].update_method(), ChildUpdateMethod::OnDelete);
        assert!(children[1].status_checks().is_empty());
        assert_eq!(
            cc.spec.parent_resource.revision_field_paths(),
            vec!["spec.template"]
        );
        assert!(cc.spec.parent_resource.ignores_status_changes());
        assert!(cc.spec.generates_selector());
        assert_eq!(
            cc.finalizer_name(),
            "metacontroller.io/compositecontroller-catset-controller"
        );
        assert_eq!(
            cc.endpoint_configs()[0]
                .basic_auth
                .as_ref()
                .unwrap()
                .password_key(),
            "pw"
        );
    }

    #[test]
    fn decorator_controller_round_trips() {
        let original = yaml_to_json(SERVICE_PER_POD);
        let dc: DecoratorController = serde_json::from_value(original.clone()).unwrap();
        assert_eq!(serde_json::to_value(&dc).unwrap(), original);

        assert_eq!(
            dc.spec.attachments()[0].update_method(),
            ChildUpdateMethod::InPlace
        );
        let sync = dc.sync_hook().unwrap();
        assert_eq!(sync.timeout().unwrap(), Duration::from_millis(500));
        assert_eq!(
            sync.response_unmarshall_mode(),
            ResponseUnmarshallMode::Loose
        );
        let finalize = dc.finalize_hook().unwrap();
        assert_eq!(
            finalize.response_unmarshall_mode(),
            ResponseUnmarshallMode::Strict
        );
        assert!(dc.customize_hook().is_none());
        assert_eq!(
            dc.finalizer_name(),
            "metacontroller.io/decoratorcontroller-service-per-pod"
        );
    }

    #[test]
    fn minimal_objects_round_trip_without_added_fields() {
        let cc = serde_json::json!({
            "apiVersion": "metacontroller.k8s.io/v1alpha1",
            "kind": "CompositeController",
            "metadata": {"name": "x"},
            "spec": {"parentResource": {"apiVersion": "v1", "resource": "things"}}
        });
        let parsed: CompositeController = serde_json::from_value(cc.clone()).unwrap();
        assert_eq!(serde_json::to_value(&parsed).unwrap(), cc);
        assert!(!parsed.has_hooks());
        assert_eq!(
            parsed.spec.parent_resource.revision_field_paths(),
            vec!["spec"]
        );

        let dc = serde_json::json!({
            "apiVersion": "metacontroller.k8s.io/v1alpha1",
            "kind": "DecoratorController",
            "metadata": {"name": "y"},
            "spec": {"resources": []},
            "status": {}
        });
        let parsed: DecoratorController = serde_json::from_value(dc.clone()).unwrap();
        assert_eq!(serde_json::to_value(&parsed).unwrap(), dc);
    }

    #[test]
    fn controller_revision_has_no_spec_wrapper() {
        let rev = serde_json::json!({
            "apiVersion": "metacontroller.k8s.io/v1alpha1",
            "kind": "ControllerRevision",
            "metadata": {"name": "catsets.ctl.enisoc.com-5463ba99b804a121d35d14a5ab74546d1e8ba953", "namespace": "default"},
            "parentPatch": {"spec": {"template": {"metadata": {"labels": {"app": "nginx"}}}}},
            "children": [{"apiGroup": "", "kind": "Pod", "names": ["nginx-backend-0", "nginx-backend-1"]}]
        });
        let parsed: ControllerRevision = serde_json::from_value(rev.clone()).unwrap();
        assert_eq!(parsed.spec.children.as_ref().unwrap()[0].names.len(), 2);
        assert_eq!(
            parsed.spec.parent_patch["spec"]["template"]["metadata"]["labels"]["app"],
            "nginx"
        );
        assert_eq!(serde_json::to_value(&parsed).unwrap(), rev);
        assert_eq!(ControllerRevision::plural(&()), "controllerrevisions");
        assert_eq!(
            ControllerRevision::api_version(&()),
            "metacontroller.k8s.io/v1alpha1"
        );
    }

    #[test]
    fn resource_metadata() {
        assert_eq!(CompositeController::plural(&()), "compositecontrollers");
        assert_eq!(DecoratorController::plural(&()), "decoratorcontrollers");
        assert_eq!(CompositeController::kind(&()), "CompositeController");
        assert_eq!(DecoratorController::group(&()), "metacontroller.k8s.io");
    }

    #[test]
    fn hook_defaults() {
        let hook = Hook::default();
        assert_eq!(hook.version(), HookVersion::V1);
        assert_eq!(
            hook.response_unmarshall_mode(),
            ResponseUnmarshallMode::Loose
        );
        assert_eq!(hook.timeout().unwrap(), Duration::from_secs(10));

        let v2: Hook = serde_json::from_value(
            serde_json::json!({"version": "v2", "webhook": {"url": "http://h/s"}}),
        )
        .unwrap();
        assert_eq!(
            v2.response_unmarshall_mode(),
            ResponseUnmarshallMode::Strict
        );
        let v2_loose: Hook = serde_json::from_value(serde_json::json!({
            "version": "v2", "webhook": {"url": "http://h/s", "responseUnMarshallMode": "loose"}
        }))
        .unwrap();
        assert_eq!(
            v2_loose.response_unmarshall_mode(),
            ResponseUnmarshallMode::Loose
        );
        let v1_strict: Hook = serde_json::from_value(serde_json::json!({
            "webhook": {"url": "http://h/s", "responseUnMarshallMode": "strict", "timeout": "0s"}
        }))
        .unwrap();
        assert_eq!(
            v1_strict.response_unmarshall_mode(),
            ResponseUnmarshallMode::Strict
        );
        assert_eq!(v1_strict.timeout().unwrap(), Duration::from_secs(10));

        // The JSON key has a capital M; the lower-case spelling is not the field.
        let wrong_case: Webhook =
            serde_json::from_value(serde_json::json!({"responseUnmarshallMode": "strict"}))
                .unwrap();
        assert_eq!(wrong_case.response_unmarshall_mode, None);
        assert!(serde_json::from_value::<Hook>(serde_json::json!({"version": "v3"})).is_err());
    }

    #[test]
    fn webhook_url_forms() {
        let service_default = Webhook {
            path: Some("/sync".into()),
            service: Some(ServiceReference {
                name: "hooks".into(),
                namespace: "ns".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            service_default.endpoint_url().unwrap(),
            "http://hooks.ns:80/sync"
        );
        let url_wins = Webhook {
            url: Some("https://example.com/x".into()),
            ..service_default.clone()
        };
        assert_eq!(url_wins.endpoint_url().unwrap(), "https://example.com/x");
        let no_path = Webhook {
            path: None,
            ..service_default.clone()
        };
        assert_eq!(no_path.endpoint_url(), Err(WebhookConfigError::MissingUrl));
        let mut no_ns = service_default;
        no_ns.service.as_mut().unwrap().namespace.clear();
        assert_eq!(
            no_ns.endpoint_url(),
            Err(WebhookConfigError::IncompleteService)
        );
    }

    #[test]
    fn update_methods() {
        for (text, method) in [
            ("OnDelete", ChildUpdateMethod::OnDelete),
            ("Recreate", ChildUpdateMethod::Recreate),
            ("InPlace", ChildUpdateMethod::InPlace),
            ("RollingRecreate", ChildUpdateMethod::RollingRecreate),
            ("RollingInPlace", ChildUpdateMethod::RollingInPlace),
        ] {
            assert_eq!(serde_json::to_value(method).unwrap(), text);
            assert_eq!(method.as_str(), text);
        }
        assert_eq!(ChildUpdateMethod::default(), ChildUpdateMethod::OnDelete);
        assert_eq!(
            ChildUpdateMethod::RollingInPlace.without_rolling(),
            ChildUpdateMethod::InPlace
        );
        assert_eq!(
            ChildUpdateMethod::RollingRecreate.without_rolling(),
            ChildUpdateMethod::Recreate
        );
        assert!(!ChildUpdateMethod::InPlace.is_rolling());
        let rule = DecoratorControllerAttachmentRule::default();
        assert_eq!(rule.update_method(), ChildUpdateMethod::OnDelete);
    }

    #[test]
    fn related_rule_selection() {
        let parse =
            |v: serde_json::Value| -> RelatedResourceRule { serde_json::from_value(v).unwrap() };
        let base = serde_json::json!({"apiVersion": "v1", "resource": "configmaps"});
        let with = |extra: serde_json::Value| {
            let mut v = base.clone();
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            parse(v)
        };
        assert_eq!(
            parse(base.clone()).selection(),
            Ok(RelatedSelection::Labels)
        );
        assert_eq!(
            with(serde_json::json!({"labelSelector": {}})).selection(),
            Ok(RelatedSelection::Labels)
        );
        assert_eq!(
            with(serde_json::json!({"labelSelector": {}, "namespace": "a"})).selection(),
            Ok(RelatedSelection::NamespaceAndLabels)
        );
        assert_eq!(
            with(serde_json::json!({"namespace": "a"})).selection(),
            Ok(RelatedSelection::NamespaceAndNames)
        );
        assert_eq!(
            with(serde_json::json!({"names": ["x"]})).selection(),
            Ok(RelatedSelection::NamespaceAndNames)
        );
        assert_eq!(
            with(serde_json::json!({"namespaceSelector": {"matchLabels": {"a": "b"}}})).selection(),
            Ok(RelatedSelection::NamespaceSelector)
        );
        assert_eq!(
            with(serde_json::json!({"names": ["x"], "labelSelector": {}})).selection(),
            Err(RelatedRuleError::NamesWithSelector)
        );
        assert_eq!(
            with(serde_json::json!({"namespace": "a", "namespaceSelector": {}})).selection(),
            Err(RelatedRuleError::NamespaceWithNamespaceSelector)
        );
        // Empty namespace and empty names count as unset.
        assert_eq!(
            with(serde_json::json!({"namespace": "", "names": []})).selection(),
            Ok(RelatedSelection::Labels)
        );
    }
}
