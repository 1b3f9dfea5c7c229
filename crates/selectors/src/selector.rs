//! [`Selector`]: the conjunction of requirements, with the distinguished
//! "everything" and "nothing" selectors, matching and the canonical string
//! form of `k8s.io/apimachinery/pkg/labels/selector.go`.

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use crate::error::SelectorError;
use crate::labels::{Labels, object_annotations, object_labels};
use crate::parser::Parser;
use crate::requirement::{Operator, Requirement};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{req, set};
    use serde_json::Map;
    use serde_json::json;
    use std::collections::{BTreeMap, HashMap};

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
}
