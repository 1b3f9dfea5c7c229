//! Durable storage: an append-only write log plus snapshots in a data
//! directory, so that a server started again on the same directory serves
//! every acknowledged write with the same uids and resourceVersions.
//!
//! # Durability
//!
//! The store hands every committed write to [`WriteLog::append`](crate::store::WriteLog::append) under its
//! lock, before the write becomes visible to any reader or watcher. The
//! record is encoded into one buffer and handed to the kernel with a single
//! `write(2)`: once that returns, a crash or `kill -9` of the process loses
//! nothing. [`Durability::Process`] (the default) stops there;
//! [`Durability::Machine`] also calls `fdatasync(2)` before returning, which
//! additionally survives a crash of the machine but costs a disk flush per
//! write, serialised under the store lock. Measured with the bench crate's
//! `apiserver-throughput` (10 writers, 10 watchers, ~1.4 KiB objects, on a
//! 2-core VM): `Process` adds 5–20% CPU per write over memory only
//! (encoding the record and one `write(2)`; the upper end includes a
//! snapshot during the run), while `Machine` caps the server at about 260
//! writes/s (a ~4 ms flush per write, one at a time). This server is a development and
//! test bed, where surviving its own crash is what matters, hence the
//! default.
//!
//! # On-disk format
//!
//! The directory holds:
//!
//! - `LOCK`: an empty file, exclusively locked by the running server;
//! - `snapshot`: the whole store at one resourceVersion (optional);
//! - `log-<base>`: log segments (`<base>` zero-padded to 20 digits), each
//!   holding writes with resourceVersions greater than `<base>`, in order;
//!   the one with the greatest base is the active one, appended to.
//!
//! Every file starts with a 24-byte header: an 8-byte magic (`MCAPILOG` for a
//! log segment, `MCAPISNP` for a snapshot), the format version (`u32`), a
//! resourceVersion (`u64`: the segment's base or the snapshot's position)
//! and a CRC-32 of those 20 bytes. All integers are little-endian.
//!
//! Records follow, each a 12-byte header and a payload:
//!
//! ```text
//! u32 payload length | u32 CRC-32 of the payload | u32 CRC-32 of the previous 8 bytes
//! payload: u64 resourceVersion | u8 op (1 put, 2 delete, 3 end of snapshot)
//!          | u16 len + group | u16 len + resource | u16 len + namespace | u16 len + name
//!          | the object as JSON (put) / nothing (delete) / u64 record count (end)
//! ```
//!
//! The CRC-32 (IEEE) of the length lets a damaged length be told from a
//! short file. A snapshot ends with an end record carrying the number of
//! objects; it is written to `snapshot.tmp`, synced, and renamed over
//! `snapshot`, so it is either whole or absent.
//!
//! # Recovery
//!
//! Loading reads the snapshot, then replays the segments in order, skipping
//! records the snapshot already holds (the first segment must start at or
//! before the snapshot's resourceVersion, or writes would be missing). A damaged record at the very end of
//! the active segment (a write cut short by a crash: a short header or
//! payload, a last record whose checksum fails, or a zero-filled tail) is
//! reported with a warning and cut off. Any other damage (in the middle of
//! a segment, in an older segment, in the snapshot, resourceVersions going
//! backwards) is an error naming the file and byte offset: data is never
//! silently dropped from the middle of the history.
//!
//! # Compaction
//!
//! Once the active segment holds [`Options::compact_after_bytes`] (and at
//! least as many bytes as the last snapshot, so the cost stays proportional
//! to the writes), a background task takes a consistent copy of the store
//! (cheap: the tables share structure), starts a new segment under the store
//! lock, writes the snapshot outside it, and then deletes the segments the
//! snapshot covers.
//!
//! # Files
//!
//! `format` encodes and decodes the files (with the checksum of `crc`),
//! `directory` keeps the open data directory (appending, compacting), and
//! `restore` puts what was loaded into a fresh store.

use std::io;
use std::path::{Path, PathBuf};

mod crc;
mod directory;
mod format;
mod restore;

pub use crc::crc32;
pub use directory::{Persistence, run_compactor};
pub use format::Loaded;
pub use restore::restore;

/// Magic of a log segment.
pub const LOG_MAGIC: &[u8; 8] = b"MCAPILOG";
/// Magic of a snapshot.
pub const SNAPSHOT_MAGIC: &[u8; 8] = b"MCAPISNP";
/// The format version written and accepted.
pub const FORMAT_VERSION: u32 = 1;
/// Bytes in a file header.
pub const FILE_HEADER_LEN: usize = 24;
/// Bytes in a record header.
pub const RECORD_HEADER_LEN: usize = 12;
/// Largest payload accepted (objects are limited to 3 MiB by the HTTP layer).
pub(crate) const MAX_PAYLOAD: u32 = 1 << 30;

pub(crate) const OP_PUT: u8 = 1;
pub(crate) const OP_DELETE: u8 = 2;
pub(crate) const OP_END: u8 = 3;

pub(crate) const LOCK_FILE: &str = "LOCK";
pub(crate) const SNAPSHOT_FILE: &str = "snapshot";
pub(crate) const SNAPSHOT_TMP: &str = "snapshot.tmp";
pub(crate) const SEGMENT_PREFIX: &str = "log-";

/// How far an acknowledged write is guaranteed to survive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// The record is in the kernel (`write(2)` returned) before the write is
    /// visible: survives the process crashing or being killed.
    #[default]
    Process,
    /// The record is also on disk (`fdatasync(2)`): survives a machine crash.
    Machine,
}

/// Persistence settings.
#[derive(Clone, Debug)]
pub struct Options {
    /// How far an acknowledged write is guaranteed to survive.
    pub durability: Durability,
    /// Snapshot when the active log segment reaches this many bytes (and at
    /// least the size of the last snapshot).
    pub compact_after_bytes: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            durability: Durability::Process,
            compact_after_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Errors loading or writing the data directory.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("{}: {source}", path.display())]
    /// A file or directory cannot be read or written.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    #[error("{}: corrupt at byte offset {offset}: {reason}", path.display())]
    /// A file is damaged other than by a torn final write.
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Where the damage starts.
        offset: u64,
        /// What is wrong there.
        reason: String,
    },
    #[error("{}: the data directory is in use by another server", path.display())]
    /// Another server holds the lock file.
    Locked {
        /// The lock file.
        path: PathBuf,
    },
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> PersistError + '_ {
    move |source| PersistError::Io {
        path: path.to_path_buf(),
        source,
    }
}
