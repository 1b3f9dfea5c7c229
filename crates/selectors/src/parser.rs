//! The parser of the string form (`a=b,c in (x,y),!d`), following
//! `labels.Parser` in `k8s.io/apimachinery/pkg/labels/selector.go`.

use std::collections::BTreeSet;

use crate::error::{InvalidField, SelectorError};
use crate::lexer::{Lexer, Tok};
use crate::requirement::{Operator, Requirement};
use crate::validation::label_key_errors;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    KeyAndOperator,
    Values,
}

pub(crate) struct Parser {
    items: Vec<(Tok, String)>,
    position: usize,
}

fn syntax(msg: String) -> SelectorError {
    SelectorError::Syntax(msg)
}

impl Parser {
    pub(crate) fn new(s: &str) -> Self {
        let mut lexer = Lexer::new(s);
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

    pub(crate) fn parse(&mut self) -> Result<Vec<Requirement>, SelectorError> {
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
            return Err(SelectorError::Invalid(vec![InvalidField {
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
    use crate::selector::Selector;
    use crate::test_support::req;

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
}
