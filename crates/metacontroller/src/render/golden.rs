//! Golden files for `render --check DIR`: one YAML report per parent,
//! `DIR/<name>.yaml` (`DIR/<namespace>.<name>.yaml` for a namespaced
//! parent). `--update` writes them; a check fails on a missing file or a
//! different report, printing the difference.

use std::path::{Path, PathBuf};

use super::linediff;

/// The golden file of the parent `namespace`/`name` in `dir`.
pub fn path(dir: &Path, namespace: Option<&str>, name: &str) -> PathBuf {
    match namespace.filter(|ns| !ns.is_empty()) {
        Some(ns) => dir.join(format!("{ns}.{name}.yaml")),
        None => dir.join(format!("{name}.yaml")),
    }
}

/// How a report compares with its golden file.
pub enum Outcome {
    /// The same.
    Same,
    /// No golden file.
    Missing,
    /// Different: the diff from the golden file to the report.
    Differs(String),
}

/// Compares `report` with the golden file at `path`.
pub fn check(path: &Path, report: &str) -> std::io::Result<Outcome> {
    match std::fs::read_to_string(path) {
        Ok(golden) if golden == report => Ok(Outcome::Same),
        Ok(golden) => Ok(Outcome::Differs(linediff::diff(&golden, report))),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Outcome::Missing),
        Err(err) => Err(err),
    }
}

/// Writes `report` to `path`, creating its directory.
pub fn update(path: &Path, report: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, report)
}
