//! `dev -f DIR`: brings a folder up (its hooks from the dev file, then its
//! manifests) and keeps it up to date by polling modification times: a
//! changed, added or removed manifest file re-applies the manifests, a
//! changed hook file restarts that hook, and a hook that exits on its own
//! is started again after a back-off (see [`super::hooks`]). The objects
//! dev applied are recorded with their files: one that is in no file any
//! more (its file was deleted, or it was removed from it) is deleted.
//! Every change is reported on stderr in one line, and a restarted hook
//! resyncs every controller (the cluster did not change, but the hook's
//! answers may have).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use metacontroller_engine::resync::ResyncHandle;
use tokio_util::sync::CancellationToken;

use super::Summary;
use super::hooks::{DEV_FILE, DevFile, Hooks};
use super::manifests::{self, Manifest};

/// How often files are checked for changes.
const POLL: Duration = Duration::from_millis(500);

/// A folder being developed.
pub struct Folder {
    dir: PathBuf,
    client: kube::Client,
    hooks: Hooks,
    /// The manifest files and their modification times at the last apply.
    stamp: Vec<(PathBuf, Option<SystemTime>)>,
    /// The objects of the last successful apply, each with its file.
    applied: Vec<Manifest>,
}

impl Folder {
    /// Starts the hooks and applies the manifests; adds what runs to
    /// `summary`.
    pub async fn start(
        dir: &Path,
        client: kube::Client,
        summary: &mut Summary,
    ) -> anyhow::Result<Folder> {
        let dir =
            std::fs::canonicalize(dir).with_context(|| format!("dev -f {}", dir.display()))?;
        let mut hooks = Hooks::new(&dir, DevFile::load(&dir)?)?;
        hooks.start_all().await?;
        for hook in &hooks.hooks {
            summary.add(
                format!("hook {}", hook.spec.name),
                format!(
                    "{} (in {}) on 127.0.0.1:{}",
                    hook.command_line(),
                    hook.dir.display(),
                    hook.port
                ),
            );
        }
        let mut folder = Folder {
            dir,
            client,
            hooks,
            stamp: Vec::new(),
            applied: Vec::new(),
        };
        let applied = folder.apply().await?;
        summary.add(
            "applied",
            format!("{} objects from {}", applied.len(), folder.dir.display()),
        );
        for object in applied {
            summary.add("", object);
        }
        Ok(folder)
    }

    fn manifest_stamp(&self) -> Vec<(PathBuf, Option<SystemTime>)> {
        manifests::files(&self.dir, &self.dir.join(DEV_FILE))
            .unwrap_or_default()
            .into_iter()
            .map(|path| {
                let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
                (path, modified)
            })
            .collect()
    }

    /// Reads and applies every manifest; returns what was applied.
    async fn apply(&mut self) -> anyhow::Result<Vec<String>> {
        self.stamp = self.manifest_stamp();
        let vars = self.hooks.variables();
        let mut all: Vec<Manifest> = Vec::new();
        for (file, _) in &self.stamp {
            all.extend(manifests::read(file, &vars)?);
        }
        let applied = manifests::apply_all(&self.client, &all).await?;
        self.applied = all;
        Ok(applied)
    }

    /// Applies every manifest, then deletes the objects of the previous
    /// apply that are in no file any more; returns what was applied and
    /// what was deleted (with the file it came from).
    async fn reapply(&mut self) -> anyhow::Result<(Vec<String>, Vec<String>)> {
        let before = std::mem::take(&mut self.applied);
        let applied = match self.apply().await {
            Ok(applied) => applied,
            Err(err) => {
                self.applied = before;
                return Err(err);
            }
        };
        let now: HashSet<_> = self.applied.iter().map(Manifest::identity).collect();
        let gone: Vec<Manifest> = before
            .into_iter()
            .filter(|m| !now.contains(&m.identity()))
            .collect();
        let deleted = manifests::delete_all(&self.client, &gone).await?;
        let deleted = deleted
            .into_iter()
            .map(|what| {
                let file = gone
                    .iter()
                    .find(|m| m.describe() == what)
                    .and_then(|m| m.file.file_name())
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default();
                format!("{what} (gone from {file})")
            })
            .collect();
        Ok((applied, deleted))
    }

    /// Polls for changes until `cancel`, then stops the hooks. A restarted
    /// hook resyncs every controller through `resync`.
    pub async fn watch(mut self, resync: ResyncHandle, cancel: CancellationToken) {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(POLL) => {}
            }
            let restarted = self.hooks.restart_changed().await;
            for outcome in &restarted {
                match outcome {
                    Ok(name) => eprintln!("restarted hook {name}"),
                    Err(err) => eprintln!("hook failed: {err}"),
                }
            }
            let revived = self.hooks.restart_exited().await;
            for outcome in &revived {
                match outcome {
                    Ok(line) => eprintln!("{line}"),
                    Err(err) => eprintln!("hook failed: {err}"),
                }
            }
            if restarted.iter().chain(&revived).any(Result::is_ok) {
                resync.resync_all();
            }
            if self.manifest_stamp() != self.stamp {
                match self.reapply().await {
                    Ok((applied, deleted)) => {
                        eprintln!("re-applied {}", applied.join(", "));
                        if !deleted.is_empty() {
                            eprintln!("deleted {}", deleted.join(", "));
                        }
                    }
                    Err(err) => eprintln!("re-apply failed: {err:#}"),
                }
            }
        }
        self.hooks.stop_all().await;
    }
}
