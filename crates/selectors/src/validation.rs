//! Syntax of label keys and values (`content.IsLabelKey`,
//! `content.IsLabelValue` in
//! `k8s.io/apimachinery/pkg/api/validate/content/kube.go`), with
//! Kubernetes' error wording.

/// Maximum length of the name part of a label key, and of a label value.
pub const LABEL_MAX_LENGTH: usize = 63;
/// Maximum length of the DNS-subdomain prefix of a label key.
pub const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;

const LABEL_KEY_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_KEY_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";

fn regex_error(msg: &str, re: &str, examples: &[&str]) -> String {
    let mut out = String::from(msg);
    out.push_str(" (e.g. ");
    for (i, ex) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push('\'');
        out.push_str(ex);
        out.push_str("', ");
    }
    out.push_str("regex used for validation is '");
    out.push_str(re);
    out.push_str("')");
    out
}

fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} bytes")
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn is_label_name_syntax(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*`
fn is_dns1123_subdomain_syntax(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
            match (b.first(), b.last()) {
                (Some(first), Some(last)) => {
                    alnum(first) && alnum(last) && b.iter().all(|c| alnum(c) || *c == b'-')
                }
                _ => false,
            }
        })
}

/// Problems with a label (or annotation) key: a qualified name, i.e. an
/// optional DNS-subdomain prefix and `/`, then a name of at most 63
/// characters of `[-A-Za-z0-9_.]` starting and ending alphanumeric.
/// Empty when the key is valid (`content.IsLabelKey`).
pub fn label_key_errors(key: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = key.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                if prefix.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
                    errs.push(format!(
                        "prefix part {}",
                        max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH)
                    ));
                }
                if !is_dns1123_subdomain_syntax(prefix) {
                    errs.push(format!(
                        "prefix part {}",
                        regex_error(
                            DNS1123_SUBDOMAIN_ERR,
                            DNS1123_SUBDOMAIN_FMT,
                            &["example.com"]
                        )
                    ));
                }
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a valid label key {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    LABEL_KEY_ERR,
                    LABEL_KEY_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > LABEL_MAX_LENGTH {
        errs.push(format!("name part {}", max_len_error(LABEL_MAX_LENGTH)));
    }
    if !is_label_name_syntax(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                LABEL_KEY_ERR,
                LABEL_KEY_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// Problems with a label value: empty, or at most 63 characters of
/// `[-A-Za-z0-9_.]` starting and ending alphanumeric. Empty when valid
/// (`content.IsLabelValue`).
pub fn label_value_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_MAX_LENGTH {
        errs.push(max_len_error(LABEL_MAX_LENGTH));
    }
    if !value.is_empty() && !is_label_name_syntax(value) {
        errs.push(regex_error(
            LABEL_VALUE_ERR,
            &format!("({LABEL_KEY_FMT})?"),
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::requirement::{Operator, Requirement};

    #[test]
    fn key_and_value_validation_messages() {
        assert!(label_key_errors("app").is_empty());
        assert!(label_key_errors("example.com/app").is_empty());
        assert!(label_key_errors("app.kubernetes.io/name").is_empty());
        assert_eq!(
            label_key_errors("/app"),
            vec!["prefix part must be non-empty".to_string()]
        );
        assert_eq!(label_key_errors("a/").len(), 2); // empty name + regex
        assert!(label_key_errors("a/b/c")[0].starts_with("a valid label key must consist"));
        assert!(label_key_errors(&format!("{}/a", "b".repeat(254)))[0].contains("253 bytes"));
        assert_eq!(
            label_key_errors(&"a".repeat(64)),
            vec!["name part must be no more than 63 bytes".to_string()]
        );
        assert!(label_value_errors("").is_empty());
        assert!(label_value_errors("a").is_empty());
        assert!(label_value_errors("1.2_3-X").is_empty());
        assert_eq!(label_value_errors("a-").len(), 1);
        assert_eq!(label_value_errors(&"a".repeat(64)).len(), 1);
        assert_eq!(label_value_errors(&"-".repeat(64)).len(), 2);

        let err = Requirement::new("x", Operator::Equals, vec!["a b".into()]).expect_err("bad");
        assert_eq!(
            err.to_string(),
            "values[0][x]: Invalid value: \"a b\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        );
        let err = Requirement::new("x", Operator::In, vec![]).expect_err("bad");
        assert_eq!(
            err.to_string(),
            "values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty"
        );
        let err = Requirement::new("-", Operator::Exists, vec!["a b".into()]).expect_err("bad");
        assert!(
            err.to_string()
                .starts_with("[key: Invalid value: \"-\": name part")
        );
    }
}
