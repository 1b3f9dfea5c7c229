//! Hiding secrets in what the journal keeps.
//!
//! Two kinds of secret may travel in a hook's request or answer: the
//! hook's own credentials (the `Authorization` value and the URL's user
//! info, which [`HookClient::redact`](metacontroller_hooks::HookClient::redact)
//! removes from any text, as for Events and logs) and the contents of
//! Secret objects (observed or desired children). The values of a Secret's
//! `data` and `stringData`, and its last-applied annotations (they copy
//! them), become `<redacted>`.

use serde_json::Value;

/// What replaces a secret.
pub const REDACTED: &str = "<redacted>";

/// Hides the data of every Secret found in `value` (at any depth), then
/// passes every string through `text` (the hook's credential filter).
pub fn redact_secrets(value: &mut Value, text: &dyn Fn(&str) -> String) {
    match value {
        Value::Object(map) => {
            if is_secret(map) {
                for field in ["data", "stringData"] {
                    if let Some(Value::Object(data)) = map.get_mut(field) {
                        data.values_mut()
                            .for_each(|v| *v = Value::String(REDACTED.into()));
                    }
                }
                if let Some(Value::Object(annotations)) = map
                    .get_mut("metadata")
                    .and_then(|m| m.get_mut("annotations"))
                {
                    for (name, v) in annotations.iter_mut() {
                        if name.contains("last-applied") {
                            *v = Value::String(REDACTED.into());
                        }
                    }
                }
            }
            map.values_mut().for_each(|v| redact_secrets(v, text));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| redact_secrets(v, text)),
        Value::String(s) => {
            let clean = text(s);
            if clean != *s {
                *s = clean;
            }
        }
        _ => {}
    }
}

/// Hides the values of a JSON patch on a Secret that touch its data or
/// annotations.
pub(crate) fn redact_patch(patch: &mut Value) {
    let Value::Array(ops) = patch else { return };
    for op in ops {
        let touches = op["path"].as_str().is_some_and(|p| {
            p.starts_with("/data")
                || p.starts_with("/stringData")
                || p.starts_with("/metadata/annotations")
        });
        if touches && let Some(v) = op.get_mut("value") {
            *v = Value::String(REDACTED.into());
        }
    }
}

fn is_secret(map: &serde_json::Map<String, Value>) -> bool {
    map.get("kind").and_then(Value::as_str) == Some("Secret")
        && map.get("apiVersion").and_then(Value::as_str) == Some("v1")
}
