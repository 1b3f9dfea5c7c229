//! Engine settings (the command-line flags of Metacontroller that shape the
//! control loop).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use metacontroller_selectors::Selector;

/// How children are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ApplyStrategy {
    /// Client-side three-way merge against the last-applied annotation
    /// (`dynamic-apply`, the default).
    #[default]
    DynamicApply,
    /// Kubernetes server-side apply (`server-side-apply`).
    ServerSideApply,
}

impl ApplyStrategy {
    /// The flag spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ApplyStrategy::DynamicApply => "dynamic-apply",
            ApplyStrategy::ServerSideApply => "server-side-apply",
        }
    }
}

impl fmt::Display for ApplyStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An `--apply-strategy` value that is neither `dynamic-apply` nor
/// `server-side-apply`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown apply strategy: {0}")]
pub struct UnknownApplyStrategy(pub String);

impl FromStr for ApplyStrategy {
    type Err = UnknownApplyStrategy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "" | "dynamic-apply" => Ok(ApplyStrategy::DynamicApply),
            "server-side-apply" => Ok(ApplyStrategy::ServerSideApply),
            other => Err(UnknownApplyStrategy(other.to_owned())),
        }
    }
}

/// Engine settings. `Default` gives Metacontroller's defaults.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Concurrent syncs per hosted controller (`--workers`, 5).
    pub workers: usize,
    /// Discovery refresh period (`--discovery-interval`, 30 s).
    pub discovery_interval: Duration,
    /// Period at which watch caches redeliver their objects
    /// (`--cache-flush-interval`, 30 min).
    pub cache_flush_interval: Duration,
    /// Only CompositeControllers whose labels match are hosted
    /// (`--target-label-selector`, everything).
    pub target_label_selector: Selector,
    /// How children are written (`--apply-strategy`).
    pub apply_strategy: ApplyStrategy,
    /// Field manager of server-side applies
    /// (`--apply-strategy-ssa-field-manager`, `metacontroller`).
    pub ssa_field_manager: String,
    /// Events per second allowed per object (`--events-qps`, 1/300).
    pub events_qps: f64,
    /// Event burst per object (`--events-burst`, 25).
    pub events_burst: u32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            workers: 5,
            discovery_interval: Duration::from_secs(30),
            cache_flush_interval: Duration::from_secs(30 * 60),
            target_label_selector: Selector::everything(),
            apply_strategy: ApplyStrategy::DynamicApply,
            ssa_field_manager: metacontroller_api::constants::FIELD_MANAGER.to_owned(),
            events_qps: 1.0 / 300.0,
            events_burst: 25,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_strategy_parsing() {
        assert_eq!("".parse(), Ok(ApplyStrategy::DynamicApply));
        assert_eq!("dynamic-apply".parse(), Ok(ApplyStrategy::DynamicApply));
        assert_eq!(
            "server-side-apply".parse(),
            Ok(ApplyStrategy::ServerSideApply)
        );
        assert_eq!(
            "magic".parse::<ApplyStrategy>(),
            Err(UnknownApplyStrategy("magic".into()))
        );
        assert_eq!(
            ApplyStrategy::ServerSideApply.to_string(),
            "server-side-apply"
        );
    }
}
