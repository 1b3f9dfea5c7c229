//! The open data directory: the lock, the active log segment that every
//! committed write is appended to, and the compaction that replaces old
//! segments with a snapshot.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::registry::GroupResource;
use crate::store::{Inner, WriteLog, WriteRecord};

use super::format::*;
use super::*;

pub(super) struct Active {
    pub(super) file: Option<File>,
    pub(super) path: PathBuf,
    /// Bytes in the active segment.
    pub(super) len: u64,
    /// Size of the last snapshot written or loaded.
    pub(super) snapshot_len: u64,
    pub(super) compaction_requested: bool,
    pub(super) buf: Vec<u8>,
}

pub(super) struct State {
    pub(super) dir: PathBuf,
    pub(super) options: Options,
    pub(super) active: Mutex<Active>,
    /// Held while a snapshot is written, and by `close`.
    pub(super) compacting: Mutex<()>,
    pub(super) wake: Notify,
    pub(super) lock: Mutex<Option<File>>,
}

/// An open data directory. Cloning shares it.
#[derive(Clone)]
pub struct Persistence {
    state: Arc<State>,
}

impl std::fmt::Debug for Persistence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Persistence")
            .field("dir", &self.state.dir)
            .finish()
    }
}

impl Persistence {
    /// Opens (creating if needed) a data directory, locks it, and loads what
    /// it holds. A torn final record is cut off (and reported in
    /// [`Loaded::warnings`]); other damage is an error.
    pub fn open(dir: &Path, options: Options) -> Result<(Self, Loaded), PersistError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(PersistError::Locked {
                    path: dir.to_path_buf(),
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(io_err(&lock_path)(e)),
        }
        let tmp = dir.join(SNAPSHOT_TMP);
        if tmp.exists() {
            fs::remove_file(&tmp).map_err(io_err(&tmp))?;
        }

        let mut objects = Objects::new();
        let mut warnings = Vec::new();
        let snap_path = dir.join(SNAPSHOT_FILE);
        let (snapshot_rv, snapshot_len) = match fs::metadata(&snap_path) {
            Ok(m) => (read_snapshot(&snap_path, &mut objects)?, m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => (0, 0),
            Err(e) => return Err(io_err(&snap_path)(e)),
        };
        let segments = list_segments(dir)?;
        if let Some(first) = segments.first()
            && first.base > snapshot_rv
        {
            // The writes between the snapshot and the first segment are gone.
            return Err(PersistError::Corrupt {
                path: first.path.clone(),
                offset: 0,
                reason: format!(
                    "the log starts after resourceVersion {} but the snapshot ends at {snapshot_rv}: writes in between are missing",
                    first.base
                ),
            });
        }
        let mut max_rv = snapshot_rv;
        let mut last_seen = 0;
        let mut valid_len = 0;
        for (i, seg) in segments.iter().enumerate() {
            let last = i + 1 == segments.len();
            valid_len = replay_segment(
                seg,
                last,
                snapshot_rv,
                &mut last_seen,
                &mut max_rv,
                &mut objects,
                &mut warnings,
            )?;
        }
        for w in &warnings {
            tracing::warn!("{w}");
        }

        // Segments wholly covered by the snapshot (a crash between writing
        // it and deleting them) go now.
        for pair in segments.windows(2) {
            if pair[1].base <= snapshot_rv {
                fs::remove_file(&pair[0].path).map_err(io_err(&pair[0].path))?;
            }
        }

        let (file, path, len) = match segments.last() {
            Some(seg) if valid_len >= FILE_HEADER_LEN as u64 => {
                let file = OpenOptions::new()
                    .write(true)
                    .open(&seg.path)
                    .map_err(io_err(&seg.path))?;
                let on_disk = file.metadata().map_err(io_err(&seg.path))?.len();
                if on_disk != valid_len {
                    file.set_len(valid_len).map_err(io_err(&seg.path))?;
                    file.sync_all().map_err(io_err(&seg.path))?;
                }
                (file, seg.path.clone(), valid_len)
            }
            last => {
                if let Some(seg) = last {
                    fs::remove_file(&seg.path).map_err(io_err(&seg.path))?;
                }
                let path = segment_path(dir, max_rv);
                let file = new_segment(&path, max_rv)?;
                sync_dir(dir).map_err(io_err(dir))?;
                (file, path, FILE_HEADER_LEN as u64)
            }
        };
        let mut file = file;
        {
            use std::io::Seek;
            file.seek(io::SeekFrom::End(0)).map_err(io_err(&path))?;
        }

        let state = Arc::new(State {
            dir: dir.to_path_buf(),
            options,
            active: Mutex::new(Active {
                file: Some(file),
                path,
                len,
                snapshot_len,
                compaction_requested: false,
                buf: Vec::with_capacity(4096),
            }),
            compacting: Mutex::new(()),
            wake: Notify::new(),
            lock: Mutex::new(Some(lock)),
        });
        let loaded = Loaded {
            objects: objects
                .into_iter()
                .map(|((gr, key), obj)| (gr, key, obj))
                .collect(),
            rv: max_rv,
            warnings,
        };
        Ok((Self { state }, loaded))
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.state.dir
    }

    /// The [`WriteLog`] to install in the store with [`Inner::set_log`].
    pub fn writer(&self) -> Box<dyn WriteLog> {
        Box::new(Writer {
            state: self.state.clone(),
        })
    }

    /// Bytes in the active log segment.
    pub fn log_len(&self) -> u64 {
        self.state.active.lock().len
    }

    /// Waits until the log asks for compaction.
    pub async fn compaction_wanted(&self) {
        self.state.wake.notified().await;
    }

    /// Writes a snapshot of `inner` at its current resourceVersion and drops
    /// the log segments it covers. Blocking; returns the snapshot's
    /// resourceVersion.
    pub fn snapshot(&self, inner: &Mutex<Inner>) -> Result<u64, PersistError> {
        let state = &self.state;
        let _compacting = state.compacting.lock();
        let dir = &state.dir;
        let (rv, tables, new_path) = {
            let inner = inner.lock();
            let rv = inner.current_rv();
            let tables: Vec<_> = inner
                .table_names()
                .into_iter()
                .filter_map(|gr| inner.snapshot(&gr).map(|(_, objects)| (gr, objects)))
                .collect();
            // Later writes go to a new segment; the snapshot covers the rest.
            let mut active = state.active.lock();
            if active.file.is_none() {
                return Err(PersistError::Io {
                    path: active.path.clone(),
                    source: io::Error::other("the write log is closed"),
                });
            }
            let new_path = segment_path(dir, rv);
            if new_path != active.path {
                let file = new_segment(&new_path, rv)?;
                if state.options.durability == Durability::Machine {
                    sync_dir(dir).map_err(io_err(dir))?;
                }
                active.file = Some(file);
                active.path = new_path.clone();
                active.len = FILE_HEADER_LEN as u64;
            }
            (rv, tables, new_path)
        };

        let tmp = dir.join(SNAPSHOT_TMP);
        let mut out =
            io::BufWriter::with_capacity(1 << 20, File::create(&tmp).map_err(io_err(&tmp))?);
        let mut buf = Vec::with_capacity(8192);
        buf.extend_from_slice(&file_header(SNAPSHOT_MAGIC, rv));
        let mut count = 0u64;
        let mut written = 0u64;
        for (gr, objects) in &tables {
            for (key, obj) in objects {
                let obj_rv = obj["metadata"]["resourceVersion"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                encode_record(&mut buf, obj_rv, OP_PUT, gr, key, |b| {
                    serde_json::to_writer(b, &**obj).map_err(io::Error::other)
                })
                .map_err(io_err(&tmp))?;
                count += 1;
                if buf.len() >= 1 << 16 {
                    out.write_all(&buf).map_err(io_err(&tmp))?;
                    written += buf.len() as u64;
                    buf.clear();
                }
            }
        }
        let end_key = (String::new(), String::new());
        let end_gr = GroupResource::new("", "");
        encode_record(&mut buf, rv, OP_END, &end_gr, &end_key, |b| {
            b.extend_from_slice(&count.to_le_bytes());
            Ok(())
        })
        .map_err(io_err(&tmp))?;
        out.write_all(&buf).map_err(io_err(&tmp))?;
        written += buf.len() as u64;
        let file = out.into_inner().map_err(|e| io_err(&tmp)(e.into_error()))?;
        file.sync_all().map_err(io_err(&tmp))?;
        drop(file);
        let snap = dir.join(SNAPSHOT_FILE);
        fs::rename(&tmp, &snap).map_err(io_err(&snap))?;
        sync_dir(dir).map_err(io_err(dir))?;

        for seg in list_segments(dir)? {
            if seg.path != new_path && seg.base < rv {
                fs::remove_file(&seg.path).map_err(io_err(&seg.path))?;
            }
        }
        state.active.lock().snapshot_len = written;
        Ok(rv)
    }

    /// Stops writing: later appends fail, and the directory lock is released
    /// (waiting for a snapshot being written to finish).
    pub fn close(&self) {
        let _compacting = self.state.compacting.lock();
        self.state.active.lock().file = None;
        if let Some(lock) = self.state.lock.lock().take() {
            let _ = lock.unlock();
        }
    }
}

pub(super) fn new_segment(path: &Path, base: u64) -> Result<File, PersistError> {
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)
        .map_err(io_err(path))?;
    file.write_all(&file_header(LOG_MAGIC, base))
        .map_err(io_err(path))?;
    Ok(file)
}

pub(super) struct Writer {
    pub(super) state: Arc<State>,
}

impl WriteLog for Writer {
    fn append(&mut self, record: &WriteRecord<'_>) -> io::Result<()> {
        let state = &self.state;
        let mut guard = state.active.lock();
        let active = &mut *guard;
        let Some(file) = active.file.as_mut() else {
            return Err(io::Error::other("the write log is closed"));
        };
        active.buf.clear();
        encode_write(&mut active.buf, record)?;
        if let Err(e) = file.write_all(&active.buf) {
            // Cut a partial record off so the log stays readable, and stop:
            // later records must not follow a gap.
            let _ = file.set_len(active.len);
            active.file = None;
            return Err(e);
        }
        if state.options.durability == Durability::Machine
            && let Err(e) = file.sync_data()
        {
            active.file = None;
            return Err(e);
        }
        active.len += active.buf.len() as u64;
        if active.buf.capacity() > 1 << 20 {
            active.buf = Vec::with_capacity(4096);
        }
        if !active.compaction_requested
            && active.len >= state.options.compact_after_bytes.max(active.snapshot_len)
        {
            active.compaction_requested = true;
            state.wake.notify_one();
        }
        Ok(())
    }
}

/// Runs snapshots when the log asks for them (until aborted).
pub async fn run_compactor(persistence: Persistence, shared: Arc<crate::state::Shared>) {
    loop {
        persistence.compaction_wanted().await;
        let p = persistence.clone();
        let s = shared.clone();
        let result = tokio::task::spawn_blocking(move || p.snapshot(&s.inner)).await;
        persistence.state.active.lock().compaction_requested = false;
        match result {
            Ok(Ok(rv)) => tracing::debug!(rv, "wrote a snapshot"),
            Ok(Err(e)) => {
                tracing::warn!("snapshot failed: {e}");
                // Do not retry in a tight loop on a failing disk.
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            }
            Err(e) => tracing::warn!("snapshot task failed: {e}"),
        }
    }
}
