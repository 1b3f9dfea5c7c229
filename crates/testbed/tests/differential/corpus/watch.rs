//! Watches from a resourceVersion: the event types and objects delivered in
//! a bounded read, selectors on watches, and 410 Gone for a version the
//! server no longer has.

use serde_json::json;

use super::NS_WATCH;
use crate::step::{MERGE, Step};

pub fn all() -> Vec<Step> {
    let cms = format!("/api/v1/namespaces/{NS_WATCH}/configmaps");
    let at = |n: &str| format!("{cms}/{n}");
    let cm = |n: &str, label: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": n, "labels": {"w": label}}, "data": {"v": "1"}});
    vec![
        Step::post("watch-before", &cms, cm("before", "a")),
        Step::get("watch-list", &cms).save("w_rv", "/metadata/resourceVersion"),
        Step::post("watch-create-a", &cms, cm("one", "a")),
        Step::post("watch-create-b", &cms, cm("two", "b")),
        Step::patch(
            "watch-modify",
            &at("one"),
            MERGE,
            json!({"data": {"v": "2"}}),
        ),
        Step::patch(
            "watch-relabel",
            &at("two"),
            MERGE,
            json!({"metadata": {"labels": {"w": "a"}}}),
        ),
        Step::delete("watch-delete", &at("one")),
        Step::watch("watch-from-rv", &cms, "&resourceVersion=${w_rv}"),
        Step::watch(
            "watch-from-rv-selected",
            &cms,
            "&resourceVersion=${w_rv}&labelSelector=w%3Da",
        ),
        Step::watch(
            "watch-from-rv-field",
            &cms,
            "&resourceVersion=${w_rv}&fieldSelector=metadata.name%3Dtwo",
        ),
        Step::watch("watch-no-rv", &cms, ""),
        Step::watch("watch-rv-zero", &cms, "&resourceVersion=0"),
        Step::watch(
            "watch-single-object",
            &cms,
            "&resourceVersion=${w_rv}&fieldSelector=metadata.name%3Done",
        ),
        Step::watch("watch-too-old", &cms, "&resourceVersion=1"),
        Step::watch("watch-bad-rv", &cms, "&resourceVersion=abc"),
        Step::get(
            "watch-list-rv-too-old",
            &format!("{cms}?resourceVersion=1&resourceVersionMatch=Exact"),
        ),
        Step::get(
            "watch-list-not-older",
            &format!("{cms}?resourceVersion=${{w_rv}}&resourceVersionMatch=NotOlderThan"),
        ),
        Step::get(
            "watch-list-match-without-rv",
            &format!("{cms}?resourceVersionMatch=NotOlderThan"),
        ),
    ]
}
