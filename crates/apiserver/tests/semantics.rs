//! Kubernetes API semantics, checked over plain HTTP.

mod common;

use std::time::Duration;

use common::{Raw, eventually_async, server, widget_crd};
use futures::StreamExt;
use serde_json::{Value, json};

fn cm(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}, "data": {"k": "v"}})
}

async fn install_widgets(raw: &Raw, scope: &str) {
    let (code, _) = raw
        .post(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            widget_crd(scope),
        )
        .await;
    assert_eq!(code, 201);
}

#[tokio::test]
async fn create_fills_server_fields_and_rejects_duplicates() {
    let s = server().await;
    let raw = Raw::new(&s);
    let (code, o) = raw
        .post("/api/v1/namespaces/default/configmaps", cm("a", json!({})))
        .await;
    assert_eq!(code, 201);
    let m = &o["metadata"];
    assert_eq!(m["namespace"], "default");
    assert_eq!(m["uid"].as_str().unwrap().len(), 36);
    assert!(m["creationTimestamp"].as_str().unwrap().ends_with('Z'));
    assert!(
        m["resourceVersion"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .is_ok()
    );
    // ConfigMaps carry no generation; custom resources and workloads do.
    assert!(m.get("generation").is_none());

    let (code, e) = raw
        .post("/api/v1/namespaces/default/configmaps", cm("a", json!({})))
        .await;
    assert_eq!((code, e["reason"].as_str()), (409, Some("AlreadyExists")));
    assert_eq!(e["kind"], "Status");

    let (code, o) = raw
        .post(
            "/api/v1/namespaces/default/configmaps",
            json!({"metadata": {"generateName": "gen-"}}),
        )
        .await;
    assert_eq!(code, 201);
    let name = o["metadata"]["name"].as_str().unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");

    let (code, e) = raw
        .post("/api/v1/namespaces/nope/configmaps", cm("a", json!({})))
        .await;
    assert_eq!((code, e["reason"].as_str()), (404, Some("NotFound")));
    assert_eq!(e["message"], "namespaces \"nope\" not found");

    let (code, e) = raw
        .post(
            "/api/v1/namespaces/default/configmaps",
            json!({"metadata": {}}),
        )
        .await;
    assert_eq!((code, e["reason"].as_str()), (422, Some("Invalid")));

    let (code, e) = raw
        .post(
            "/api/v1/namespaces/default/configmaps",
            cm("Bad_Name", json!({})),
        )
        .await;
    assert_eq!((code, e["reason"].as_str()), (422, Some("Invalid")));

    let (code, o) = raw
        .post(
            "/apis/apps/v1/namespaces/default/deployments",
            json!({"metadata": {"name": "d"}, "spec": {"replicas": 1}}),
        )
        .await;
    assert_eq!(code, 201);
    assert_eq!(o["metadata"]["generation"], 1);
    assert_eq!(o["kind"], "Deployment");
    assert_eq!(o["apiVersion"], "apps/v1");
}

#[tokio::test]
async fn malformed_requests_get_4xx_not_5xx() {
    let s = server().await;
    let raw = Raw::new(&s);
    let resp = raw
        .http
        .post(format!("{}/api/v1/namespaces/default/configmaps", raw.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let (code, _) = raw.get("/api/v1/namespaces/default/frobnicators").await;
    assert_eq!(code, 404);
    let (code, _) = raw.get("/apis/nope.example.com/v1/things").await;
    assert_eq!(code, 404);
    let (code, e) = raw.get("/api/v1/pods?labelSelector=a%20in%20(").await;
    assert_eq!((code, e["reason"].as_str()), (400, Some("BadRequest")));
    let (code, _) = raw.get("/api/v1/pods?fieldSelector=spec.unknown%3Dx").await;
    assert_eq!(code, 400);
    let (code, _) = raw
        .get("/api/v1/namespaces/default/configmaps?limit=abc")
        .await;
    assert_eq!(code, 400);
    // A JSON patch that is not a list; one whose test fails.
    raw.post("/api/v1/namespaces/default/configmaps", cm("p", json!({})))
        .await;
    let (code, _) = raw
        .patch(
            "/api/v1/namespaces/default/configmaps/p",
            "application/json-patch+json",
            json!({"op": "x"}),
        )
        .await;
    assert_eq!(code, 400);
    let (code, _) = raw
        .patch(
            "/api/v1/namespaces/default/configmaps/p",
            "application/json-patch+json",
            json!([{"op": "test", "path": "/data/k", "value": "other"}]),
        )
        .await;
    assert_eq!(code, 422);
    let (code, _) = raw
        .patch(
            "/api/v1/namespaces/default/configmaps/p",
            "text/plain",
            json!({}),
        )
        .await;
    assert_eq!(code, 415);
    // The resourceVersion of a watch must be a number.
    let (code, _) = raw
        .get("/api/v1/configmaps?watch=true&resourceVersion=abc")
        .await;
    assert_eq!(code, 400);
}

/// A Deployment's generation also counts annotation changes (they reach its
/// ReplicaSets); a StatefulSet's counts only spec changes.
#[tokio::test]
async fn deployment_annotations_bump_the_generation() {
    let s = server().await;
    let raw = Raw::new(&s);
    for (plural, bumped) in [("deployments", 2), ("statefulsets", 1)] {
        let path = format!("/apis/apps/v1/namespaces/default/{plural}");
        let (code, _) = raw
            .post(
                &path,
                json!({"metadata": {"name": "a"}, "spec": {"replicas": 1}}),
            )
            .await;
        assert_eq!(code, 201);
        let one = format!("{path}/a");
        let merge = "application/merge-patch+json";
        let (_, o) = raw
            .patch(&one, merge, json!({"metadata": {"labels": {"k": "v"}}}))
            .await;
        assert_eq!(o["metadata"]["generation"], 1, "{plural}: a label");
        let (_, o) = raw
            .patch(
                &one,
                merge,
                json!({"metadata": {"annotations": {"k": "v"}}}),
            )
            .await;
        assert_eq!(
            o["metadata"]["generation"], bumped,
            "{plural}: an annotation"
        );
        let (_, o) = raw
            .patch(
                &one,
                merge,
                json!({"metadata": {"annotations": {"k": "v"}}}),
            )
            .await;
        assert_eq!(o["metadata"]["generation"], bumped, "{plural}: no change");
    }
}

#[tokio::test]
async fn updates_use_optimistic_concurrency_and_track_generation() {
    let s = server().await;
    let raw = Raw::new(&s);
    let (_, d) = raw
        .post(
            "/apis/apps/v1/namespaces/default/deployments",
            json!({"metadata": {"name": "d"}, "spec": {"replicas": 1}}),
        )
        .await;
    let mut stale = d.clone();
    let mut next = d.clone();
    next["metadata"]["labels"] = json!({"a": "b"});
    let (code, d2) = raw
        .put("/apis/apps/v1/namespaces/default/deployments/d", next)
        .await;
    assert_eq!(code, 200);
    assert_eq!(
        d2["metadata"]["generation"], 1,
        "metadata changes keep the generation"
    );
    assert_ne!(
        d2["metadata"]["resourceVersion"],
        d["metadata"]["resourceVersion"]
    );

    stale["spec"]["replicas"] = json!(5);
    let (code, e) = raw
        .put("/apis/apps/v1/namespaces/default/deployments/d", stale)
        .await;
    assert_eq!((code, e["reason"].as_str()), (409, Some("Conflict")));
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("the object has been modified")
    );

    let mut spec_change = d2.clone();
    spec_change["spec"]["replicas"] = json!(3);
    let (_, d3) = raw
        .put(
            "/apis/apps/v1/namespaces/default/deployments/d",
            spec_change,
        )
        .await;
    assert_eq!(d3["metadata"]["generation"], 2);

    // An update that changes nothing writes nothing.
    let (_, d4) = raw
        .put("/apis/apps/v1/namespaces/default/deployments/d", d3.clone())
        .await;
    assert_eq!(
        d4["metadata"]["resourceVersion"],
        d3["metadata"]["resourceVersion"]
    );

    // Unconditional update (no resourceVersion) is allowed for built-ins ...
    let mut uncond = d3.clone();
    uncond["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    uncond["spec"]["replicas"] = json!(4);
    let (code, _) = raw
        .put("/apis/apps/v1/namespaces/default/deployments/d", uncond)
        .await;
    assert_eq!(code, 200);
    // ... but not for custom resources.
    install_widgets(&raw, "Namespaced").await;
    let (code, w) = raw
        .post(
            "/apis/example.com/v1/namespaces/default/widgets",
            json!({"metadata": {"name": "w"}, "spec": {"a": 1}}),
        )
        .await;
    assert_eq!(code, 201);
    let mut w2 = w.clone();
    w2["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    let (code, _) = raw
        .put("/apis/example.com/v1/namespaces/default/widgets/w", w2)
        .await;
    assert_eq!(code, 422);
    // Updating something that does not exist is 404.
    let (code, _) = raw
        .put(
            "/apis/example.com/v1/namespaces/default/widgets/ghost",
            json!({"metadata": {"name": "ghost", "resourceVersion": "1"}}),
        )
        .await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn status_subresource_separates_spec_and_status() {
    let s = server().await;
    let raw = Raw::new(&s);
    install_widgets(&raw, "Namespaced").await;
    let base = "/apis/example.com/v1/namespaces/default/widgets";
    let (_, w) = raw
        .post(
            base,
            json!({"metadata": {"name": "w"}, "spec": {"size": 1}, "status": {"ready": true}}),
        )
        .await;
    assert!(w.get("status").is_none(), "create cannot set status");
    assert_eq!(w["metadata"]["generation"], 1);

    let mut with_status = w.clone();
    with_status["status"] = json!({"ready": 1});
    let (code, w2) = raw.put(&format!("{base}/w/status"), with_status).await;
    assert_eq!(code, 200, "{w2}");
    assert_eq!(w2["status"], json!({"ready": 1}));
    assert_eq!(
        w2["metadata"]["generation"], 1,
        "status writes keep the generation"
    );

    // The main endpoint ignores status; /status ignores everything else.
    let mut main = w2.clone();
    main["status"] = json!({"ready": 99});
    main["spec"]["size"] = json!(2);
    let (code, w3) = raw.put(&format!("{base}/w"), main).await;
    assert_eq!(code, 200, "{w3}");
    assert_eq!(w3["status"], json!({"ready": 1}));
    assert_eq!(w3["spec"]["size"], 2);
    assert_eq!(w3["metadata"]["generation"], 2);

    let (_, w4) = raw
        .patch(
            &format!("{base}/w/status"),
            "application/merge-patch+json",
            json!({"spec": {"size": 7}, "status": {"ready": 2}}),
        )
        .await;
    assert_eq!(w4["spec"]["size"], 2);
    assert_eq!(w4["status"]["ready"], 2);
    let (code, got) = raw.get(&format!("{base}/w/status")).await;
    assert_eq!((code, &got["status"]["ready"]), (200, &json!(2)));
}

#[tokio::test]
async fn label_and_field_selectors_filter_lists() {
    let s = server().await;
    let raw = Raw::new(&s);
    for (n, l) in [
        ("a", json!({"app": "web", "tier": "fe"})),
        ("b", json!({"app": "web", "tier": "be"})),
        ("c", json!({"app": "db"})),
        ("d", json!({})),
    ] {
        raw.post("/api/v1/namespaces/default/configmaps", cm(n, l))
            .await;
    }
    raw.post("/api/v1/namespaces", json!({"metadata": {"name": "other"}}))
        .await;
    raw.post(
        "/api/v1/namespaces/other/configmaps",
        cm("a", json!({"app": "web"})),
    )
    .await;
    let names = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                format!(
                    "{}/{}",
                    i["metadata"]["namespace"].as_str().unwrap(),
                    i["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect()
    };
    let q = |sel: &str| {
        format!(
            "/api/v1/namespaces/default/configmaps?labelSelector={}",
            urlencode(sel)
        )
    };
    assert_eq!(
        names(&raw.get(&q("app=web")).await.1),
        ["default/a", "default/b"]
    );
    assert_eq!(
        names(&raw.get(&q("app=web,tier!=fe")).await.1),
        ["default/b"]
    );
    assert_eq!(
        names(&raw.get(&q("app in (db, web),tier notin (be)")).await.1),
        ["default/a", "default/c"]
    );
    assert_eq!(names(&raw.get(&q("!app")).await.1), ["default/d"]);
    assert_eq!(
        names(&raw.get(&q("tier")).await.1),
        ["default/a", "default/b"]
    );
    let (_, all) = raw.get("/api/v1/configmaps?labelSelector=app%3Dweb").await;
    assert_eq!(names(&all), ["default/a", "default/b", "other/a"]);
    let (_, by_name) = raw
        .get("/api/v1/configmaps?fieldSelector=metadata.name%3Da")
        .await;
    assert_eq!(names(&by_name), ["default/a", "other/a"]);
    let (_, by_ns) = raw
        .get("/api/v1/configmaps?fieldSelector=metadata.namespace%21%3Ddefault")
        .await;
    assert!(names(&by_ns).iter().all(|n| !n.starts_with("default/")));
    assert_eq!(all["kind"], "ConfigMapList");
    assert_eq!(all["apiVersion"], "v1");
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn pagination_reads_a_consistent_snapshot() {
    let s = server().await;
    let raw = Raw::new(&s);
    for i in 0..25 {
        raw.post(
            "/api/v1/namespaces/default/configmaps",
            cm(&format!("cm-{i:02}"), json!({})),
        )
        .await;
    }
    let (_, p1) = raw
        .get("/api/v1/namespaces/default/configmaps?limit=10")
        .await;
    assert_eq!(p1["items"].as_array().unwrap().len(), 10);
    assert_eq!(p1["metadata"]["remainingItemCount"], 15);
    let token = p1["metadata"]["continue"].as_str().unwrap().to_string();
    // Changes after the first page do not show up in later pages.
    raw.post(
        "/api/v1/namespaces/default/configmaps",
        cm("cm-99", json!({})),
    )
    .await;
    raw.delete("/api/v1/namespaces/default/configmaps/cm-20", None)
        .await;
    let mut seen: Vec<String> = p1["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    let mut token = Some(token);
    while let Some(t) = token {
        let (code, p) = raw
            .get(&format!(
                "/api/v1/namespaces/default/configmaps?limit=10&continue={t}"
            ))
            .await;
        assert_eq!(code, 200);
        assert_eq!(
            p["metadata"]["resourceVersion"],
            p1["metadata"]["resourceVersion"]
        );
        seen.extend(
            p["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["metadata"]["name"].as_str().unwrap().to_string()),
        );
        token = p["metadata"]["continue"].as_str().map(str::to_string);
    }
    let want: Vec<String> = (0..25).map(|i| format!("cm-{i:02}")).collect();
    assert_eq!(seen, want);
    let (code, e) = raw
        .get("/api/v1/namespaces/default/configmaps?limit=10&continue=garbage")
        .await;
    assert_eq!((code, e["reason"].as_str()), (400, Some("BadRequest")));
}

/// Reads watch events from a streaming response.
struct WatchStream {
    buf: Vec<u8>,
    stream: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
}

impl WatchStream {
    async fn open(raw: &Raw, path: &str) -> Self {
        let resp = raw
            .http
            .get(format!("{}{}", raw.base, path))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        Self {
            buf: Vec::new(),
            stream: resp.bytes_stream().boxed(),
        }
    }

    async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                return Some(serde_json::from_slice(&line).unwrap());
            }
            match tokio::time::timeout(Duration::from_secs(10), self.stream.next()).await {
                Ok(Some(Ok(chunk))) => self.buf.extend_from_slice(&chunk),
                _ => return None,
            }
        }
    }
}

#[tokio::test]
async fn watch_streams_changes_from_a_resource_version() {
    let s = server().await;
    let raw = Raw::new(&s);
    let (_, a) = raw
        .post(
            "/api/v1/namespaces/default/configmaps",
            cm("a", json!({"app": "x"})),
        )
        .await;
    let rv = a["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let mut w = WatchStream::open(
        &raw,
        &format!("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}"),
    )
    .await;
    raw.post("/api/v1/namespaces/default/configmaps", cm("b", json!({})))
        .await;
    let mut a2 = a.clone();
    a2["data"] = json!({"k": "changed"});
    raw.put("/api/v1/namespaces/default/configmaps/a", a2).await;
    raw.delete("/api/v1/namespaces/default/configmaps/b", None)
        .await;
    let e1 = w.next().await.unwrap();
    assert_eq!(
        (
            e1["type"].as_str(),
            e1["object"]["metadata"]["name"].as_str()
        ),
        (Some("ADDED"), Some("b"))
    );
    let e2 = w.next().await.unwrap();
    assert_eq!(
        (e2["type"].as_str(), e2["object"]["data"]["k"].as_str()),
        (Some("MODIFIED"), Some("changed"))
    );
    let e3 = w.next().await.unwrap();
    assert_eq!(e3["type"], "DELETED");
    let rvs: Vec<u64> = [&e1, &e2, &e3]
        .iter()
        .map(|e| {
            e["object"]["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(rvs.windows(2).all(|w| w[0] < w[1]), "{rvs:?}");

    // Without a resourceVersion: current state first, as ADDED events.
    let mut w = WatchStream::open(&raw, "/api/v1/namespaces/default/configmaps?watch=1").await;
    let first = w.next().await.unwrap();
    assert_eq!(
        (
            first["type"].as_str(),
            first["object"]["metadata"]["name"].as_str()
        ),
        (Some("ADDED"), Some("a"))
    );
}

#[tokio::test]
async fn watch_with_a_selector_sees_objects_enter_and_leave() {
    let s = server().await;
    let raw = Raw::new(&s);
    let (_, a) = raw
        .post(
            "/api/v1/namespaces/default/configmaps",
            cm("a", json!({"app": "x"})),
        )
        .await;
    let rv = a["metadata"]["resourceVersion"].as_str().unwrap();
    let mut w = WatchStream::open(&raw, &format!("/api/v1/namespaces/default/configmaps?watch=true&labelSelector=app%3Dy&resourceVersion={rv}")).await;
    let mut a2 = a.clone();
    a2["metadata"]["labels"] = json!({"app": "y"});
    let (_, a2) = raw.put("/api/v1/namespaces/default/configmaps/a", a2).await;
    let mut a3 = a2.clone();
    a3["metadata"]["labels"] = json!({"app": "z"});
    raw.put("/api/v1/namespaces/default/configmaps/a", a3).await;
    assert_eq!(w.next().await.unwrap()["type"], "ADDED");
    assert_eq!(w.next().await.unwrap()["type"], "DELETED");
}

#[tokio::test]
async fn watch_from_a_compacted_version_gets_410_gone() {
    let s = server().await;
    let raw = Raw::new(&s);
    let (_, a) = raw
        .post("/api/v1/namespaces/default/configmaps", cm("a", json!({})))
        .await;
    let old = a["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    raw.post("/api/v1/namespaces/default/configmaps", cm("b", json!({})))
        .await;
    raw.post("/api/v1/namespaces/default/configmaps", cm("c", json!({})))
        .await;
    s.compact();
    let mut w = WatchStream::open(
        &raw,
        &format!("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={old}"),
    )
    .await;
    let e = w.next().await.unwrap();
    assert_eq!(e["type"], "ERROR");
    assert_eq!(e["object"]["code"], 410);
    assert_eq!(e["object"]["kind"], "Status");
}

#[tokio::test]
async fn watch_bookmarks_and_timeout() {
    let s = server().await;
    let raw = Raw::new(&s);
    let started = std::time::Instant::now();
    let mut w = WatchStream::open(
        &raw,
        "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=1&timeoutSeconds=1",
    )
    .await;
    assert!(w.next().await.is_none(), "stream ends at the timeout");
    assert!(started.elapsed() >= Duration::from_secs(1));

    // sendInitialEvents streams the state then a bookmark marking its end.
    raw.post("/api/v1/namespaces/default/configmaps", cm("a", json!({})))
        .await;
    let mut w = WatchStream::open(&raw, "/api/v1/namespaces/default/configmaps?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true").await;
    assert_eq!(w.next().await.unwrap()["type"], "ADDED");
    let b = w.next().await.unwrap();
    assert_eq!(b["type"], "BOOKMARK");
    assert_eq!(
        b["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let s = server().await;
    let raw = Raw::new(&s);
    let mut obj = cm("f", json!({}));
    obj["metadata"]["finalizers"] = json!(["example.com/hold"]);
    raw.post("/api/v1/namespaces/default/configmaps", obj).await;
    let (code, d) = raw
        .delete("/api/v1/namespaces/default/configmaps/f", None)
        .await;
    // 200 even though the object lingers, as kube-apiserver answers.
    assert_eq!(code, 200);
    assert!(d["metadata"]["deletionTimestamp"].is_string());
    // Still there, terminating; no new finalizers may be added.
    let (code, cur) = raw.get("/api/v1/namespaces/default/configmaps/f").await;
    assert_eq!(code, 200);
    let mut more = cur.clone();
    more["metadata"]["finalizers"] = json!(["example.com/hold", "example.com/another"]);
    let (code, e) = raw
        .put("/api/v1/namespaces/default/configmaps/f", more)
        .await;
    assert_eq!((code, e["reason"].as_str()), (422, Some("Invalid")));
    let (code, _) = raw
        .patch(
            "/api/v1/namespaces/default/configmaps/f",
            "application/merge-patch+json",
            json!({"metadata": {"finalizers": null}}),
        )
        .await;
    assert_eq!(code, 200);
    let (code, _) = raw.get("/api/v1/namespaces/default/configmaps/f").await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn delete_preconditions_are_checked() {
    let s = server().await;
    let raw = Raw::new(&s);
    let (_, o) = raw
        .post("/api/v1/namespaces/default/configmaps", cm("p", json!({})))
        .await;
    let (code, e) = raw
        .delete(
            "/api/v1/namespaces/default/configmaps/p",
            Some(json!({"preconditions": {"uid": "not-the-uid"}})),
        )
        .await;
    assert_eq!((code, e["reason"].as_str()), (409, Some("Conflict")));
    let (code, e) = raw
        .delete(
            "/api/v1/namespaces/default/configmaps/p",
            Some(json!({"preconditions": {"resourceVersion": "1"}})),
        )
        .await;
    assert_eq!((code, e["reason"].as_str()), (409, Some("Conflict")));
    let (code, st) = raw
        .delete(
            "/api/v1/namespaces/default/configmaps/p",
            Some(json!({"preconditions": {"uid": o["metadata"]["uid"]}})),
        )
        .await;
    assert_eq!((code, st["status"].as_str()), (200, Some("Success")));
    let (code, _) = raw
        .delete("/api/v1/namespaces/default/configmaps/p", None)
        .await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn patches_follow_their_content_types() {
    let s = server().await;
    let raw = Raw::new(&s);
    let dep = json!({"metadata": {"name": "d"}, "spec": {"replicas": 1, "template": {"spec": {"containers": [
        {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
        {"name": "b", "image": "b:1"}
    ]}}}});
    raw.post("/apis/apps/v1/namespaces/default/deployments", dep)
        .await;
    let path = "/apis/apps/v1/namespaces/default/deployments/d";
    let (code, d) = raw
        .patch(
            path,
            "application/strategic-merge-patch+json",
            json!({"spec": {"template": {"spec": {"containers": [
                {"name": "a", "image": "a:2", "env": [{"name": "Y", "value": "2"}]},
                {"name": "b", "$patch": "delete"}
            ]}}}}),
        )
        .await;
    assert_eq!(code, 200);
    let cs = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(cs.len(), 1);
    assert_eq!(cs[0]["image"], "a:2");
    assert_eq!(
        cs[0]["env"].as_array().unwrap().len(),
        2,
        "env merged by name: {}",
        cs[0]
    );
    assert_eq!(d["metadata"]["generation"], 2);

    let (_, d) = raw
        .patch(
            path,
            "application/merge-patch+json",
            json!({"spec": {"replicas": 3}}),
        )
        .await;
    assert_eq!(d["spec"]["replicas"], 3);
    let (_, d) = raw
        .patch(
            path,
            "application/json-patch+json",
            json!([{"op": "replace", "path": "/spec/replicas", "value": 4}]),
        )
        .await;
    assert_eq!(d["spec"]["replicas"], 4);
    // A stale resourceVersion inside a patch is a precondition.
    let (code, _) = raw
        .patch(
            path,
            "application/merge-patch+json",
            json!({"metadata": {"resourceVersion": "1"}, "spec": {"replicas": 9}}),
        )
        .await;
    assert_eq!(code, 409);
    let (code, _) = raw
        .patch(
            "/apis/apps/v1/namespaces/default/deployments/ghost",
            "application/merge-patch+json",
            json!({}),
        )
        .await;
    assert_eq!(code, 404);

    // Custom resources take merge and JSON patches, not strategic ones.
    install_widgets(&raw, "Namespaced").await;
    raw.post(
        "/apis/example.com/v1/namespaces/default/widgets",
        json!({"metadata": {"name": "w"}, "spec": {"a": 1}}),
    )
    .await;
    let (code, _) = raw
        .patch(
            "/apis/example.com/v1/namespaces/default/widgets/w",
            "application/strategic-merge-patch+json",
            json!({"spec": {"a": 2}}),
        )
        .await;
    assert_eq!(code, 415);
    let (code, w) = raw
        .patch(
            "/apis/example.com/v1/namespaces/default/widgets/w",
            "application/merge-patch+json",
            json!({"spec": {"b": 2}}),
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(w["spec"], json!({"a": 1, "b": 2}));
}

#[tokio::test]
async fn crds_serve_every_version_and_go_away_with_their_objects() {
    let s = server().await;
    let raw = Raw::new(&s);
    let (code, crd) = raw
        .post(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            widget_crd("Namespaced"),
        )
        .await;
    assert_eq!(code, 201);
    let conds = crd["status"]["conditions"].as_array().unwrap();
    for t in ["Established", "NamesAccepted"] {
        assert!(
            conds
                .iter()
                .any(|c| c["type"] == t && c["status"] == "True"),
            "{t}"
        );
    }
    let (code, disc) = raw.get("/apis/example.com/v1").await;
    assert_eq!(code, 200);
    let r = &disc["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "widgets")
        .unwrap()
        .clone();
    assert_eq!(
        (r["kind"].as_str(), r["namespaced"].as_bool()),
        (Some("Widget"), Some(true))
    );
    assert!(
        disc["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "widgets/status")
    );

    let (code, w) = raw
        .post("/apis/example.com/v1beta1/namespaces/default/widgets", json!({"apiVersion": "example.com/v1beta1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {}}))
        .await;
    assert_eq!(code, 201);
    assert_eq!(w["apiVersion"], "example.com/v1beta1");
    let (_, w1) = raw
        .get("/apis/example.com/v1/namespaces/default/widgets/w")
        .await;
    assert_eq!(w1["apiVersion"], "example.com/v1");
    assert_eq!(w1["metadata"]["uid"], w["metadata"]["uid"]);

    let (code, _) = raw
        .delete(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com",
            None,
        )
        .await;
    assert!(code == 200 || code == 202);
    let raw2 = Raw::new(&s);
    let mut gone = false;
    for _ in 0..250 {
        let (code, _) = raw2
            .get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com")
            .await;
        if code == 404 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gone, "CRD removed once its objects are gone");
    let (code, _) = raw
        .get("/apis/example.com/v1/namespaces/default/widgets")
        .await;
    assert_eq!(code, 404);
    let (code, _) = raw.get("/apis/example.com/v1").await;
    assert_eq!(code, 404);
    // Re-creating it starts empty.
    install_widgets(&raw, "Namespaced").await;
    let (_, l) = raw
        .get("/apis/example.com/v1/namespaces/default/widgets")
        .await;
    assert_eq!(l["items"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn dry_run_changes_nothing() {
    let s = server().await;
    let raw = Raw::new(&s);
    let (code, o) = raw
        .post(
            "/api/v1/namespaces/default/configmaps?dryRun=All",
            cm("dry", json!({})),
        )
        .await;
    assert_eq!(code, 201);
    assert_eq!(o["metadata"]["name"], "dry");
    assert_eq!(
        raw.get("/api/v1/namespaces/default/configmaps/dry").await.0,
        404
    );
    raw.post(
        "/api/v1/namespaces/default/configmaps",
        cm("real", json!({})),
    )
    .await;
    let (code, o) = raw
        .patch(
            "/api/v1/namespaces/default/configmaps/real?dryRun=All",
            "application/merge-patch+json",
            json!({"data": {"k": "dry"}}),
        )
        .await;
    assert_eq!((code, o["data"]["k"].as_str()), (200, Some("dry")));
    assert_eq!(
        raw.get("/api/v1/namespaces/default/configmaps/real")
            .await
            .1["data"]["k"],
        "v"
    );
    let (code, _) = raw
        .delete(
            "/api/v1/namespaces/default/configmaps/real?dryRun=All",
            None,
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(
        raw.get("/api/v1/namespaces/default/configmaps/real")
            .await
            .0,
        200
    );
    let (code, _) = raw
        .post(
            "/api/v1/namespaces/default/configmaps?dryRun=Some",
            cm("x", json!({})),
        )
        .await;
    assert_eq!(code, 400);
}

#[tokio::test]
async fn deletecollection_and_terminating_namespaces() {
    let s = server().await;
    let raw = Raw::new(&s);
    raw.post(
        "/api/v1/namespaces",
        json!({"metadata": {"name": "doomed"}}),
    )
    .await;
    for n in ["a", "b", "c"] {
        raw.post(
            "/api/v1/namespaces/doomed/configmaps",
            cm(n, json!({"del": if n == "c" { "no" } else { "yes" }})),
        )
        .await;
    }
    let (code, _) = raw
        .delete(
            "/api/v1/namespaces/doomed/configmaps?labelSelector=del%3Dyes",
            None,
        )
        .await;
    assert_eq!(code, 200);
    let (_, l) = raw.get("/api/v1/namespaces/doomed/configmaps").await;
    assert_eq!(l["items"].as_array().unwrap().len(), 1);

    // A held object keeps the namespace terminating; creates are refused.
    let mut held = cm("held", json!({}));
    held["metadata"]["finalizers"] = json!(["example.com/hold"]);
    raw.post("/api/v1/namespaces/doomed/configmaps", held).await;
    let (code, ns) = raw.delete("/api/v1/namespaces/doomed", None).await;
    // 200 even though the namespace lingers, as kube-apiserver answers.
    assert_eq!(code, 200);
    assert_eq!(ns["status"]["phase"], "Terminating");
    let (code, e) = raw
        .post("/api/v1/namespaces/doomed/configmaps", cm("new", json!({})))
        .await;
    assert_eq!((code, e["reason"].as_str()), (403, Some("Forbidden")));
    eventually_async(
        Duration::from_secs(10),
        "unheld objects deleted",
        || async { raw.get("/api/v1/namespaces/doomed/configmaps/c").await.0 == 404 },
    )
    .await;
    assert_eq!(
        raw.get("/api/v1/namespaces/doomed").await.0,
        200,
        "held by the finalizer"
    );
    raw.patch(
        "/api/v1/namespaces/doomed/configmaps/held",
        "application/merge-patch+json",
        json!({"metadata": {"finalizers": null}}),
    )
    .await;
    eventually_async(Duration::from_secs(10), "namespace removed", || async {
        raw.get("/api/v1/namespaces/doomed").await.0 == 404
    })
    .await;
}

#[tokio::test]
async fn scale_subresource_reads_and_writes_replicas() {
    let s = server().await;
    let raw = Raw::new(&s);
    raw.post(
        "/apis/apps/v1/namespaces/default/deployments",
        json!({"metadata": {"name": "d"}, "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "d"}}}}),
    )
    .await;
    let (code, sc) = raw
        .get("/apis/apps/v1/namespaces/default/deployments/d/scale")
        .await;
    assert_eq!(code, 200);
    assert_eq!(
        (sc["kind"].as_str(), sc["spec"]["replicas"].as_i64()),
        (Some("Scale"), Some(2))
    );
    assert_eq!(sc["status"]["selector"], "app=d");
    let (code, _) = raw
        .patch(
            "/apis/apps/v1/namespaces/default/deployments/d/scale",
            "application/merge-patch+json",
            json!({"spec": {"replicas": 5}}),
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(
        raw.get("/apis/apps/v1/namespaces/default/deployments/d")
            .await
            .1["spec"]["replicas"],
        5
    );
}

#[tokio::test]
async fn request_counters_count_by_verb_and_resource() {
    let s = server().await;
    let raw = Raw::new(&s);
    let before = s.counters().writes();
    raw.post("/api/v1/namespaces/default/configmaps", cm("a", json!({})))
        .await;
    raw.get("/api/v1/namespaces/default/configmaps/a").await;
    raw.get("/api/v1/namespaces/default/configmaps").await;
    raw.patch(
        "/api/v1/namespaces/default/configmaps/a",
        "application/merge-patch+json",
        json!({"data": {}}),
    )
    .await;
    assert_eq!(s.counters().get("create", "configmaps"), 1);
    assert_eq!(s.counters().get("get", "configmaps"), 1);
    assert_eq!(s.counters().get("list", "configmaps"), 1);
    assert_eq!(s.counters().get("patch", "configmaps"), 1);
    assert_eq!(s.counters().writes() - before, 2);
}

#[tokio::test]
async fn secret_string_data_is_folded_into_data() {
    let s = server().await;
    let raw = Raw::new(&s);
    let (code, sec) = raw
        .post(
            "/api/v1/namespaces/default/secrets",
            json!({"metadata": {"name": "s"}, "data": {"a": "eA==", "b": "eQ=="}, "stringData": {"b": "z", "c": "w"}}),
        )
        .await;
    assert_eq!(code, 201);
    assert_eq!(sec["data"], json!({"a": "eA==", "b": "eg==", "c": "dw=="}));
    assert_eq!(sec["type"], "Opaque");
    assert!(sec.get("stringData").is_none());
    let (_, sec) = raw
        .patch(
            "/api/v1/namespaces/default/secrets/s",
            "application/merge-patch+json",
            json!({"stringData": {"a": "new"}}),
        )
        .await;
    assert_eq!(sec["data"]["a"], "bmV3");
    assert!(sec.get("stringData").is_none());
}
