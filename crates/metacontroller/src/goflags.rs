//! Go `flag` package spellings, so that command lines written for
//! Metacontroller's Go binary parse unchanged.
//!
//! Go accepts one or two dashes for every flag (`-workers=3`,
//! `--workers=3`), and boolean flags take a value only after `=`, spelled as
//! `strconv.ParseBool` accepts it (`1`, `t`, `T`, `TRUE`, `true`, `True` and
//! the matching false forms; `flag/flag.go`, `strconv/atob.go`).
//! [`normalize`] rewrites single-dash long flags to the double-dash form
//! before clap sees them; [`parse_bool`] is the value parser of boolean
//! flags.

use std::ffi::OsString;

/// Rewrites `-name…` (a dash followed by at least two characters, the first
/// a letter) to `--name…`; single-letter short flags (`-h`, `-V`), negative
/// numbers and everything after a bare `--` are left alone. The first item,
/// the program name, is kept as is.
pub fn normalize(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut rest_verbatim = false;
    for (i, arg) in args.into_iter().enumerate() {
        if i == 0 || rest_verbatim {
            out.push(arg);
            continue;
        }
        let Some(text) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if text == "--" {
            rest_verbatim = true;
            out.push(arg);
            continue;
        }
        let name = text.strip_prefix('-').filter(|n| !n.starts_with('-'));
        match name {
            Some(name)
                if name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                    && name.split('=').next().is_some_and(|n| n.len() > 1) =>
            {
                out.push(format!("--{name}").into());
            }
            _ => out.push(arg),
        }
    }
    out
}

/// Parses a boolean flag value as Go's `strconv.ParseBool`.
pub fn parse_bool(text: &str) -> Result<bool, String> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!(
            "invalid boolean {text:?}: expected 1, t, T, TRUE, true, True, 0, f, F, FALSE, false or False"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(args: &[&str]) -> Vec<String> {
        normalize(args.iter().map(OsString::from))
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn single_dash_long_flags_become_double_dash() {
        assert_eq!(
            norm(&["-workers=3", "-zap-devel", "--leader-election", "-h", "-V"]),
            ["-workers=3", "--zap-devel", "--leader-election", "-h", "-V"]
        );
        assert_eq!(
            norm(&["metacontroller", "-workers=3", "-kubeconfig", "/k", "-x"]),
            ["metacontroller", "--workers=3", "--kubeconfig", "/k", "-x"]
        );
        assert_eq!(
            norm(&["mc", "--discovery-interval", "-1s", "--", "-workers"]),
            ["mc", "--discovery-interval", "-1s", "--", "-workers"]
        );
    }

    #[test]
    fn go_booleans() {
        for t in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_bool(t), Ok(true), "{t}");
        }
        for f in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_bool(f), Ok(false), "{f}");
        }
        for bad in ["yes", "tRUE", "", "2"] {
            assert!(parse_bool(bad).is_err(), "{bad}");
        }
    }
}
