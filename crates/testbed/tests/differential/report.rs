//! The Markdown report: every difference with its step id and JSON path,
//! whether the allow-list covers it (and why), and stale allow-list entries.

use std::fmt::Write;
use std::path::Path;

use serde_json::Value;

use super::allow::Entry;
use super::compare::Diff;

pub struct Outcome {
    pub diff: Diff,
    /// Index into the allow-list.
    pub allowed_by: Option<usize>,
}

fn show(v: &Option<Value>) -> String {
    let s = match v {
        None => "(absent)".to_owned(),
        Some(v) => v.to_string(),
    };
    let s = s.replace('|', "\\|").replace('\n', " ");
    if s.len() > 160 {
        let mut end = 160;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    } else {
        s
    }
}

pub fn render(corpus: usize, outcomes: &[Outcome], entries: &[Entry]) -> String {
    let unexpected = outcomes.iter().filter(|o| o.allowed_by.is_none()).count();
    let stale: Vec<&Entry> = entries.iter().filter(|e| e.used == 0).collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Differential report: embedded API server vs kube-apiserver\n"
    );
    let _ = writeln!(
        out,
        "- corpus: {corpus} requests\n- differences: {} ({} allowed, {unexpected} not allowed)\n- allow-list: {} entries ({} stale)\n",
        outcomes.len(),
        outcomes.len() - unexpected,
        entries.len(),
        stale.len()
    );
    let _ = writeln!(out, "## Differences not in the allow-list\n");
    table(
        &mut out,
        outcomes.iter().filter(|o| o.allowed_by.is_none()),
        entries,
    );
    let _ = writeln!(out, "\n## Stale allow-list entries\n");
    for e in &stale {
        let _ = writeln!(
            out,
            "- line {}: `{} {}` ({})",
            e.line, e.id, e.path, e.reason
        );
    }
    let _ = writeln!(out, "\n## Allowed differences\n");
    table(
        &mut out,
        outcomes.iter().filter(|o| o.allowed_by.is_some()),
        entries,
    );
    out
}

fn table<'a>(out: &mut String, rows: impl Iterator<Item = &'a Outcome>, entries: &[Entry]) {
    let _ = writeln!(out, "| step | path | embedded | real | allowed because |");
    let _ = writeln!(out, "|---|---|---|---|---|");
    for o in rows {
        let why = o
            .allowed_by
            .map(|i| format!("line {}: {}", entries[i].line, entries[i].reason))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "| {} | `{}` | {} | {} | {} |",
            o.diff.id,
            o.diff.path,
            show(&o.diff.embedded),
            show(&o.diff.real),
            why
        );
    }
}

pub fn write(path: &Path, text: &str) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("report directory");
    }
    std::fs::write(path, text).expect("writing the report");
}
