//! Kubernetes label selectors: the string form (`a=b,c in (x,y),!d`), the
//! structured `metav1.LabelSelector` form, and the DecoratorController
//! annotation selector, all compiled into one [`Selector`] with one matcher.
//!
//! Behaviour follows `k8s.io/apimachinery/pkg/labels/selector.go` (`Parse`,
//! `NewRequirement`, `Requirement.Matches`, `String`) and
//! `k8s.io/apimachinery/pkg/apis/meta/v1/helpers.go`
//! (`LabelSelectorAsSelector`), with key and value syntax from
//! `k8s.io/apimachinery/pkg/api/validate/content/kube.go`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};

/// Maximum length of the name part of a label key, and of a label value.
pub const LABEL_MAX_LENGTH: usize = 63;
/// Maximum length of the DNS-subdomain prefix of a label key.
pub const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// One invalid field of a requirement, rendered like Kubernetes'
/// `field.Error` of type `Invalid`: `values[0][app]: Invalid value: "a b": ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the offending field: `key`, `values`, `values[0]`, `values[0][<key>]`.
    pub field: String,
    /// The offending value, already rendered (quoted string or JSON list).
    pub value: String,
    /// Why the value is invalid (Kubernetes' wording).
    pub detail: String,
}

impl fmt::Display for FieldError {
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
fn render_field_errors(errs: &[FieldError]) -> String {
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
    #[error("{}", render_field_errors(.0))]
    Invalid(Vec<FieldError>),
    /// A `matchExpressions[].operator` that is not `In`, `NotIn`, `Exists`
    /// or `DoesNotExist`.
    #[error("{0:?} is not a valid label selector operator")]
    UnknownOperator(String),
    /// The structured selector JSON does not have the `metav1.LabelSelector`
    /// shape (e.g. `matchLabels` is not an object of strings).
    #[error("invalid label selector: {0}")]
    Malformed(String),
}

// ---------------------------------------------------------------------------
// Key / value syntax
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Labels
// ---------------------------------------------------------------------------

/// A read-only set of labels (or annotations) a selector can be matched
/// against.
pub trait Labels {
    /// The value of `key`, if present.
    fn get(&self, key: &str) -> Option<&str>;

    /// Whether `key` is present.
    fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
}

impl<T: Labels + ?Sized> Labels for &T {
    fn get(&self, key: &str) -> Option<&str> {
        (**self).get(key)
    }
}

impl Labels for BTreeMap<String, String> {
    fn get(&self, key: &str) -> Option<&str> {
        BTreeMap::get(self, key).map(String::as_str)
    }
}

impl<S: std::hash::BuildHasher> Labels for HashMap<String, String, S> {
    fn get(&self, key: &str) -> Option<&str> {
        HashMap::get(self, key).map(String::as_str)
    }
}

/// A JSON object of labels; entries whose value is not a string are treated
/// as absent.
impl Labels for Map<String, Value> {
    fn get(&self, key: &str) -> Option<&str> {
        Map::get(self, key).and_then(Value::as_str)
    }
}

/// An optional JSON labels object, typically the result of
/// [`object_labels`]: `None` (or anything that is not an object) is the
/// empty label set.
impl Labels for Option<&Value> {
    fn get(&self, key: &str) -> Option<&str> {
        self.and_then(|v| v.get(key)).and_then(Value::as_str)
    }
}

/// An optional JSON labels map; `None` is the empty label set.
impl Labels for Option<&Map<String, Value>> {
    fn get(&self, key: &str) -> Option<&str> {
        self.and_then(|m| m.get(key)).and_then(Value::as_str)
    }
}

/// `obj.metadata.labels`, if present.
pub fn object_labels(obj: &Value) -> Option<&Value> {
    obj.get("metadata")?.get("labels")
}

/// `obj.metadata.annotations`, if present.
pub fn object_annotations(obj: &Value) -> Option<&Value> {
    obj.get("metadata")?.get("annotations")
}

// ---------------------------------------------------------------------------
// Requirements
// ---------------------------------------------------------------------------

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

    fn build(
        key: String,
        operator: Operator,
        values: Vec<String>,
        check_values: bool,
    ) -> Result<Self, SelectorError> {
        let mut errs = Vec::new();
        let key_errs = label_key_errors(&key);
        if !key_errs.is_empty() {
            errs.push(FieldError {
                field: "key".to_string(),
                value: format!("{key:?}"),
                detail: key_errs.join("; "),
            });
        }
        let count_error = |detail: &str| FieldError {
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
                        errs.push(FieldError {
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
                    errs.push(FieldError {
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

// ---------------------------------------------------------------------------
// Selector
// ---------------------------------------------------------------------------

/// A compiled label (or annotation) selector: the conjunction of its
/// requirements, kept sorted by key. The distinguished "nothing" selector
/// (from a JSON `null` structured selector) matches no label set.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Selector {
    nothing: bool,
    requirements: Vec<Requirement>,
}

impl Selector {
    /// Matches every label set.
    pub fn everything() -> Self {
        Selector::default()
    }

    /// Matches no label set.
    pub fn nothing() -> Self {
        Selector {
            nothing: true,
            requirements: Vec::new(),
        }
    }

    /// Builds a selector from requirements (sorted by key, stable).
    pub fn from_requirements(mut requirements: Vec<Requirement>) -> Self {
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Selector {
            nothing: false,
            requirements,
        }
    }

    /// Equality selector for a set of labels, without validation
    /// (`labels.SelectorFromSet`); an empty set selects everything.
    pub fn from_set<K, V, I>(set: I) -> Self
    where
        K: Into<String>,
        V: Into<String>,
        I: IntoIterator<Item = (K, V)>,
    {
        Self::from_requirements(
            set.into_iter()
                .map(|(k, v)| Requirement {
                    key: k.into(),
                    operator: Operator::Equals,
                    values: vec![v.into()],
                })
                .collect(),
        )
    }

    /// Returns this selector with one more requirement (no-op on
    /// [`Selector::nothing`], like Kubernetes' `Add`).
    pub fn with(mut self, requirement: Requirement) -> Self {
        if !self.nothing {
            self.requirements.push(requirement);
            self.requirements.sort_by(|a, b| a.key.cmp(&b.key));
        }
        self
    }

    /// Parses the string form (`labels.Parse`): comma-separated
    /// requirements `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`,
    /// `k`, `!k`, `k>n`, `k<n`, with spaces, tabs, CR and LF allowed between
    /// tokens. The empty string selects everything.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let requirements = Parser::new(s).parse()?;
        Ok(Self::from_requirements(requirements))
    }

    /// Compiles a `metav1.LabelSelector` JSON value
    /// (`metav1.LabelSelectorAsSelector`): `null` selects nothing, an object
    /// without `matchLabels`/`matchExpressions` entries selects everything.
    /// Keys and values are validated; `In`/`NotIn` need values,
    /// `Exists`/`DoesNotExist` must have none.
    pub fn from_label_selector(v: &Value) -> Result<Self, SelectorError> {
        Self::from_structured(v, "matchLabels", true)
    }

    /// Compiles a DecoratorController annotation selector
    /// (`{matchAnnotations, matchExpressions}`), with the same rules as
    /// [`Selector::from_label_selector`] except that values are free text
    /// (annotation values are not label values). Match it against
    /// [`object_annotations`]. Note that a DecoratorController whose
    /// `annotationSelector` is absent or `null` selects everything; callers
    /// should handle that case before calling this (which maps `null` to
    /// [`Selector::nothing`] for symmetry with label selectors).
    pub fn from_annotation_selector(v: &Value) -> Result<Self, SelectorError> {
        Self::from_structured(v, "matchAnnotations", false)
    }

    fn from_structured(
        v: &Value,
        map_field: &str,
        check_values: bool,
    ) -> Result<Self, SelectorError> {
        let obj = match v {
            Value::Null => return Ok(Self::nothing()),
            Value::Object(obj) => obj,
            _ => {
                return Err(SelectorError::Malformed(
                    "selector must be an object".to_string(),
                ));
            }
        };
        let empty = Map::new();
        let match_map = match obj.get(map_field) {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(m)) => m,
            Some(_) => {
                return Err(SelectorError::Malformed(format!(
                    "{map_field} must be an object"
                )));
            }
        };
        let no_exprs = Vec::new();
        let exprs = match obj.get("matchExpressions") {
            None | Some(Value::Null) => &no_exprs,
            Some(Value::Array(a)) => a,
            Some(_) => {
                return Err(SelectorError::Malformed(
                    "matchExpressions must be a list".to_string(),
                ));
            }
        };
        if match_map.is_empty() && exprs.is_empty() {
            return Ok(Self::everything());
        }
        let mut requirements = Vec::with_capacity(match_map.len() + exprs.len());
        for (k, val) in match_map {
            let Some(val) = val.as_str() else {
                return Err(SelectorError::Malformed(format!(
                    "{map_field}[{k}] must be a string"
                )));
            };
            requirements.push(Requirement::build(
                k.clone(),
                Operator::Equals,
                vec![val.to_string()],
                check_values,
            )?);
        }
        for (i, expr) in exprs.iter().enumerate() {
            let Some(expr) = expr.as_object() else {
                return Err(SelectorError::Malformed(format!(
                    "matchExpressions[{i}] must be an object"
                )));
            };
            let string_field = |name: &str| -> Result<String, SelectorError> {
                match expr.get(name) {
                    None | Some(Value::Null) => Ok(String::new()),
                    Some(Value::String(s)) => Ok(s.clone()),
                    Some(_) => Err(SelectorError::Malformed(format!(
                        "matchExpressions[{i}].{name} must be a string"
                    ))),
                }
            };
            let key = string_field("key")?;
            let operator = Operator::from_label_selector_operator(&string_field("operator")?)?;
            let values = match expr.get("values") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|x| x.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        SelectorError::Malformed(format!(
                            "matchExpressions[{i}].values must be a list of strings"
                        ))
                    })?,
                Some(_) => {
                    return Err(SelectorError::Malformed(format!(
                        "matchExpressions[{i}].values must be a list of strings"
                    )));
                }
            };
            requirements.push(Requirement::build(key, operator, values, check_values)?);
        }
        Ok(Self::from_requirements(requirements))
    }

    /// Whether the label set satisfies every requirement.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Matches the selector against `obj.metadata.labels`.
    pub fn matches_object_labels(&self, obj: &Value) -> bool {
        self.matches(&object_labels(obj))
    }

    /// Matches the selector against `obj.metadata.annotations`.
    pub fn matches_object_annotations(&self, obj: &Value) -> bool {
        self.matches(&object_annotations(obj))
    }

    /// True when the selector does not restrict anything (Kubernetes'
    /// `Empty()`); false for [`Selector::nothing`].
    pub fn is_everything(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// True for [`Selector::nothing`].
    pub fn is_nothing(&self) -> bool {
        self.nothing
    }

    /// The requirements, sorted by key (empty for everything and nothing).
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// If the selector requires `key` to have one specific value
    /// (`=`, `==` or single-valued `in`), that value
    /// (`RequiresExactMatch`).
    pub fn requires_exact_match(&self, key: &str) -> Option<&str> {
        let r = self.requirements.iter().find(|r| r.key == key)?;
        match (r.operator, r.values.as_slice()) {
            (Operator::Equals | Operator::DoubleEquals | Operator::In, [v]) => Some(v),
            _ => None,
        }
    }
}

/// Canonical string form: requirements sorted by key joined with `,`
/// (Kubernetes' `String()`); both everything and nothing print as `""`.
impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl FromStr for Selector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Selector::parse(s)
    }
}

// ---------------------------------------------------------------------------
// String-form lexer and parser (mirrors labels.Lexer / labels.Parser)
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Error,
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn literal_token(s: &[u8]) -> Option<Tok> {
    Some(match s {
        b")" => Tok::ClosedPar,
        b"," => Tok::Comma,
        b"!" => Tok::DoesNotExist,
        b"==" => Tok::DoubleEquals,
        b"=" => Tok::Equals,
        b">" => Tok::GreaterThan,
        b"in" => Tok::In,
        b"<" => Tok::LessThan,
        b"!=" => Tok::NotEquals,
        b"notin" => Tok::NotIn,
        b"(" => Tok::OpenPar,
        _ => return None,
    })
}

fn is_whitespace(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(c: u8) -> bool {
    matches!(c, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Lexer<'_> {
    /// Next byte, or 0 at the end (a NUL byte in the input therefore acts as
    /// a terminator, as in Kubernetes' lexer).
    fn read(&mut self) -> u8 {
        match self.s.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                b
            }
            None => 0,
        }
    }

    fn unread(&mut self) {
        self.pos -= 1;
    }

    fn scan_id_or_keyword(&mut self) -> (Tok, String) {
        let start = self.pos;
        let mut end;
        loop {
            end = self.pos;
            let c = self.read();
            if c == 0 {
                break;
            }
            if is_special(c) || is_whitespace(c) {
                self.unread();
                break;
            }
        }
        let bytes = &self.s[start..end];
        let lit = String::from_utf8_lossy(bytes).into_owned();
        match literal_token(bytes) {
            Some(tok) => (tok, lit),
            None => (Tok::Identifier, lit),
        }
    }

    fn scan_special_symbol(&mut self) -> (Tok, String) {
        let start = self.pos;
        let mut last: Option<(Tok, usize)> = None;
        loop {
            let c = self.read();
            if c == 0 {
                break;
            }
            if !is_special(c) {
                self.unread();
                break;
            }
            let buf = &self.s[start..self.pos];
            if let Some(tok) = literal_token(buf) {
                last = Some((tok, self.pos));
            } else if last.is_some() {
                self.unread();
                break;
            }
        }
        match last {
            Some((tok, end)) => (
                tok,
                String::from_utf8_lossy(&self.s[start..end]).into_owned(),
            ),
            None => (
                Tok::Error,
                format!(
                    "error expected: keyword found '{}'",
                    String::from_utf8_lossy(&self.s[start..self.pos])
                ),
            ),
        }
    }

    fn lex(&mut self) -> (Tok, String) {
        let mut c = self.read();
        while is_whitespace(c) {
            c = self.read();
        }
        if c == 0 {
            (Tok::EndOfString, String::new())
        } else if is_special(c) {
            self.unread();
            self.scan_special_symbol()
        } else {
            self.unread();
            self.scan_id_or_keyword()
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    KeyAndOperator,
    Values,
}

struct Parser {
    items: Vec<(Tok, String)>,
    position: usize,
}

fn syntax(msg: String) -> SelectorError {
    SelectorError::Syntax(msg)
}

impl Parser {
    fn new(s: &str) -> Self {
        let mut lexer = Lexer {
            s: s.as_bytes(),
            pos: 0,
        };
        let mut items = Vec::new();
        loop {
            let (tok, lit) = lexer.lex();
            let done = tok == Tok::EndOfString;
            items.push((tok, lit));
            if done {
                break;
            }
        }
        Parser { items, position: 0 }
    }

    fn peek_at(&self, pos: usize, ctx: Ctx) -> (Tok, String) {
        let (tok, lit) = self
            .items
            .get(pos)
            .cloned()
            .unwrap_or((Tok::EndOfString, String::new()));
        let tok = match (ctx, tok) {
            (Ctx::Values, Tok::In | Tok::NotIn) => Tok::Identifier,
            (_, t) => t,
        };
        (tok, lit)
    }

    fn lookahead(&self, ctx: Ctx) -> (Tok, String) {
        self.peek_at(self.position, ctx)
    }

    fn consume(&mut self, ctx: Ctx) -> (Tok, String) {
        let item = self.peek_at(self.position, ctx);
        self.position += 1;
        item
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, SelectorError> {
        let mut requirements = Vec::new();
        loop {
            let (tok, lit) = self.lookahead(Ctx::Values);
            match tok {
                Tok::Identifier | Tok::DoesNotExist => {
                    let r = self
                        .parse_requirement()
                        .map_err(|e| SelectorError::Requirement(Box::new(e)))?;
                    requirements.push(r);
                    let (t, l) = self.consume(Ctx::Values);
                    match t {
                        Tok::EndOfString => return Ok(requirements),
                        Tok::Comma => {
                            let (t2, l2) = self.lookahead(Ctx::Values);
                            if t2 != Tok::Identifier && t2 != Tok::DoesNotExist {
                                return Err(syntax(format!(
                                    "found '{l2}', expected: identifier after ','"
                                )));
                            }
                        }
                        _ => {
                            return Err(syntax(format!(
                                "found '{l}', expected: ',' or 'end of string'"
                            )));
                        }
                    }
                }
                Tok::EndOfString => return Ok(requirements),
                _ => {
                    return Err(syntax(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    )));
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, SelectorError> {
        let (key, inferred) = self.parse_key_and_infer_operator()?;
        if let Some(op) = inferred {
            return Requirement::new(key, op, Vec::new());
        }
        let operator = self.parse_operator()?;
        let values = match operator {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        Requirement::new(key, operator, values.into_iter().collect())
    }

    /// Returns the key and, for `!key` or a bare `key`, the inferred unary
    /// operator.
    fn parse_key_and_infer_operator(
        &mut self,
    ) -> Result<(String, Option<Operator>), SelectorError> {
        let mut operator = None;
        let (mut tok, mut lit) = self.consume(Ctx::Values);
        if tok == Tok::DoesNotExist {
            operator = Some(Operator::DoesNotExist);
            (tok, lit) = self.consume(Ctx::Values);
        }
        if tok != Tok::Identifier {
            return Err(syntax(format!("found '{lit}', expected: identifier")));
        }
        let key_errs = label_key_errors(&lit);
        if !key_errs.is_empty() {
            return Err(SelectorError::Invalid(vec![FieldError {
                field: "key".to_string(),
                value: format!("{lit:?}"),
                detail: key_errs.join("; "),
            }]));
        }
        let (next, _) = self.lookahead(Ctx::Values);
        if (next == Tok::EndOfString || next == Tok::Comma) && operator.is_none() {
            operator = Some(Operator::Exists);
        }
        Ok((lit, operator))
    }

    fn parse_operator(&mut self) -> Result<Operator, SelectorError> {
        let (tok, lit) = self.consume(Ctx::KeyAndOperator);
        Ok(match tok {
            Tok::In => Operator::In,
            Tok::Equals => Operator::Equals,
            Tok::DoubleEquals => Operator::DoubleEquals,
            Tok::GreaterThan => Operator::GreaterThan,
            Tok::LessThan => Operator::LessThan,
            Tok::NotIn => Operator::NotIn,
            Tok::NotEquals => Operator::NotEquals,
            _ => {
                return Err(syntax(format!(
                    "found '{lit}', expected: in, notin, =, ==, !=, gt, lt"
                )));
            }
        })
    }

    fn parse_values(&mut self) -> Result<BTreeSet<String>, SelectorError> {
        let (tok, lit) = self.consume(Ctx::Values);
        if tok != Tok::OpenPar {
            return Err(syntax(format!("found '{lit}' expected: '('")));
        }
        let (tok, lit) = self.lookahead(Ctx::Values);
        match tok {
            Tok::Identifier | Tok::Comma => {
                let set = self.parse_identifiers_list()?;
                let (tok, _) = self.consume(Ctx::Values);
                if tok != Tok::ClosedPar {
                    return Err(syntax(format!("found '{lit}', expected: ')'")));
                }
                Ok(set)
            }
            Tok::ClosedPar => {
                self.consume(Ctx::Values);
                Ok(BTreeSet::from([String::new()]))
            }
            _ => Err(syntax(format!(
                "found '{lit}', expected: ',', ')' or identifier"
            ))),
        }
    }

    fn parse_identifiers_list(&mut self) -> Result<BTreeSet<String>, SelectorError> {
        let mut set = BTreeSet::new();
        loop {
            let (tok, lit) = self.consume(Ctx::Values);
            match tok {
                Tok::Identifier => {
                    set.insert(lit);
                    let (tok2, lit2) = self.lookahead(Ctx::Values);
                    match tok2 {
                        Tok::Comma => continue,
                        Tok::ClosedPar => return Ok(set),
                        _ => {
                            return Err(syntax(format!("found '{lit2}', expected: ',' or ')'")));
                        }
                    }
                }
                Tok::Comma => {
                    // "(,", ",)" and ",," all contribute the empty value.
                    if set.is_empty() {
                        set.insert(String::new());
                    }
                    let (tok2, _) = self.lookahead(Ctx::Values);
                    if tok2 == Tok::ClosedPar {
                        set.insert(String::new());
                        return Ok(set);
                    }
                    if tok2 == Tok::Comma {
                        set.insert(String::new());
                    }
                }
                _ => {
                    return Err(syntax(format!(
                        "found '{lit}', expected: ',', or identifier"
                    )));
                }
            }
        }
    }

    fn parse_exact_value(&mut self) -> Result<BTreeSet<String>, SelectorError> {
        let (tok, _) = self.lookahead(Ctx::Values);
        if tok == Tok::EndOfString || tok == Tok::Comma {
            return Ok(BTreeSet::from([String::new()]));
        }
        let (tok, lit) = self.consume(Ctx::Values);
        if tok == Tok::Identifier {
            Ok(BTreeSet::from([lit]))
        } else {
            Err(syntax(format!("found '{lit}', expected: identifier")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn req(key: &str, op: Operator, values: &[&str]) -> Requirement {
        Requirement::new(key, op, values.iter().map(|s| s.to_string()).collect())
            .expect("valid requirement")
    }

    fn lex_all(s: &str) -> Vec<Tok> {
        let mut l = Lexer {
            s: s.as_bytes(),
            pos: 0,
        };
        let mut out = Vec::new();
        loop {
            let (t, _) = l.lex();
            if t == Tok::EndOfString {
                return out;
            }
            out.push(t);
        }
    }

    #[test]
    fn lexer_single_tokens() {
        use Tok::*;
        let cases: &[(&str, Tok)] = &[
            ("", EndOfString),
            (",", Comma),
            ("notin", NotIn),
            ("in", In),
            ("=", Equals),
            ("==", DoubleEquals),
            (">", GreaterThan),
            ("<", LessThan),
            ("!", DoesNotExist),
            ("!=", NotEquals),
            ("(", OpenPar),
            (")", ClosedPar),
            ("~", Identifier),
            ("||", Identifier),
        ];
        for (s, want) in cases {
            let mut l = Lexer {
                s: s.as_bytes(),
                pos: 0,
            };
            let (tok, lit) = l.lex();
            assert_eq!(tok, *want, "{s:?}");
            assert_eq!(lit, *s, "{s:?}");
        }
    }

    #[test]
    fn lexer_sequences() {
        use Tok::*;
        let cases: &[(&str, &[Tok])] = &[
            (
                "key in ( value )",
                &[Identifier, In, OpenPar, Identifier, ClosedPar],
            ),
            (
                "key notin ( value )",
                &[Identifier, NotIn, OpenPar, Identifier, ClosedPar],
            ),
            (
                "key in ( value1, value2 )",
                &[
                    Identifier, In, OpenPar, Identifier, Comma, Identifier, ClosedPar,
                ],
            ),
            ("key", &[Identifier]),
            ("!key", &[DoesNotExist, Identifier]),
            ("()", &[OpenPar, ClosedPar]),
            (
                "x in (),y",
                &[Identifier, In, OpenPar, ClosedPar, Comma, Identifier],
            ),
            (
                "== != (), = notin",
                &[
                    DoubleEquals,
                    NotEquals,
                    OpenPar,
                    ClosedPar,
                    Comma,
                    Equals,
                    NotIn,
                ],
            ),
            ("key>2", &[Identifier, GreaterThan, Identifier]),
            ("key<1", &[Identifier, LessThan, Identifier]),
            ("a=(b", &[Identifier, Equals, OpenPar, Identifier]),
            ("!!a", &[DoesNotExist, DoesNotExist, Identifier]),
        ];
        for (s, want) in cases {
            assert_eq!(lex_all(s), *want, "{s:?}");
        }
    }

    #[test]
    fn parse_round_trips_canonical_strings() {
        // Kubernetes' TestSelectorParse good strings: String() equals the input
        // with spaces removed.
        for s in [
            "x=a,y=b,z=c",
            "",
            "x!=a,y=b",
            "x=",
            "x= ",
            "x=,z= ",
            "x= ,z= ",
            "!x",
            "x>1",
            "x>1,z<5",
        ] {
            let sel = Selector::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
            assert_eq!(sel.to_string(), s.replace(' ', ""), "{s:?}");
        }
    }

    #[test]
    fn parse_table() {
        use Operator::*;
        let key63 = "k".repeat(63);
        let key64 = "k".repeat(64);
        // (input, Some(expected requirements in key order)) or None = error.
        let cases: Vec<(&str, Option<Vec<Requirement>>)> = vec![
            ("", Some(vec![])),
            ("\rx", Some(vec![req("x", Exists, &[])])),
            (
                "this-is-a-dns.domain.com/key-with-dash",
                Some(vec![req(
                    "this-is-a-dns.domain.com/key-with-dash",
                    Exists,
                    &[],
                )]),
            ),
            (
                "this-is-another-dns.domain.com/key-with-dash in (so,what)",
                Some(vec![req(
                    "this-is-another-dns.domain.com/key-with-dash",
                    In,
                    &["so", "what"],
                )]),
            ),
            (
                "0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)",
                Some(vec![req(
                    "0.1.2.domain/99",
                    NotIn,
                    &["10.10.100.1", "tick.tack.clock"],
                )]),
            ),
            ("foo  in\t (abc)", Some(vec![req("foo", In, &["abc"])])),
            ("x notin\n (abc)", Some(vec![req("x", NotIn, &["abc"])])),
            (
                "x  notin\t\t\t(abc,def)",
                Some(vec![req("x", NotIn, &["abc", "def"])]),
            ),
            ("x in (abc,def)", Some(vec![req("x", In, &["abc", "def"])])),
            ("x in (abc,)", Some(vec![req("x", In, &["", "abc"])])),
            ("x in (abc,abc)", Some(vec![req("x", In, &["abc"])])),
            ("x in ()", Some(vec![req("x", In, &[""])])),
            ("x in (a,,)", Some(vec![req("x", In, &["", "a"])])),
            ("x in (a,,,,,,)", Some(vec![req("x", In, &["", "a"])])),
            ("x in (a,,a,,a,,a,,)", Some(vec![req("x", In, &["", "a"])])),
            (
                "x notin (abc,,def),bar,z in (),w",
                Some(vec![
                    req("bar", Exists, &[]),
                    req("w", Exists, &[]),
                    req("x", NotIn, &["", "abc", "def"]),
                    req("z", In, &[""]),
                ]),
            ),
            (
                "x,y in (a)",
                Some(vec![req("x", Exists, &[]), req("y", In, &["a"])]),
            ),
            ("x=a", Some(vec![req("x", Equals, &["a"])])),
            ("x==a", Some(vec![req("x", DoubleEquals, &["a"])])),
            ("x>1", Some(vec![req("x", GreaterThan, &["1"])])),
            ("x<7", Some(vec![req("x", LessThan, &["7"])])),
            (
                "x=a,y!=b",
                Some(vec![req("x", Equals, &["a"]), req("y", NotEquals, &["b"])]),
            ),
            (
                "x=a,y!=b,z in (h,i,j)",
                Some(vec![
                    req("x", Equals, &["a"]),
                    req("y", NotEquals, &["b"]),
                    req("z", In, &["h", "i", "j"]),
                ]),
            ),
            ("x notin ( )", Some(vec![req("x", NotIn, &[""])])),
            ("x notin (, a)", Some(vec![req("x", NotIn, &["", "a"])])),
            ("a ", Some(vec![req("a", Exists, &[])])),
            (
                "a in (x,y,notin, z,in)",
                Some(vec![req("a", In, &["in", "notin", "x", "y", "z"])]),
            ),
            ("notin=in", Some(vec![req("notin", Equals, &["in"])])),
            ("in in (in)", Some(vec![req("in", In, &["in"])])),
            (
                "a=b,c!=d,e in (x,y),f notin (z),g,!h,i>3",
                Some(vec![
                    req("a", Equals, &["b"]),
                    req("c", NotEquals, &["d"]),
                    req("e", In, &["x", "y"]),
                    req("f", NotIn, &["z"]),
                    req("g", Exists, &[]),
                    req("h", DoesNotExist, &[]),
                    req("i", GreaterThan, &["3"]),
                ]),
            ),
            ("x=a||y=b", None),
            ("x==a==b", None),
            ("!x=a", None),
            ("x<a", None),
            ("x,,y", None),
            (",x,y", None),
            ("x nott in (y)", None),
            ("a in (xyz),", None),
            ("a in (xyz)b notin ()", None),
            ("a in (xyz abc)", None),
            ("a notin(", None),
            ("a (", None),
            ("(", None),
            ("!", None),
            ("x=a b", None),
            ("x in (a b)", None),
            ("a b", None),
            // Key and value syntax.
            ("-x=a", None),
            ("x=-a", None),
            ("x/y/z", None),
            ("/x", None),
            ("Example.com/x", None),
            ("example.com/", None),
            ("x=a.b_c-D", Some(vec![req("x", Equals, &["a.b_c-D"])])),
            (&key63, Some(vec![req(&key63, Exists, &[])])),
            (&key64, None),
            ("x=ä", None),
            ("x>-1", None),
        ];
        for (input, want) in cases {
            let got = Selector::parse(input);
            match want {
                Some(reqs) => {
                    let sel = got.unwrap_or_else(|e| panic!("{input:?}: {e}"));
                    assert_eq!(sel.requirements(), reqs.as_slice(), "{input:?}");
                    assert!(!sel.is_nothing());
                }
                None => assert!(got.is_err(), "{input:?} should fail, got {got:?}"),
            }
        }
    }

    #[test]
    fn parse_error_messages() {
        let cases: &[(&str, &str)] = &[
            ("x==a==b", "found '==', expected: ',' or 'end of string'"),
            (
                ",x",
                "found ',', expected: !, identifier, or 'end of string'",
            ),
            ("x,", "found '', expected: identifier after ','"),
            (
                "x (",
                "unable to parse requirement: found '(', expected: in, notin, =, ==, !=, gt, lt",
            ),
            (
                "x in a",
                "unable to parse requirement: found 'a' expected: '('",
            ),
            (
                "x<a",
                "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer",
            ),
            ("x=a b", "found 'b', expected: ',' or 'end of string'"),
        ];
        for (input, want) in cases {
            let err = Selector::parse(input).expect_err(input);
            assert_eq!(err.to_string(), *want, "{input:?}");
        }
        let err = Selector::parse("x=a=b c").expect_err("bad");
        assert!(matches!(err, SelectorError::Syntax(_)));
        // "a||y" lexes as one identifier, which is not a valid label value.
        let err = Selector::parse("x=a||y=b").expect_err("bad");
        assert!(
            err.to_string()
                .starts_with("unable to parse requirement: values[0][x]: Invalid value: \"a||y\""),
            "{err}"
        );
        let err = Selector::parse("-x").expect_err("bad key");
        match err {
            SelectorError::Requirement(inner) => match *inner {
                SelectorError::Invalid(errs) => {
                    assert_eq!(errs[0].field, "key");
                    assert!(errs[0].detail.starts_with("name part must consist of"));
                }
                other => panic!("unexpected {other:?}"),
            },
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn parse_is_deterministic() {
        let a = Selector::parse("x=a,a=x").expect("parse");
        let b = Selector::parse("a=x,x=a").expect("parse");
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "a=x,x=a");
    }

    #[test]
    fn matching_table() {
        let foo_baz = set(&[("foo", "bar"), ("baz", "blah")]);
        let cases: Vec<(&str, BTreeMap<String, String>, bool)> = vec![
            ("", set(&[("x", "y")]), true),
            ("x=y", set(&[("x", "y")]), true),
            ("x==y", set(&[("x", "y")]), true),
            ("x=y,z=w", set(&[("x", "y"), ("z", "w")]), true),
            ("x!=y,z!=w", set(&[("x", "z"), ("z", "a")]), true),
            ("notin=in", set(&[("notin", "in")]), true),
            ("x", set(&[("x", "z")]), true),
            ("!x", set(&[("y", "z")]), true),
            ("x>1", set(&[("x", "2")]), true),
            ("x<1", set(&[("x", "0")]), true),
            ("x<1", set(&[("x", "-5")]), true),
            ("x=z", set(&[]), false),
            ("x=y", set(&[("x", "z")]), false),
            ("x=y,z=w", set(&[("x", "w"), ("z", "w")]), false),
            ("x!=y,z!=w", set(&[("x", "z"), ("z", "w")]), false),
            ("x", set(&[("y", "z")]), false),
            ("!x", set(&[("x", "z")]), false),
            ("x>1", set(&[("x", "0")]), false),
            ("x<1", set(&[("x", "2")]), false),
            ("x>1", set(&[("x", "v2")]), false),
            ("x>1", set(&[]), false),
            ("x<1", set(&[]), false),
            // Absent keys satisfy != and notin.
            ("x!=y", set(&[]), true),
            ("x notin (a,b)", set(&[]), true),
            ("x notin (a,b)", set(&[("x", "a")]), false),
            ("x notin (a,b)", set(&[("x", "c")]), true),
            ("x in (a,b)", set(&[("x", "b")]), true),
            ("x in (a,b)", set(&[]), false),
            ("x in ()", set(&[("x", "")]), true),
            ("x in ()", set(&[("y", "baz")]), false),
            ("x notin (),y", set(&[("y", "")]), true),
            ("!x,y", set(&[("y", "")]), true),
            ("x notin (),!y", set(&[("y", "")]), false),
            ("x=", set(&[("x", "")]), true),
            ("foo=bar", foo_baz.clone(), true),
            ("baz=blah", foo_baz.clone(), true),
            ("foo=bar,baz=blah", foo_baz.clone(), true),
            ("foo=blah", foo_baz.clone(), false),
            ("baz=bar", foo_baz.clone(), false),
            ("foo=bar,foobar=bar,baz=blah", foo_baz.clone(), false),
        ];
        for (s, labels, want) in cases {
            let sel = Selector::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
            assert_eq!(sel.matches(&labels), want, "{s:?} vs {labels:?}");
            let hash: HashMap<String, String> = labels.clone().into_iter().collect();
            assert_eq!(sel.matches(&hash), want, "{s:?} (HashMap)");
            let map: Map<String, Value> = labels
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            assert_eq!(sel.matches(&map), want, "{s:?} (json map)");
            let obj = json!({"metadata": {"labels": map}});
            assert_eq!(sel.matches(&object_labels(&obj)), want, "{s:?} (object)");
            assert_eq!(sel.matches_object_labels(&obj), want, "{s:?} (object)");
        }
    }

    #[test]
    fn labels_impls_edge_cases() {
        let sel = Selector::parse("a").expect("parse");
        // Non-string JSON values are not labels.
        let map = json!({"a": 1});
        assert!(!sel.matches(&map.as_object()));
        assert!(sel.matches(&json!({"a": "1"}).as_object()));
        // Missing metadata / labels = empty set.
        assert!(!sel.matches(&object_labels(&json!({}))));
        assert!(!sel.matches(&object_labels(&json!({"metadata": {}}))));
        assert!(
            Selector::parse("!a")
                .expect("parse")
                .matches(&object_labels(&json!({})))
        );
        assert!(Selector::everything().matches(&object_labels(&json!({}))));
        assert!(!Selector::nothing().matches(&object_labels(&json!({}))));
        let none: Option<&Value> = None;
        assert!(!sel.matches(&none));
    }

    #[test]
    fn everything_and_nothing() {
        let all = Selector::everything();
        assert!(all.is_everything());
        assert!(!all.is_nothing());
        assert!(all.matches(&set(&[("x", "y")])));
        assert!(all.matches(&set(&[])));
        assert_eq!(all.to_string(), "");
        assert!(all.requirements().is_empty());

        let none = Selector::nothing();
        assert!(!none.is_everything());
        assert!(none.is_nothing());
        assert!(!none.matches(&set(&[("x", "y")])));
        assert!(!none.matches(&set(&[])));
        assert_eq!(none.to_string(), "");
        assert!(none.requirements().is_empty());
        assert!(none.with(req("a", Operator::Exists, &[])).is_nothing());

        assert!(Selector::parse("").expect("parse").is_everything());
        assert!(Selector::parse("  \t").expect("parse").is_everything());
        assert!(!Selector::parse("a").expect("parse").is_everything());
    }

    #[test]
    fn display_table() {
        use Operator::*;
        let cases: Vec<(Vec<Requirement>, &str)> = vec![
            (
                vec![
                    req("x", In, &["def", "abc"]),
                    req("y", NotIn, &["jkl"]),
                    req("z", Exists, &[]),
                ],
                "x in (abc,def),y notin (jkl),z",
            ),
            (
                vec![
                    req("x", NotIn, &["abc", "def"]),
                    req("y", NotEquals, &["jkl"]),
                    req("z", DoesNotExist, &[]),
                ],
                "x notin (abc,def),y!=jkl,!z",
            ),
            (
                vec![
                    req("x", NotIn, &["abc"]),
                    req("y", In, &["jkl", "mno"]),
                    req("z", NotIn, &[""]),
                ],
                "x notin (abc),y in (jkl,mno),z notin ()",
            ),
            (
                vec![
                    req("x", Equals, &["abc"]),
                    req("y", DoubleEquals, &["jkl"]),
                    req("z", NotEquals, &["a"]),
                    req("z", Exists, &[]),
                ],
                "x=abc,y==jkl,z!=a,z",
            ),
            (
                vec![
                    req("z", Exists, &[]),
                    req("y", LessThan, &["8"]),
                    req("x", GreaterThan, &["2"]),
                ],
                "x>2,y<8,z",
            ),
        ];
        for (reqs, want) in cases {
            assert_eq!(Selector::from_requirements(reqs).to_string(), want);
        }
        // Display of a parsed selector re-parses to the same selector.
        let sel = Selector::parse("b in (y, x),a!=1,!c,d,e>5").expect("parse");
        assert_eq!(sel.to_string(), "a!=1,b in (x,y),!c,d,e>5");
        assert_eq!(Selector::parse(&sel.to_string()).expect("reparse"), sel);
        let via_fromstr: Selector = "a=b".parse().expect("FromStr");
        assert_eq!(via_fromstr.to_string(), "a=b");
    }

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

    #[test]
    fn label_selector_table() {
        use Operator::*;
        // (json, Ok(canonical string) | Err(()) , is_everything, is_nothing)
        let cases: Vec<(Value, Result<&str, ()>, bool, bool)> = vec![
            (json!(null), Ok(""), false, true),
            (json!({}), Ok(""), true, false),
            (
                json!({"matchLabels": {}, "matchExpressions": []}),
                Ok(""),
                true,
                false,
            ),
            (
                json!({"matchLabels": null, "matchExpressions": null}),
                Ok(""),
                true,
                false,
            ),
            (
                json!({"matchLabels": {"b": "2", "a": "1"}}),
                Ok("a=1,b=2"),
                false,
                false,
            ),
            (
                json!({"matchExpressions": [
                    {"key": "t", "operator": "In", "values": ["y", "x"]},
                    {"key": "s", "operator": "NotIn", "values": ["z"]},
                    {"key": "r", "operator": "Exists"},
                    {"key": "q", "operator": "DoesNotExist", "values": []},
                ]}),
                Ok("!q,r,s notin (z),t in (x,y)"),
                false,
                false,
            ),
            (
                json!({"matchLabels": {"app": "x"}, "matchExpressions": [
                    {"key": "app", "operator": "Exists"}]}),
                Ok("app=x,app"),
                false,
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}),
                Err(()),
                false,
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "In"}]}),
                Err(()),
                false,
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": null}]}),
                Err(()),
                false,
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}),
                Err(()),
                false,
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "DoesNotExist", "values": ["x"]}]}),
                Err(()),
                false,
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}),
                Err(()),
                false,
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "in", "values": ["1"]}]}),
                Err(()),
                false,
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "a"}]}),
                Err(()),
                false,
                false,
            ),
            (
                json!({"matchExpressions": [{"operator": "Exists"}]}),
                Err(()),
                false,
                false,
            ),
            (json!({"matchLabels": {"a": "b c"}}), Err(()), false, false),
            (json!({"matchLabels": {"a b": "c"}}), Err(()), false, false),
            (json!({"matchLabels": {"a": 1}}), Err(()), false, false),
            (json!({"matchLabels": []}), Err(()), false, false),
            (json!({"matchExpressions": {}}), Err(()), false, false),
            (json!({"matchExpressions": ["a"]}), Err(()), false, false),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "In", "values": [1]}]}),
                Err(()),
                false,
                false,
            ),
            (json!("a=b"), Err(()), false, false),
        ];
        for (v, want, everything, nothing) in cases {
            let got = Selector::from_label_selector(&v);
            match want {
                Ok(s) => {
                    let sel = got.unwrap_or_else(|e| panic!("{v}: {e}"));
                    assert_eq!(sel.to_string(), s, "{v}");
                    assert_eq!(sel.is_everything(), everything, "{v}");
                    assert_eq!(sel.is_nothing(), nothing, "{v}");
                }
                Err(()) => assert!(got.is_err(), "{v} should fail, got {got:?}"),
            }
        }
        // Values of matchExpressions are kept as given (not deduplicated).
        let sel = Selector::from_label_selector(
            &json!({"matchExpressions": [{"key": "a", "operator": "In", "values": ["y", "x", "y"]}]}),
        )
        .expect("valid");
        assert_eq!(sel.requirements(), &[req("a", In, &["y", "x", "y"])]);
        let err = Selector::from_label_selector(
            &json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}),
        )
        .expect_err("bad op");
        assert_eq!(
            err.to_string(),
            "\"Gt\" is not a valid label selector operator"
        );
    }

    #[test]
    fn label_selector_matching() {
        let sel = Selector::from_label_selector(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "NotIn", "values": ["db"]},
                {"key": "legacy", "operator": "DoesNotExist"}
            ]
        }))
        .expect("valid");
        let cases = [
            (json!({"metadata": {"labels": {"app": "web"}}}), true),
            (
                json!({"metadata": {"labels": {"app": "web", "tier": "fe"}}}),
                true,
            ),
            (
                json!({"metadata": {"labels": {"app": "web", "tier": "db"}}}),
                false,
            ),
            (
                json!({"metadata": {"labels": {"app": "web", "legacy": ""}}}),
                false,
            ),
            (json!({"metadata": {"labels": {"app": "api"}}}), false),
            (json!({"metadata": {}}), false),
        ];
        for (obj, want) in cases {
            assert_eq!(sel.matches_object_labels(&obj), want, "{obj}");
        }
    }

    #[test]
    fn annotation_selector_table() {
        let cases: Vec<(Value, Value, Option<bool>)> = vec![
            // (selector, annotations, Some(match) | None = invalid selector)
            (json!({}), json!({}), Some(true)),
            (
                json!({"matchAnnotations": {"note": "free text, with spaces!"}}),
                json!({"note": "free text, with spaces!"}),
                Some(true),
            ),
            (
                json!({"matchAnnotations": {"note": "free text"}}),
                json!({"note": "other"}),
                Some(false),
            ),
            (
                json!({"matchExpressions": [
                    {"key": "example.com/json", "operator": "In", "values": ["{\"a\": 1}"]}]}),
                json!({"example.com/json": "{\"a\": 1}"}),
                Some(true),
            ),
            (
                json!({"matchExpressions": [{"key": "x", "operator": "Exists"}]}),
                json!({"x": ""}),
                Some(true),
            ),
            (
                json!({"matchExpressions": [{"key": "x", "operator": "DoesNotExist"}]}),
                json!({"x": ""}),
                Some(false),
            ),
            // matchLabels is not the annotation form's field and is ignored.
            (json!({"matchLabels": {"a": "b"}}), json!({}), Some(true)),
            // Keys are still validated.
            (
                json!({"matchAnnotations": {"bad key": "v"}}),
                json!({}),
                None,
            ),
            (
                json!({"matchExpressions": [{"key": "x", "operator": "In", "values": []}]}),
                json!({}),
                None,
            ),
            (json!({"matchAnnotations": {"a": 1}}), json!({}), None),
        ];
        for (selector, annotations, want) in cases {
            let got = Selector::from_annotation_selector(&selector);
            match want {
                Some(m) => {
                    let sel = got.unwrap_or_else(|e| panic!("{selector}: {e}"));
                    let obj = json!({"metadata": {"annotations": annotations}});
                    assert_eq!(sel.matches_object_annotations(&obj), m, "{selector}");
                }
                None => assert!(got.is_err(), "{selector} should fail"),
            }
        }
        assert!(
            Selector::from_annotation_selector(&json!(null))
                .expect("null")
                .is_nothing()
        );
    }

    #[test]
    fn from_set_and_exact_match() {
        let sel = Selector::from_set([("controller-uid", "123"), ("app", "x")]);
        assert_eq!(sel.to_string(), "app=x,controller-uid=123");
        assert!(sel.matches(&set(&[("app", "x"), ("controller-uid", "123"), ("z", "1")])));
        assert!(!sel.matches(&set(&[("app", "x")])));
        assert_eq!(sel.requires_exact_match("controller-uid"), Some("123"));
        assert_eq!(sel.requires_exact_match("nope"), None);
        assert!(Selector::from_set(Vec::<(String, String)>::new()).is_everything());
        let sel = Selector::parse("a in (x),b in (x,y),c!=z").expect("parse");
        assert_eq!(sel.requires_exact_match("a"), Some("x"));
        assert_eq!(sel.requires_exact_match("b"), None);
        assert_eq!(sel.requires_exact_match("c"), None);
        let sel = sel.with(req("0", Operator::Exists, &[]));
        assert_eq!(sel.to_string(), "0,a in (x),b in (x,y),c!=z");
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
