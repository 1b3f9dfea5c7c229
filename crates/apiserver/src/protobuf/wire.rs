//! The protobuf wire format (<https://protobuf.dev/programming-guides/encoding/>):
//! a [`Reader`] that walks the fields of a message, and a [`Writer`] that
//! builds one. Every protobuf byte the server reads or writes goes through
//! here.

/// The wire type of varint fields (integers, booleans, enums).
pub(crate) const VARINT: u8 = 0;
/// The wire type of length-delimited fields (strings, bytes, messages,
/// packed lists).
pub(crate) const LEN: u8 = 2;

/// One field value as it is on the wire.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Wire<'a> {
    Varint(u64),
    /// 8 bytes; no field in the tables has this encoding.
    Fixed64,
    Bytes(&'a [u8]),
    /// 4 bytes; no field in the tables has this encoding.
    Fixed32,
}

impl Wire<'_> {
    pub(crate) fn describe(&self) -> &'static str {
        match self {
            Wire::Varint(_) => "a varint",
            Wire::Fixed64 => "a fixed64",
            Wire::Bytes(_) => "a length-delimited value",
            Wire::Fixed32 => "a fixed32",
        }
    }
}

/// Reads the fields of one message, in order.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn varint(&mut self) -> Result<u64, String> {
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

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
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

    /// Whether every byte has been read.
    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// The next `(field number, value)`, or `None` at the end.
    pub(crate) fn next_field(&mut self) -> Result<Option<(u32, Wire<'a>)>, String> {
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

/// Go keeps invalid UTF-8 in strings and `encoding/json` replaces it with
/// U+FFFD; do the same.
pub(crate) fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A message being built: fields are appended in the order they are written,
/// as protobuf encoders do.
#[derive(Clone, Debug, Default)]
pub(crate) struct Writer(Vec<u8>);

impl Writer {
    /// An empty message.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Appends a base-128 varint (no field key).
    pub(crate) fn varint(&mut self, mut v: u64) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(byte);
                return;
            }
            self.0.push(byte | 0x80);
        }
    }

    /// Appends the key of field `field` with wire type `wire_type`.
    pub(crate) fn key(&mut self, field: u32, wire_type: u8) {
        self.varint((u64::from(field) << 3) | u64::from(wire_type));
    }

    /// A varint field.
    pub(crate) fn uint(&mut self, field: u32, v: u64) {
        self.key(field, VARINT);
        self.varint(v);
    }

    /// A length-delimited field.
    pub(crate) fn bytes(&mut self, field: u32, bytes: &[u8]) {
        self.key(field, LEN);
        self.varint(bytes.len() as u64);
        self.0.extend_from_slice(bytes);
    }

    /// An embedded message.
    pub(crate) fn message(&mut self, field: u32, body: Writer) {
        self.bytes(field, &body.0);
    }

    /// Appends bytes as they are (an already encoded part of a message,
    /// or a malformed one in tests).
    #[cfg(test)]
    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    /// The message written so far.
    #[cfg(test)]
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The encoded message.
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_fields_read_back() {
        let mut inner = Writer::new();
        inner.uint(1, 300);
        let mut w = Writer::new();
        w.bytes(1, b"abc");
        w.message(2, inner);
        w.uint(3, u64::MAX);
        let mut r = Reader::new(w.as_bytes());
        let Some((1, Wire::Bytes(b"abc"))) = r.next_field().unwrap() else {
            panic!("field 1")
        };
        let Some((2, Wire::Bytes(nested))) = r.next_field().unwrap() else {
            panic!("field 2")
        };
        assert!(matches!(
            Reader::new(nested).next_field().unwrap(),
            Some((1, Wire::Varint(300)))
        ));
        assert!(matches!(
            r.next_field().unwrap(),
            Some((3, Wire::Varint(u64::MAX)))
        ));
        assert!(r.next_field().unwrap().is_none());
    }
}
