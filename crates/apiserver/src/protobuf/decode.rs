//! Turning a message into the JSON `encoding/json` would write for the same
//! Go value, with the rules listed in the [module documentation](super).

use std::borrow::Cow;

use base64::Engine;
use serde_json::{Map, Value};

use super::MAX_DEPTH;
use super::tables::{Base, Card, Field, Schema};
use super::wire::{Reader, Wire, lossy};

/// A decoding failure below the top level, with the JSON path to it
/// (collected innermost first while unwinding).
#[derive(Debug)]
pub(super) struct Fail {
    pub(super) path: Vec<String>,
    pub(super) detail: String,
}

impl Fail {
    pub(super) fn new(detail: impl Into<String>) -> Self {
        Self {
            path: Vec::new(),
            detail: detail.into(),
        }
    }

    pub(super) fn at(mut self, segment: impl Into<String>) -> Self {
        self.path.push(segment.into());
        self
    }

    pub(super) fn path(&self) -> String {
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

pub(super) fn decode_message(
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
pub(super) fn is_zero(value: &Value) -> bool {
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
pub(super) fn concat_payloads<'a>(values: &[Wire<'a>]) -> Result<Cow<'a, [u8]>, Fail> {
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

pub(super) fn wrong_wire(value: &Wire<'_>, expected: &str) -> Fail {
    Fail::new(format!("found {}, expected {expected}", value.describe()))
}

/// The value of a non-list, non-map field from all its occurrences
/// (scalars: the last one wins; messages: merged), or its zero value.
pub(super) fn decode_single(
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

pub(super) fn zero_scalar(base: Base) -> Value {
    match base {
        Base::String | Base::Bytes => Value::String(String::new()),
        Base::Int32 | Base::Int64 => Value::from(0),
        Base::Bool => Value::Bool(false),
        _ => Value::Null,
    }
}

pub(super) fn decode_scalar(base: Base, value: &Wire<'_>) -> Result<Value, Fail> {
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
pub(super) fn decode_struct(
    schema: &Schema,
    base: Base,
    payload: &[u8],
    depth: usize,
) -> Result<Value, Fail> {
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

pub(super) fn for_each_field<'a>(
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

pub(super) fn string_of(value: &Wire<'_>) -> Result<String, Fail> {
    match value {
        Wire::Bytes(b) => Ok(lossy(b)),
        other => Err(wrong_wire(other, "a length-delimited value")),
    }
}

pub(super) fn varint_of(value: &Wire<'_>) -> Result<u64, Fail> {
    match value {
        Wire::Varint(v) => Ok(*v),
        other => Err(wrong_wire(other, "a varint")),
    }
}

/// `metav1.Time`: no payload is the zero time, which is JSON `null`;
/// otherwise RFC 3339 in UTC with whole seconds, as `metav1.Time` marshals.
pub(super) fn decode_time(payload: &[u8]) -> Result<Value, Fail> {
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
pub(super) fn decode_list_item(
    schema: &Schema,
    field: &Field,
    value: Wire<'_>,
    depth: usize,
    items: &mut Vec<Value>,
) -> Result<(), Fail> {
    match (field.base, value) {
        (base, Wire::Bytes(b)) if base.is_varint() => {
            let mut packed = Reader::new(b);
            while !packed.at_end() {
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
pub(super) fn decode_map_entry(
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
