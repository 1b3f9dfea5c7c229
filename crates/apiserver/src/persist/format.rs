//! The files of the data directory, byte by byte: file headers, records,
//! reading a snapshot and replaying log segments, with damage classified as
//! a torn tail (cut off) or corruption (an error naming file and offset).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::registry::GroupResource;
use crate::store::{Key, WriteRecord};

use super::*;

pub(super) fn file_header(magic: &[u8; 8], rv: u64) -> [u8; FILE_HEADER_LEN] {
    let mut h = [0u8; FILE_HEADER_LEN];
    h[..8].copy_from_slice(magic);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[12..20].copy_from_slice(&rv.to_le_bytes());
    let crc = crc32(&h[..20]);
    h[20..24].copy_from_slice(&crc.to_le_bytes());
    h
}

pub(super) fn put_str(buf: &mut Vec<u8>, s: &str) -> io::Result<()> {
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
pub(super) fn encode_record(
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

pub(super) fn encode_write(buf: &mut Vec<u8>, r: &WriteRecord<'_>) -> io::Result<()> {
    match r.object {
        Some(obj) => encode_record(buf, r.rv, OP_PUT, r.gr, r.key, |b| {
            serde_json::to_writer(b, obj).map_err(io::Error::other)
        }),
        None => encode_record(buf, r.rv, OP_DELETE, r.gr, r.key, |_| Ok(())),
    }
}

/// One decoded record.
#[derive(Debug)]
pub(super) struct Decoded<'a> {
    pub(super) rv: u64,
    pub(super) op: u8,
    pub(super) gr: GroupResource,
    pub(super) key: Key,
    pub(super) body: &'a [u8],
}

/// What scanning a file found at one offset.
pub(super) enum Scan<'a> {
    Record(Decoded<'a>, usize),
    End,
    /// A damaged record that can only be a write cut short (at the end).
    Torn(String),
    /// Damage that is not at the end of the file.
    Corrupt(String),
}

pub(super) fn decode_payload(p: &[u8]) -> Option<Decoded<'_>> {
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

pub(super) fn scan_at(data: &[u8], off: usize) -> Scan<'_> {
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

pub(super) fn check_file_header(
    path: &Path,
    data: &[u8],
    magic: &[u8; 8],
) -> Result<u64, PersistError> {
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

pub(super) fn parse_object(path: &Path, offset: usize, body: &[u8]) -> Result<Value, PersistError> {
    serde_json::from_slice(body).map_err(|e| PersistError::Corrupt {
        path: path.to_path_buf(),
        offset: offset as u64,
        reason: format!("object is not valid JSON: {e}"),
    })
}

pub(super) type Objects = BTreeMap<(GroupResource, Key), Value>;

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

pub(super) fn read_snapshot(path: &Path, objects: &mut Objects) -> Result<u64, PersistError> {
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
pub(super) struct Segment {
    pub(super) base: u64,
    pub(super) path: PathBuf,
}

pub(super) fn list_segments(dir: &Path) -> Result<Vec<Segment>, PersistError> {
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

pub(super) fn segment_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{SEGMENT_PREFIX}{base:020}"))
}

/// Replays one segment into `objects`; returns the length of its valid
/// prefix (shorter than the file only for a torn tail of the last segment).
pub(super) fn replay_segment(
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

pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

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
