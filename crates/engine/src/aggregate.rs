//! [`Aggregate`]: several independent failures reported as one error, the
//! way Kubernetes' aggregate errors read (one message as-is, several as
//! `[a, b]`). Depends on nothing in the engine.

use std::fmt;

/// Several failures of independent operations, in the order they happened.
#[derive(Debug)]
pub struct Aggregate<E>(pub Vec<E>);

impl<E> Aggregate<E> {
    /// `None` when nothing failed.
    pub fn of(errors: Vec<E>) -> Option<Self> {
        (!errors.is_empty()).then_some(Aggregate(errors))
    }
}

impl<E: fmt::Display> fmt::Display for Aggregate<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [] => Ok(()),
            [one] => write!(f, "{one}"),
            many => {
                f.write_str("[")?;
                for (i, err) in many.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{err}")?;
                }
                f.write_str("]")
            }
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for Aggregate<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self.0.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_like_kubernetes_aggregates() {
        let agg = |v: &[&str]| Aggregate(v.to_vec()).to_string();
        assert_eq!(agg(&["x"]), "x");
        assert_eq!(agg(&["x", "y"]), "[x, y]");
        assert!(Aggregate::<String>::of(vec![]).is_none());
    }
}
