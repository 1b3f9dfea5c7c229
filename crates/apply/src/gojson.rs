//! JSON text exactly as Go's `encoding/json.Marshal` writes a value decoded
//! into `map[string]interface{}` (what Metacontroller stores in the
//! `metacontroller.k8s.io/last-applied-configuration` annotation).
//!
//! Byte-for-byte equality matters: the dynamic-apply no-op check compares the
//! rewritten annotation with the stored one, so a different encoding of the
//! same desired object would look like a change and trigger an update (or,
//! with `Recreate`, a delete) of every child created by Metacontroller.
//!
//! Rules reproduced from Go (1.22+):
//! * object keys sorted by byte order, no whitespace;
//! * `<`, `>`, `&`, U+2028 and U+2029 escaped as `\u003c`, `\u003e`,
//!   `\u0026`, `\u2028`, `\u2029`; `\n`, `\r`, `\t`, `\b`, `\f` short
//!   escapes; other control characters as `\u00XX` (lower-case hex);
//! * floating-point numbers in shortest form, `1e+21`/`1e-7` style exponents
//!   outside `[1e-6, 1e21)`, integral floats without a fraction (`3`).
//!
//! Integers above `i64::MAX` are printed exactly, whereas Go would have
//! decoded them as `float64`; Kubernetes objects do not contain such values.

use serde_json::Value;

/// Encodes `v` like Go's `json.Marshal`.
pub fn to_string(v: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, v);
    out
}

fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.push_str(&i.to_string());
            } else if let Some(u) = n.as_u64() {
                out.push_str(&u.to_string());
            } else if let Some(f) = n.as_f64() {
                out.push_str(&format_float_json(f));
            } else {
                out.push_str(&n.to_string());
            }
        }
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (k, val)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, k);
                out.push(':');
                write_value(out, val);
            }
            out.push('}');
        }
    }
}

fn write_string(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{0}'..='\u{1f}' => {
                let b = c as u32 as u8;
                out.push_str("\\u00");
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 0xf) as usize] as char);
            }
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Splits Rust's shortest `{:e}` rendering into mantissa and exponent.
fn shortest_exp_parts(f: f64) -> (String, i32) {
    let s = format!("{f:e}");
    match s.split_once('e') {
        Some((mantissa, exp)) => (mantissa.to_string(), exp.parse().unwrap_or(0)),
        None => (s, 0),
    }
}

/// Go's `encoding/json` float64 encoding.
fn format_float_json(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let (mantissa, exp) = shortest_exp_parts(f);
        if exp < 0 {
            // Go prints "e-07" and then strips the leading zero.
            format!("{mantissa}e-{}", -exp)
        } else {
            format!("{mantissa}e+{exp:02}")
        }
    } else {
        format!("{f}")
    }
}

/// Go's `fmt` `%v` rendering of a float64 (`%g` with shortest precision,
/// exponent form when the decimal exponent is below -4 or at least 6).
pub(crate) fn format_float_go_v(f: f64) -> String {
    if f == 0.0 {
        return format!("{f}");
    }
    let (mantissa, exp) = shortest_exp_parts(f);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        format!("{f}")
    }
}

/// Go's `fmt` `%v` rendering of a JSON-decoded value (`<nil>`, `true`,
/// `80`, `map[a:1 b:x]`, `[1 2]`), used to key list-map items.
pub(crate) fn format_go_v(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(u) = n.as_u64() {
                u.to_string()
            } else {
                format_float_go_v(n.as_f64().unwrap_or(0.0))
            }
        }
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(format_go_v).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            let parts: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| format!("{k}:{}", format_go_v(v)))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    #[test]
    fn go_v_table() {
        let cases: Vec<(Value, &str)> = vec![
            (json!(null), "<nil>"),
            (json!(true), "true"),
            (json!(80), "80"),
            (json!(-1), "-1"),
            (json!(80.0), "80"),
            (json!(80.5), "80.5"),
            (json!(123456.0), "123456"),
            (json!(1234567.0), "1.234567e+06"),
            (json!(1e6), "1e+06"),
            (json!(0.0001), "0.0001"),
            (json!(0.00001), "1e-05"),
            (json!(0.0), "0"),
            (json!("http"), "http"),
            (json!([1, "a"]), "[1 a]"),
            (json!({"b": 1, "a": "x"}), "map[a:x b:1]"),
        ];
        for (v, want) in cases {
            assert_eq!(format_go_v(&v), want, "{v:?}");
        }
    }
}
