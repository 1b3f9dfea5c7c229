//! List pagination (limit / continue) and label and field selectors.

use serde_json::json;

use super::NS_LIST;
use crate::step::Step;

const TIERS: &[&str] = &["web", "web", "db", "db", "cache", "web", "batch"];

pub fn all() -> Vec<Step> {
    let cms = format!("/api/v1/namespaces/{NS_LIST}/configmaps");
    let mut out = Vec::new();
    for (i, tier) in TIERS.iter().enumerate() {
        let mut labels = json!({"tier": tier, "index": i.to_string()});
        if i % 2 == 0 {
            labels["even"] = json!("true");
        }
        out.push(Step::post(
            &format!("list-create-{i}"),
            &cms,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("item-{i}"), "labels": labels}, "data": {"i": i.to_string()}}),
        ));
    }
    out.push(Step::get("list-all", &cms));
    out.push(
        Step::get("list-page-1", &format!("{cms}?limit=3")).save("cont1", "/metadata/continue"),
    );
    out.push(
        Step::get("list-page-2", &format!("{cms}?limit=3&continue=${{cont1}}"))
            .save("cont2", "/metadata/continue"),
    );
    out.push(Step::get(
        "list-page-3",
        &format!("{cms}?limit=3&continue=${{cont2}}"),
    ));
    out.push(Step::get("list-limit-exact", &format!("{cms}?limit=7")));
    out.push(Step::get("list-limit-more", &format!("{cms}?limit=100")));
    out.push(
        Step::get(
            "list-page-selected-1",
            &format!("{cms}?limit=2&labelSelector=tier%3Dweb"),
        )
        .save("cont3", "/metadata/continue"),
    );
    out.push(Step::get(
        "list-page-selected-2",
        &format!("{cms}?limit=2&labelSelector=tier%3Dweb&continue=${{cont3}}"),
    ));
    // A write between pages: the continuation keeps serving the snapshot.
    out.push(
        Step::get("list-snapshot-page-1", &format!("{cms}?limit=4"))
            .save("cont4", "/metadata/continue"),
    );
    out.push(Step::post(
        "list-create-between-pages",
        &cms,
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "item-9", "labels": {"tier": "late"}}}),
    ));
    out.push(Step::get(
        "list-snapshot-page-2",
        &format!("{cms}?limit=4&continue=${{cont4}}"),
    ));
    let selectors = [
        ("eq", "labelSelector=tier%3Dweb"),
        ("double-eq", "labelSelector=tier%3D%3Ddb"),
        ("neq", "labelSelector=tier!%3Dweb"),
        ("in", "labelSelector=tier%20in%20(db%2Ccache)"),
        ("notin", "labelSelector=tier%20notin%20(db%2Ccache)"),
        ("exists", "labelSelector=even"),
        ("not-exists", "labelSelector=!even"),
        ("and", "labelSelector=tier%3Dweb%2Ceven%3Dtrue"),
        ("none-match", "labelSelector=tier%3Dnothing"),
        ("field-name", "fieldSelector=metadata.name%3Ditem-3"),
        ("field-name-neq", "fieldSelector=metadata.name!%3Ditem-3"),
        (
            "field-namespace",
            "fieldSelector=metadata.namespace%3Ddiff-list",
        ),
        (
            "field-and-label",
            "fieldSelector=metadata.name!%3Ditem-0&labelSelector=tier%3Dweb",
        ),
    ];
    for (tag, q) in selectors {
        out.push(Step::get(&format!("list-sel-{tag}"), &format!("{cms}?{q}")));
    }
    out.push(Step::get(
        "list-all-namespaces-selected",
        "/api/v1/configmaps?labelSelector=tier%3Dcache",
    ));
    out.push(Step::get(
        "list-namespaces-field",
        "/api/v1/namespaces?fieldSelector=metadata.name%3Ddiff-list",
    ));
    out.push(Step::get(
        "list-secrets-type-field",
        &format!("/api/v1/namespaces/{NS_LIST}/secrets?fieldSelector=type%3DOpaque"),
    ));
    out.push(Step::delete(
        "list-deletecollection",
        &format!("{cms}?labelSelector=tier%3Ddb"),
    ));
    out.push(Step::get("list-after-deletecollection", &cms));
    out
}
