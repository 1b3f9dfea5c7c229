//! Finalizers, owner-reference garbage collection with Background,
//! Foreground and Orphan propagation, and namespace deletion. End states
//! are observed by polling.

use serde_json::{Value, json};

use super::NS_GC;
use crate::step::{MERGE, Step, Until};

fn cm(name: &str, meta: Value) -> Value {
    let mut m = json!({"name": name});
    if let (Some(m), Value::Object(extra)) = (m.as_object_mut(), meta) {
        m.extend(extra);
    }
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": m})
}

fn owned_by(owner: &str, uid_var: &str, block: bool) -> Value {
    json!({"ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": owner,
        "uid": format!("${{{uid_var}}}"), "blockOwnerDeletion": block}]})
}

fn delete_options(policy: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": policy})
}

pub fn all() -> Vec<Step> {
    let cms = format!("/api/v1/namespaces/{NS_GC}/configmaps");
    let at = |n: &str| format!("{cms}/{n}");
    let mut out = vec![
        // Finalizers.
        Step::post(
            "fin-create",
            &cms,
            cm("held", json!({"finalizers": ["diff.example.com/hold"]})),
        ),
        Step::delete("fin-delete", &at("held")),
        Step::get("fin-get-deleting", &at("held")),
        Step::patch(
            "fin-add-while-deleting",
            &at("held"),
            MERGE,
            json!({"metadata": {"finalizers": ["diff.example.com/hold", "diff.example.com/new"]}}),
        ),
        Step::patch(
            "fin-change-data-while-deleting",
            &at("held"),
            MERGE,
            json!({"data": {"still": "writable"}}),
        ),
        Step::delete("fin-delete-again", &at("held")),
        Step::patch(
            "fin-remove",
            &at("held"),
            MERGE,
            json!({"metadata": {"finalizers": null}}),
        ),
        Step::get("fin-gone", &at("held")),
    ];
    for (tag, policy) in [("bg", "Background"), ("orphan", "Orphan")] {
        let owner = format!("{tag}-owner");
        let uid = format!("{tag}_uid");
        out.extend([
            Step::post(&format!("gc-{tag}-owner"), &cms, cm(&owner, json!({})))
                .save(&uid, "/metadata/uid"),
            Step::post(
                &format!("gc-{tag}-child-1"),
                &cms,
                cm(&format!("{tag}-child-1"), owned_by(&owner, &uid, false)),
            ),
            Step::post(
                &format!("gc-{tag}-child-2"),
                &cms,
                cm(&format!("{tag}-child-2"), owned_by(&owner, &uid, true)),
            ),
            Step::delete_with(
                &format!("gc-{tag}-delete"),
                &at(&owner),
                delete_options(policy),
            ),
            Step::poll(
                &format!("gc-{tag}-owner-gone"),
                &at(&owner),
                Until::Code(404),
            ),
        ]);
        for child in 1..=2 {
            let path = at(&format!("{tag}-child-{child}"));
            let until = if policy == "Orphan" {
                Until::Equals("/metadata/ownerReferences", Value::Null)
            } else {
                Until::Code(404)
            };
            out.push(Step::poll(
                &format!("gc-{tag}-child-{child}-end"),
                &path,
                until,
            ));
        }
    }
    // Foreground: the owner waits, visibly, for a dependent held by a finalizer.
    out.extend([
        Step::post("gc-fg-owner", &cms, cm("fg-owner", json!({}))).save("fg_uid", "/metadata/uid"),
        Step::post("gc-fg-child", &cms, cm("fg-child", {
            let mut m = owned_by("fg-owner", "fg_uid", true);
            m["finalizers"] = json!(["diff.example.com/hold"]);
            m
        })),
        Step::post("gc-fg-child-free", &cms, cm("fg-child-free", owned_by("fg-owner", "fg_uid", false))),
        Step::delete_with("gc-fg-delete", &at("fg-owner"), delete_options("Foreground")),
        Step::poll("gc-fg-child-deleting", &at("fg-child"), Until::Present("/metadata/deletionTimestamp")),
        Step::poll("gc-fg-child-free-gone", &at("fg-child-free"), Until::Code(404)),
        Step::get("gc-fg-owner-waiting", &at("fg-owner")),
        Step::patch("gc-fg-release-child", &at("fg-child"), MERGE, json!({"metadata": {"finalizers": null}})),
        Step::poll("gc-fg-child-gone", &at("fg-child"), Until::Code(404)),
        Step::poll("gc-fg-owner-gone", &at("fg-owner"), Until::Code(404)),
        // A dependent whose owner never existed is collected.
        Step::post("gc-dangling", &cms, cm("dangling", json!({"ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "ghost", "uid": "00000000-0000-0000-0000-000000000001"}]}))),
        Step::poll("gc-dangling-gone", &at("dangling"), Until::Code(404)),
        // Orphan by query parameter, then the default (background) for a Deployment's children.
        Step::post("gc-q-owner", &cms, cm("q-owner", json!({}))).save("q_uid", "/metadata/uid"),
        Step::post("gc-q-child", &cms, cm("q-child", owned_by("q-owner", "q_uid", false))),
        Step::delete("gc-q-delete", &format!("{}?propagationPolicy=Orphan", at("q-owner"))),
        Step::poll("gc-q-child-orphaned", &at("q-child"), Until::Equals("/metadata/ownerReferences", Value::Null)),
        Step::poll("gc-q-owner-gone", &at("q-owner"), Until::Code(404)),
        Step::get("gc-list-end", &cms),
        // Namespace deletion removes everything in it.
        Step::post("ns-doomed-create", "/api/v1/namespaces", json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "diff-doomed", "labels": {"doomed": "yes"}}})),
        Step::get("ns-doomed-get", "/api/v1/namespaces/diff-doomed"),
        Step::post("ns-doomed-cm", "/api/v1/namespaces/diff-doomed/configmaps", cm("inside", json!({}))),
        Step::delete("ns-doomed-delete", "/api/v1/namespaces/diff-doomed"),
        Step::post("ns-doomed-create-inside", "/api/v1/namespaces/diff-doomed/configmaps", cm("late", json!({}))),
        Step::poll("ns-doomed-gone", "/api/v1/namespaces/diff-doomed", Until::Code(404)),
        Step::get("ns-doomed-cm-gone", "/api/v1/namespaces/diff-doomed/configmaps/inside"),
        Step::get("ns-list-selected", "/api/v1/namespaces?labelSelector=doomed"),
    ]);
    out
}
