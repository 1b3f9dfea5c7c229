//! What every controller kind resolves when one is built: the resources its
//! rules name (through discovery) and its three hooks; and [`BuildError`],
//! why a hosted controller could not be built (reported as a `CreateError`
//! event on the controller object). Knows nothing of controller kinds.

use metacontroller_api::HookedController;
use metacontroller_hooks::HookKind;
use metacontroller_selectors::SelectorError;

use crate::Context;
use crate::discovery::ResourceInfo;
use crate::hook_target::{self, ResolveError, ResolvedHook};

/// Why a hosted controller could not be built.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BuildError {
    /// The controller has no `hooks` at all.
    #[error("no hooks defined")]
    NoHooks,
    /// A rule names a resource discovery does not know.
    #[error("discovery: can't find resource {resource} in apiVersion {api_version}")]
    Discovery {
        /// The plural resource name.
        resource: String,
        /// Its apiVersion.
        api_version: String,
    },
    /// A hook could not be set up.
    #[error("can't resolve {kind} hook: {source}")]
    Hook {
        /// Which hook.
        kind: HookKind,
        /// Why.
        #[source]
        source: ResolveError,
    },
    /// A selector of the spec is invalid.
    #[error("{what}: {source}")]
    Selector {
        /// Which selector.
        what: String,
        /// Why.
        #[source]
        source: SelectorError,
    },
    /// A selector of the spec could not be re-encoded.
    #[error("{0}")]
    Encode(#[source] serde_json::Error),
    /// The parent type has no CustomResourceDefinition.
    #[error("parent resource {crd} does not exist (no CustomResourceDefinition of that name)")]
    NoParentCrd {
        /// The CRD name.
        crd: String,
    },
    /// The parent type's CustomResourceDefinition could not be read.
    #[error("can't get CustomResourceDefinition {crd}: {}", api_message(.source))]
    ParentCrd {
        /// The CRD name.
        crd: String,
        /// The failed GET.
        #[source]
        source: kube::Error,
    },
}

/// The message of an API status, or the whole error otherwise.
fn api_message(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

/// The three hooks of a controller, each absent when not configured.
pub(crate) struct Hooks {
    /// `hooks.sync`.
    pub sync: Option<ResolvedHook>,
    /// `hooks.finalize`.
    pub finalize: Option<ResolvedHook>,
    /// `hooks.customize`.
    pub customize: Option<ResolvedHook>,
}

impl Hooks {
    /// Resolves the hooks of `controller` (of kind `controller_type`, for
    /// metrics).
    pub async fn resolve(
        ctx: &Context,
        controller: &(impl HookedController + kube::Resource),
        controller_type: &str,
    ) -> Result<Hooks, BuildError> {
        let name = controller.meta().name.as_deref().unwrap_or_default();
        let resolve = async |hook: Option<&metacontroller_api::Hook>, kind: HookKind| {
            let Some(hook) = hook else {
                return Ok(None);
            };
            hook_target::resolve(
                &ctx.client,
                hook,
                controller.endpoint_configs(),
                kind,
                controller_type,
                name,
                ctx.hook_metrics.as_ref(),
            )
            .await
            .map_err(|source| BuildError::Hook { kind, source })
        };
        Ok(Hooks {
            sync: resolve(controller.sync_hook(), HookKind::Sync).await?,
            finalize: resolve(controller.finalize_hook(), HookKind::Finalize).await?,
            customize: resolve(controller.customize_hook(), HookKind::Customize).await?,
        })
    }
}

/// The resource `resource` of `api_version`, as discovered.
pub(crate) async fn discover(
    ctx: &Context,
    api_version: &str,
    resource: &str,
) -> Result<ResourceInfo, BuildError> {
    ctx.resources
        .resolve(api_version, resource)
        .await
        .ok_or_else(|| BuildError::Discovery {
            resource: resource.to_owned(),
            api_version: api_version.to_owned(),
        })
}
