//! Field-by-field comparison of two normalised records.

use serde_json::Value;

/// One difference: where, and what each side had (`None` = absent).
#[derive(Clone, Debug)]
pub struct Diff {
    pub id: String,
    pub path: String,
    pub embedded: Option<Value>,
    pub real: Option<Value>,
}

/// Every path where `embedded` and `real` differ.
pub fn diff(id: &str, embedded: &Value, real: &Value) -> Vec<Diff> {
    let mut out = Vec::new();
    walk(id, "", Some(embedded), Some(real), &mut out);
    out
}

fn walk(id: &str, path: &str, a: Option<&Value>, b: Option<&Value>, out: &mut Vec<Diff>) {
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let here = format!("{path}/{}", k.replace('~', "~0").replace('/', "~1"));
                walk(id, &here, x.get(k), y.get(k), out);
            }
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) => {
            for i in 0..x.len().max(y.len()) {
                walk(id, &format!("{path}/{i}"), x.get(i), y.get(i), out);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(Diff {
            id: id.to_owned(),
            path: path.to_owned(),
            embedded: a.cloned(),
            real: b.cloned(),
        }),
    }
}
