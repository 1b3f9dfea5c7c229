//! The control plane's binaries: built once from the Go module in
//! `testbed/kube/`, then reused.
//!
//! `testbed/kube/go.mod` pins Kubernetes (`k8s.io/kubernetes` with its
//! staging modules replaced by their published `k8s.io/<name>` releases) and
//! etcd. [`ensure`] builds `kube-apiserver`, `kube-controller-manager` and
//! `etcd` from it into `~/.cache/metacontroller-rs/kube/<kubernetes version>-<hash>/`, where the
//! hash covers every file of the Go module, so a changed pin builds again and
//! an unchanged one builds nothing. A file lock makes concurrent callers (test
//! binaries starting together) wait for one build instead of racing; the
//! finished folder appears by an atomic rename.
//!
//! `MC_KUBE_BIN_DIR` names a folder that already holds the three binaries and
//! skips all of this.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Error;

/// The Kubernetes release the Go module pins (the version the binaries report).
pub const KUBERNETES_VERSION: &str = "v1.36.3";
/// The etcd release the Go module pins.
pub const ETCD_VERSION: &str = "v3.6.8";

/// Where the three binaries are.
#[derive(Clone, Debug)]
pub struct Binaries {
    /// The directory holding them.
    pub dir: PathBuf,
}

impl Binaries {
    /// The etcd binary.
    pub fn etcd(&self) -> PathBuf {
        self.dir.join("etcd")
    }
    /// The kube-apiserver binary.
    pub fn kube_apiserver(&self) -> PathBuf {
        self.dir.join("kube-apiserver")
    }
    /// The kube-controller-manager binary.
    pub fn kube_controller_manager(&self) -> PathBuf {
        self.dir.join("kube-controller-manager")
    }
    fn complete(&self) -> bool {
        [
            self.etcd(),
            self.kube_apiserver(),
            self.kube_controller_manager(),
        ]
        .iter()
        .all(|p| p.is_file())
    }
}

/// The repository root (this crate lives in `crates/testbed`).
pub fn repo_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// The Go module that builds the binaries.
pub fn go_module_dir() -> PathBuf {
    repo_root().join("testbed/kube")
}

/// `MC_TESTBED_CACHE`, else `kube` in the user's build cache.
fn cache_root() -> PathBuf {
    std::env::var_os("MC_TESTBED_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| user_cache("kube"))
}

/// `<folder>` under `$XDG_CACHE_HOME/metacontroller-rs` (else
/// `~/.cache/metacontroller-rs`, else `.cache` in the repository): outside
/// the checkout, like Go's own build cache, so that every clone on a machine
/// shares what was built. Folders inside are named by version and content
/// hash, so clones at different commits never mix them up.
pub(crate) fn user_cache(folder: &str) -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|home| PathBuf::from(home).join(".cache"))
        });
    match base {
        Some(base) => base.join("metacontroller-rs").join(folder),
        None => repo_root().join(".cache").join(folder),
    }
}

/// FNV-1a over every file of the Go module (path and content), in path
/// order: stable across runs and toolchains, unlike `DefaultHasher`.
pub(crate) fn module_hash(dir: &Path) -> Result<u64, Error> {
    let mut files = Vec::new();
    collect_files(dir, dir, &mut files)?;
    files.sort();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for rel in files {
        eat(rel.as_bytes());
        eat(&[0]);
        eat(&std::fs::read(dir.join(&rel)).map_err(|e| Error::io(dir.join(&rel), e))?);
        eat(&[0]);
    }
    Ok(hash)
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), Error> {
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        if path.is_dir() {
            collect_files(root, &path, out)?;
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push(rel.to_string_lossy().into_owned());
        }
    }
    Ok(())
}

/// The folder the binaries of the current Go module go to.
pub fn cache_dir() -> Result<PathBuf, Error> {
    let hash = module_hash(&go_module_dir())?;
    Ok(cache_root().join(format!("{KUBERNETES_VERSION}-{:08x}", hash as u32)))
}

/// Returns the binaries, building them first when they are not cached.
/// Building writes the `go build` output to `log` (stderr when `None`).
pub fn ensure(log: Option<&Path>) -> Result<Binaries, Error> {
    if let Some(dir) = std::env::var_os("MC_KUBE_BIN_DIR") {
        let bins = Binaries {
            dir: PathBuf::from(dir),
        };
        return if bins.complete() {
            Ok(bins)
        } else {
            Err(Error::Build(format!(
                "MC_KUBE_BIN_DIR={} does not hold etcd, kube-apiserver and kube-controller-manager",
                bins.dir.display()
            )))
        };
    }
    let dir = cache_dir()?;
    let bins = Binaries { dir: dir.clone() };
    if bins.complete() {
        return Ok(bins);
    }
    let build = GoBuild {
        module: go_module_dir(),
        cache_root: cache_root(),
        ldflags: version_ldflags(),
        packages: &[
            "k8s.io/kubernetes/cmd/kube-apiserver",
            "k8s.io/kubernetes/cmd/kube-controller-manager",
            "./cmd/etcd",
        ],
    };
    build.run_into(&dir, || bins.complete(), log)?;
    Ok(bins)
}

/// One `go build` of some packages of a Go module into a cache folder.
pub(crate) struct GoBuild<'a> {
    /// The Go module (its `go.mod` pins every version).
    pub module: PathBuf,
    /// Where the lock file and the staging folder go.
    pub cache_root: PathBuf,
    pub ldflags: String,
    pub packages: &'a [&'a str],
}

impl GoBuild<'_> {
    /// Builds into `dir` unless `done()` says another caller already has:
    /// under a file lock, into a staging folder renamed to `dir` at the end.
    pub fn run_into(
        &self,
        dir: &Path,
        done: impl Fn() -> bool,
        log: Option<&Path>,
    ) -> Result<(), Error> {
        let root = &self.cache_root;
        std::fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
        let lock_path = root.join(".build.lock");
        let lock = File::create(&lock_path).map_err(|e| Error::io(&lock_path, e))?;
        lock.lock().map_err(|e| Error::io(&lock_path, e))?;
        // Someone else may have built it while we waited.
        if done() {
            return Ok(());
        }
        let staging = root.join(format!(
            ".building-{}",
            dir.file_name().unwrap_or_default().to_string_lossy()
        ));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
        self.go_build(&staging, log)?;
        let _ = std::fs::remove_dir_all(dir);
        std::fs::rename(&staging, dir).map_err(|e| Error::io(dir, e))?;
        drop(lock);
        Ok(())
    }

    fn go_build(&self, out: &Path, log: Option<&Path>) -> Result<(), Error> {
        let module = &self.module;
        let mut cmd = Command::new("go");
        cmd.current_dir(module)
            .arg("build")
            .arg("-trimpath")
            .arg("-ldflags")
            .arg(&self.ldflags)
            .arg("-o")
            .arg(out)
            .args(self.packages);
        if let Some(log) = log {
            let file = File::create(log).map_err(|e| Error::io(log, e))?;
            let err = file.try_clone().map_err(|e| Error::io(log, e))?;
            cmd.stdout(file).stderr(err);
        }
        let status = cmd.status().map_err(|e| {
            Error::Build(format!("running `go build` in {}: {e}", module.display()))
        })?;
        if !status.success() {
            return Err(Error::Build(format!(
                "`go build` in {} failed ({status}){}",
                module.display(),
                log.map(|l| format!("; output in {}", l.display()))
                    .unwrap_or_default()
            )));
        }
        Ok(())
    }
}

/// The `-ldflags` that give the binaries their release version, as
/// Kubernetes' own build does (`hack/lib/version.sh`).
fn version_ldflags() -> String {
    let minor = KUBERNETES_VERSION
        .trim_start_matches('v')
        .split('.')
        .nth(1)
        .unwrap_or("0");
    let pkg = "k8s.io/component-base/version";
    [
        "-s -w".to_string(),
        format!("-X {pkg}.gitVersion={KUBERNETES_VERSION}"),
        format!("-X {pkg}.gitMajor=1"),
        format!("-X {pkg}.gitMinor={minor}"),
        format!("-X {pkg}.gitTreeState=clean"),
        format!("-X {pkg}.buildDate=1970-01-01T00:00:00Z"),
        format!("-X go.etcd.io/etcd/api/v3/version.GitSHA={ETCD_VERSION}"),
    ]
    .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_changes_with_content_and_not_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("go.mod"), "module a\n").unwrap();
        std::fs::create_dir(dir.path().join("cmd")).unwrap();
        std::fs::write(dir.path().join("cmd/main.go"), "package main\n").unwrap();
        let a = module_hash(dir.path()).unwrap();
        assert_eq!(a, module_hash(dir.path()).unwrap());
        std::fs::write(dir.path().join("go.mod"), "module b\n").unwrap();
        assert_ne!(a, module_hash(dir.path()).unwrap());
    }

    #[test]
    fn ldflags_carry_the_release() {
        let flags = version_ldflags();
        assert!(flags.contains("gitVersion=v1.36.3"), "{flags}");
        assert!(flags.contains("gitMinor=36"), "{flags}");
    }
}
