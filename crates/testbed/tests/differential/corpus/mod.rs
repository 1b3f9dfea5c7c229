//! The corpus: every request the differential suite sends, in order. Each
//! module covers one area and returns its steps; ids are unique across the
//! corpus and name the area first (`cm-create`, `gc-fg-delete`, ...).

mod crd;
mod crud;
mod dryrun;
mod errors;
mod gc;
mod lists;
mod patches;
mod ssa;
mod watch;

use serde_json::json;

use super::step::{Step, Until};

/// Namespaces the corpus creates (the same names on both servers).
pub const NS: &str = "diff";
pub const NS_GC: &str = "diff-gc";
pub const NS_LIST: &str = "diff-list";
pub const NS_WATCH: &str = "diff-watch";

pub fn all() -> Vec<Step> {
    let mut out = setup();
    out.extend(crud::all());
    out.extend(patches::all());
    out.extend(errors::all());
    out.extend(lists::all());
    out.extend(dryrun::all());
    out.extend(crd::all());
    out.extend(ssa::all());
    out.extend(gc::all());
    out.extend(watch::all());
    out
}

fn setup() -> Vec<Step> {
    let mut out = Vec::new();
    for ns in [NS, NS_GC, NS_LIST, NS_WATCH] {
        out.push(Step::post(
            &format!("setup-ns-{ns}"),
            "/api/v1/namespaces",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        ));
    }
    // Pods need the namespace's default ServiceAccount (the ServiceAccount
    // admission plugin looks it up); the serviceaccount controller makes it.
    out.push(Step::poll(
        "setup-default-sa",
        &format!("/api/v1/namespaces/{NS}/serviceaccounts/default"),
        Until::Code(200),
    ));
    out
}
