//! Where things are: the repository, programs on `PATH`, kubectl, a free
//! port.

use std::path::{Path, PathBuf};

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// `name` on `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    })
}

/// The kubectl the test command chose (the first entry of `MC_KUBECTLS`),
/// else `kubectl` on `PATH`.
pub fn configured_kubectl() -> Option<PathBuf> {
    if let Ok(list) = std::env::var("MC_KUBECTLS")
        && let Some(first) = list.split(':').find(|s| !s.is_empty())
    {
        return Some(PathBuf::from(first));
    }
    which("kubectl")
}

/// A loopback port nobody listens on (free when asked; the caller binds it
/// soon after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
