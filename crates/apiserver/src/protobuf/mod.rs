//! Request bodies in Kubernetes' protobuf serialization
//! (`application/vnd.kubernetes.protobuf`), decoded into the JSON the same
//! object has on the wire as `application/json`.
//!
//! client-go typed clients send protobuf for built-in types; kubectl 1.32 and
//! later do so for every typed generator (`kubectl create deployment`,
//! `create secret`, `create token`, `autoscale`, `auth can-i`, `debug node`,
//! ...). The server stores schemaless JSON, so such a body is translated
//! here, once, before anything else sees it.
//!
//! The envelope is the 4-byte magic `k8s\0` followed by a `runtime.Unknown`
//! message: `typeMeta` (1: `apiVersion` 1, `kind` 2), `raw` (2: the object's
//! own message), `contentEncoding` (3) and `contentType` (4). The object's
//! message is read with the tables of [`tables`], which give for each message
//! the field numbers of `k8s.io/api` and the JSON names and Go `omitempty`
//! rules of the corresponding Go structs, so that the JSON produced is the
//! JSON that `encoding/json` would have produced from the same Go value:
//!
//! - gogo-protobuf writes every non-pointer field, zero or not, so
//!   `omitempty` is applied here (zero scalars, empty lists and maps);
//! - a struct is never omitted (`"status": {}`, `"resources": {}`) and a zero
//!   `metav1.Time` is `null` (`"creationTimestamp": null`);
//! - an absent pointer, list or map without `omitempty` is `null`;
//! - embedded structs tagged `json:",inline"` are merged into their parent.
//!
//! Field numbers absent from a table are skipped (a newer client may know
//! fields this table does not); a kind without a table is an error.
//!
//! The module is laid out as the decoding goes: [`wire`] reads (and, for the
//! documents the server sends, writes) the protobuf wire format, [`tables`]
//! holds what each Kubernetes message looks like, and [`decode`] turns a
//! message into JSON with them.
//!
//! # Why the tables are hand-written
//!
//! Only request bodies arrive in protobuf: every response is JSON (clients
//! that prefer protobuf also accept JSON), tables are JSON, and the one
//! protobuf document the server sends is OpenAPI v2 (see `openapi::gnostic`).
//! Generated bindings were measured against this module: `k8s-pb` 0.9.0
//! (prost 0.14, from the kube-rs project, whose README calls it a work in
//! progress) is 39,227 lines of generated Rust with no feature gates; on a
//! loaded 2-core machine a clean build of it took 86 s in debug (1.1 GB peak
//! memory, an 81 MB rlib) and 126 s in release, where this module is about
//! 1,100 lines of Rust plus 500 lines of tables for 256 messages. Its types
//! have no JSON form, yet the server stores the JSON Go's `encoding/json`
//! writes (`omitempty`, `null` for nil pointers and zero times, inline
//! structs, quantities, int-or-strings): each message would still need its
//! JSON written by hand, which is what the tables describe in one line each.
//! Generated types would add the build time and remove none of the
//! Kubernetes-specific part, so the tables stay.

use serde_json::Value;

use decode::decode_message;
use wire::{Reader, Wire, lossy};

mod decode;
mod tables;
#[cfg(test)]
mod tests;
pub(crate) mod wire;

/// The prefix of every protobuf-encoded Kubernetes object.
const MAGIC: &[u8] = b"k8s\0";

/// Messages nest at most this deep (far more than the tables ever nest).
const MAX_DEPTH: usize = 64;

/// Why a protobuf body could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtobufError {
    #[error(
        "the protobuf body does not start with the Kubernetes prefix \"k8s\\x00\"; send the object as application/json"
    )]
    MissingMagic,
    #[error("the protobuf envelope (runtime.Unknown) is malformed: {0}")]
    Envelope(String),
    #[error(
        "protobuf request bodies of kind {kind:?} (apiVersion {api_version:?}) are not supported by this server; send the object as application/json"
    )]
    UnknownKind { api_version: String, kind: String },
    #[error("cannot decode the protobuf body of {api_version}, Kind={kind}: at {path}: {detail}")]
    Malformed {
        api_version: String,
        kind: String,
        /// JSON path of the field that failed (`spec.template.spec.containers[0]`).
        path: String,
        detail: String,
    },
    #[error("the protobuf schema tables are invalid: {0}")]
    Schema(String),
}

/// Decodes a protobuf request body (`k8s\0` + `runtime.Unknown`) into the
/// JSON object it stands for, with `apiVersion` and `kind` set.
pub fn decode_request(body: &[u8]) -> Result<Value, ProtobufError> {
    let rest = body
        .strip_prefix(MAGIC)
        .ok_or(ProtobufError::MissingMagic)?;
    let envelope = Envelope::parse(rest)?;
    if !envelope.content_encoding.is_empty() {
        return Err(ProtobufError::Envelope(format!(
            "content encoding {:?} is not supported",
            envelope.content_encoding
        )));
    }
    if !envelope.content_type.is_empty() && !envelope.content_type.contains("protobuf") {
        return Err(ProtobufError::Envelope(format!(
            "the embedded object has content type {:?}, expected protobuf",
            envelope.content_type
        )));
    }
    if envelope.kind.is_empty() || envelope.api_version.is_empty() {
        return Err(ProtobufError::Envelope(
            "typeMeta names no apiVersion and kind".to_string(),
        ));
    }
    let schema = tables::schema()?;
    let Some(index) = schema.kind(&envelope.api_version, &envelope.kind) else {
        return Err(ProtobufError::UnknownKind {
            api_version: envelope.api_version,
            kind: envelope.kind,
        });
    };
    let mut object = decode_message(schema, index, envelope.raw, 0).map_err(|fail| {
        ProtobufError::Malformed {
            api_version: envelope.api_version.clone(),
            kind: envelope.kind.clone(),
            path: fail.path(),
            detail: fail.detail,
        }
    })?;
    object.insert(
        "apiVersion".to_string(),
        Value::String(envelope.api_version),
    );
    object.insert("kind".to_string(), Value::String(envelope.kind));
    Ok(Value::Object(object))
}

/// The `runtime.Unknown` envelope.
struct Envelope<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
    content_encoding: String,
    content_type: String,
}

impl<'a> Envelope<'a> {
    fn parse(buf: &'a [u8]) -> Result<Self, ProtobufError> {
        let bad = ProtobufError::Envelope;
        let mut env = Envelope {
            api_version: String::new(),
            kind: String::new(),
            raw: &[],
            content_encoding: String::new(),
            content_type: String::new(),
        };
        let mut reader = Reader::new(buf);
        while let Some((number, value)) = reader.next_field().map_err(bad)? {
            let bytes = match value {
                Wire::Bytes(b) => b,
                other => {
                    if (1..=4).contains(&number) {
                        return Err(bad(format!(
                            "field {number} is {}, expected a length-delimited value",
                            other.describe()
                        )));
                    }
                    continue;
                }
            };
            match number {
                1 => {
                    let mut tm = Reader::new(bytes);
                    while let Some((n, v)) = tm.next_field().map_err(bad)? {
                        match (n, v) {
                            (1, Wire::Bytes(s)) => env.api_version = lossy(s),
                            (2, Wire::Bytes(s)) => env.kind = lossy(s),
                            _ => {}
                        }
                    }
                }
                2 => env.raw = bytes,
                3 => env.content_encoding = lossy(bytes),
                4 => env.content_type = lossy(bytes),
                _ => {}
            }
        }
        Ok(env)
    }
}
