//! A line diff for people: `-` lines of the old text, `+` lines of the new
//! one, with up to three lines of context around each change and `@@` between
//! distant hunks (a longest-common-subsequence diff; the texts are small
//! rendered objects).

/// Lines of context kept around a change.
const CONTEXT: usize = 3;

/// The diff of `old` and `new`; empty when they are equal.
pub fn diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    // lcs[i][j]: length of the common subsequence of a[i..] and b[j..].
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut ops: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', a[i]));
            i += 1;
        } else {
            ops.push(('+', b[j]));
            j += 1;
        }
    }
    let changed: Vec<usize> = (0..ops.len()).filter(|&k| ops[k].0 != ' ').collect();
    if changed.is_empty() {
        return String::new();
    }
    let keep = |k: usize| {
        changed
            .iter()
            .any(|&c| k + CONTEXT >= c && k <= c + CONTEXT)
    };
    let mut out = String::new();
    let mut last: Option<usize> = None;
    for (k, (sign, line)) in ops.iter().enumerate() {
        if !keep(k) {
            continue;
        }
        if last.is_some_and(|l| l + 1 != k) || (last.is_none() && k > 0) {
            out.push_str("@@\n");
        }
        out.push(*sign);
        out.push(' ');
        out.push_str(line);
        out.push('\n');
        last = Some(k);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::diff;

    #[test]
    fn equal_texts_have_no_diff() {
        assert_eq!(diff("a\nb\n", "a\nb\n"), "");
    }

    #[test]
    fn changed_line_with_context() {
        let old = "1\n2\n3\n4\n5\n6\n7\n8\n9\n";
        let new = "1\n2\n3\n4\nfive\n6\n7\n8\n9\n";
        assert_eq!(
            diff(old, new),
            "@@\n  2\n  3\n  4\n- 5\n+ five\n  6\n  7\n  8\n"
        );
    }

    #[test]
    fn additions_and_removals() {
        assert_eq!(diff("a\n", "a\nb\n"), "  a\n+ b\n");
        assert_eq!(diff("a\nb\n", "b\n"), "- a\n  b\n");
    }
}
