//! `dryRun=All`: every write answers as if done, and nothing changes.

use serde_json::json;

use super::NS;
use crate::step::{MERGE, Step};

pub fn all() -> Vec<Step> {
    let cms = format!("/api/v1/namespaces/{NS}/configmaps");
    let cm = format!("{cms}/dry");
    let obj = |data: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dry"}, "data": {"v": data}});
    vec![
        Step::post("dry-create", &format!("{cms}?dryRun=All"), obj("1")),
        Step::get("dry-create-left-nothing", &cm),
        Step::post("dry-create-for-real", &cms, obj("1"))
            .save("dry_rv", "/metadata/resourceVersion"),
        Step::put("dry-update", &format!("{cm}?dryRun=All"), obj("2")),
        Step::patch(
            "dry-patch",
            &format!("{cm}?dryRun=All"),
            MERGE,
            json!({"data": {"v": "3"}}),
        ),
        Step::get("dry-unchanged", &cm),
        Step::delete("dry-delete", &format!("{cm}?dryRun=All")),
        Step::get("dry-still-there", &cm),
        Step::post(
            "dry-create-existing",
            &format!("{cms}?dryRun=All"),
            obj("4"),
        ),
        Step::post(
            "dry-create-invalid",
            &format!("{cms}?dryRun=All"),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name"}}),
        ),
        Step::post("dry-bad-value", &format!("{cms}?dryRun=Some"), obj("5")),
        Step::post(
            "dry-generate-name",
            &format!("{cms}?dryRun=All"),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "dry-"}}),
        ),
        Step::get("dry-list", &format!("{cms}?labelSelector=dry")),
    ]
}
