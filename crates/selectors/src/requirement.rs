//! One condition of a selector, `key <operator> values`, with Kubernetes'
//! validation (`labels.NewRequirement`), matching
//! (`labels.Requirement.Matches`) and canonical string form
//! (`labels.Requirement.String`), all from
//! `k8s.io/apimachinery/pkg/labels/selector.go`.

use std::fmt;

use crate::error::{InvalidField, SelectorError};
use crate::labels::Labels;
use crate::validation::{label_key_errors, label_value_errors};

/// Relation between a key and its values (`k8s.io/apimachinery/pkg/selection`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `key=value`
    Equals,
    /// `key==value`
    DoubleEquals,
    /// `key!=value`; also matches when the key is absent.
    NotEquals,
    /// `key in (a,b)`
    In,
    /// `key notin (a,b)`; also matches when the key is absent.
    NotIn,
    /// `key`
    Exists,
    /// `!key`
    DoesNotExist,
    /// `key>n`: the label value, parsed as an integer, is greater than `n`.
    GreaterThan,
    /// `key<n`: the label value, parsed as an integer, is less than `n`.
    LessThan,
}

impl Operator {
    /// The operator's name as Kubernetes spells it in `selection.Operator`
    /// (`=`, `==`, `!=`, `in`, `notin`, `exists`, `!`, `gt`, `lt`).
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => "in",
            Operator::NotIn => "notin",
            Operator::Exists => "exists",
            Operator::DoesNotExist => "!",
            Operator::GreaterThan => "gt",
            Operator::LessThan => "lt",
        }
    }

    /// Maps a `metav1.LabelSelectorRequirement.operator`
    /// (`In`, `NotIn`, `Exists`, `DoesNotExist`).
    pub fn from_label_selector_operator(op: &str) -> Result<Self, SelectorError> {
        match op {
            "In" => Ok(Operator::In),
            "NotIn" => Ok(Operator::NotIn),
            "Exists" => Ok(Operator::Exists),
            "DoesNotExist" => Ok(Operator::DoesNotExist),
            other => Err(SelectorError::UnknownOperator(other.to_string())),
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One condition of a selector: `key <operator> values`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requirement {
    /// Label key.
    pub key: String,
    /// Relation.
    pub operator: Operator,
    /// Values; exactly one for `=`, `==`, `!=`, `>`, `<`; at least one for
    /// `in`/`notin`; none for `exists`/`!`.
    pub values: Vec<String>,
}

fn json_list(values: &[String]) -> String {
    serde_json::to_string(values).unwrap_or_else(|_| "[]".to_string())
}

impl Requirement {
    /// Builds a validated requirement (`labels.NewRequirement`): the key must
    /// be a qualified name, the value count must suit the operator, `>`/`<`
    /// values must be integers and every value must be a valid label value.
    pub fn new(
        key: impl Into<String>,
        operator: Operator,
        values: Vec<String>,
    ) -> Result<Self, SelectorError> {
        Self::build(key.into(), operator, values, true)
    }

    /// Like [`Requirement::new`] but without label-value syntax checks on the
    /// values (used for annotation selectors, whose values are free text).
    pub fn new_with_free_values(
        key: impl Into<String>,
        operator: Operator,
        values: Vec<String>,
    ) -> Result<Self, SelectorError> {
        Self::build(key.into(), operator, values, false)
    }

    pub(crate) fn build(
        key: String,
        operator: Operator,
        values: Vec<String>,
        check_values: bool,
    ) -> Result<Self, SelectorError> {
        let mut errs = Vec::new();
        let key_errs = label_key_errors(&key);
        if !key_errs.is_empty() {
            errs.push(InvalidField {
                field: "key".to_string(),
                value: format!("{key:?}"),
                detail: key_errs.join("; "),
            });
        }
        let count_error = |detail: &str| InvalidField {
            field: "values".to_string(),
            value: json_list(&values),
            detail: detail.to_string(),
        };
        match operator {
            Operator::In | Operator::NotIn => {
                if values.is_empty() {
                    errs.push(count_error(
                        "for 'in', 'notin' operators, values set can't be empty",
                    ));
                }
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals => {
                if values.len() != 1 {
                    errs.push(count_error(
                        "exact-match compatibility requires one single value",
                    ));
                }
            }
            Operator::Exists | Operator::DoesNotExist => {
                if !values.is_empty() {
                    errs.push(count_error(
                        "values set must be empty for exists and does not exist",
                    ));
                }
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errs.push(count_error(
                        "for 'Gt', 'Lt' operators, exactly one value is required",
                    ));
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errs.push(InvalidField {
                            field: format!("values[{i}]"),
                            value: format!("{v:?}"),
                            detail: "for 'Gt', 'Lt' operators, the value must be an integer"
                                .to_string(),
                        });
                    }
                }
            }
        }
        if check_values {
            for (i, v) in values.iter().enumerate() {
                let value_errs = label_value_errors(v);
                if !value_errs.is_empty() {
                    errs.push(InvalidField {
                        field: format!("values[{i}][{key}]"),
                        value: format!("{v:?}"),
                        detail: value_errs.join("; "),
                    });
                }
            }
        }
        if errs.is_empty() {
            Ok(Requirement {
                key,
                operator,
                values,
            })
        } else {
            Err(SelectorError::Invalid(errs))
        }
    }

    fn has_value(&self, v: &str) -> bool {
        self.values.iter().any(|x| x == v)
    }

    /// Whether the label set satisfies this requirement
    /// (`labels.Requirement.Matches`).
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                labels.get(&self.key).is_some_and(|v| self.has_value(v))
            }
            Operator::NotIn | Operator::NotEquals => {
                labels.get(&self.key).is_none_or(|v| !self.has_value(v))
            }
            Operator::Exists => labels.has(&self.key),
            Operator::DoesNotExist => !labels.has(&self.key),
            Operator::GreaterThan | Operator::LessThan => {
                let Some(actual) = labels.get(&self.key).and_then(|v| v.parse::<i64>().ok()) else {
                    return false;
                };
                let [wanted] = self.values.as_slice() else {
                    return false;
                };
                let Ok(wanted) = wanted.parse::<i64>() else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    actual > wanted
                } else {
                    actual < wanted
                }
            }
        }
    }
}

/// Canonical string form (`labels.Requirement.String`): `!k`, `k`, `k=v`,
/// `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k>n`, `k<n`; several
/// values are printed sorted.
impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.operator {
            Operator::Exists => return f.write_str(&self.key),
            Operator::DoesNotExist => return write!(f, "!{}", self.key),
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => " in ",
            Operator::NotIn => " notin ",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
        };
        let values = if self.values.len() == 1 {
            self.values[0].clone()
        } else {
            let mut sorted: Vec<&str> = self.values.iter().map(String::as_str).collect();
            sorted.sort_unstable();
            sorted.join(",")
        };
        match self.operator {
            Operator::In | Operator::NotIn => write!(f, "{}{op}({values})", self.key),
            _ => write!(f, "{}{op}{values}", self.key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirement_constructor_table() {
        use Operator::*;
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let long = "a".repeat(254);
        // (key, op, values, expected error fields)
        let cases: Vec<(&str, Operator, Vec<String>, Vec<&str>)> = vec![
            ("x1", In, s(&[]), vec!["values"]),
            ("x2", NotIn, s(&[]), vec!["values"]),
            ("x3", In, s(&["foo"]), vec![]),
            ("x4", NotIn, s(&["foo"]), vec![]),
            ("x5", Equals, s(&["bar", "foo"]), vec!["values"]),
            ("x6", Exists, s(&[]), vec![]),
            ("x7", DoesNotExist, s(&[]), vec![]),
            ("x8", Exists, s(&["foo"]), vec!["values"]),
            ("x9", In, s(&["bar"]), vec![]),
            ("x11", GreaterThan, s(&["1"]), vec![]),
            ("x12", LessThan, s(&["6"]), vec![]),
            ("x13", GreaterThan, s(&[]), vec!["values"]),
            ("x14", GreaterThan, s(&["bar"]), vec!["values[0]"]),
            ("x14b", GreaterThan, s(&["-1"]), vec!["values[0][x14b]"]),
            ("x14c", GreaterThan, s(&["1", "2"]), vec!["values"]),
            ("x15", LessThan, s(&["bar"]), vec!["values[0]"]),
            (&long, Exists, s(&[]), vec!["key"]),
            ("x16", Equals, vec![long.clone()], vec!["values[0][x16]"]),
            ("x17", Equals, s(&["a b"]), vec!["values[0][x17]"]),
            ("x18", NotEquals, s(&[]), vec!["values"]),
            ("x19", DoubleEquals, s(&[""]), vec![]),
            ("", Exists, s(&[]), vec!["key"]),
            ("a/b", Exists, s(&[]), vec![]),
            ("a_b.c-d", Exists, s(&[]), vec![]),
        ];
        for (key, op, values, want_fields) in cases {
            match Requirement::new(key, op, values.clone()) {
                Ok(_) => assert!(want_fields.is_empty(), "{key} {op:?} {values:?}"),
                Err(SelectorError::Invalid(errs)) => {
                    let got: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
                    assert_eq!(got, want_fields, "{key} {op:?} {values:?}");
                }
                Err(other) => panic!("unexpected error {other:?}"),
            }
        }
    }

    #[test]
    fn operator_names() {
        use Operator::*;
        let cases = [
            (Equals, "="),
            (DoubleEquals, "=="),
            (NotEquals, "!="),
            (In, "in"),
            (NotIn, "notin"),
            (Exists, "exists"),
            (DoesNotExist, "!"),
            (GreaterThan, "gt"),
            (LessThan, "lt"),
        ];
        for (op, s) in cases {
            assert_eq!(op.to_string(), s);
        }
        for (s, op) in [
            ("In", In),
            ("NotIn", NotIn),
            ("Exists", Exists),
            ("DoesNotExist", DoesNotExist),
        ] {
            assert_eq!(Operator::from_label_selector_operator(s), Ok(op));
        }
    }
}
