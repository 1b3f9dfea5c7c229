//! The errors of building a selector, worded like Kubernetes' own.

use std::fmt;

/// One invalid field of a requirement, rendered like Kubernetes'
/// `field.Error` of type `Invalid`: `values[0][app]: Invalid value: "a b": ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidField {
    /// Path of the offending field: `key`, `values`, `values[0]`, `values[0][<key>]`.
    pub field: String,
    /// The offending value, already rendered (quoted string or JSON list).
    pub value: String,
    /// Why the value is invalid (Kubernetes' wording).
    pub detail: String,
}

impl fmt::Display for InvalidField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: Invalid value: {}: {}",
            self.field, self.value, self.detail
        )
    }
}

/// Renders a list of field errors the way Kubernetes renders an error
/// aggregate: a single error as itself, several as `[e1, e2]` (duplicates
/// dropped).
fn render_invalid_fields(errs: &[InvalidField]) -> String {
    let mut seen: Vec<String> = Vec::new();
    for e in errs {
        let msg = e.to_string();
        if !seen.contains(&msg) {
            seen.push(msg);
        }
    }
    match seen.len() {
        0 => String::new(),
        1 => seen.remove(0),
        _ => format!("[{}]", seen.join(", ")),
    }
}

/// Why a selector could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The string form is not grammatical (wording follows
    /// `labels.Parse`, e.g. `found ',', expected: ',' or 'end of string'`).
    #[error("{0}")]
    Syntax(String),
    /// A single requirement of the string form could not be parsed; wraps the
    /// syntax or validation error found inside it.
    #[error("unable to parse requirement: {0}")]
    Requirement(Box<SelectorError>),
    /// A requirement violates key, value or value-count rules.
    #[error("{}", render_invalid_fields(.0))]
    Invalid(Vec<InvalidField>),
    /// A `matchExpressions[].operator` that is not `In`, `NotIn`, `Exists`
    /// or `DoesNotExist`.
    #[error("{0:?} is not a valid label selector operator")]
    UnknownOperator(String),
    /// The structured selector JSON does not have the `metav1.LabelSelector`
    /// shape (e.g. `matchLabels` is not an object of strings).
    #[error("invalid label selector: {0}")]
    Malformed(String),
}
