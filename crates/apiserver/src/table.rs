//! `meta.k8s.io/v1` Table output for `kubectl get` (`Accept: ...;as=Table`):
//! a Name column, then a CRD's `additionalPrinterColumns` (simple `.a.b` JSON
//! paths) or, when it declares none, an Age column. Kubernetes adds Age only
//! to a CRD version without columns of its own (`serveDefaultColumnsIfEmpty`
//! in staging/src/k8s.io/apiextensions-apiserver/pkg/apihelpers/helpers.go);
//! built-in kinds with a printer in kube-apiserver get its columns
//! ([`crate::printers`]); other types get the same Age column.

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

/// Renders an age the way `kubectl get` shows it (the thresholds of
/// `k8s.io/apimachinery/pkg/util/duration.HumanDuration`): seconds up to two
/// minutes, then minutes(+seconds), hours(+minutes), days(+hours), years(+days).
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    if secs < 0 {
        return "0s".into();
    }
    if secs < 120 {
        return format!("{secs}s");
    }
    let minutes = secs / 60;
    if minutes < 10 {
        return match secs % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = secs / 3600;
    if hours < 8 {
        return match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        return match hours % 24 {
            0 => format!("{days}d"),
            h => format!("{days}d{h}h"),
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if hours < 24 * 365 * 8 {
        return match days % 365 {
            0 => format!("{years}y"),
            d => format!("{years}y{d}d"),
        };
    }
    format!("{years}y")
}

fn age_cell(v: Option<&Value>) -> Value {
    let Some(ts) = v.and_then(Value::as_str) else {
        return json!("<unknown>");
    };
    match ts.parse::<jiff::Timestamp>() {
        Ok(t) => json!(human_duration(
            jiff::Timestamp::now().as_second() - t.as_second()
        )),
        Err(_) => json!("<invalid>"),
    }
}

pub fn table(
    info: &ResourceInfo,
    items: &[Arc<Value>],
    cont: Option<&str>,
    _single: bool,
) -> Value {
    if info.printer_columns.is_empty()
        && let Some(columns) = crate::printers::columns(&info.group, &info.kind)
    {
        return builtin_table(&columns, items, cont);
    }
    let mut cols = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0}),
    ];
    let mut paths: Vec<(String, bool)> = Vec::new();
    for c in &info.printer_columns {
        let name = c["name"].as_str().unwrap_or("");
        cols.push(json!({
            "name": name,
            "type": c["type"].as_str().unwrap_or("string"),
            "format": c["format"].as_str().unwrap_or(""),
            "description": c["description"].as_str().unwrap_or(""),
            "priority": c["priority"].as_i64().unwrap_or(0),
        }));
        paths.push((
            c["jsonPath"].as_str().unwrap_or("").to_string(),
            c["type"] == "date",
        ));
    }
    if info.printer_columns.is_empty() {
        cols.push(json!({"name": "Age", "type": "date", "format": "", "description": "CreationTimestamp is a timestamp representing the server time when this object was created.", "priority": 0}));
        paths.push((".metadata.creationTimestamp".into(), true));
    }
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let mut cells = vec![o["metadata"]["name"].clone()];
            for (p, date) in &paths {
                let v = lookup(o, p);
                cells.push(if *date {
                    age_cell(v)
                } else {
                    v.cloned().unwrap_or(Value::Null)
                });
            }
            row(o, cells)
        })
        .collect();
    table_value(cols, rows, cont)
}

fn table_value(cols: Vec<Value>, rows: Vec<Value>, cont: Option<&str>) -> Value {
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

fn row(o: &Value, cells: Vec<Value>) -> Value {
    json!({
        "cells": cells,
        "object": {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": o["metadata"],
        }
    })
}

/// The table of a built-in kind with kube-apiserver's columns.
fn builtin_table(
    columns: &[crate::printers::Column],
    items: &[Arc<Value>],
    cont: Option<&str>,
) -> Value {
    use crate::printers::Cell;
    let cols = columns
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "type": c.kind,
                "format": if matches!(c.cell, Cell::Name) { "name" } else { "" },
                "description": "",
                "priority": c.priority,
            })
        })
        .collect();
    let rows = items
        .iter()
        .map(|o| {
            let cells = columns
                .iter()
                .map(|c| match c.cell {
                    Cell::Name => o["metadata"]["name"].clone(),
                    Cell::Age => age_cell(o["metadata"].get("creationTimestamp")),
                    Cell::Computed(f) => f(o),
                })
                .collect();
            row(o, cells)
        })
        .collect();
    table_value(cols, rows, cont)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_kubectl() {
        for (secs, want) in [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (119, "119s"),
            (120, "2m"),
            (125, "2m5s"),
            (600, "10m"),
            (179 * 60, "179m"),
            (3 * 3600 + 60, "3h1m"),
            (8 * 3600, "8h"),
            (47 * 3600, "47h"),
            (48 * 3600, "2d"),
            (50 * 3600, "2d2h"),
            (10 * 86400, "10d"),
            (800 * 86400, "2y70d"),
            (9 * 365 * 86400, "9y"),
        ] {
            assert_eq!(human_duration(secs), want, "{secs}");
        }
    }

    #[test]
    fn printer_columns_are_evaluated() {
        // A kind without a dedicated printer.
        let mut info = crate::builtins::builtin_resources()
            .into_iter()
            .find(|r| crate::printers::columns(&r.group, &r.kind).is_none())
            .unwrap();
        info.printer_columns =
            vec![json!({"name": "Size", "type": "integer", "jsonPath": ".spec.size"})];
        let created = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(3600 * 30);
        let ts = created.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        let obj = Arc::new(
            json!({"metadata": {"name": "a", "creationTimestamp": ts}, "spec": {"size": 3}}),
        );
        let t = table(&info, std::slice::from_ref(&obj), None, false);
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["a", 3]),
            "no Age column added"
        );
        assert_eq!(t["columnDefinitions"].as_array().unwrap().len(), 2);

        info.printer_columns.clear();
        let t = table(&info, std::slice::from_ref(&obj), None, false);
        assert_eq!(t["rows"][0]["cells"], json!(["a", "30h"]));
        assert_eq!(t["columnDefinitions"][1]["name"], "Age");

        // A ConfigMap gets kube-apiserver's columns: Name, Data, Age.
        let mut info = crate::builtins::builtin_resources()
            .into_iter()
            .find(|r| r.kind == "ConfigMap")
            .unwrap();
        let cm = Arc::new(
            json!({"metadata": {"name": "m", "creationTimestamp": ts}, "data": {"a": "1"}, "binaryData": {"b": ""}}),
        );
        let t = table(&info, std::slice::from_ref(&cm), None, false);
        assert_eq!(t["rows"][0]["cells"], json!(["m", 2, "30h"]));
        let names: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["Name", "Data", "Age"]);
        // Printer columns of its own (none for built-ins today) would win.
        info.printer_columns =
            vec![json!({"name": "Size", "type": "integer", "jsonPath": ".spec.size"})];
        let t = table(&info, &[cm], None, false);
        assert_eq!(t["columnDefinitions"][1]["name"], "Size");
    }
}
