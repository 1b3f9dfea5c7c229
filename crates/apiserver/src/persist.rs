//! Durable storage: an append-only write log plus snapshots in a data
//! directory, so that a server started again on the same directory serves
//! every acknowledged write with the same uids and resourceVersions.
//!
//! # Durability
//!
//! The store hands every committed write to [`WriteLog::append`] under its
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

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::{Notify, mpsc};

use crate::registry::GroupResource;
use crate::store::{
    Background, FOREGROUND_FINALIZER, Inner, Key, ORPHAN_FINALIZER, ObjRef, WriteLog, WriteRecord,
    finalizers, is_deleting, owner_uids,
};

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
const MAX_PAYLOAD: u32 = 1 << 30;

const OP_PUT: u8 = 1;
const OP_DELETE: u8 = 2;
const OP_END: u8 = 3;

const LOCK_FILE: &str = "LOCK";
const SNAPSHOT_FILE: &str = "snapshot";
const SNAPSHOT_TMP: &str = "snapshot.tmp";
const SEGMENT_PREFIX: &str = "log-";

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
    Io { path: PathBuf, source: io::Error },
    #[error("{}: corrupt at byte offset {offset}: {reason}", path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("{}: the data directory is in use by another server", path.display())]
    Locked { path: PathBuf },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> PersistError + '_ {
    move |source| PersistError::Io {
        path: path.to_path_buf(),
        source,
    }
}

// ---------------------------------------------------------------------------
// CRC-32 (IEEE 802.3, reflected, as zlib and PNG compute it), slicing by 8.

const fn crc_tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut s = 1;
        while s < 8 {
            let prev = t[s - 1][i];
            t[s][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            s += 1;
        }
        i += 1;
    }
    t
}

static CRC_TABLES: [[u32; 256]; 8] = crc_tables();

/// CRC-32 (IEEE) of `data`.
pub fn crc32(data: &[u8]) -> u32 {
    let t = &CRC_TABLES;
    let mut crc = !0u32;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let lo = u32::from_le_bytes([c[0], c[1], c[2], c[3]]) ^ crc;
        let hi = u32::from_le_bytes([c[4], c[5], c[6], c[7]]);
        crc = t[7][(lo & 0xff) as usize]
            ^ t[6][((lo >> 8) & 0xff) as usize]
            ^ t[5][((lo >> 16) & 0xff) as usize]
            ^ t[4][(lo >> 24) as usize]
            ^ t[3][(hi & 0xff) as usize]
            ^ t[2][((hi >> 8) & 0xff) as usize]
            ^ t[1][((hi >> 16) & 0xff) as usize]
            ^ t[0][(hi >> 24) as usize];
    }
    for &b in chunks.remainder() {
        crc = t[0][((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

// ---------------------------------------------------------------------------
// Encoding.

fn file_header(magic: &[u8; 8], rv: u64) -> [u8; FILE_HEADER_LEN] {
    let mut h = [0u8; FILE_HEADER_LEN];
    h[..8].copy_from_slice(magic);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[12..20].copy_from_slice(&rv.to_le_bytes());
    let crc = crc32(&h[..20]);
    h[20..24].copy_from_slice(&crc.to_le_bytes());
    h
}

fn put_str(buf: &mut Vec<u8>, s: &str) -> io::Result<()> {
    let len = u16::try_from(s.len()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("name too long to persist: {} bytes", s.len()),
        )
    })?;
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
    Ok(())
}

/// Appends one record (header and payload) to `buf`.
fn encode_record(
    buf: &mut Vec<u8>,
    rv: u64,
    op: u8,
    gr: &GroupResource,
    key: &Key,
    body: impl FnOnce(&mut Vec<u8>) -> io::Result<()>,
) -> io::Result<()> {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; RECORD_HEADER_LEN]);
    buf.extend_from_slice(&rv.to_le_bytes());
    buf.push(op);
    put_str(buf, &gr.group)?;
    put_str(buf, &gr.resource)?;
    put_str(buf, &key.0)?;
    put_str(buf, &key.1)?;
    body(buf)?;
    let payload_len = buf.len() - start - RECORD_HEADER_LEN;
    let len = u32::try_from(payload_len)
        .ok()
        .filter(|l| *l <= MAX_PAYLOAD)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "record too large"))?;
    let crc = crc32(&buf[start + RECORD_HEADER_LEN..]);
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    let hcrc = crc32(&buf[start..start + 8]);
    buf[start + 8..start + 12].copy_from_slice(&hcrc.to_le_bytes());
    Ok(())
}

fn encode_write(buf: &mut Vec<u8>, r: &WriteRecord<'_>) -> io::Result<()> {
    match r.object {
        Some(obj) => encode_record(buf, r.rv, OP_PUT, r.gr, r.key, |b| {
            serde_json::to_writer(b, obj).map_err(io::Error::other)
        }),
        None => encode_record(buf, r.rv, OP_DELETE, r.gr, r.key, |_| Ok(())),
    }
}

// ---------------------------------------------------------------------------
// Decoding.

/// One decoded record.
#[derive(Debug)]
struct Decoded<'a> {
    rv: u64,
    op: u8,
    gr: GroupResource,
    key: Key,
    body: &'a [u8],
}

/// What scanning a file found at one offset.
enum Scan<'a> {
    Record(Decoded<'a>, usize),
    End,
    /// A damaged record that can only be a write cut short (at the end).
    Torn(String),
    /// Damage that is not at the end of the file.
    Corrupt(String),
}

fn decode_payload(p: &[u8]) -> Option<Decoded<'_>> {
    fn take<'a>(p: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if p.len() < n {
            return None;
        }
        let (a, b) = p.split_at(n);
        *p = b;
        Some(a)
    }
    fn string(p: &mut &[u8]) -> Option<String> {
        let len = u16::from_le_bytes(take(p, 2)?.try_into().ok()?) as usize;
        String::from_utf8(take(p, len)?.to_vec()).ok()
    }
    let mut p = p;
    let rv = u64::from_le_bytes(take(&mut p, 8)?.try_into().ok()?);
    let op = take(&mut p, 1)?[0];
    let group = string(&mut p)?;
    let resource = string(&mut p)?;
    let ns = string(&mut p)?;
    let name = string(&mut p)?;
    Some(Decoded {
        rv,
        op,
        gr: GroupResource { group, resource },
        key: (ns, name),
        body: p,
    })
}

fn scan_at(data: &[u8], off: usize) -> Scan<'_> {
    let rest = &data[off..];
    if rest.is_empty() {
        return Scan::End;
    }
    if rest.len() < RECORD_HEADER_LEN {
        return Scan::Torn(format!("a record header cut short ({} bytes)", rest.len()));
    }
    let len = u32::from_le_bytes(rest[0..4].try_into().unwrap());
    let crc = u32::from_le_bytes(rest[4..8].try_into().unwrap());
    let hcrc = u32::from_le_bytes(rest[8..12].try_into().unwrap());
    if crc32(&rest[..8]) != hcrc {
        if rest.iter().all(|b| *b == 0) {
            return Scan::Torn(format!("a zero-filled tail of {} bytes", rest.len()));
        }
        return Scan::Corrupt("record header checksum mismatch".into());
    }
    if len > MAX_PAYLOAD {
        return Scan::Corrupt(format!("record length {len} out of range"));
    }
    let total = RECORD_HEADER_LEN + len as usize;
    if rest.len() < total {
        return Scan::Torn(format!(
            "a record cut short ({} of {total} bytes)",
            rest.len()
        ));
    }
    let payload = &rest[RECORD_HEADER_LEN..total];
    if crc32(payload) != crc {
        if rest.len() == total {
            return Scan::Torn("the last record's checksum does not match".into());
        }
        return Scan::Corrupt("record checksum mismatch".into());
    }
    match decode_payload(payload) {
        Some(d) if matches!(d.op, OP_PUT | OP_DELETE | OP_END) => Scan::Record(d, total),
        _ => Scan::Corrupt("undecodable record".into()),
    }
}

fn check_file_header(path: &Path, data: &[u8], magic: &[u8; 8]) -> Result<u64, PersistError> {
    let corrupt = |reason: &str| PersistError::Corrupt {
        path: path.to_path_buf(),
        offset: 0,
        reason: reason.to_string(),
    };
    if data.len() < FILE_HEADER_LEN {
        return Err(corrupt("file header cut short"));
    }
    let h = &data[..FILE_HEADER_LEN];
    if &h[..8] != magic {
        return Err(corrupt("wrong magic"));
    }
    if crc32(&h[..20]) != u32::from_le_bytes(h[20..24].try_into().unwrap()) {
        return Err(corrupt("file header checksum mismatch"));
    }
    let version = u32::from_le_bytes(h[8..12].try_into().unwrap());
    if version != FORMAT_VERSION {
        return Err(corrupt(&format!("unsupported format version {version}")));
    }
    Ok(u64::from_le_bytes(h[12..20].try_into().unwrap()))
}

fn parse_object(path: &Path, offset: usize, body: &[u8]) -> Result<Value, PersistError> {
    serde_json::from_slice(body).map_err(|e| PersistError::Corrupt {
        path: path.to_path_buf(),
        offset: offset as u64,
        reason: format!("object is not valid JSON: {e}"),
    })
}

type Objects = BTreeMap<(GroupResource, Key), Value>;

/// The state found in a data directory.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Every live object, as last written.
    pub objects: Vec<(GroupResource, Key, Value)>,
    /// The greatest resourceVersion written (objects and deletions).
    pub rv: u64,
    /// What recovery had to repair (a torn tail), for the log.
    pub warnings: Vec<String>,
}

fn read_snapshot(path: &Path, objects: &mut Objects) -> Result<u64, PersistError> {
    let data = fs::read(path).map_err(io_err(path))?;
    let rv = check_file_header(path, &data, SNAPSHOT_MAGIC)?;
    let mut off = FILE_HEADER_LEN;
    let mut count = 0u64;
    loop {
        let corrupt = |offset: usize, reason: String| PersistError::Corrupt {
            path: path.to_path_buf(),
            offset: offset as u64,
            reason,
        };
        match scan_at(&data, off) {
            Scan::Record(d, len) => {
                match d.op {
                    OP_PUT => {
                        let obj = parse_object(path, off, d.body)?;
                        objects.insert((d.gr, d.key), obj);
                        count += 1;
                    }
                    OP_END => {
                        let n = d.body.try_into().ok().map(u64::from_le_bytes);
                        if n != Some(count) {
                            return Err(corrupt(off, "object count does not match".into()));
                        }
                        if off + len != data.len() {
                            return Err(corrupt(off + len, "data after the end record".into()));
                        }
                        return Ok(rv);
                    }
                    _ => return Err(corrupt(off, "unexpected record in a snapshot".into())),
                }
                off += len;
            }
            Scan::End => return Err(corrupt(off, "snapshot has no end record".into())),
            Scan::Torn(r) | Scan::Corrupt(r) => return Err(corrupt(off, r)),
        }
    }
}

/// A log segment found on disk.
struct Segment {
    base: u64,
    path: PathBuf,
}

fn list_segments(dir: &Path) -> Result<Vec<Segment>, PersistError> {
    let mut segs = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(base) = name
            .strip_prefix(SEGMENT_PREFIX)
            .and_then(|b| b.parse::<u64>().ok())
        {
            segs.push(Segment {
                base,
                path: entry.path(),
            });
        }
    }
    segs.sort_by_key(|s| s.base);
    Ok(segs)
}

fn segment_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{SEGMENT_PREFIX}{base:020}"))
}

/// Replays one segment into `objects`; returns the length of its valid
/// prefix (shorter than the file only for a torn tail of the last segment).
fn replay_segment(
    seg: &Segment,
    last: bool,
    snapshot_rv: u64,
    last_seen: &mut u64,
    max_rv: &mut u64,
    objects: &mut Objects,
    warnings: &mut Vec<String>,
) -> Result<u64, PersistError> {
    let path = &seg.path;
    let data = fs::read(path).map_err(io_err(path))?;
    let corrupt = |offset: usize, reason: String| PersistError::Corrupt {
        path: path.clone(),
        offset: offset as u64,
        reason,
    };
    if last && data.len() < FILE_HEADER_LEN && data[..].starts_with(&LOG_MAGIC[..data.len().min(8)])
    {
        // Created, then cut short before its header was complete.
        warnings.push(format!(
            "{}: dropping a segment header cut short ({} bytes)",
            path.display(),
            data.len()
        ));
        return Ok(0);
    }
    check_file_header(path, &data, LOG_MAGIC)?;
    let mut off = FILE_HEADER_LEN;
    loop {
        match scan_at(&data, off) {
            Scan::Record(d, len) => {
                if d.rv <= *last_seen {
                    return Err(corrupt(
                        off,
                        format!(
                            "resourceVersion {} after {}: records out of order",
                            d.rv, last_seen
                        ),
                    ));
                }
                *last_seen = d.rv;
                if d.rv > snapshot_rv {
                    match d.op {
                        OP_PUT => {
                            let obj = parse_object(path, off, d.body)?;
                            objects.insert((d.gr, d.key), obj);
                        }
                        OP_DELETE => {
                            objects.remove(&(d.gr, d.key));
                        }
                        _ => return Err(corrupt(off, "unexpected record in a log".into())),
                    }
                    *max_rv = d.rv;
                }
                off += len;
            }
            Scan::End => return Ok(off as u64),
            Scan::Torn(reason) if last => {
                warnings.push(format!(
                    "{}: dropping a torn final record at byte offset {off}: {reason} ({} bytes)",
                    path.display(),
                    data.len() - off
                ));
                return Ok(off as u64);
            }
            Scan::Torn(reason) => {
                return Err(corrupt(
                    off,
                    format!("{reason}, in a segment followed by others"),
                ));
            }
            Scan::Corrupt(reason) => return Err(corrupt(off, reason)),
        }
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

// ---------------------------------------------------------------------------
// The open data directory.

struct Active {
    file: Option<File>,
    path: PathBuf,
    /// Bytes in the active segment.
    len: u64,
    /// Size of the last snapshot written or loaded.
    snapshot_len: u64,
    compaction_requested: bool,
    buf: Vec<u8>,
}

struct State {
    dir: PathBuf,
    options: Options,
    active: Mutex<Active>,
    /// Held while a snapshot is written, and by `close`.
    compacting: Mutex<()>,
    wake: Notify,
    lock: Mutex<Option<File>>,
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

fn new_segment(path: &Path, base: u64) -> Result<File, PersistError> {
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

struct Writer {
    state: Arc<State>,
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
pub async fn run_compactor(persistence: Persistence, shared: Arc<crate::Shared>) {
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

/// Puts loaded state into a fresh store: objects, the resourceVersion
/// counter, the resources CRDs define; history is compacted so that watches
/// from before the restart get 410 Gone, and background work that was
/// pending for the loaded objects (terminating namespaces and CRDs,
/// deletions waiting on dependents, dangling owner references) is queued
/// again.
pub fn restore(inner: &mut Inner, loaded: Loaded, background: &mpsc::UnboundedSender<Background>) {
    let restored: std::collections::BTreeSet<GroupResource> =
        loaded.objects.iter().map(|(gr, _, _)| gr.clone()).collect();
    for (gr, key, obj) in loaded.objects {
        inner.restore(&gr, key, obj);
    }
    inner.set_rv(loaded.rv);
    crate::crd::rebuild_resources(inner);
    for gr in restored {
        if inner.resources.storage(&gr).is_none() {
            tracing::warn!("dropping stored objects of {gr}: no resource serves them any more");
            inner.drop_table(&gr);
        }
    }
    let rv = inner.current_rv();
    inner.compact(rv);

    let mut work = Vec::new();
    for gr in inner.table_names() {
        for obj in inner.objects_in(&gr, None) {
            let meta = &obj["metadata"];
            let name = meta["name"].as_str().unwrap_or_default().to_string();
            let me = || ObjRef {
                gr: gr.clone(),
                namespace: meta["namespace"].as_str().unwrap_or_default().to_string(),
                name: name.clone(),
            };
            if is_deleting(&obj) {
                let f = finalizers(&obj);
                if f.contains(&ORPHAN_FINALIZER) || f.contains(&FOREGROUND_FINALIZER) {
                    work.push(Background::OwnerDeleting(me()));
                }
                if gr.group.is_empty() && gr.resource == "namespaces" {
                    work.push(Background::NamespaceDeleting(name.clone()));
                }
                if gr == crate::crd::crd_gr() {
                    work.push(Background::CrdDeleting(name.clone()));
                }
            }
            if owner_uids(&obj)
                .iter()
                .any(|u| inner.lookup_uid(u).is_none())
            {
                work.push(Background::CheckOwners(me()));
            }
        }
    }
    for w in work {
        let _ = background.send(w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        let long: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        // Slicing by 8 agrees with the bytewise definition.
        let mut c = !0u32;
        for &b in &long {
            c = CRC_TABLES[0][((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
        }
        assert_eq!(crc32(&long), !c);
    }

    #[test]
    fn records_round_trip_and_damage_is_classified() {
        let gr = GroupResource::new("apps", "deployments");
        let key = ("ns".to_string(), "web".to_string());
        let obj = serde_json::json!({"metadata": {"name": "web"}});
        let mut buf = Vec::new();
        encode_write(
            &mut buf,
            &WriteRecord {
                rv: 7,
                gr: &gr,
                key: &key,
                object: Some(&obj),
            },
        )
        .unwrap();
        let first = buf.len();
        encode_write(
            &mut buf,
            &WriteRecord {
                rv: 8,
                gr: &gr,
                key: &key,
                object: None,
            },
        )
        .unwrap();
        let Scan::Record(d, len) = scan_at(&buf, 0) else {
            panic!()
        };
        assert_eq!(
            (d.rv, d.op, &d.gr, &d.key, len),
            (7, OP_PUT, &gr, &key, first)
        );
        assert_eq!(serde_json::from_slice::<Value>(d.body).unwrap(), obj);
        let Scan::Record(d, _) = scan_at(&buf, first) else {
            panic!()
        };
        assert_eq!((d.rv, d.op, d.body.len()), (8, OP_DELETE, 0));

        // Cut anywhere inside the last record: torn.
        for cut in first + 1..buf.len() {
            assert!(
                matches!(scan_at(&buf[..cut], first), Scan::Torn(_)),
                "{cut}"
            );
        }
        // A flipped bit in the first record, with another after it: corrupt.
        for i in 0..first {
            let mut bad = buf.clone();
            bad[i] ^= 0x10;
            assert!(matches!(scan_at(&bad, 0), Scan::Corrupt(_)), "{i}");
        }
        // The same damage in the last record: torn.
        let mut bad = buf.clone();
        let n = bad.len();
        bad[n - 1] ^= 1;
        assert!(matches!(scan_at(&bad, first), Scan::Torn(_)));
        // A zero-filled tail: torn.
        let mut zeros = buf[..first].to_vec();
        zeros.extend_from_slice(&[0; 40]);
        assert!(matches!(scan_at(&zeros, first), Scan::Torn(_)));
    }
}
