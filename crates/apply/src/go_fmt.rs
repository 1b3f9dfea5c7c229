//! Go's `fmt` `%v` rendering of values decoded from JSON (`<nil>`, `true`,
//! `80`, `1e+06`, `map[a:1 b:x]`, `[1 2]`), which Metacontroller uses to key
//! list-map items in its dynamic apply.

use serde_json::Value;

/// Splits Rust's shortest `{:e}` rendering into mantissa and exponent.
fn shortest_exp_parts(f: f64) -> (String, i32) {
    let s = format!("{f:e}");
    match s.split_once('e') {
        Some((mantissa, exp)) => (mantissa.to_string(), exp.parse().unwrap_or(0)),
        None => (s, 0),
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
