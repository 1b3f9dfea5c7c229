//! The `helm` binary the chart tests render with: built once from the Go
//! module in `testbed/helm/`, then reused.
//!
//! `testbed/helm/go.mod` pins `helm.sh/helm/v4` as a `tool`; [`ensure`]
//! builds its `cmd/helm` into `~/.cache/metacontroller-rs/helm/<helm version>-<hash>/helm` (the
//! hash covers every file of the Go module, as for the Kubernetes binaries),
//! with the release version stamped the way Helm's own Makefile does.
//! `MC_HELM_CACHE` moves the cache; `MC_HELM_BIN` names a `helm` binary to use
//! instead of building one.

use std::path::{Path, PathBuf};

use crate::Error;
use crate::binaries::{GoBuild, module_hash, repo_root};

/// The Helm release the Go module pins.
pub const HELM_VERSION: &str = "v4.3.2";

/// The Go module that builds `helm`.
pub fn go_module_dir() -> PathBuf {
    repo_root().join("testbed/helm")
}

fn cache_root() -> PathBuf {
    std::env::var_os("MC_HELM_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::binaries::user_cache("helm"))
}

/// The folder `helm` of the current Go module goes to.
pub fn cache_dir() -> Result<PathBuf, Error> {
    let hash = module_hash(&go_module_dir())?;
    Ok(cache_root().join(format!("{HELM_VERSION}-{:08x}", hash as u32)))
}

/// Returns the path of `helm`, building it first when it is not cached.
/// Building writes the `go build` output to `log` (stderr when `None`).
pub fn ensure(log: Option<&Path>) -> Result<PathBuf, Error> {
    if let Some(bin) = std::env::var_os("MC_HELM_BIN") {
        let bin = PathBuf::from(bin);
        return if bin.is_file() {
            Ok(bin)
        } else {
            Err(Error::Build(format!(
                "MC_HELM_BIN={} is not a file",
                bin.display()
            )))
        };
    }
    let dir = cache_dir()?;
    let bin = dir.join("helm");
    if bin.is_file() {
        return Ok(bin);
    }
    let build = GoBuild {
        module: go_module_dir(),
        cache_root: cache_root(),
        ldflags: format!("-s -w -X helm.sh/helm/v4/internal/version.version={HELM_VERSION}"),
        packages: &["helm.sh/helm/v4/cmd/helm"],
    };
    build.run_into(&dir, || bin.is_file(), log)?;
    Ok(bin)
}
