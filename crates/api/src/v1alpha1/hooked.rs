//! [`HookedController`]: the accessors CompositeController and
//! DecoratorController share.

use super::composite::CompositeController;
use super::decorator::DecoratorController;
use super::hook_config::{EndpointConfig, Hook};

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
