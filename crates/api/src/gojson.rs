//! JSON text exactly as Go's `encoding/json.Marshal` writes it: what
//! Metacontroller sends to hooks and stores in the
//! `metacontroller.k8s.io/last-applied-configuration` annotation.
//!
//! Byte-for-byte equality matters: the dynamic-apply no-op check compares
//! the rewritten annotation with the stored one, so a different encoding of
//! the same desired object would look like a change and trigger an update
//! (or, with `Recreate`, a delete) of every child Metacontroller created.
//!
//! Rules reproduced from Go (1.22+, `encoding/json/encode.go`):
//! * map keys sorted by byte order (a `serde_json::Map` is a sorted map),
//!   struct fields in declaration order, no whitespace;
//! * `<`, `>`, `&`, U+2028 and U+2029 escaped as `\u003c`, `\u003e`,
//!   `\u0026`, `\u2028`, `\u2029`; `\n`, `\r`, `\t`, `\b`, `\f` short
//!   escapes; other control characters as `\u00XX` (lower-case hex);
//! * floating-point numbers in shortest form, `1e+21`/`1e-7` style exponents
//!   outside `[1e-6, 1e21)`, integral floats without a fraction (`3`).
//!
//! Integers above `i64::MAX` are printed exactly, whereas Go would have
//! decoded them as `float64`; Kubernetes objects do not contain such values.

use std::io;

use serde::Serialize;
use serde_json::Value;

/// Serializes like Go's `encoding/json`: `<`, `>`, `&`, U+2028 and U+2029
/// in strings are written as `\u` escapes, and floating-point numbers use
/// Go's shortest form (`100`, `1.5`, `1e+21`, `1e-7`).
pub fn to_go_json<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoFormatter);
    value.serialize(&mut ser)?;
    Ok(out)
}

/// `serde_json` formatter reproducing Go's string escaping and float output.
#[derive(Clone, Copy, Debug, Default)]
pub struct GoFormatter;

impl serde_json::ser::Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let escaped = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..i])?;
            writer.write_all(escaped.as_bytes())?;
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }

    fn write_f64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        let abs = value.abs();
        let text = if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
            go_exponent(format!("{value:e}"))
        } else {
            format!("{value}")
        };
        writer.write_all(text.as_bytes())
    }

    fn write_f32<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f32) -> io::Result<()> {
        let abs = value.abs();
        let text = if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
            go_exponent(format!("{value:e}"))
        } else {
            format!("{value}")
        };
        writer.write_all(text.as_bytes())
    }
}

/// Rust writes `1e21` / `1.5e-7`; Go writes `1e+21` / `1.5e-7`.
fn go_exponent(rust: String) -> String {
    match rust.split_once('e') {
        Some((mantissa, exp)) if !exp.starts_with('-') => format!("{mantissa}e+{exp}"),
        _ => rust,
    }
}

/// Encodes a JSON value like Go's `json.Marshal` of the same value decoded
/// into `interface{}`.
pub fn to_string(value: &Value) -> String {
    let bytes = to_go_json(value).expect("a JSON value always serializes");
    String::from_utf8(bytes).expect("serde_json writes UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_json_escaping_and_floats() {
        let value = json!({"s": "a<b>&c\u{2028}\u{2029}\"\\\n\u{1}é", "f": [1.5, 100.0, 1e21, 1.5e-7, 0.000001, -0.0, 0.0, 12.0e300, 3]});
        let text = String::from_utf8(to_go_json(&value).unwrap()).unwrap();
        assert_eq!(
            text,
            r#"{"f":[1.5,100,1e+21,1.5e-7,0.000001,-0,0,1.2e+301,3],"s":"a\u003cb\u003e\u0026c\u2028\u2029\"\\\n\u0001é"}"#
        );
    }

    #[test]
    fn encoding_table() {
        // Expected strings are what Go's json.Marshal produces for the same
        // JSON decoded into interface{} (numbers as int64 when integral).
        let cases: Vec<(Value, &str)> = vec![
            (json!(null), "null"),
            (json!(true), "true"),
            (json!({}), "{}"),
            (json!([]), "[]"),
            (
                json!({"b": 1, "a": [1, "x", null], "C": {}}),
                r#"{"C":{},"a":[1,"x",null],"b":1}"#,
            ),
            (json!({"é": 1, "z": 2, "a": 3}), r#"{"a":3,"z":2,"é":1}"#),
            (json!(-7), "-7"),
            (json!(u64::MAX), "18446744073709551615"),
            (json!(1.5), "1.5"),
            (json!(3.0), "3"),
            (json!(-0.0), "-0"),
            (json!(0.1), "0.1"),
            (json!(1e20), "100000000000000000000"),
            (json!(1e21), "1e+21"),
            (json!(1.5e300), "1.5e+300"),
            (json!(0.000001), "0.000001"),
            (json!(1e-7), "1e-7"),
            (json!(-2.5e-10), "-2.5e-10"),
            (json!("plain"), r#""plain""#),
            (json!("q\"b\\s/"), r#""q\"b\\s/""#),
            (
                json!("<a href='x'>&</a>"),
                r#""\u003ca href='x'\u003e\u0026\u003c/a\u003e""#,
            ),
            (
                json!("\n\r\t\u{8}\u{c}\u{0}\u{1f}\u{7f}"),
                "\"\\n\\r\\t\\b\\f\\u0000\\u001f\u{7f}\"",
            ),
            (json!("\u{2028}\u{2029}ü😀"), "\"\\u2028\\u2029ü😀\""),
        ];
        for (v, want) in cases {
            assert_eq!(to_string(&v), want, "{v:?}");
        }
    }
}
