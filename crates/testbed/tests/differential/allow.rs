//! The checked-in allow-list: differences that are out of scope for the
//! embedded server, one per line as `<step-id glob> <json-path glob>  # reason`.
//! `*` matches any run of characters (slashes included). An entry that no
//! difference used is stale and fails the suite, unless its step-id glob
//! starts with `?`: such an entry covers a difference that depends on timing
//! (when the real server's own controllers write) and may not show up in
//! every run.

use super::compare::Diff;

pub struct Entry {
    pub line: usize,
    pub id: String,
    pub path: String,
    pub reason: String,
    pub used: usize,
    /// Marked `?`: not stale when unused.
    pub optional: bool,
}

pub fn parse(text: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let (rule, reason) = match raw.split_once('#') {
            Some((r, why)) => (r.trim(), why.trim()),
            None => (raw.trim(), ""),
        };
        if rule.is_empty() {
            continue;
        }
        let mut parts = rule.split_whitespace();
        let (Some(id), Some(path), None) = (parts.next(), parts.next(), parts.next()) else {
            panic!(
                "allow-list line {}: expected `<id> <path>  # reason`",
                i + 1
            );
        };
        assert!(
            !reason.is_empty(),
            "allow-list line {}: every entry needs a reason",
            i + 1
        );
        let (id, optional) = match id.strip_prefix('?') {
            Some(rest) => (rest, true),
            None => (id, false),
        };
        out.push(Entry {
            line: i + 1,
            optional,
            id: id.to_owned(),
            path: path.to_owned(),
            reason: reason.to_owned(),
            used: 0,
        });
    }
    out
}

/// The index of the first entry that allows `d` (and counts the use).
pub fn allows(entries: &mut [Entry], d: &Diff) -> Option<usize> {
    let i = entries
        .iter()
        .position(|e| glob(&e.id, &d.id) && glob(&e.path, &d.path))?;
    entries[i].used += 1;
    Some(i)
}

/// `*` matches any (possibly empty) run of characters.
pub fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if text.len() < first.len() + last.len() || !text.starts_with(first) || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(at) => rest = &rest[at + mid.len()..],
            None => return false,
        }
    }
    true
}
