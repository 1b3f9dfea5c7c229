//! The Kubernetes release the server reports in `/version` (and whose
//! semantics it follows).

/// The Kubernetes major version the server reports (it follows the
/// semantics of that release).
pub const VERSION_MAJOR: &str = "1";
/// The minor version the server reports.
pub const VERSION_MINOR: &str = "33";
