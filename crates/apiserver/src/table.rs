//! `meta.k8s.io/v1` Table output for `kubectl get` (`Accept: ...;as=Table`):
//! a Name column, a CRD's `additionalPrinterColumns` (simple `.a.b` JSON
//! paths), and an Age column, the default the real server gives types
//! without a dedicated printer.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::registry::ResourceInfo;

pub fn wants_table(accept: &str) -> bool {
    accept.contains("as=Table")
}

fn lookup<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let path = path.trim().trim_start_matches('{').trim_end_matches('}');
    let mut cur = obj;
    for seg in path
        .trim_start_matches('.')
        .split('.')
        .filter(|s| !s.is_empty())
    {
        cur = cur.get(seg)?;
    }
    Some(cur)
}

pub fn table(
    info: &ResourceInfo,
    items: &[Arc<Value>],
    cont: Option<&str>,
    _single: bool,
) -> Value {
    let mut cols = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0}),
    ];
    let mut paths: Vec<String> = Vec::new();
    let mut has_age = false;
    for c in &info.printer_columns {
        let name = c["name"].as_str().unwrap_or("");
        has_age |= name.eq_ignore_ascii_case("age");
        cols.push(json!({
            "name": name,
            "type": c["type"].as_str().unwrap_or("string"),
            "format": c["format"].as_str().unwrap_or(""),
            "description": c["description"].as_str().unwrap_or(""),
            "priority": c["priority"].as_i64().unwrap_or(0),
        }));
        paths.push(c["jsonPath"].as_str().unwrap_or("").to_string());
    }
    if !has_age {
        cols.push(json!({"name": "Age", "type": "date", "format": "", "description": "CreationTimestamp is a timestamp representing the server time when this object was created.", "priority": 0}));
        paths.push(".metadata.creationTimestamp".into());
    }
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let mut cells = vec![o["metadata"]["name"].clone()];
            for p in &paths {
                cells.push(lookup(o, p).cloned().unwrap_or(Value::Null));
            }
            json!({
                "cells": cells,
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": o["metadata"],
                }
            })
        })
        .collect();
    let mut meta = json!({});
    if let Some(c) = cont {
        meta["continue"] = json!(c);
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": cols,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printer_columns_are_evaluated() {
        let mut info = crate::builtins::builtin_resources().remove(1);
        info.printer_columns =
            vec![json!({"name": "Size", "type": "integer", "jsonPath": ".spec.size"})];
        let obj = Arc::new(
            json!({"metadata": {"name": "a", "creationTimestamp": "2026-01-01T00:00:00Z"}, "spec": {"size": 3}}),
        );
        let t = table(&info, &[obj], None, false);
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["a", 3, "2026-01-01T00:00:00Z"])
        );
        assert_eq!(t["columnDefinitions"].as_array().unwrap().len(), 3);
    }
}
