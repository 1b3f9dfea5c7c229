//! One `dev` per kubeconfig: a lock file next to the kubeconfig
//! (`<kubeconfig>.lock`) held for the life of the process, holding its pid
//! and, once every port is bound and the kubeconfig written, the word
//! `ready`. A second `dev` for the same kubeconfig fails at once and leaves
//! the first one's kubeconfig alone; `dev --wait` reads the lock file to
//! tell when the running one is ready.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Why the lock could not be taken or the wait failed.
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error(
        "another `metacontroller dev` ({owner}) is using {kubeconfig}; stop it or pass --kubeconfig-out"
    )]
    Busy { owner: String, kubeconfig: String },
    #[error("no ready `metacontroller dev` for {kubeconfig} within {waited:?}")]
    NotReady {
        kubeconfig: String,
        waited: Duration,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> InstanceError + '_ {
    move |source| InstanceError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The lock file of `kubeconfig`.
pub fn lock_path(kubeconfig: &Path) -> PathBuf {
    let mut name = kubeconfig.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    kubeconfig.with_file_name(name)
}

/// The held lock; dropping it (process exit) releases it.
pub struct Instance {
    file: File,
    path: PathBuf,
}

impl Instance {
    /// Takes the lock of `kubeconfig`, creating its folder. A waiter reading
    /// the file holds a shared lock for an instant, so a few tries are made
    /// before giving up.
    pub fn acquire(kubeconfig: &Path) -> Result<Instance, InstanceError> {
        let path = lock_path(kubeconfig);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_error(&path))?;
        let mut tries = 0;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if tries < 20 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(25));
                }
                Err(TryLockError::WouldBlock) => {
                    let mut text = String::new();
                    let _ = file.read_to_string(&mut text);
                    let owner = match text.lines().next() {
                        Some(pid) if !pid.is_empty() => format!("pid {pid}"),
                        _ => "another process".to_owned(),
                    };
                    return Err(InstanceError::Busy {
                        owner,
                        kubeconfig: kubeconfig.display().to_string(),
                    });
                }
                Err(TryLockError::Error(err)) => return Err(io_error(&path)(err)),
            }
        }
        let mut instance = Instance { file, path };
        instance.write(&format!("{}\n", std::process::id()))?;
        Ok(instance)
    }

    fn write(&mut self, text: &str) -> Result<(), InstanceError> {
        let path = self.path.clone();
        self.file.set_len(0).map_err(io_error(&path))?;
        self.file
            .seek(SeekFrom::Start(0))
            .map_err(io_error(&path))?;
        self.file
            .write_all(text.as_bytes())
            .and_then(|()| self.file.flush())
            .map_err(io_error(&path))
    }

    /// Marks the instance ready: its kubeconfig is written and every port
    /// bound.
    pub fn set_ready(&mut self) -> Result<(), InstanceError> {
        self.write(&format!("{}\nready\n", std::process::id()))
    }
}

/// Whether a live `dev` holds the lock of `kubeconfig` and is ready.
fn ready(kubeconfig: &Path) -> bool {
    let path = lock_path(kubeconfig);
    let Ok(mut file) = File::open(&path) else {
        return false;
    };
    match file.try_lock_shared() {
        // Nobody holds it: whatever the file says is left over.
        Ok(()) => false,
        Err(TryLockError::WouldBlock) => {
            let mut text = String::new();
            file.read_to_string(&mut text).is_ok() && text.lines().any(|l| l == "ready")
        }
        Err(TryLockError::Error(_)) => false,
    }
}

/// Waits up to `limit` for a ready `dev` owning `kubeconfig`.
pub fn wait_ready(kubeconfig: &Path, limit: Duration) -> Result<(), InstanceError> {
    let start = Instant::now();
    loop {
        if ready(kubeconfig) {
            return Ok(());
        }
        if start.elapsed() >= limit {
            return Err(InstanceError::NotReady {
                kubeconfig: kubeconfig.display().to_string(),
                waited: limit,
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_instance_is_refused_and_waiters_see_ready() {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("sub/kubeconfig");
        assert!(!ready(&kubeconfig));
        let mut first = Instance::acquire(&kubeconfig).unwrap();
        assert!(!ready(&kubeconfig));
        let err = Instance::acquire(&kubeconfig).err().unwrap().to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        first.set_ready().unwrap();
        assert!(ready(&kubeconfig));
        wait_ready(&kubeconfig, Duration::from_secs(1)).unwrap();
        drop(first);
        assert!(!ready(&kubeconfig), "a released lock is not ready");
        assert!(wait_ready(&kubeconfig, Duration::from_millis(200)).is_err());
        Instance::acquire(&kubeconfig).unwrap();
    }
}
