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
//! message is read with the tables in [`SCHEMA`], which give for each message
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

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::OnceLock;

use base64::Engine;
use serde_json::{Map, Value};

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
    let schema = schema()?;
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

// ---------------------------------------------------------------------------
// Wire format

/// One field value as it is on the wire.
#[derive(Clone, Copy, Debug)]
enum Wire<'a> {
    Varint(u64),
    /// 8 bytes; no field in the tables has this encoding.
    Fixed64,
    Bytes(&'a [u8]),
    /// 4 bytes; no field in the tables has this encoding.
    Fixed32,
}

impl Wire<'_> {
    fn describe(&self) -> &'static str {
        match self {
            Wire::Varint(_) => "a varint",
            Wire::Fixed64 => "a fixed64",
            Wire::Bytes(_) => "a length-delimited value",
            Wire::Fixed32 => "a fixed32",
        }
    }
}

/// Reads the fields of one message, in order.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err("truncated varint".to_string());
            };
            self.pos += 1;
            if i == 9 && byte > 1 {
                return Err("varint overflows 64 bits".to_string());
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err("varint longer than 10 bytes".to_string())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.buf.len())
            .ok_or_else(|| {
                format!(
                    "truncated: {n} bytes announced, {} left",
                    self.buf.len() - self.pos
                )
            })?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// The next `(field number, value)`, or `None` at the end.
    fn next_field(&mut self) -> Result<Option<(u32, Wire<'a>)>, String> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = key >> 3;
        if number == 0 || number > (1 << 29) - 1 {
            return Err(format!("invalid field number {number}"));
        }
        let number = number as u32;
        let value = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Wire::Fixed64
            }
            2 => {
                let len = self.varint()?;
                let len = usize::try_from(len).map_err(|_| format!("length {len} too large"))?;
                Wire::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Wire::Fixed32
            }
            3 | 4 => {
                return Err(format!(
                    "field {number} uses the unsupported group encoding"
                ));
            }
            other => return Err(format!("field {number} has invalid wire type {other}")),
        };
        Ok(Some((number, value)))
    }
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

/// Go keeps invalid UTF-8 in strings and `encoding/json` replaces it with
/// U+FFFD; do the same.
fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// ---------------------------------------------------------------------------
// Schema tables

/// What a field holds (for maps: what the values are).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Base {
    String,
    Int32,
    Int64,
    Bool,
    /// `[]byte`: base64 in JSON.
    Bytes,
    /// `metav1.Time` (`seconds`, `nanos`): RFC 3339 in JSON, `null` when zero.
    Time,
    /// `resource.Quantity` (`string`).
    Quantity,
    /// `intstr.IntOrString` (`type`, `intVal`, `strVal`).
    IntOrString,
    /// `metav1.FieldsV1` (`Raw`): embedded JSON.
    FieldsV1,
    /// A message holding `repeated string items = 1` that is a plain list
    /// in JSON (`authentication/v1.ExtraValue`).
    StringList,
    /// Another message of the tables, by index.
    Message(usize),
}

impl Base {
    fn is_varint(self) -> bool {
        matches!(self, Base::Int32 | Base::Int64 | Base::Bool)
    }

    /// Go structs (and types with their own JSON marshalling built on one)
    /// are never left out by `omitempty`.
    fn is_struct(self) -> bool {
        matches!(
            self,
            Base::Time | Base::Quantity | Base::IntOrString | Base::FieldsV1 | Base::Message(_)
        )
    }
}

/// How many values a field holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Card {
    /// A Go value field: written by the encoder even when zero.
    Value,
    /// A Go pointer: absent means nil.
    Pointer,
    /// A Go slice (`repeated`).
    List,
    /// A Go `map[string]...` (`map<string, ...>`).
    Map,
}

#[derive(Clone, Debug)]
struct Field {
    number: u32,
    /// JSON name; empty for an inline (embedded) struct.
    json: &'static str,
    base: Base,
    card: Card,
    omitempty: bool,
    inline: bool,
}

#[derive(Clone, Debug)]
struct Message {
    /// `package.Name`, e.g. `core/v1.PodSpec`.
    name: String,
    fields: Vec<Field>,
}

struct Schema {
    messages: Vec<Message>,
    /// `(apiVersion, kind)` of the top-level objects.
    kinds: HashMap<(String, String), usize>,
}

impl Schema {
    fn kind(&self, api_version: &str, kind: &str) -> Option<usize> {
        self.kinds
            .get(&(api_version.to_string(), kind.to_string()))
            .copied()
    }
}

/// The `apiVersion`s whose objects are decoded, with the package of the
/// tables that hold their messages and the kinds accepted at the top level.
const KINDS: &[(&str, &str, &[&str])] = &[
    (
        "v1",
        "core/v1",
        &[
            "Namespace",
            "ConfigMap",
            "Secret",
            "ServiceAccount",
            "Service",
            "Pod",
            "ResourceQuota",
        ],
    ),
    ("apps/v1", "apps/v1", &["Deployment"]),
    ("batch/v1", "batch/v1", &["Job", "CronJob"]),
    (
        "rbac.authorization.k8s.io/v1",
        "rbac/v1",
        &["Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"],
    ),
    (
        "policy/v1",
        "policy/v1",
        &["PodDisruptionBudget", "Eviction"],
    ),
    ("scheduling.k8s.io/v1", "scheduling/v1", &["PriorityClass"]),
    ("networking.k8s.io/v1", "networking/v1", &["Ingress"]),
    (
        "authentication.k8s.io/v1",
        "authentication/v1",
        &["TokenRequest", "SelfSubjectReview"],
    ),
    (
        "authentication.k8s.io/v1beta1",
        "authentication/v1beta1",
        &["SelfSubjectReview"],
    ),
    (
        "authentication.k8s.io/v1alpha1",
        "authentication/v1alpha1",
        &["SelfSubjectReview"],
    ),
    (
        "authorization.k8s.io/v1",
        "authorization/v1",
        &["SelfSubjectAccessReview"],
    ),
    (
        "autoscaling/v1",
        "autoscaling/v1",
        &["HorizontalPodAutoscaler", "Scale"],
    ),
    (
        "autoscaling/v2",
        "autoscaling/v2",
        &["HorizontalPodAutoscaler"],
    ),
];

fn schema() -> Result<&'static Schema, ProtobufError> {
    static SCHEMA_TABLES: OnceLock<Result<Schema, String>> = OnceLock::new();
    SCHEMA_TABLES
        .get_or_init(|| parse_schema(SCHEMA))
        .as_ref()
        .map_err(|e| ProtobufError::Schema(e.clone()))
}

/// Parses [`SCHEMA`]: `package <name>` lines, then one entry per message,
/// `Name: <field>; <field>; ...`, continued on indented lines. A field is
/// `<number> <jsonName> <type>` where the type is `[]T` (list), `*T`
/// (pointer), `map<T>` (map with string keys) or `T`, followed by `?` for
/// `omitempty` and `^` for an inline (embedded) struct, whose JSON name is
/// `-`. `T` is a scalar (`string`, `int32`, `int64`, `bool`, `bytes`), a
/// special type (`time`, `quantity`, `intstr`, `fieldsv1`, `strlist`) or a
/// message, `Name` in the same package or `package.Name`.
fn parse_schema(text: &'static str) -> Result<Schema, String> {
    // Entries: (package, name, field text).
    let mut entries: Vec<(&'static str, &'static str, Vec<&'static str>)> = Vec::new();
    let mut package: Option<&'static str> = None;
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if let Some(p) = line.strip_prefix("package ") {
            package = Some(p.trim());
            continue;
        }
        if line.starts_with(char::is_whitespace) {
            let Some(entry) = entries.last_mut() else {
                return Err(format!("continuation line before any message: {line:?}"));
            };
            entry.2.push(line);
            continue;
        }
        let pkg = package.ok_or_else(|| format!("message before any package: {line:?}"))?;
        let (name, rest) = line
            .split_once(':')
            .ok_or_else(|| format!("expected `Name: fields`: {line:?}"))?;
        entries.push((pkg, name.trim(), vec![rest]));
    }

    let mut by_name = HashMap::new();
    for (i, (pkg, name, _)) in entries.iter().enumerate() {
        if by_name.insert(format!("{pkg}.{name}"), i).is_some() {
            return Err(format!("message {pkg}.{name} is defined twice"));
        }
    }

    let mut messages = Vec::with_capacity(entries.len());
    for (pkg, name, lines) in &entries {
        let full = format!("{pkg}.{name}");
        let mut fields: Vec<Field> = Vec::new();
        for spec in lines.iter().flat_map(|l| l.split(';')) {
            let spec = spec.trim();
            if spec.is_empty() {
                continue;
            }
            let field = parse_field(spec, pkg, &by_name).map_err(|e| format!("{full}: {e}"))?;
            if fields.iter().any(|f| f.number == field.number) {
                return Err(format!("{full}: field number {} repeats", field.number));
            }
            if !field.inline && fields.iter().any(|f| f.json == field.json) {
                return Err(format!("{full}: JSON name {} repeats", field.json));
            }
            fields.push(field);
        }
        messages.push(Message { name: full, fields });
    }

    let mut kinds = HashMap::new();
    for (api_version, pkg, names) in KINDS {
        for kind in *names {
            let index = *by_name
                .get(&format!("{pkg}.{kind}"))
                .ok_or_else(|| format!("kind {api_version} {kind} has no message {pkg}.{kind}"))?;
            kinds.insert((api_version.to_string(), kind.to_string()), index);
        }
    }
    Ok(Schema { messages, kinds })
}

fn parse_field(
    spec: &'static str,
    pkg: &str,
    by_name: &HashMap<String, usize>,
) -> Result<Field, String> {
    let mut parts = spec.split_whitespace();
    let (Some(number), Some(json), Some(ty), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("expected `<number> <json> <type>`: {spec:?}"));
    };
    let number: u32 = number
        .parse()
        .ok()
        .filter(|n| (1..(1 << 29)).contains(n))
        .ok_or_else(|| format!("bad field number in {spec:?}"))?;
    let mut ty = ty;
    let mut omitempty = false;
    let mut inline = false;
    loop {
        if let Some(t) = ty.strip_suffix('?') {
            omitempty = true;
            ty = t;
        } else if let Some(t) = ty.strip_suffix('^') {
            inline = true;
            ty = t;
        } else {
            break;
        }
    }
    let (card, base) = if let Some(t) = ty.strip_prefix("[]") {
        (Card::List, t)
    } else if let Some(t) = ty.strip_prefix('*') {
        (Card::Pointer, t)
    } else if let Some(t) = ty.strip_prefix("map<").and_then(|t| t.strip_suffix('>')) {
        (Card::Map, t)
    } else {
        (Card::Value, ty)
    };
    let base = match base {
        "string" => Base::String,
        "int32" => Base::Int32,
        "int64" => Base::Int64,
        "bool" => Base::Bool,
        "bytes" => Base::Bytes,
        "time" => Base::Time,
        "quantity" => Base::Quantity,
        "intstr" => Base::IntOrString,
        "fieldsv1" => Base::FieldsV1,
        "strlist" => Base::StringList,
        name => {
            let full = if name.contains('.') {
                name.to_string()
            } else {
                format!("{pkg}.{name}")
            };
            Base::Message(
                *by_name
                    .get(&full)
                    .ok_or_else(|| format!("unknown message {full} in {spec:?}"))?,
            )
        }
    };
    if inline {
        if card != Card::Value || !matches!(base, Base::Message(_)) || json != "-" {
            return Err(format!(
                "an inline field must be a plain message named `-`: {spec:?}"
            ));
        }
    } else if json == "-" {
        return Err(format!("only inline fields are named `-`: {spec:?}"));
    }
    Ok(Field {
        number,
        json: if inline { "" } else { json },
        base,
        card,
        omitempty,
        inline,
    })
}

// ---------------------------------------------------------------------------
// Decoding

/// A decoding failure below the top level, with the JSON path to it
/// (collected innermost first while unwinding).
#[derive(Debug)]
struct Fail {
    path: Vec<String>,
    detail: String,
}

impl Fail {
    fn new(detail: impl Into<String>) -> Self {
        Self {
            path: Vec::new(),
            detail: detail.into(),
        }
    }

    fn at(mut self, segment: impl Into<String>) -> Self {
        self.path.push(segment.into());
        self
    }

    fn path(&self) -> String {
        let mut out = String::new();
        for segment in self.path.iter().rev() {
            if !out.is_empty() && !segment.starts_with('[') {
                out.push('.');
            }
            out.push_str(segment);
        }
        if out.is_empty() {
            out.push_str("the object");
        }
        out
    }
}

fn decode_message(
    schema: &Schema,
    index: usize,
    bytes: &[u8],
    depth: usize,
) -> Result<Map<String, Value>, Fail> {
    let message = &schema.messages[index];
    if depth > MAX_DEPTH {
        return Err(Fail::new(format!(
            "{} is nested more than {MAX_DEPTH} levels deep",
            message.name
        )));
    }
    // Every occurrence of every known field, in wire order.
    let mut seen: Vec<Vec<Wire<'_>>> = vec![Vec::new(); message.fields.len()];
    let mut reader = Reader::new(bytes);
    while let Some((number, value)) = reader
        .next_field()
        .map_err(|e| Fail::new(format!("{} ({e})", message.name)))?
    {
        if let Some(i) = message.fields.iter().position(|f| f.number == number) {
            seen[i].push(value);
        }
    }

    let mut out = Map::new();
    for (field, values) in message.fields.iter().zip(seen) {
        let at = |fail: Fail| {
            if field.inline {
                fail
            } else {
                fail.at(field.json)
            }
        };
        match field.card {
            Card::List => {
                if values.is_empty() {
                    if !field.omitempty {
                        out.insert(field.json.to_string(), Value::Null);
                    }
                    continue;
                }
                let mut items = Vec::new();
                for value in values {
                    decode_list_item(schema, field, value, depth, &mut items).map_err(|f| {
                        let i = items.len();
                        at(f.at(format!("[{i}]")))
                    })?;
                }
                out.insert(field.json.to_string(), Value::Array(items));
            }
            Card::Map => {
                if values.is_empty() {
                    if !field.omitempty {
                        out.insert(field.json.to_string(), Value::Null);
                    }
                    continue;
                }
                let mut map = Map::new();
                for value in values {
                    let (k, v) = decode_map_entry(schema, field, value, depth).map_err(at)?;
                    map.insert(k, v);
                }
                out.insert(field.json.to_string(), Value::Object(map));
            }
            Card::Pointer => {
                if values.is_empty() {
                    if !field.omitempty {
                        out.insert(field.json.to_string(), Value::Null);
                    }
                    continue;
                }
                let value = decode_single(schema, field.base, &values, depth).map_err(at)?;
                out.insert(field.json.to_string(), value);
            }
            Card::Value if field.inline => {
                let Base::Message(sub) = field.base else {
                    unreachable!("checked when parsing the tables")
                };
                let payload = concat_payloads(&values).map_err(at)?;
                let inner = decode_message(schema, sub, &payload, depth + 1)?;
                for (k, v) in inner {
                    out.entry(k).or_insert(v);
                }
            }
            Card::Value => {
                let value = decode_single(schema, field.base, &values, depth).map_err(at)?;
                if field.omitempty && !field.base.is_struct() && is_zero(&value) {
                    continue;
                }
                out.insert(field.json.to_string(), value);
            }
        }
    }
    Ok(out)
}

/// Go's `omitempty` test for scalars, lists and maps.
fn is_zero(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_i64() == Some(0) || n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// The payloads of all occurrences of a message field, concatenated, which
/// protobuf defines as merging them (a single occurrence is borrowed).
fn concat_payloads<'a>(values: &[Wire<'a>]) -> Result<Cow<'a, [u8]>, Fail> {
    match values {
        [] => Ok(Cow::Borrowed(&[])),
        [Wire::Bytes(b)] => Ok(Cow::Borrowed(b)),
        _ => {
            let mut all = Vec::new();
            for value in values {
                match value {
                    Wire::Bytes(b) => all.extend_from_slice(b),
                    other => return Err(wrong_wire(other, "a length-delimited message")),
                }
            }
            Ok(Cow::Owned(all))
        }
    }
}

fn wrong_wire(value: &Wire<'_>, expected: &str) -> Fail {
    Fail::new(format!("found {}, expected {expected}", value.describe()))
}

/// The value of a non-list, non-map field from all its occurrences
/// (scalars: the last one wins; messages: merged), or its zero value.
fn decode_single(
    schema: &Schema,
    base: Base,
    values: &[Wire<'_>],
    depth: usize,
) -> Result<Value, Fail> {
    if base.is_struct() || base == Base::StringList {
        let payload = concat_payloads(values)?;
        return decode_struct(schema, base, &payload, depth);
    }
    match values.last() {
        Some(value) => decode_scalar(base, value),
        None => Ok(zero_scalar(base)),
    }
}

fn zero_scalar(base: Base) -> Value {
    match base {
        Base::String | Base::Bytes => Value::String(String::new()),
        Base::Int32 | Base::Int64 => Value::from(0),
        Base::Bool => Value::Bool(false),
        _ => Value::Null,
    }
}

fn decode_scalar(base: Base, value: &Wire<'_>) -> Result<Value, Fail> {
    match (base, value) {
        (Base::String, Wire::Bytes(b)) => Ok(Value::String(lossy(b))),
        (Base::Bytes, Wire::Bytes(b)) => Ok(Value::String(
            base64::engine::general_purpose::STANDARD.encode(b),
        )),
        // int32 is sign-extended to 64 bits on the wire.
        (Base::Int32, Wire::Varint(v)) => Ok(Value::from(*v as i64 as i32)),
        (Base::Int64, Wire::Varint(v)) => Ok(Value::from(*v as i64)),
        (Base::Bool, Wire::Varint(v)) => Ok(Value::Bool(*v != 0)),
        (Base::String | Base::Bytes, other) => Err(wrong_wire(other, "a length-delimited value")),
        (Base::Int32 | Base::Int64 | Base::Bool, other) => Err(wrong_wire(other, "a varint")),
        _ => Err(Fail::new("internal: not a scalar")),
    }
}

/// Messages and the special types built on messages.
fn decode_struct(schema: &Schema, base: Base, payload: &[u8], depth: usize) -> Result<Value, Fail> {
    match base {
        Base::Message(index) => Ok(Value::Object(decode_message(
            schema,
            index,
            payload,
            depth + 1,
        )?)),
        Base::Time => decode_time(payload),
        Base::Quantity => {
            let mut text = String::new();
            for_each_field(payload, "resource.Quantity", |n, v| {
                if n == 1 {
                    text = string_of(&v)?;
                }
                Ok(())
            })?;
            if text.is_empty() {
                text.push('0');
            }
            Ok(Value::String(text))
        }
        Base::IntOrString => {
            let (mut kind, mut int_val, mut str_val) = (0i64, 0i32, String::new());
            for_each_field(payload, "intstr.IntOrString", |n, v| {
                match n {
                    1 => kind = varint_of(&v)? as i64,
                    2 => int_val = varint_of(&v)? as i64 as i32,
                    3 => str_val = string_of(&v)?,
                    _ => {}
                }
                Ok(())
            })?;
            Ok(if kind == 1 {
                Value::String(str_val)
            } else {
                Value::from(int_val)
            })
        }
        Base::FieldsV1 => {
            let mut raw: &[u8] = &[];
            for_each_field(payload, "metav1.FieldsV1", |n, v| {
                if n == 1 {
                    match v {
                        Wire::Bytes(b) => raw = b,
                        other => return Err(wrong_wire(&other, "a length-delimited value")),
                    }
                }
                Ok(())
            })?;
            if raw.is_empty() {
                return Ok(Value::Null);
            }
            serde_json::from_slice(raw)
                .map_err(|e| Fail::new(format!("metav1.FieldsV1 does not hold JSON: {e}")))
        }
        Base::StringList => {
            let mut items = Vec::new();
            for_each_field(payload, "a string list", |n, v| {
                if n == 1 {
                    items.push(Value::String(string_of(&v)?));
                }
                Ok(())
            })?;
            Ok(Value::Array(items))
        }
        _ => Err(Fail::new("internal: not a message")),
    }
}

fn for_each_field<'a>(
    payload: &'a [u8],
    what: &str,
    mut f: impl FnMut(u32, Wire<'a>) -> Result<(), Fail>,
) -> Result<(), Fail> {
    let mut reader = Reader::new(payload);
    while let Some((number, value)) = reader
        .next_field()
        .map_err(|e| Fail::new(format!("{what} ({e})")))?
    {
        f(number, value)?;
    }
    Ok(())
}

fn string_of(value: &Wire<'_>) -> Result<String, Fail> {
    match value {
        Wire::Bytes(b) => Ok(lossy(b)),
        other => Err(wrong_wire(other, "a length-delimited value")),
    }
}

fn varint_of(value: &Wire<'_>) -> Result<u64, Fail> {
    match value {
        Wire::Varint(v) => Ok(*v),
        other => Err(wrong_wire(other, "a varint")),
    }
}

/// `metav1.Time`: no payload is the zero time, which is JSON `null`;
/// otherwise RFC 3339 in UTC with whole seconds, as `metav1.Time` marshals.
fn decode_time(payload: &[u8]) -> Result<Value, Fail> {
    if payload.is_empty() {
        return Ok(Value::Null);
    }
    let (mut seconds, mut nanos) = (0i64, 0i32);
    for_each_field(payload, "metav1.Time", |n, v| {
        match n {
            1 => seconds = varint_of(&v)? as i64,
            2 => nanos = varint_of(&v)? as i64 as i32,
            _ => {}
        }
        Ok(())
    })?;
    let ts = jiff::Timestamp::new(seconds, nanos)
        .map_err(|e| Fail::new(format!("metav1.Time out of range ({seconds}s): {e}")))?;
    Ok(Value::String(ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()))
}

/// One occurrence of a list field: a single element, or several when
/// numbers are packed into one length-delimited value.
fn decode_list_item(
    schema: &Schema,
    field: &Field,
    value: Wire<'_>,
    depth: usize,
    items: &mut Vec<Value>,
) -> Result<(), Fail> {
    match (field.base, value) {
        (base, Wire::Bytes(b)) if base.is_varint() => {
            let mut packed = Reader::new(b);
            while packed.pos < b.len() {
                let v = packed
                    .varint()
                    .map_err(|e| Fail::new(format!("packed list ({e})")))?;
                items.push(decode_scalar(base, &Wire::Varint(v))?);
            }
            Ok(())
        }
        (base, value) if base.is_struct() || base == Base::StringList => {
            let Wire::Bytes(b) = value else {
                return Err(wrong_wire(&value, "a length-delimited message"));
            };
            items.push(decode_struct(schema, base, b, depth)?);
            Ok(())
        }
        (base, value) => {
            items.push(decode_scalar(base, &value)?);
            Ok(())
        }
    }
}

/// One `map<string, V>` entry: a message with the key in field 1 and the
/// value in field 2 (either may be missing, meaning its zero value).
fn decode_map_entry(
    schema: &Schema,
    field: &Field,
    value: Wire<'_>,
    depth: usize,
) -> Result<(String, Value), Fail> {
    let Wire::Bytes(entry) = value else {
        return Err(wrong_wire(&value, "a length-delimited map entry"));
    };
    let mut key = String::new();
    let mut values = Vec::new();
    for_each_field(entry, "map entry", |n, v| {
        match n {
            1 => key = string_of(&v)?,
            2 => values.push(v),
            _ => {}
        }
        Ok(())
    })?;
    let decoded =
        decode_single(schema, field.base, &values, depth).map_err(|f| f.at(key.clone()))?;
    Ok((key, decoded))
}

// ---------------------------------------------------------------------------
// The tables (grammar: see `parse_schema`). Field numbers are those of the
// `k8s.io/api` and `k8s.io/apimachinery` protobuf definitions (up to
// Kubernetes 1.36, a superset of what kubectl 1.32 and 1.33 send); JSON
// names and `omitempty` are those of the Go structs' `json` tags.

const SCHEMA: &str = r"
package meta/v1
Condition: 1 type string; 2 status string; 3 observedGeneration int64?;
    4 lastTransitionTime time; 5 reason string; 6 message string
DeleteOptions: 1 gracePeriodSeconds *int64?; 2 preconditions *Preconditions?;
    3 orphanDependents *bool?; 4 propagationPolicy *string?; 5 dryRun []string?;
    6 ignoreStoreReadErrorWithClusterBreakingPotential *bool?
FieldSelectorRequirement: 1 key string; 2 operator string; 3 values []string?
LabelSelector: 1 matchLabels map<string>?; 2 matchExpressions []LabelSelectorRequirement?
LabelSelectorRequirement: 1 key string; 2 operator string; 3 values []string?
ManagedFieldsEntry: 1 manager string?; 2 operation string?; 3 apiVersion string?;
    4 time *time?; 6 fieldsType string?; 7 fieldsV1 *fieldsv1?; 8 subresource string?
ObjectMeta: 1 name string?; 2 generateName string?; 3 namespace string?; 4 selfLink string?;
    5 uid string?; 6 resourceVersion string?; 7 generation int64?;
    8 creationTimestamp time?; 9 deletionTimestamp *time?;
    10 deletionGracePeriodSeconds *int64?; 11 labels map<string>?;
    12 annotations map<string>?; 13 ownerReferences []OwnerReference?;
    14 finalizers []string?; 17 managedFields []ManagedFieldsEntry?
OwnerReference: 5 apiVersion string; 1 kind string; 3 name string; 4 uid string;
    6 controller *bool?; 7 blockOwnerDeletion *bool?
Preconditions: 1 uid *string?; 2 resourceVersion *string?
package core/v1
AWSElasticBlockStoreVolumeSource: 1 volumeID string; 2 fsType string?; 3 partition int32?;
    4 readOnly bool?
Affinity: 1 nodeAffinity *NodeAffinity?; 2 podAffinity *PodAffinity?;
    3 podAntiAffinity *PodAntiAffinity?
AppArmorProfile: 1 type string; 2 localhostProfile *string?
AzureDiskVolumeSource: 1 diskName string; 2 diskURI string; 3 cachingMode *string?;
    4 fsType *string?; 5 readOnly *bool?; 6 kind *string?
AzureFileVolumeSource: 1 secretName string; 2 shareName string; 3 readOnly bool?
CSIVolumeSource: 1 driver string; 2 readOnly *bool?; 3 fsType *string?;
    4 volumeAttributes map<string>?; 5 nodePublishSecretRef *LocalObjectReference?
Capabilities: 1 add []string?; 2 drop []string?
CephFSVolumeSource: 1 monitors []string; 2 path string?; 3 user string?;
    4 secretFile string?; 5 secretRef *LocalObjectReference?; 6 readOnly bool?
CinderVolumeSource: 1 volumeID string; 2 fsType string?; 3 readOnly bool?;
    4 secretRef *LocalObjectReference?
ClientIPConfig: 1 timeoutSeconds *int32?
ClusterTrustBundleProjection: 1 name *string?; 2 signerName *string?;
    3 labelSelector *meta/v1.LabelSelector?; 5 optional *bool?; 4 path string
ConfigMap: 1 metadata meta/v1.ObjectMeta?; 4 immutable *bool?; 2 data map<string>?;
    3 binaryData map<bytes>?
ConfigMapEnvSource: 1 - LocalObjectReference^; 2 optional *bool?
ConfigMapKeySelector: 1 - LocalObjectReference^; 2 key string; 3 optional *bool?
ConfigMapProjection: 1 - LocalObjectReference^; 2 items []KeyToPath?; 4 optional *bool?
ConfigMapVolumeSource: 1 - LocalObjectReference^; 2 items []KeyToPath?;
    3 defaultMode *int32?; 4 optional *bool?
Container: 1 name string; 2 image string?; 3 command []string?; 4 args []string?;
    5 workingDir string?; 6 ports []ContainerPort?; 19 envFrom []EnvFromSource?;
    7 env []EnvVar?; 8 resources ResourceRequirements?;
    23 resizePolicy []ContainerResizePolicy?; 24 restartPolicy *string?;
    25 restartPolicyRules []ContainerRestartRule?; 9 volumeMounts []VolumeMount?;
    21 volumeDevices []VolumeDevice?; 10 livenessProbe *Probe?; 11 readinessProbe *Probe?;
    22 startupProbe *Probe?; 12 lifecycle *Lifecycle?; 13 terminationMessagePath string?;
    20 terminationMessagePolicy string?; 14 imagePullPolicy string?;
    15 securityContext *SecurityContext?; 16 stdin bool?; 17 stdinOnce bool?; 18 tty bool?
ContainerExtendedResourceRequest: 1 containerName string; 2 resourceName string;
    3 requestName string
ContainerPort: 1 name string?; 2 hostPort int32?; 3 containerPort int32; 4 protocol string?;
    5 hostIP string?
ContainerResizePolicy: 1 resourceName string; 2 restartPolicy string
ContainerRestartRule: 1 action string?; 2 exitCodes *ContainerRestartRuleOnExitCodes?
ContainerRestartRuleOnExitCodes: 1 operator string?; 2 values []int32?
ContainerState: 1 waiting *ContainerStateWaiting?; 2 running *ContainerStateRunning?;
    3 terminated *ContainerStateTerminated?
ContainerStateRunning: 1 startedAt time?
ContainerStateTerminated: 1 exitCode int32; 2 signal int32?; 3 reason string?;
    4 message string?; 5 startedAt time?; 6 finishedAt time?; 7 containerID string?
ContainerStateWaiting: 1 reason string?; 2 message string?
ContainerStatus: 1 name string; 2 state ContainerState?; 3 lastState ContainerState?;
    4 ready bool; 5 restartCount int32; 6 image string; 7 imageID string;
    8 containerID string?; 9 started *bool?; 10 allocatedResources map<quantity>?;
    11 resources *ResourceRequirements?; 12 volumeMounts []VolumeMountStatus?;
    13 user *ContainerUser?; 14 allocatedResourcesStatus []ResourceStatus?;
    15 stopSignal *string?
ContainerUser: 1 linux *LinuxContainerUser?
DownwardAPIProjection: 1 items []DownwardAPIVolumeFile?
DownwardAPIVolumeFile: 1 path string; 2 fieldRef *ObjectFieldSelector?;
    3 resourceFieldRef *ResourceFieldSelector?; 4 mode *int32?
DownwardAPIVolumeSource: 1 items []DownwardAPIVolumeFile?; 2 defaultMode *int32?
EmptyDirVolumeSource: 1 medium string?; 2 sizeLimit *quantity?
EnvFromSource: 1 prefix string?; 2 configMapRef *ConfigMapEnvSource?;
    3 secretRef *SecretEnvSource?
EnvVar: 1 name string; 2 value string?; 3 valueFrom *EnvVarSource?
EnvVarSource: 1 fieldRef *ObjectFieldSelector?; 2 resourceFieldRef *ResourceFieldSelector?;
    3 configMapKeyRef *ConfigMapKeySelector?; 4 secretKeyRef *SecretKeySelector?;
    5 fileKeyRef *FileKeySelector?
EphemeralContainer: 1 - EphemeralContainerCommon^; 2 targetContainerName string?
EphemeralContainerCommon: 1 name string; 2 image string?; 3 command []string?;
    4 args []string?; 5 workingDir string?; 6 ports []ContainerPort?;
    19 envFrom []EnvFromSource?; 7 env []EnvVar?; 8 resources ResourceRequirements?;
    23 resizePolicy []ContainerResizePolicy?; 24 restartPolicy *string?;
    25 restartPolicyRules []ContainerRestartRule?; 9 volumeMounts []VolumeMount?;
    21 volumeDevices []VolumeDevice?; 10 livenessProbe *Probe?; 11 readinessProbe *Probe?;
    22 startupProbe *Probe?; 12 lifecycle *Lifecycle?; 13 terminationMessagePath string?;
    20 terminationMessagePolicy string?; 14 imagePullPolicy string?;
    15 securityContext *SecurityContext?; 16 stdin bool?; 17 stdinOnce bool?; 18 tty bool?
EphemeralVolumeSource: 1 volumeClaimTemplate *PersistentVolumeClaimTemplate?
ExecAction: 1 command []string?
FCVolumeSource: 1 targetWWNs []string?; 2 lun *int32?; 3 fsType string?; 4 readOnly bool?;
    5 wwids []string?
FileKeySelector: 1 volumeName string; 2 path string; 3 key string; 4 optional *bool?
FlexVolumeSource: 1 driver string; 2 fsType string?; 3 secretRef *LocalObjectReference?;
    4 readOnly bool?; 5 options map<string>?
FlockerVolumeSource: 1 datasetName string?; 2 datasetUUID string?
GCEPersistentDiskVolumeSource: 1 pdName string; 2 fsType string?; 3 partition int32?;
    4 readOnly bool?
GRPCAction: 1 port int32; 2 service *string
GitRepoVolumeSource: 1 repository string; 2 revision string?; 3 directory string?
GlusterfsVolumeSource: 1 endpoints string; 2 path string; 3 readOnly bool?
HTTPGetAction: 1 path string?; 2 port intstr; 3 host string?; 4 scheme string?;
    5 httpHeaders []HTTPHeader?
HTTPHeader: 1 name string; 2 value string
HostAlias: 1 ip string; 2 hostnames []string?
HostIP: 1 ip string
HostPathVolumeSource: 1 path string; 2 type *string?
ISCSIVolumeSource: 1 targetPortal string; 2 iqn string; 3 lun int32;
    4 iscsiInterface string?; 5 fsType string?; 6 readOnly bool?; 7 portals []string?;
    8 chapAuthDiscovery bool?; 11 chapAuthSession bool?;
    10 secretRef *LocalObjectReference?; 12 initiatorName *string?
ImageVolumeSource: 1 reference string?; 2 pullPolicy string?
ImageVolumeStatus: 1 imageRef string?
KeyToPath: 1 key string; 2 path string; 3 mode *int32?
Lifecycle: 1 postStart *LifecycleHandler?; 2 preStop *LifecycleHandler?;
    3 stopSignal *string?
LifecycleHandler: 1 exec *ExecAction?; 2 httpGet *HTTPGetAction?;
    3 tcpSocket *TCPSocketAction?; 4 sleep *SleepAction?
LinuxContainerUser: 1 uid int64; 2 gid int64; 3 supplementalGroups []int64?
LoadBalancerIngress: 1 ip string?; 2 hostname string?; 3 ipMode *string?;
    4 ports []PortStatus?
LoadBalancerStatus: 1 ingress []LoadBalancerIngress?
LocalObjectReference: 1 name string?
NFSVolumeSource: 1 server string; 2 path string; 3 readOnly bool?
Namespace: 1 metadata meta/v1.ObjectMeta?; 2 spec NamespaceSpec?; 3 status NamespaceStatus?
NamespaceCondition: 1 type string; 2 status string; 4 lastTransitionTime time?;
    5 reason string?; 6 message string?
NamespaceSpec: 1 finalizers []string?
NamespaceStatus: 1 phase string?; 2 conditions []NamespaceCondition?
NodeAffinity: 1 requiredDuringSchedulingIgnoredDuringExecution *NodeSelector?;
    2 preferredDuringSchedulingIgnoredDuringExecution []PreferredSchedulingTerm?
NodeAllocatableResourceClaimStatus: 1 resourceClaimName string; 2 containers []string?;
    3 resources map<quantity>
NodeSelector: 1 nodeSelectorTerms []NodeSelectorTerm
NodeSelectorRequirement: 1 key string; 2 operator string; 3 values []string?
NodeSelectorTerm: 1 matchExpressions []NodeSelectorRequirement?;
    2 matchFields []NodeSelectorRequirement?
ObjectFieldSelector: 1 apiVersion string?; 2 fieldPath string
ObjectReference: 1 kind string?; 2 namespace string?; 3 name string?; 4 uid string?;
    5 apiVersion string?; 6 resourceVersion string?; 7 fieldPath string?
PersistentVolumeClaimSpec: 1 accessModes []string?; 4 selector *meta/v1.LabelSelector?;
    2 resources VolumeResourceRequirements?; 3 volumeName string?;
    5 storageClassName *string?; 6 volumeMode *string?;
    7 dataSource *TypedLocalObjectReference?; 8 dataSourceRef *TypedObjectReference?;
    9 volumeAttributesClassName *string?
PersistentVolumeClaimTemplate: 1 metadata meta/v1.ObjectMeta?;
    2 spec PersistentVolumeClaimSpec
PersistentVolumeClaimVolumeSource: 1 claimName string; 2 readOnly bool?
PhotonPersistentDiskVolumeSource: 1 pdID string; 2 fsType string?
Pod: 1 metadata meta/v1.ObjectMeta?; 2 spec PodSpec?; 3 status PodStatus?
PodAffinity: 1 requiredDuringSchedulingIgnoredDuringExecution []PodAffinityTerm?;
    2 preferredDuringSchedulingIgnoredDuringExecution []WeightedPodAffinityTerm?
PodAffinityTerm: 1 labelSelector *meta/v1.LabelSelector?; 2 namespaces []string?;
    3 topologyKey string; 4 namespaceSelector *meta/v1.LabelSelector?;
    5 matchLabelKeys []string?; 6 mismatchLabelKeys []string?
PodAntiAffinity: 1 requiredDuringSchedulingIgnoredDuringExecution []PodAffinityTerm?;
    2 preferredDuringSchedulingIgnoredDuringExecution []WeightedPodAffinityTerm?
PodCertificateProjection: 1 signerName string?; 2 keyType string?;
    3 maxExpirationSeconds *int32?; 4 credentialBundlePath string?; 5 keyPath string?;
    6 certificateChainPath string?; 7 userAnnotations map<string>?
PodCondition: 1 type string; 7 observedGeneration int64?; 2 status string;
    3 lastProbeTime time?; 4 lastTransitionTime time?; 5 reason string?; 6 message string?
PodDNSConfig: 1 nameservers []string?; 2 searches []string?;
    3 options []PodDNSConfigOption?
PodDNSConfigOption: 1 name string?; 2 value *string?
PodExtendedResourceClaimStatus: 1 requestMappings []ContainerExtendedResourceRequest;
    2 resourceClaimName string
PodIP: 1 ip string
PodOS: 1 name string
PodReadinessGate: 1 conditionType string
PodResourceClaim: 1 name string; 3 resourceClaimName *string?;
    4 resourceClaimTemplateName *string?
PodResourceClaimStatus: 1 name string; 2 resourceClaimName *string?
PodSchedulingGate: 1 name string
PodSchedulingGroup: 1 podGroupName *string?
PodSecurityContext: 1 seLinuxOptions *SELinuxOptions?;
    8 windowsOptions *WindowsSecurityContextOptions?; 2 runAsUser *int64?;
    6 runAsGroup *int64?; 3 runAsNonRoot *bool?; 4 supplementalGroups []int64?;
    12 supplementalGroupsPolicy *string?; 5 fsGroup *int64?; 7 sysctls []Sysctl?;
    9 fsGroupChangePolicy *string?; 10 seccompProfile *SeccompProfile?;
    11 appArmorProfile *AppArmorProfile?; 13 seLinuxChangePolicy *string?
PodSpec: 1 volumes []Volume?; 20 initContainers []Container?; 2 containers []Container;
    34 ephemeralContainers []EphemeralContainer?; 3 restartPolicy string?;
    4 terminationGracePeriodSeconds *int64?; 5 activeDeadlineSeconds *int64?;
    6 dnsPolicy string?; 7 nodeSelector map<string>?; 8 serviceAccountName string?;
    9 serviceAccount string?; 21 automountServiceAccountToken *bool?; 10 nodeName string?;
    11 hostNetwork bool?; 12 hostPID bool?; 13 hostIPC bool?;
    27 shareProcessNamespace *bool?; 14 securityContext *PodSecurityContext?;
    15 imagePullSecrets []LocalObjectReference?; 16 hostname string?; 17 subdomain string?;
    18 affinity *Affinity?; 19 schedulerName string?; 22 tolerations []Toleration?;
    23 hostAliases []HostAlias?; 24 priorityClassName string?; 25 priority *int32?;
    26 dnsConfig *PodDNSConfig?; 28 readinessGates []PodReadinessGate?;
    29 runtimeClassName *string?; 30 enableServiceLinks *bool?;
    31 preemptionPolicy *string?; 32 overhead map<quantity>?;
    33 topologySpreadConstraints []TopologySpreadConstraint?; 35 setHostnameAsFQDN *bool?;
    36 os *PodOS?; 37 hostUsers *bool?; 38 schedulingGates []PodSchedulingGate?;
    39 resourceClaims []PodResourceClaim?; 40 resources *ResourceRequirements?;
    41 hostnameOverride *string?; 43 schedulingGroup *PodSchedulingGroup?
PodStatus: 17 observedGeneration int64?; 1 phase string?; 2 conditions []PodCondition?;
    3 message string?; 4 reason string?; 11 nominatedNodeName string?; 5 hostIP string?;
    16 hostIPs []HostIP?; 6 podIP string?; 12 podIPs []PodIP?; 7 startTime *time?;
    10 initContainerStatuses []ContainerStatus?; 8 containerStatuses []ContainerStatus?;
    9 qosClass string?; 13 ephemeralContainerStatuses []ContainerStatus?; 14 resize string?;
    15 resourceClaimStatuses []PodResourceClaimStatus?;
    18 extendedResourceClaimStatus *PodExtendedResourceClaimStatus?;
    19 allocatedResources map<quantity>?; 20 resources *ResourceRequirements?;
    21 nodeAllocatableResourceClaimStatuses []NodeAllocatableResourceClaimStatus?
PodTemplateSpec: 1 metadata meta/v1.ObjectMeta?; 2 spec PodSpec?
PortStatus: 1 port int32; 2 protocol string; 3 error *string?
PortworxVolumeSource: 1 volumeID string; 2 fsType string?; 3 readOnly bool?
PreferredSchedulingTerm: 1 weight int32; 2 preference NodeSelectorTerm
Probe: 1 - ProbeHandler^; 2 initialDelaySeconds int32?; 3 timeoutSeconds int32?;
    4 periodSeconds int32?; 5 successThreshold int32?; 6 failureThreshold int32?;
    7 terminationGracePeriodSeconds *int64?
ProbeHandler: 1 exec *ExecAction?; 2 httpGet *HTTPGetAction?; 3 tcpSocket *TCPSocketAction?;
    4 grpc *GRPCAction?
ProjectedVolumeSource: 1 sources []VolumeProjection; 2 defaultMode *int32?
QuobyteVolumeSource: 1 registry string; 2 volume string; 3 readOnly bool?; 4 user string?;
    5 group string?; 6 tenant string?
RBDVolumeSource: 1 monitors []string; 2 image string; 3 fsType string?; 4 pool string?;
    5 user string?; 6 keyring string?; 7 secretRef *LocalObjectReference?; 8 readOnly bool?
ResourceClaim: 1 name string; 2 request string?
ResourceFieldSelector: 1 containerName string?; 2 resource string; 3 divisor quantity?
ResourceHealth: 1 resourceID string; 2 health string?; 6 message *string?
ResourceQuota: 1 metadata meta/v1.ObjectMeta?; 2 spec ResourceQuotaSpec?;
    3 status ResourceQuotaStatus?
ResourceQuotaSpec: 1 hard map<quantity>?; 2 scopes []string?;
    3 scopeSelector *ScopeSelector?
ResourceQuotaStatus: 1 hard map<quantity>?; 2 used map<quantity>?
ResourceRequirements: 1 limits map<quantity>?; 2 requests map<quantity>?;
    3 claims []ResourceClaim?
ResourceStatus: 1 name string; 2 resources []ResourceHealth?
SELinuxOptions: 1 user string?; 2 role string?; 3 type string?; 4 level string?
ScaleIOVolumeSource: 1 gateway string; 2 system string; 3 secretRef *LocalObjectReference;
    4 sslEnabled bool?; 5 protectionDomain string?; 6 storagePool string?;
    7 storageMode string?; 8 volumeName string?; 9 fsType string?; 10 readOnly bool?
ScopeSelector: 1 matchExpressions []ScopedResourceSelectorRequirement?
ScopedResourceSelectorRequirement: 1 scopeName string; 2 operator string;
    3 values []string?
SeccompProfile: 1 type string; 2 localhostProfile *string?
Secret: 1 metadata meta/v1.ObjectMeta?; 5 immutable *bool?; 2 data map<bytes>?;
    4 stringData map<string>?; 3 type string?
SecretEnvSource: 1 - LocalObjectReference^; 2 optional *bool?
SecretKeySelector: 1 - LocalObjectReference^; 2 key string; 3 optional *bool?
SecretProjection: 1 - LocalObjectReference^; 2 items []KeyToPath?; 4 optional *bool?
SecretVolumeSource: 1 secretName string?; 2 items []KeyToPath?; 3 defaultMode *int32?;
    4 optional *bool?
SecurityContext: 1 capabilities *Capabilities?; 2 privileged *bool?;
    3 seLinuxOptions *SELinuxOptions?; 10 windowsOptions *WindowsSecurityContextOptions?;
    4 runAsUser *int64?; 8 runAsGroup *int64?; 5 runAsNonRoot *bool?;
    6 readOnlyRootFilesystem *bool?; 7 allowPrivilegeEscalation *bool?;
    9 procMount *string?; 11 seccompProfile *SeccompProfile?;
    12 appArmorProfile *AppArmorProfile?
Service: 1 metadata meta/v1.ObjectMeta?; 2 spec ServiceSpec?; 3 status ServiceStatus?
ServiceAccount: 1 metadata meta/v1.ObjectMeta?; 2 secrets []ObjectReference?;
    3 imagePullSecrets []LocalObjectReference?; 4 automountServiceAccountToken *bool?
ServiceAccountTokenProjection: 1 audience string?; 2 expirationSeconds *int64?;
    3 path string
ServicePort: 1 name string?; 2 protocol string?; 6 appProtocol *string?; 3 port int32;
    4 targetPort intstr?; 5 nodePort int32?
ServiceSpec: 1 ports []ServicePort?; 2 selector map<string>?; 3 clusterIP string?;
    18 clusterIPs []string?; 4 type string?; 5 externalIPs []string?;
    7 sessionAffinity string?; 8 loadBalancerIP string?;
    9 loadBalancerSourceRanges []string?; 10 externalName string?;
    11 externalTrafficPolicy string?; 12 healthCheckNodePort int32?;
    13 publishNotReadyAddresses bool?; 14 sessionAffinityConfig *SessionAffinityConfig?;
    19 ipFamilies []string?; 17 ipFamilyPolicy *string?;
    20 allocateLoadBalancerNodePorts *bool?; 21 loadBalancerClass *string?;
    22 internalTrafficPolicy *string?; 23 trafficDistribution *string?
ServiceStatus: 1 loadBalancer LoadBalancerStatus?; 2 conditions []meta/v1.Condition?
SessionAffinityConfig: 1 clientIP *ClientIPConfig?
SleepAction: 1 seconds int64
StorageOSVolumeSource: 1 volumeName string?; 2 volumeNamespace string?; 3 fsType string?;
    4 readOnly bool?; 5 secretRef *LocalObjectReference?
Sysctl: 1 name string; 2 value string
TCPSocketAction: 1 port intstr; 2 host string?
Toleration: 1 key string?; 2 operator string?; 3 value string?; 4 effect string?;
    5 tolerationSeconds *int64?
TopologySpreadConstraint: 1 maxSkew int32; 2 topologyKey string; 3 whenUnsatisfiable string;
    4 labelSelector *meta/v1.LabelSelector?; 5 minDomains *int32?;
    6 nodeAffinityPolicy *string?; 7 nodeTaintsPolicy *string?; 8 matchLabelKeys []string?
TypedLocalObjectReference: 1 apiGroup *string; 2 kind string; 3 name string
TypedObjectReference: 1 apiGroup *string; 2 kind string; 3 name string;
    4 namespace *string?
Volume: 1 name string; 2 - VolumeSource^
VolumeDevice: 1 name string; 2 devicePath string
VolumeMount: 1 name string; 2 readOnly bool?; 7 recursiveReadOnly *string?;
    3 mountPath string; 4 subPath string?; 5 mountPropagation *string?;
    6 subPathExpr string?
VolumeMountStatus: 1 name string; 2 mountPath string; 3 readOnly bool?;
    4 recursiveReadOnly *string?; 5 volumeStatus *VolumeStatus?
VolumeProjection: 1 secret *SecretProjection?; 2 downwardAPI *DownwardAPIProjection?;
    3 configMap *ConfigMapProjection?;
    4 serviceAccountToken *ServiceAccountTokenProjection?;
    5 clusterTrustBundle *ClusterTrustBundleProjection?;
    6 podCertificate *PodCertificateProjection?
VolumeResourceRequirements: 1 limits map<quantity>?; 2 requests map<quantity>?
VolumeSource: 1 hostPath *HostPathVolumeSource?; 2 emptyDir *EmptyDirVolumeSource?;
    3 gcePersistentDisk *GCEPersistentDiskVolumeSource?;
    4 awsElasticBlockStore *AWSElasticBlockStoreVolumeSource?;
    5 gitRepo *GitRepoVolumeSource?; 6 secret *SecretVolumeSource?; 7 nfs *NFSVolumeSource?;
    8 iscsi *ISCSIVolumeSource?; 9 glusterfs *GlusterfsVolumeSource?;
    10 persistentVolumeClaim *PersistentVolumeClaimVolumeSource?; 11 rbd *RBDVolumeSource?;
    12 flexVolume *FlexVolumeSource?; 13 cinder *CinderVolumeSource?;
    14 cephfs *CephFSVolumeSource?; 15 flocker *FlockerVolumeSource?;
    16 downwardAPI *DownwardAPIVolumeSource?; 17 fc *FCVolumeSource?;
    18 azureFile *AzureFileVolumeSource?; 19 configMap *ConfigMapVolumeSource?;
    20 vsphereVolume *VsphereVirtualDiskVolumeSource?; 21 quobyte *QuobyteVolumeSource?;
    22 azureDisk *AzureDiskVolumeSource?;
    23 photonPersistentDisk *PhotonPersistentDiskVolumeSource?;
    26 projected *ProjectedVolumeSource?; 24 portworxVolume *PortworxVolumeSource?;
    25 scaleIO *ScaleIOVolumeSource?; 27 storageos *StorageOSVolumeSource?;
    28 csi *CSIVolumeSource?; 29 ephemeral *EphemeralVolumeSource?;
    30 image *ImageVolumeSource?
VolumeStatus: 1 image *ImageVolumeStatus?
VsphereVirtualDiskVolumeSource: 1 volumePath string; 2 fsType string?;
    3 storagePolicyName string?; 4 storagePolicyID string?
WeightedPodAffinityTerm: 1 weight int32; 2 podAffinityTerm PodAffinityTerm
WindowsSecurityContextOptions: 1 gmsaCredentialSpecName *string?;
    2 gmsaCredentialSpec *string?; 3 runAsUserName *string?; 4 hostProcess *bool?
package apps/v1
Deployment: 1 metadata meta/v1.ObjectMeta?; 2 spec DeploymentSpec?;
    3 status DeploymentStatus?
DeploymentCondition: 1 type string; 2 status string; 6 lastUpdateTime time?;
    7 lastTransitionTime time?; 4 reason string?; 5 message string?
DeploymentSpec: 1 replicas *int32?; 2 selector *meta/v1.LabelSelector;
    3 template core/v1.PodTemplateSpec; 4 strategy DeploymentStrategy?;
    5 minReadySeconds int32?; 6 revisionHistoryLimit *int32?; 7 paused bool?;
    9 progressDeadlineSeconds *int32?
DeploymentStatus: 1 observedGeneration int64?; 2 replicas int32?; 3 updatedReplicas int32?;
    7 readyReplicas int32?; 4 availableReplicas int32?; 5 unavailableReplicas int32?;
    9 terminatingReplicas *int32?; 6 conditions []DeploymentCondition?;
    8 collisionCount *int32?
DeploymentStrategy: 1 type string?; 2 rollingUpdate *RollingUpdateDeployment?
RollingUpdateDeployment: 1 maxUnavailable *intstr?; 2 maxSurge *intstr?
package batch/v1
CronJob: 1 metadata meta/v1.ObjectMeta?; 2 spec CronJobSpec?; 3 status CronJobStatus?
CronJobSpec: 1 schedule string; 8 timeZone *string?; 2 startingDeadlineSeconds *int64?;
    3 concurrencyPolicy string?; 4 suspend *bool?; 5 jobTemplate JobTemplateSpec;
    6 successfulJobsHistoryLimit *int32?; 7 failedJobsHistoryLimit *int32?
CronJobStatus: 1 active []core/v1.ObjectReference?; 4 lastScheduleTime *time?;
    5 lastSuccessfulTime *time?
Job: 1 metadata meta/v1.ObjectMeta?; 2 spec JobSpec?; 3 status JobStatus?
JobCondition: 1 type string; 2 status string; 3 lastProbeTime time?;
    4 lastTransitionTime time?; 5 reason string?; 6 message string?
JobSpec: 1 parallelism *int32?; 2 completions *int32?; 3 activeDeadlineSeconds *int64?;
    11 podFailurePolicy *PodFailurePolicy?; 16 successPolicy *SuccessPolicy?;
    7 backoffLimit *int32?; 12 backoffLimitPerIndex *int32?; 13 maxFailedIndexes *int32?;
    4 selector *meta/v1.LabelSelector?; 5 manualSelector *bool?;
    6 template core/v1.PodTemplateSpec; 8 ttlSecondsAfterFinished *int32?;
    9 completionMode *string?; 10 suspend *bool?; 14 podReplacementPolicy *string?;
    15 managedBy *string?
JobStatus: 1 conditions []JobCondition?; 2 startTime *time?; 3 completionTime *time?;
    4 active int32?; 5 succeeded int32?; 6 failed int32?; 11 terminating *int32?;
    7 completedIndexes string?; 10 failedIndexes *string?;
    8 uncountedTerminatedPods *UncountedTerminatedPods?; 9 ready *int32?
JobTemplateSpec: 1 metadata meta/v1.ObjectMeta?; 2 spec JobSpec?
PodFailurePolicy: 1 rules []PodFailurePolicyRule
PodFailurePolicyOnExitCodesRequirement: 1 containerName *string?; 2 operator string;
    3 values []int32
PodFailurePolicyOnPodConditionsPattern: 1 type string; 2 status string
PodFailurePolicyRule: 1 action string;
    2 onExitCodes *PodFailurePolicyOnExitCodesRequirement?;
    3 onPodConditions []PodFailurePolicyOnPodConditionsPattern?
SuccessPolicy: 1 rules []SuccessPolicyRule
SuccessPolicyRule: 1 succeededIndexes *string?; 2 succeededCount *int32?
UncountedTerminatedPods: 1 succeeded []string?; 2 failed []string?
package rbac/v1
AggregationRule: 1 clusterRoleSelectors []meta/v1.LabelSelector?
ClusterRole: 1 metadata meta/v1.ObjectMeta?; 2 rules []PolicyRule;
    3 aggregationRule *AggregationRule?
ClusterRoleBinding: 1 metadata meta/v1.ObjectMeta?; 2 subjects []Subject?;
    3 roleRef RoleRef
PolicyRule: 1 verbs []string; 2 apiGroups []string?; 3 resources []string?;
    4 resourceNames []string?; 5 nonResourceURLs []string?
Role: 1 metadata meta/v1.ObjectMeta?; 2 rules []PolicyRule
RoleBinding: 1 metadata meta/v1.ObjectMeta?; 2 subjects []Subject?; 3 roleRef RoleRef
RoleRef: 1 apiGroup string; 2 kind string; 3 name string
Subject: 1 kind string; 2 apiGroup string?; 3 name string; 4 namespace string?
package policy/v1
Eviction: 1 metadata meta/v1.ObjectMeta?; 2 deleteOptions *meta/v1.DeleteOptions?
PodDisruptionBudget: 1 metadata meta/v1.ObjectMeta?; 2 spec PodDisruptionBudgetSpec?;
    3 status PodDisruptionBudgetStatus?
PodDisruptionBudgetSpec: 1 minAvailable *intstr?; 2 selector *meta/v1.LabelSelector?;
    3 maxUnavailable *intstr?; 4 unhealthyPodEvictionPolicy *string?
PodDisruptionBudgetStatus: 1 observedGeneration int64?; 2 disruptedPods map<time>?;
    3 disruptionsAllowed int32; 4 currentHealthy int32; 5 desiredHealthy int32;
    6 expectedPods int32; 7 conditions []meta/v1.Condition?
package scheduling/v1
PriorityClass: 1 metadata meta/v1.ObjectMeta?; 2 value int32; 3 globalDefault bool?;
    4 description string?; 5 preemptionPolicy *string?
package networking/v1
HTTPIngressPath: 1 path string?; 3 pathType *string; 2 backend IngressBackend
HTTPIngressRuleValue: 1 paths []HTTPIngressPath
Ingress: 1 metadata meta/v1.ObjectMeta?; 2 spec IngressSpec?; 3 status IngressStatus?
IngressBackend: 4 service *IngressServiceBackend?;
    3 resource *core/v1.TypedLocalObjectReference?
IngressLoadBalancerIngress: 1 ip string?; 2 hostname string?; 4 ports []IngressPortStatus?
IngressLoadBalancerStatus: 1 ingress []IngressLoadBalancerIngress?
IngressPortStatus: 1 port int32; 2 protocol string; 3 error *string?
IngressRule: 1 host string?; 2 - IngressRuleValue^
IngressRuleValue: 1 http *HTTPIngressRuleValue?
IngressServiceBackend: 1 name string; 2 port ServiceBackendPort?
IngressSpec: 4 ingressClassName *string?; 1 defaultBackend *IngressBackend?;
    2 tls []IngressTLS?; 3 rules []IngressRule?
IngressStatus: 1 loadBalancer IngressLoadBalancerStatus?
IngressTLS: 1 hosts []string?; 2 secretName string?
ServiceBackendPort: 1 name string?; 2 number int32?
package authentication/v1
BoundObjectReference: 1 kind string?; 2 apiVersion string?; 3 name string?; 4 uid string?
SelfSubjectReview: 1 metadata meta/v1.ObjectMeta?; 2 status SelfSubjectReviewStatus?
SelfSubjectReviewStatus: 1 userInfo UserInfo?
TokenRequest: 1 metadata meta/v1.ObjectMeta?; 2 spec TokenRequestSpec;
    3 status TokenRequestStatus?
TokenRequestSpec: 1 audiences []string; 4 expirationSeconds *int64;
    3 boundObjectRef *BoundObjectReference
TokenRequestStatus: 1 token string; 2 expirationTimestamp time
UserInfo: 1 username string?; 2 uid string?; 3 groups []string?; 4 extra map<strlist>?
package authentication/v1beta1
SelfSubjectReview: 1 metadata meta/v1.ObjectMeta?; 2 status SelfSubjectReviewStatus?
SelfSubjectReviewStatus: 1 userInfo authentication/v1.UserInfo?
package authentication/v1alpha1
SelfSubjectReview: 1 metadata meta/v1.ObjectMeta?; 2 status SelfSubjectReviewStatus?
SelfSubjectReviewStatus: 1 userInfo authentication/v1.UserInfo?
package authorization/v1
FieldSelectorAttributes: 1 rawSelector string?;
    2 requirements []meta/v1.FieldSelectorRequirement?
LabelSelectorAttributes: 1 rawSelector string?;
    2 requirements []meta/v1.LabelSelectorRequirement?
NonResourceAttributes: 1 path string?; 2 verb string?
ResourceAttributes: 1 namespace string?; 2 verb string?; 3 group string?; 4 version string?;
    5 resource string?; 6 subresource string?; 7 name string?;
    8 fieldSelector *FieldSelectorAttributes?; 9 labelSelector *LabelSelectorAttributes?
SelfSubjectAccessReview: 1 metadata meta/v1.ObjectMeta?; 2 spec SelfSubjectAccessReviewSpec;
    3 status SubjectAccessReviewStatus?
SelfSubjectAccessReviewSpec: 1 resourceAttributes *ResourceAttributes?;
    2 nonResourceAttributes *NonResourceAttributes?
SubjectAccessReviewStatus: 1 allowed bool; 4 denied bool?; 2 reason string?;
    3 evaluationError string?
package autoscaling/v1
CrossVersionObjectReference: 1 kind string; 2 name string; 3 apiVersion string?
HorizontalPodAutoscaler: 1 metadata meta/v1.ObjectMeta?;
    2 spec HorizontalPodAutoscalerSpec?; 3 status HorizontalPodAutoscalerStatus?
HorizontalPodAutoscalerSpec: 1 scaleTargetRef CrossVersionObjectReference;
    2 minReplicas *int32?; 3 maxReplicas int32; 4 targetCPUUtilizationPercentage *int32?
HorizontalPodAutoscalerStatus: 1 observedGeneration *int64?; 2 lastScaleTime *time?;
    3 currentReplicas int32; 4 desiredReplicas int32;
    5 currentCPUUtilizationPercentage *int32?
Scale: 1 metadata meta/v1.ObjectMeta?; 2 spec ScaleSpec?; 3 status ScaleStatus?
ScaleSpec: 1 replicas int32?
ScaleStatus: 1 replicas int32; 2 selector string?
package autoscaling/v2
ContainerResourceMetricSource: 1 name string; 2 target MetricTarget; 3 container string
ContainerResourceMetricStatus: 1 name string; 2 current MetricValueStatus;
    3 container string
CrossVersionObjectReference: 1 kind string; 2 name string; 3 apiVersion string?
ExternalMetricSource: 1 metric MetricIdentifier; 2 target MetricTarget
ExternalMetricStatus: 1 metric MetricIdentifier; 2 current MetricValueStatus
HPAScalingPolicy: 1 type string; 2 value int32; 3 periodSeconds int32
HPAScalingRules: 3 stabilizationWindowSeconds *int32?; 1 selectPolicy *string?;
    2 policies []HPAScalingPolicy?; 4 tolerance *quantity?
HorizontalPodAutoscaler: 1 metadata meta/v1.ObjectMeta?;
    2 spec HorizontalPodAutoscalerSpec?; 3 status HorizontalPodAutoscalerStatus?
HorizontalPodAutoscalerBehavior: 1 scaleUp *HPAScalingRules?; 2 scaleDown *HPAScalingRules?
HorizontalPodAutoscalerCondition: 1 type string; 2 status string;
    3 lastTransitionTime time?; 4 reason string?; 5 message string?
HorizontalPodAutoscalerSpec: 1 scaleTargetRef CrossVersionObjectReference;
    2 minReplicas *int32?; 3 maxReplicas int32; 4 metrics []MetricSpec?;
    5 behavior *HorizontalPodAutoscalerBehavior?
HorizontalPodAutoscalerStatus: 1 observedGeneration *int64?; 2 lastScaleTime *time?;
    3 currentReplicas int32?; 4 desiredReplicas int32; 5 currentMetrics []MetricStatus;
    6 conditions []HorizontalPodAutoscalerCondition?
MetricIdentifier: 1 name string; 2 selector *meta/v1.LabelSelector?
MetricSpec: 1 type string; 2 object *ObjectMetricSource?; 3 pods *PodsMetricSource?;
    4 resource *ResourceMetricSource?; 7 containerResource *ContainerResourceMetricSource?;
    5 external *ExternalMetricSource?
MetricStatus: 1 type string; 2 object *ObjectMetricStatus?; 3 pods *PodsMetricStatus?;
    4 resource *ResourceMetricStatus?; 7 containerResource *ContainerResourceMetricStatus?;
    5 external *ExternalMetricStatus?
MetricTarget: 1 type string; 2 value *quantity?; 3 averageValue *quantity?;
    4 averageUtilization *int32?
MetricValueStatus: 1 value *quantity?; 2 averageValue *quantity?;
    3 averageUtilization *int32?
ObjectMetricSource: 1 describedObject CrossVersionObjectReference; 2 target MetricTarget;
    3 metric MetricIdentifier
ObjectMetricStatus: 1 metric MetricIdentifier; 2 current MetricValueStatus;
    3 describedObject CrossVersionObjectReference
PodsMetricSource: 1 metric MetricIdentifier; 2 target MetricTarget
PodsMetricStatus: 1 metric MetricIdentifier; 2 current MetricValueStatus
ResourceMetricSource: 1 name string; 2 target MetricTarget
ResourceMetricStatus: 1 name string; 2 current MetricValueStatus
";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn put_varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    /// A protobuf message under construction.
    #[derive(Clone, Default)]
    struct Msg(Vec<u8>);

    impl Msg {
        fn new() -> Self {
            Self::default()
        }

        fn key(mut self, number: u32, wire: u32) -> Self {
            put_varint(u64::from(number << 3 | wire), &mut self.0);
            self
        }

        fn int(self, number: u32, v: i64) -> Self {
            let mut m = self.key(number, 0);
            put_varint(v as u64, &mut m.0);
            m
        }

        fn bytes(self, number: u32, b: &[u8]) -> Self {
            let mut m = self.key(number, 2);
            put_varint(b.len() as u64, &mut m.0);
            m.0.extend_from_slice(b);
            m
        }

        fn str(self, number: u32, s: &str) -> Self {
            self.bytes(number, s.as_bytes())
        }

        fn msg(self, number: u32, m: Msg) -> Self {
            self.bytes(number, &m.0)
        }

        fn entry(self, number: u32, k: &str, v: &str) -> Self {
            self.msg(number, Msg::new().str(1, k).str(2, v))
        }
    }

    fn envelope(api_version: &str, kind: &str, raw: Msg) -> Vec<u8> {
        let unknown = Msg::new()
            .msg(1, Msg::new().str(1, api_version).str(2, kind))
            .msg(2, raw)
            .str(3, "")
            .str(4, "");
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&unknown.0);
        out
    }

    /// `ObjectMeta` as gogo-protobuf writes it: every value field, zero or
    /// not, and the zero `creationTimestamp` as an empty message.
    fn meta(name: &str, namespace: &str, labels: &[(&str, &str)]) -> Msg {
        let mut m = Msg::new()
            .str(1, name)
            .str(2, "")
            .str(3, namespace)
            .str(4, "")
            .str(5, "")
            .str(6, "")
            .int(7, 0)
            .msg(8, Msg::new());
        for (k, v) in labels {
            m = m.entry(11, k, v);
        }
        m
    }

    fn decode(api_version: &str, kind: &str, raw: Msg) -> Value {
        decode_request(&envelope(api_version, kind, raw)).expect("decodes")
    }

    #[test]
    fn tables_parse_and_every_kind_has_object_meta() {
        let schema = schema().expect("tables parse");
        assert!(schema.messages.len() > 200);
        let object_meta = schema
            .messages
            .iter()
            .position(|m| m.name == "meta/v1.ObjectMeta")
            .unwrap();
        for ((api_version, kind), &index) in &schema.kinds {
            let first = &schema.messages[index].fields[0];
            assert_eq!(
                (first.number, first.json, first.base),
                (1, "metadata", Base::Message(object_meta)),
                "{api_version} {kind}"
            );
        }
    }

    #[test]
    fn table_errors_are_reported() {
        for (text, needle) in [
            ("package p\nA: 1 a B", "unknown message p.B"),
            ("package p\nA: 1 a string; 1 b string", "repeats"),
            ("package p\nA: 1 a string; 2 a int32", "repeats"),
            ("package p\nA: 1 - string^", "inline"),
            ("package p\nA: x a string", "bad field number"),
            ("A: 1 a string", "before any package"),
        ] {
            let err = parse_schema(text).err().expect(text);
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    /// `kubectl create deployment d1 --image=nginx:1.25 --replicas=3
    /// --port=80` as kubectl 1.33 encodes it, and the JSON kubectl 1.31
    /// sends for the same command.
    #[test]
    fn deployment_matches_the_json_kubectl_sends() {
        let container = Msg::new()
            .str(1, "nginx")
            .str(2, "nginx:1.25")
            .str(5, "")
            .msg(
                6,
                Msg::new()
                    .str(1, "")
                    .int(2, 0)
                    .int(3, 80)
                    .str(4, "")
                    .str(5, ""),
            )
            .msg(8, Msg::new())
            .str(13, "")
            .str(14, "")
            .int(16, 0)
            .int(17, 0)
            .int(18, 0)
            .str(20, "");
        let pod_spec = Msg::new()
            .msg(2, container)
            .str(3, "")
            .str(6, "")
            .str(8, "")
            .str(9, "")
            .str(10, "")
            .int(11, 0)
            .int(12, 0)
            .int(13, 0)
            .str(16, "")
            .str(17, "")
            .str(19, "")
            .str(24, "");
        let spec = Msg::new()
            .int(1, 3)
            .msg(2, Msg::new().entry(1, "app", "d1"))
            .msg(
                3,
                Msg::new()
                    .msg(1, meta("", "", &[("app", "d1")]))
                    .msg(2, pod_spec),
            )
            .msg(4, Msg::new().str(1, ""))
            .int(5, 0)
            .int(7, 0);
        let status = Msg::new()
            .int(1, 0)
            .int(2, 0)
            .int(3, 0)
            .int(4, 0)
            .int(5, 0)
            .int(7, 0);
        let raw = Msg::new()
            .msg(1, meta("d1", "ns1", &[("app", "d1")]))
            .msg(2, spec)
            .msg(3, status);
        let sent_as_json: Value = serde_json::from_str(
            r#"{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"d1","namespace":"ns1","creationTimestamp":null,"labels":{"app":"d1"}},"spec":{"replicas":3,"selector":{"matchLabels":{"app":"d1"}},"template":{"metadata":{"creationTimestamp":null,"labels":{"app":"d1"}},"spec":{"containers":[{"name":"nginx","image":"nginx:1.25","ports":[{"containerPort":80}],"resources":{}}]}},"strategy":{}},"status":{}}"#,
        )
        .unwrap();
        assert_eq!(decode("apps/v1", "Deployment", raw), sent_as_json);
    }

    #[test]
    fn configmap_and_secret_data() {
        let cm = Msg::new()
            .msg(1, meta("cm1", "ns1", &[]))
            .entry(2, "a", "b")
            .entry(2, "text.txt", "hello\nworld\n")
            .msg(3, Msg::new().str(1, "bin").bytes(2, &[0, 1, 2, 0xff]));
        assert_eq!(
            decode("v1", "ConfigMap", cm),
            json!({"kind": "ConfigMap", "apiVersion": "v1",
                "metadata": {"name": "cm1", "namespace": "ns1", "creationTimestamp": null},
                "data": {"a": "b", "text.txt": "hello\nworld\n"},
                "binaryData": {"bin": "AAEC/w=="}})
        );
        let secret = Msg::new()
            .msg(1, meta("s1", "ns1", &[]))
            .msg(2, Msg::new().str(1, "user").bytes(2, b"admin"))
            .str(3, "Opaque")
            .int(5, 1);
        assert_eq!(
            decode("v1", "Secret", secret),
            json!({"kind": "Secret", "apiVersion": "v1",
                "metadata": {"name": "s1", "namespace": "ns1", "creationTimestamp": null},
                "data": {"user": "YWRtaW4="}, "type": "Opaque", "immutable": true})
        );
        // An entry without a value is the zero value.
        let empty = Msg::new()
            .msg(1, meta("s2", "", &[]))
            .msg(2, Msg::new().str(1, "k"))
            .str(3, "");
        assert_eq!(decode("v1", "Secret", empty)["data"], json!({"k": ""}));
    }

    #[test]
    fn nil_lists_pointers_and_zero_times_without_omitempty_are_null() {
        // `kubectl create clusterrole --aggregation-rule=...`: no rules.
        let role = Msg::new()
            .msg(1, meta("agg", "", &[]))
            .msg(3, Msg::new().msg(1, Msg::new().entry(1, "foo", "bar")));
        assert_eq!(
            decode("rbac.authorization.k8s.io/v1", "ClusterRole", role),
            json!({"kind": "ClusterRole", "apiVersion": "rbac.authorization.k8s.io/v1",
                "metadata": {"name": "agg", "creationTimestamp": null}, "rules": null,
                "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"foo": "bar"}}]}})
        );
        // `kubectl create token sa1`.
        let token = Msg::new()
            .msg(1, meta("", "", &[]))
            .msg(2, Msg::new())
            .msg(3, Msg::new().str(1, "").msg(2, Msg::new()));
        assert_eq!(
            decode("authentication.k8s.io/v1", "TokenRequest", token),
            json!({"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"creationTimestamp": null},
                "spec": {"audiences": null, "expirationSeconds": null, "boundObjectRef": null},
                "status": {"token": "", "expirationTimestamp": null}})
        );
    }

    #[test]
    fn rbac_bindings_and_rules() {
        let subject = |kind: &str, group: &str, name: &str, ns: &str| {
            Msg::new()
                .str(1, kind)
                .str(2, group)
                .str(3, name)
                .str(4, ns)
        };
        let binding = Msg::new()
            .msg(1, meta("rb1", "ns1", &[]))
            .msg(2, subject("User", "rbac.authorization.k8s.io", "alice", ""))
            .msg(2, subject("ServiceAccount", "", "sa1", "ns1"))
            .msg(
                3,
                Msg::new()
                    .str(1, "rbac.authorization.k8s.io")
                    .str(2, "Role")
                    .str(3, "r1"),
            );
        assert_eq!(
            decode("rbac.authorization.k8s.io/v1", "RoleBinding", binding),
            json!({"kind": "RoleBinding", "apiVersion": "rbac.authorization.k8s.io/v1",
                "metadata": {"name": "rb1", "namespace": "ns1", "creationTimestamp": null},
                "subjects": [
                    {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"},
                    {"kind": "ServiceAccount", "name": "sa1", "namespace": "ns1"}],
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r1"}})
        );
        let role = Msg::new().msg(1, meta("r1", "ns1", &[])).msg(
            2,
            Msg::new()
                .str(1, "get")
                .str(1, "list")
                .str(2, "")
                .str(3, "pods")
                .str(4, "x"),
        );
        assert_eq!(
            decode("rbac.authorization.k8s.io/v1", "Role", role)["rules"],
            json!([{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"],
                "resourceNames": ["x"]}])
        );
    }

    #[test]
    fn int_or_string_quantities_and_status_zeros() {
        let port = |name: &str, port: i64, target: Msg, node_port: i64| {
            Msg::new()
                .str(1, name)
                .str(2, "TCP")
                .int(3, port)
                .msg(4, target)
                .int(5, node_port)
        };
        let service = Msg::new()
            .msg(1, meta("svc1", "ns1", &[("app", "svc1")]))
            .msg(
                2,
                Msg::new()
                    .msg(
                        1,
                        port(
                            "80-8080",
                            80,
                            Msg::new().int(1, 0).int(2, 8080).str(3, ""),
                            30080,
                        ),
                    )
                    .msg(
                        1,
                        port("web", 81, Msg::new().int(1, 1).int(2, 0).str(3, "http"), 0),
                    )
                    .entry(2, "app", "svc1")
                    .str(3, "None")
                    .str(4, "NodePort"),
            )
            .msg(3, Msg::new().msg(1, Msg::new()));
        assert_eq!(
            decode("v1", "Service", service),
            json!({"kind": "Service", "apiVersion": "v1",
                "metadata": {"name": "svc1", "namespace": "ns1", "creationTimestamp": null,
                    "labels": {"app": "svc1"}},
                "spec": {"ports": [
                    {"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080,
                        "nodePort": 30080},
                    {"name": "web", "protocol": "TCP", "port": 81, "targetPort": "http"}],
                    "selector": {"app": "svc1"}, "clusterIP": "None", "type": "NodePort"},
                "status": {"loadBalancer": {}}})
        );

        let pdb = Msg::new()
            .msg(1, meta("pdb", "ns1", &[]))
            .msg(
                2,
                Msg::new()
                    .msg(2, Msg::new().entry(1, "app", "x"))
                    .msg(3, Msg::new().int(1, 1).int(2, 0).str(3, "50%")),
            )
            .msg(
                3,
                Msg::new().int(1, 0).int(3, 0).int(4, 0).int(5, 0).int(6, 0),
            );
        assert_eq!(
            decode("policy/v1", "PodDisruptionBudget", pdb),
            json!({"kind": "PodDisruptionBudget", "apiVersion": "policy/v1",
                "metadata": {"name": "pdb", "namespace": "ns1", "creationTimestamp": null},
                "spec": {"selector": {"matchLabels": {"app": "x"}}, "maxUnavailable": "50%"},
                "status": {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0,
                    "expectedPods": 0}})
        );

        let quota = Msg::new().msg(1, meta("q", "ns1", &[])).msg(
            2,
            Msg::new()
                .msg(1, Msg::new().str(1, "cpu").msg(2, Msg::new().str(1, "1")))
                .msg(
                    1,
                    Msg::new().str(1, "memory").msg(2, Msg::new().str(1, "1G")),
                )
                .msg(1, Msg::new().str(1, "pods").msg(2, Msg::new()))
                .str(2, "BestEffort"),
        );
        assert_eq!(
            decode("v1", "ResourceQuota", quota)["spec"],
            json!({"hard": {"cpu": "1", "memory": "1G", "pods": "0"}, "scopes": ["BestEffort"]})
        );
    }

    #[test]
    fn times_negative_numbers_and_packed_lists() {
        let object_meta = meta("pc", "", &[])
            .msg(8, Msg::new().int(1, 1_700_000_000).int(2, 5))
            .msg(9, Msg::new().int(1, 0))
            .int(10, 30);
        let pc = Msg::new()
            .msg(1, object_meta)
            .int(2, -5)
            .int(3, 0)
            .str(4, "desc")
            .str(5, "Never");
        assert_eq!(
            decode("scheduling.k8s.io/v1", "PriorityClass", pc),
            json!({"kind": "PriorityClass", "apiVersion": "scheduling.k8s.io/v1",
                "metadata": {"name": "pc", "creationTimestamp": "2023-11-14T22:13:20Z",
                    "deletionTimestamp": "1970-01-01T00:00:00Z", "deletionGracePeriodSeconds": 30},
                "value": -5, "description": "desc", "preemptionPolicy": "Never"})
        );

        // supplementalGroups: one unpacked and two packed int64s.
        let mut packed = Vec::new();
        put_varint(2000, &mut packed);
        put_varint(3000, &mut packed);
        let pod = Msg::new().msg(1, meta("p", "", &[])).msg(
            2,
            Msg::new()
                .msg(2, Msg::new().str(1, "c"))
                .msg(14, Msg::new().int(4, 1000).bytes(4, &packed).int(2, 0)),
        );
        let spec = &decode("v1", "Pod", pod)["spec"];
        assert_eq!(
            spec["securityContext"],
            json!({"supplementalGroups": [1000, 2000, 3000], "runAsUser": 0})
        );
        assert_eq!(spec["containers"], json!([{"name": "c", "resources": {}}]));
    }

    #[test]
    fn inline_structs_are_merged() {
        let container = Msg::new()
            .str(1, "app")
            .msg(
                7,
                Msg::new().str(1, "A").str(2, "").msg(
                    3,
                    Msg::new().msg(
                        3,
                        Msg::new()
                            .msg(1, Msg::new().str(1, "cm"))
                            .str(2, "key")
                            .int(3, 1),
                    ),
                ),
            )
            .msg(
                10,
                Msg::new()
                    .msg(
                        1,
                        Msg::new().msg(
                            2,
                            Msg::new()
                                .str(1, "/healthz")
                                .msg(2, Msg::new().int(2, 8080)),
                        ),
                    )
                    .int(2, 3),
            );
        let pod = Msg::new().msg(1, meta("p", "", &[])).msg(
            2,
            Msg::new()
                .msg(
                    1,
                    Msg::new()
                        .str(1, "host-root")
                        .msg(2, Msg::new().msg(1, Msg::new().str(1, "/"))),
                )
                .msg(2, container)
                .msg(22, Msg::new().str(2, "Exists")),
        );
        let spec = &decode("v1", "Pod", pod)["spec"];
        assert_eq!(
            spec["volumes"],
            json!([{"name": "host-root", "hostPath": {"path": "/"}}])
        );
        assert_eq!(
            spec["containers"][0]["env"],
            json!([{"name": "A", "valueFrom": {"configMapKeyRef":
                {"name": "cm", "key": "key", "optional": true}}}])
        );
        assert_eq!(
            spec["containers"][0]["livenessProbe"],
            json!({"httpGet": {"path": "/healthz", "port": 8080}, "initialDelaySeconds": 3})
        );
        assert_eq!(spec["tolerations"], json!([{"operator": "Exists"}]));
    }

    #[test]
    fn managed_fields_user_extras_and_merged_occurrences() {
        let object_meta = meta("x", "", &[]).msg(
            17,
            Msg::new()
                .str(1, "kubectl")
                .str(2, "Update")
                .msg(7, Msg::new().bytes(1, br#"{"f:data":{}}"#)),
        );
        // Two occurrences of `status`, merged as protobuf requires.
        let review = Msg::new()
            .msg(1, object_meta)
            .msg(2, Msg::new().msg(1, Msg::new().str(1, "alice")))
            .msg(
                2,
                Msg::new().msg(
                    1,
                    Msg::new().msg(
                        4,
                        Msg::new()
                            .str(1, "scopes")
                            .msg(2, Msg::new().str(1, "a").str(1, "b")),
                    ),
                ),
            );
        let decoded = decode("authentication.k8s.io/v1", "SelfSubjectReview", review);
        assert_eq!(
            decoded["metadata"]["managedFields"],
            json!([{"manager": "kubectl", "operation": "Update", "fieldsV1": {"f:data": {}}}])
        );
        assert_eq!(
            decoded["status"],
            json!({"userInfo": {"username": "alice", "extra": {"scopes": ["a", "b"]}}})
        );
    }

    #[test]
    fn unknown_fields_are_skipped() {
        let mut raw = Msg::new()
            .msg(1, meta("ns1", "", &[]).int(999, 7).str(1000, "future"))
            .msg(2, Msg::new().str(1, "kubernetes").int(77, 1))
            .key(50, 1);
        raw.0.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        let mut raw = raw.key(51, 5);
        raw.0.extend_from_slice(&[1, 2, 3, 4]);
        assert_eq!(
            decode("v1", "Namespace", raw),
            json!({"kind": "Namespace", "apiVersion": "v1",
                "metadata": {"name": "ns1", "creationTimestamp": null},
                "spec": {"finalizers": ["kubernetes"]}, "status": {}})
        );
    }

    #[test]
    fn undecodable_bodies_are_errors_naming_the_type() {
        assert_eq!(
            decode_request(b"{\"kind\":\"Pod\"}"),
            Err(ProtobufError::MissingMagic)
        );

        let err = decode_request(&envelope("apps/v1", "StatefulSet", Msg::new())).unwrap_err();
        assert!(matches!(err, ProtobufError::UnknownKind { .. }));
        assert!(err.to_string().contains("StatefulSet"), "{err}");
        assert!(err.to_string().contains("apps/v1"), "{err}");

        let err = decode_request(&envelope("", "", Msg::new())).unwrap_err();
        assert!(matches!(err, ProtobufError::Envelope(_)), "{err}");

        // The envelope cut short.
        let full = envelope("v1", "ConfigMap", Msg::new().msg(1, meta("cm", "", &[])));
        let err = decode_request(&full[..full.len() / 2]).unwrap_err();
        assert!(matches!(err, ProtobufError::Envelope(_)), "{err}");

        // A string where a number belongs, deep inside.
        let bad = Msg::new().msg(1, meta("d", "", &[])).msg(
            2,
            Msg::new().msg(
                3,
                Msg::new().msg(2, Msg::new().msg(2, Msg::new().str(1, "c").str(16, "yes"))),
            ),
        );
        let err = decode_request(&envelope("apps/v1", "Deployment", bad)).unwrap_err();
        let ProtobufError::Malformed { kind, path, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(kind, "Deployment");
        assert_eq!(path, "spec.template.spec.containers[0].stdin");
        assert!(
            err.to_string().contains("apps/v1, Kind=Deployment"),
            "{err}"
        );

        // A truncated nested message.
        let mut raw = Msg::new().key(1, 2);
        put_varint(50, &mut raw.0);
        raw.0.extend_from_slice(b"short");
        let err = decode_request(&envelope("v1", "Secret", Msg::new().msg(2, raw))).unwrap_err();
        assert!(matches!(err, ProtobufError::Malformed { .. }), "{err}");

        // Group encoding, invalid wire types, overlong varints.
        for body in [
            vec![0x0b],
            vec![0x0e],
            vec![
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
            ],
        ] {
            let raw = Msg::new().bytes(1, &body);
            let err = decode_request(&envelope("v1", "Namespace", raw)).unwrap_err();
            assert!(matches!(err, ProtobufError::Malformed { .. }), "{err}");
        }

        let encoded = {
            let mut out = MAGIC.to_vec();
            out.extend_from_slice(
                &Msg::new()
                    .msg(1, Msg::new().str(1, "v1").str(2, "Namespace"))
                    .str(3, "gzip")
                    .0,
            );
            out
        };
        assert!(matches!(
            decode_request(&encoded),
            Err(ProtobufError::Envelope(_))
        ));
    }
}
