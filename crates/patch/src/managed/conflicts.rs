//! [`Conflicts`]: fields an apply would take from other managers.

use std::collections::BTreeMap;
use std::fmt;

use super::managers::ManagerId;
use super::path::FieldPath;
use super::set::FieldSet;

/// A field an apply would change that another manager owns.
#[derive(Clone, Debug, PartialEq)]
pub struct Conflict {
    /// The manager that owns the field.
    pub manager: ManagerId,
    /// The field.
    pub path: FieldPath,
}

/// The conflicts of a refused apply, by manager then path.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Conflicts(pub Vec<Conflict>);

impl Conflicts {
    pub(super) fn from_sets(sets: BTreeMap<ManagerId, FieldSet>) -> Self {
        let mut managers: Vec<(String, ManagerId, FieldSet)> = sets
            .into_iter()
            .map(|(id, set)| (id.identifier(), id, set))
            .collect();
        managers.sort_by(|a, b| a.0.cmp(&b.0));
        Conflicts(
            managers
                .into_iter()
                .flat_map(|(_, id, set)| {
                    set.paths().into_iter().map(move |path| Conflict {
                        manager: id.clone(),
                        path,
                    })
                })
                .collect(),
        )
    }

    /// Whether there are no conflicts.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The number of conflicting fields.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The conflicting paths.
    pub fn to_set(&self) -> FieldSet {
        FieldSet::from_paths(self.0.iter().map(|c| c.path.clone()))
    }

    /// The message of Kubernetes' apply conflict error.
    pub fn message(&self) -> String {
        if let [c] = self.0.as_slice() {
            return format!(
                "Apply failed with 1 conflict: conflict with {}: {}",
                c.manager.describe(),
                c.path
            );
        }
        let mut by_manager: BTreeMap<String, (&ManagerId, Vec<&FieldPath>)> = BTreeMap::new();
        for c in &self.0 {
            by_manager
                .entry(c.manager.identifier())
                .or_insert_with(|| (&c.manager, Vec::new()))
                .1
                .push(&c.path);
        }
        let mut lines = Vec::new();
        for (id, paths) in by_manager.values() {
            lines.push(format!("conflicts with {}:", id.describe()));
            lines.extend(paths.iter().map(|p| format!("- {p}")));
        }
        format!(
            "Apply failed with {} conflicts: {}",
            self.0.len(),
            lines.join("\n")
        )
    }
}

impl fmt::Display for Conflicts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for Conflicts {}
