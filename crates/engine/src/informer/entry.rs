//! One cached object: its compact JSON text and, packed into a single
//! allocation, the metadata that queries read without decoding the text.
//!
//! A cache of hundreds of thousands of objects pays for every allocation
//! per object: the allocator's header and rounding, and the pointers that
//! hold it. Keeping `resourceVersion`, `uid`, the controller's UID and the
//! labels as separate strings cost about a dozen allocations per object
//! (several hundred bytes beyond the text for a ConfigMap with two labels);
//! here they are one byte string, each field written as its length
//! (LEB128) followed by its bytes:
//!
//! ```text
//! [flags] rv uid [controller] (label-key label-value)*
//! ```
//!
//! `flags` bit 0 says whether the object has a controller. Labels keep the
//! order of the JSON object they came from (sorted by key).
//!
//! The text itself is kept as the informer's [`Codec`] encodes it.
//!
//! This module must not depend on the rest of the informer but the codec:
//! it turns a `Value` into an [`Entry`] and answers questions about one.

use std::sync::Arc;

use metacontroller_selectors::Labels;
use serde_json::Value;

use super::codec::Codec;
use crate::object;

const HAS_CONTROLLER: u8 = 1;

/// One cached object.
pub(super) struct Entry {
    /// The object as compact JSON, encoded by the informer's [`Codec`].
    pub(super) text: Arc<[u8]>,
    /// See the [module documentation](self).
    packed: Box<[u8]>,
}

impl Entry {
    pub(super) fn new(obj: &Value, codec: &Codec) -> Self {
        let controller = metacontroller_apply::owner::controller_uid(obj);
        let labels = metacontroller_selectors::object_labels(obj).and_then(Value::as_object);
        let mut packed = Vec::with_capacity(64);
        packed.push(if controller.is_some() {
            HAS_CONTROLLER
        } else {
            0
        });
        push_field(&mut packed, object::resource_version(obj));
        push_field(&mut packed, object::uid(obj));
        if let Some(uid) = controller {
            push_field(&mut packed, uid);
        }
        for (key, value) in labels.into_iter().flatten() {
            // Label values are strings; anything else can't match a selector.
            if let Some(value) = value.as_str() {
                push_field(&mut packed, key);
                push_field(&mut packed, value);
            }
        }
        Entry {
            // Serializing a `Value` cannot fail: its keys are strings.
            text: codec
                .encode(&serde_json::to_vec(obj).unwrap_or_default())
                .into(),
            packed: packed.into_boxed_slice(),
        }
    }

    /// `(resourceVersion, uid, controller UID, labels)`.
    fn fields(&self) -> (&str, &str, Option<&str>, CachedLabels<'_>) {
        let Some((&flags, mut rest)) = self.packed.split_first() else {
            return ("", "", None, CachedLabels(&[]));
        };
        let rv = take_field(&mut rest);
        let uid = take_field(&mut rest);
        let controller = (flags & HAS_CONTROLLER != 0).then(|| take_field(&mut rest));
        (rv, uid, controller, CachedLabels(rest))
    }

    /// `metadata.resourceVersion`.
    pub(super) fn resource_version(&self) -> &str {
        self.fields().0
    }

    /// The UID of the controller owner reference.
    pub(super) fn controller(&self) -> Option<&str> {
        self.fields().2
    }

    /// What a query sees of this object, cached under `key`.
    pub(super) fn meta<'a>(&'a self, key: &'a str) -> Meta<'a> {
        let (namespace, name) = object::split_key(key);
        let (_, uid, _, labels) = self.fields();
        Meta {
            namespace: namespace.unwrap_or_default(),
            name,
            uid,
            labels,
        }
    }
}

fn push_field(out: &mut Vec<u8>, field: &str) {
    let mut len = field.len();
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(field.as_bytes());
}

/// Reads one field written by [`push_field`] off the front of `rest`. The
/// bytes come from `push_field` alone, so they always hold whole fields of
/// valid UTF-8; a short or broken buffer reads as empty fields.
fn take_field<'a>(rest: &mut &'a [u8]) -> &'a str {
    let mut len = 0usize;
    let mut shift = 0;
    while let Some((&byte, tail)) = rest.split_first() {
        *rest = tail;
        len |= usize::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            break;
        }
    }
    let len = len.min(rest.len());
    let (field, tail) = rest.split_at(len);
    *rest = tail;
    std::str::from_utf8(field).unwrap_or_default()
}

/// The labels of a cached object (key, value pairs in key order), read
/// without decoding the object.
#[derive(Clone, Copy, Debug)]
pub struct CachedLabels<'a>(&'a [u8]);

impl<'a> CachedLabels<'a> {
    /// The `(key, value)` pairs.
    pub fn iter(self) -> impl Iterator<Item = (&'a str, &'a str)> {
        let mut rest = self.0;
        std::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            let key = take_field(&mut rest);
            let value = take_field(&mut rest);
            Some((key, value))
        })
    }
}

impl Labels for CachedLabels<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
}

/// What a query sees of a cached object without decoding it.
#[derive(Clone, Copy, Debug)]
pub struct Meta<'a> {
    /// `metadata.namespace` (`""` for cluster-scoped objects).
    pub namespace: &'a str,
    /// `metadata.name`.
    pub name: &'a str,
    /// `metadata.uid`.
    pub uid: &'a str,
    /// `metadata.labels`.
    pub labels: CachedLabels<'a>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_read_back_as_written() {
        let long = "v".repeat(300);
        let cases = [
            (
                json!({"metadata": {"resourceVersion": "42", "uid": "u-1",
                    "labels": {"a": "1", "b": "", "c": long},
                    "ownerReferences": [{"uid": "p-1", "controller": true}]}}),
                (
                    "42",
                    "u-1",
                    Some("p-1"),
                    vec![("a", "1"), ("b", ""), ("c", long.as_str())],
                ),
            ),
            (
                json!({"metadata": {"name": "bare"}}),
                ("", "", None, vec![]),
            ),
            (
                // An owner that is not the controller, a non-string label.
                json!({"metadata": {"uid": "u-2", "labels": {"n": 5, "x": "y"},
                    "ownerReferences": [{"uid": "p-2"}]}}),
                ("", "u-2", None, vec![("x", "y")]),
            ),
            (
                // A controller with an empty UID is still a controller.
                json!({"metadata": {"ownerReferences": [{"uid": "", "controller": true}]}}),
                ("", "", Some(""), vec![]),
            ),
        ];
        let codec = Codec::default();
        for (obj, (rv, uid, controller, labels)) in cases {
            let entry = Entry::new(&obj, &codec);
            assert_eq!(entry.resource_version(), rv, "{obj}");
            assert_eq!(entry.controller(), controller, "{obj}");
            let meta = entry.meta("ns/name");
            assert_eq!(meta.labels.iter().collect::<Vec<_>>(), labels, "{obj}");
            assert_eq!((meta.namespace, meta.name, meta.uid), ("ns", "name", uid));
            for (k, v) in &labels {
                assert_eq!(meta.labels.get(k), Some(*v));
            }
            assert_eq!(meta.labels.get("missing"), None);
            assert_eq!(
                serde_json::from_slice::<Value>(&codec.decode(&entry.text).unwrap()).unwrap(),
                obj,
                "the text decodes to the object"
            );
        }
    }

    #[test]
    fn lengths_use_as_many_bytes_as_they_need() {
        for len in [0, 1, 127, 128, 300, 16_384, 70_000] {
            let field = "x".repeat(len);
            let mut buf = Vec::new();
            push_field(&mut buf, &field);
            push_field(&mut buf, "next");
            let mut rest = &buf[..];
            assert_eq!(take_field(&mut rest), field);
            assert_eq!(take_field(&mut rest), "next");
            assert!(rest.is_empty());
        }
    }

    #[test]
    fn a_cut_buffer_reads_as_empty_fields() {
        let mut rest: &[u8] = &[0x85];
        assert_eq!(take_field(&mut rest), "");
        let mut rest: &[u8] = &[5, b'a', b'b'];
        assert_eq!(take_field(&mut rest), "ab");
    }
}
