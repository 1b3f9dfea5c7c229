//! Values printed as Go prints them (`%q`, `%v`, `%#v`), for error
//! messages that match the real server's word for word.

use std::fmt;

use serde_json::{Number, Value};

/// A string quoted as Go's `%q` quotes it.
pub fn go_quote(s: &str) -> String {
    use fmt::Write;
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A float as Go's `%v` prints it (exponent below 1e-4 and from 1e21).
pub(super) fn go_float(f: f64) -> String {
    if f.is_finite() && f != 0.0 {
        let exp = f.abs().log10().floor();
        if !(-4.0..21.0).contains(&exp) {
            let s = format!("{f:e}");
            if let Some((mantissa, e)) = s.split_once('e')
                && let Ok(e) = e.parse::<i32>()
            {
                let sign = if e < 0 { '-' } else { '+' };
                return format!("{mantissa}e{sign}{:02}", e.abs());
            }
        }
    }
    format!("{f}")
}

pub(super) fn go_number(n: &Number) -> String {
    match n.as_f64() {
        Some(f) if n.is_f64() => go_float(f),
        _ => n.to_string(),
    }
}

/// A decoded JSON value as a field error prints it (`%v` for scalars,
/// `%q` for strings, `%#v` for maps and slices).
pub fn go_value(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => go_number(n),
        Value::String(s) => go_quote(s),
        other => go_sharp(other),
    }
}

fn go_sharp(v: &Value) -> String {
    match v {
        Value::Null => "interface {}(nil)".into(),
        Value::Object(m) => {
            let entries: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}:{}", go_quote(k), go_sharp(v)))
                .collect();
            format!("map[string]interface {{}}{{{}}}", entries.join(", "))
        }
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(go_sharp).collect();
            format!("[]interface {{}}{{{}}}", items.join(", "))
        }
        other => go_value(other),
    }
}
