//! Persistence: every acknowledged write survives a restart (in process, and
//! after `kill -9` of a server process) with the same bytes, uids and
//! resourceVersions; a torn final record is dropped, other damage refuses to
//! start.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use metacontroller_apiserver::persist::{self, PersistError};
use metacontroller_apiserver::{ApiServer, Config, StartError};
use parking_lot::Mutex;
use serde_json::{Value, json};

fn config(dir: &Path) -> Config {
    Config {
        data_dir: Some(dir.to_path_buf()),
        ..Config::default()
    }
}

async fn start(dir: &Path) -> ApiServer {
    ApiServer::start(config(dir)).await.expect("server starts")
}

#[derive(Clone)]
struct Http {
    base: String,
    client: reqwest::Client,
}

impl Http {
    fn new(base: String) -> Self {
        Self {
            base,
            client: reqwest::Client::new(),
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Vec<u8>) {
        let resp = req.send().await.expect("request");
        let code = resp.status().as_u16();
        (code, resp.bytes().await.expect("body").to_vec())
    }

    async fn get(&self, path: &str) -> (u16, Vec<u8>) {
        self.send(self.client.get(format!("{}{path}", self.base)))
            .await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Vec<u8>) {
        self.send(self.client.post(format!("{}{path}", self.base)).json(&body))
            .await
    }

    async fn put(&self, path: &str, body: Value) -> (u16, Vec<u8>) {
        self.send(self.client.put(format!("{}{path}", self.base)).json(&body))
            .await
    }

    async fn merge_patch(&self, path: &str, body: Value) -> (u16, Vec<u8>) {
        self.send(
            self.client
                .patch(format!("{}{path}", self.base))
                .header("content-type", "application/merge-patch+json")
                .body(body.to_string()),
        )
        .await
    }

    async fn delete(&self, path: &str) -> (u16, Vec<u8>) {
        self.send(self.client.delete(format!("{}{path}", self.base)))
            .await
    }

    /// The first line of a watch stream.
    async fn first_watch_line(&self, path: &str) -> Value {
        let mut resp = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("watch");
        assert_eq!(resp.status(), 200);
        let mut buf = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !buf.contains(&b'\n') {
            let left = deadline.saturating_duration_since(Instant::now());
            let chunk = tokio::time::timeout(left, resp.chunk())
                .await
                .expect("a watch event in time")
                .expect("stream")
                .expect("stream not ended");
            buf.extend_from_slice(&chunk);
        }
        let line = buf.split(|b| *b == b'\n').next().unwrap();
        serde_json::from_slice(line).unwrap()
    }
}

fn ok(r: (u16, Vec<u8>), want: u16) -> Value {
    assert_eq!(r.0, want, "{}", String::from_utf8_lossy(&r.1));
    serde_json::from_slice(&r.1).unwrap()
}

fn rv_of(v: &Value) -> u64 {
    v["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn widget_crd(plural: &str, kind: &str) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.example.com")},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": plural, "kind": kind},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}
            }]
        }
    })
}

const CM: &str = "/api/v1/namespaces/app/configmaps";
const WIDGETS: &str = "/apis/example.com/v1/namespaces/app/widgets";

/// Every path whose bytes must be equal across a restart.
const DUMP: &[&str] = &[
    "/api/v1/namespaces",
    "/api/v1/namespaces/default",
    "/api/v1/namespaces/app",
    "/api/v1/configmaps",
    "/api/v1/namespaces/app/configmaps/a",
    "/api/v1/namespaces/app/configmaps/b",
    "/api/v1/namespaces/app/configmaps/child",
    "/api/v1/namespaces/app/configmaps/c",
    "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
    "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com",
    "/apis/example.com/v1/widgets",
    "/apis/example.com/v1/namespaces/app/widgets/w1",
    "/apis/example.com/v1/namespaces/app/widgets/w2",
    "/apis/example.com/v1/namespaces/app/gadgets",
    "/apis/example.com/v1",
];

async fn dump(http: &Http) -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    for p in DUMP {
        out.push(http.get(p).await);
    }
    out
}

async fn wait_for(what: &str, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_serves_every_object_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let http = Http::new(server.url());

    ok(
        http.post("/api/v1/namespaces", json!({"metadata": {"name": "app"}}))
            .await,
        201,
    );
    let a = ok(
        http.post(CM, json!({"metadata": {"name": "a"}, "data": {"k": "1"}}))
            .await,
        201,
    );
    ok(
        http.post(CM, json!({"metadata": {"name": "b"}, "data": {"k": "1"}}))
            .await,
        201,
    );
    ok(
        http.post(CM, json!({"metadata": {"name": "c"}, "data": {"k": "1"}}))
            .await,
        201,
    );
    ok(
        http.post(
            CM,
            json!({"metadata": {"name": "child", "ownerReferences": [{
                "apiVersion": "v1", "kind": "ConfigMap", "name": "a",
                "uid": a["metadata"]["uid"]
            }]}}),
        )
        .await,
        201,
    );
    ok(
        http.merge_patch(&format!("{CM}/b"), json!({"data": {"k": "2", "x": "y"}}))
            .await,
        200,
    );
    let mut b = ok(http.get(&format!("{CM}/b")).await, 200);
    b["data"]["z"] = json!("put");
    ok(http.put(&format!("{CM}/b"), b).await, 200);
    ok(http.delete(&format!("{CM}/c")).await, 200);

    // A CRD with custom resources, updated and deleted.
    ok(
        http.post(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            widget_crd("widgets", "Widget"),
        )
        .await,
        201,
    );
    for name in ["w1", "w2"] {
        ok(
            http.post(
                WIDGETS,
                json!({"apiVersion": "example.com/v1", "kind": "Widget",
                       "metadata": {"name": name}, "spec": {"size": 1}}),
            )
            .await,
            201,
        );
    }
    ok(
        http.merge_patch(&format!("{WIDGETS}/w1"), json!({"spec": {"size": 3}}))
            .await,
        200,
    );
    let mut w1 = ok(http.get(&format!("{WIDGETS}/w1")).await, 200);
    w1["spec"]["color"] = json!("blue");
    ok(http.put(&format!("{WIDGETS}/w1"), w1).await, 200);
    ok(
        http.merge_patch(
            &format!("{WIDGETS}/w1/status"),
            json!({"status": {"ready": true}}),
        )
        .await,
        200,
    );
    ok(http.delete(&format!("{WIDGETS}/w2")).await, 200);

    // A second CRD, deleted (through its cleanup finalizer) before the restart.
    ok(
        http.post(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            widget_crd("gadgets", "Gadget"),
        )
        .await,
        201,
    );
    ok(
        http.post(
            "/apis/example.com/v1/namespaces/app/gadgets",
            json!({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}}),
        )
        .await,
        201,
    );
    http.delete("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gadgets.example.com")
        .await;
    wait_for("the gadgets CRD to go", async || {
        http.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gadgets.example.com")
            .await
            .0
            == 404
    })
    .await;

    let before = dump(&http).await;
    let last_rv = server.shared().inner.lock().current_rv();
    drop(server);

    let server = start(dir.path()).await;
    let http = Http::new(server.url());
    let after = dump(&http).await;
    for ((p, b), a) in DUMP.iter().zip(&before).zip(&after) {
        assert_eq!(
            (b.0, String::from_utf8_lossy(&b.1)),
            (a.0, String::from_utf8_lossy(&a.1)),
            "{p} changed across the restart"
        );
    }
    // The deleted objects stay deleted; the deleted CRD's resource is gone.
    assert_eq!(after[7].0, 404);
    assert_eq!(after[12].0, 404);
    assert_eq!(after[13].0, 404);
    assert_eq!(server.shared().inner.lock().current_rv(), last_rv);

    // Watches from before the restart have no history to replay: 410.
    let old = http
        .first_watch_line(&format!("{CM}?watch=true&resourceVersion={}", rv_of(&a)))
        .await;
    assert_eq!(old["type"], "ERROR", "{old}");
    assert_eq!(old["object"]["code"], 410, "{old}");

    // New writes continue after the restored resourceVersion and are
    // served to watchers from the current one.
    let d = ok(http.post(CM, json!({"metadata": {"name": "d"}})).await, 201);
    assert!(rv_of(&d) > last_rv, "{} <= {last_rv}", rv_of(&d));
    let ev = http
        .first_watch_line(&format!("{CM}?watch=true&resourceVersion={last_rv}"))
        .await;
    assert_eq!(
        (
            ev["type"].as_str(),
            ev["object"]["metadata"]["name"].as_str()
        ),
        (Some("ADDED"), Some("d"))
    );
    // Custom resources are served (created, listed) again.
    ok(
        http.post(
            WIDGETS,
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w3"}}),
        )
        .await,
        201,
    );
    // The garbage collector still knows the owner relation.
    ok(http.delete(&format!("{CM}/a")).await, 200);
    wait_for("the dependent to be collected", async || {
        http.get(&format!("{CM}/child")).await.0 == 404
    })
    .await;
    drop(server);

    // And a third start sees the writes of the second.
    let server = start(dir.path()).await;
    let http = Http::new(server.url());
    ok(http.get(&format!("{CM}/d")).await, 200);
    ok(http.get(&format!("{WIDGETS}/w3")).await, 200);
    assert_eq!(http.get(&format!("{CM}/child")).await.0, 404);
}

#[tokio::test]
async fn initial_namespaces_are_created_once_and_in_memory_is_the_default() {
    assert!(Config::default().data_dir.is_none());
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let http = Http::new(server.url());
    let default = http.get("/api/v1/namespaces/default").await;
    assert_eq!(default.0, 200);
    drop(server);
    let server = start(dir.path()).await;
    let http = Http::new(server.url());
    assert_eq!(http.get("/api/v1/namespaces/default").await, default);
}

#[tokio::test]
async fn a_data_directory_serves_one_server_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let err = ApiServer::start(config(dir.path())).await.err().unwrap();
    assert!(
        matches!(err, StartError::Persistence(PersistError::Locked { .. })),
        "{err}"
    );
    drop(server);
    start(dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_bounds_the_log_and_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        persistence: persist::Options {
            compact_after_bytes: 32 * 1024,
            ..Default::default()
        },
        ..config(dir.path())
    };
    let server = ApiServer::start(cfg.clone()).await.unwrap();
    let http = Http::new(server.url());
    ok(
        http.post("/api/v1/namespaces", json!({"metadata": {"name": "app"}}))
            .await,
        201,
    );
    let payload = "x".repeat(900);
    for i in 0..200 {
        ok(
            http.post(
                CM,
                json!({"metadata": {"name": format!("cm{i}")}, "data": {"v": payload}}),
            )
            .await,
            201,
        );
    }
    for i in 0..100 {
        ok(
            http.merge_patch(&format!("{CM}/cm{i}"), json!({"data": {"v": "small"}}))
                .await,
            200,
        );
    }
    for i in 100..150 {
        ok(http.delete(&format!("{CM}/cm{i}")).await, 200);
    }
    wait_for("a snapshot", async || dir.path().join("snapshot").exists()).await;
    // An explicit snapshot at the end leaves one short segment.
    server
        .persistence()
        .unwrap()
        .snapshot(&server.shared().inner)
        .unwrap();
    let segments: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("log-"))
        .collect();
    assert_eq!(segments.len(), 1, "{segments:?}");
    assert_eq!(
        std::fs::metadata(&segments[0]).unwrap().len(),
        persist::FILE_HEADER_LEN as u64
    );
    let list = http.get("/api/v1/configmaps").await;
    // More writes after the snapshot land in the new segment.
    ok(
        http.merge_patch(&format!("{CM}/cm0"), json!({"data": {"v": "after"}}))
            .await,
        200,
    );
    let cm0 = http.get(&format!("{CM}/cm0")).await;
    let list_after = http.get("/api/v1/configmaps").await;
    assert_ne!(list, list_after);
    drop(server);

    let server = ApiServer::start(cfg).await.unwrap();
    let http = Http::new(server.url());
    assert_eq!(http.get("/api/v1/configmaps").await, list_after);
    assert_eq!(http.get(&format!("{CM}/cm0")).await, cm0);
    assert_eq!(http.get(&format!("{CM}/cm120")).await.0, 404);
    let listed = ok(http.get(CM).await, 200);
    assert_eq!(listed["items"].as_array().unwrap().len(), 150);
}

// ---------------------------------------------------------------------------
// Damaged files.

fn only_segment(dir: &Path) -> PathBuf {
    let mut segs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("log-"))
        .collect();
    assert_eq!(segs.len(), 1, "{segs:?}");
    segs.pop().unwrap()
}

/// Byte offsets of the records in a segment.
fn record_offsets(data: &[u8]) -> Vec<usize> {
    let mut offs = Vec::new();
    let mut off = persist::FILE_HEADER_LEN;
    while off < data.len() {
        offs.push(off);
        let len = u32::from_le_bytes(data[off..off + 4].try_into().unwrap()) as usize;
        off += persist::RECORD_HEADER_LEN + len;
    }
    assert_eq!(off, data.len());
    offs
}

async fn write_configmaps(dir: &Path, n: usize) -> Vec<Vec<u8>> {
    let server = start(dir).await;
    let http = Http::new(server.url());
    let mut acked = Vec::new();
    for i in 0..n {
        let r = http
            .post(
                "/api/v1/namespaces/default/configmaps",
                json!({"metadata": {"name": format!("cm{i}")}, "data": {"i": i.to_string()}}),
            )
            .await;
        assert_eq!(r.0, 201);
        acked.push(r.1);
    }
    acked
}

#[tokio::test]
async fn a_torn_final_record_is_dropped_with_a_warning() {
    for cut in [1usize, 11, 13, 40] {
        let dir = tempfile::tempdir().unwrap();
        let acked = write_configmaps(dir.path(), 5).await;
        let seg = only_segment(dir.path());
        let data = std::fs::read(&seg).unwrap();
        let last = *record_offsets(&data).last().unwrap();
        // The write of the last record was cut short `cut` bytes in.
        std::fs::write(&seg, &data[..last + cut]).unwrap();

        // Opening reports it...
        let (p, loaded) = persist::Persistence::open(dir.path(), Default::default()).unwrap();
        assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
        assert!(
            loaded.warnings[0].contains(&format!("torn final record at byte offset {last}")),
            "{:?}",
            loaded.warnings
        );
        // ...and cuts it off.
        assert_eq!(std::fs::metadata(&seg).unwrap().len(), last as u64);
        drop(p);

        let server = start(dir.path()).await;
        let http = Http::new(server.url());
        for (i, body) in acked.iter().enumerate().take(4) {
            let got = http
                .get(&format!("/api/v1/namespaces/default/configmaps/cm{i}"))
                .await;
            assert_eq!((got.0, &got.1), (200, body));
        }
        assert_eq!(
            http.get("/api/v1/namespaces/default/configmaps/cm4")
                .await
                .0,
            404
        );
        // Writing continues after the cut, and the next start is clean.
        let again = http
            .post(
                "/api/v1/namespaces/default/configmaps",
                json!({"metadata": {"name": "cm4"}}),
            )
            .await;
        assert_eq!(again.0, 201);
        drop(server);
        let (_p, loaded) = persist::Persistence::open(dir.path(), Default::default()).unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        assert!(loaded.objects.iter().any(|(_, k, _)| k.1 == "cm4"));
    }
}

#[tokio::test]
async fn a_zero_filled_tail_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    write_configmaps(dir.path(), 3).await;
    let seg = only_segment(dir.path());
    let mut f = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(&[0u8; 4096]).unwrap();
    drop(f);
    let (_p, loaded) = persist::Persistence::open(dir.path(), Default::default()).unwrap();
    assert_eq!(loaded.warnings.len(), 1);
    assert_eq!(
        loaded
            .objects
            .iter()
            .filter(|(gr, _, _)| gr.resource == "configmaps")
            .count(),
        3
    );
}

#[tokio::test]
async fn damage_before_the_end_refuses_to_start_and_names_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    write_configmaps(dir.path(), 6).await;
    let seg = only_segment(dir.path());
    let pristine = std::fs::read(&seg).unwrap();
    let offs = record_offsets(&pristine);
    let victim = offs[offs.len() - 3];

    // A flipped bit in a payload, in a header's length, in a header's checksum.
    for delta in [persist::RECORD_HEADER_LEN + 30, 1, 9] {
        let mut data = pristine.clone();
        data[victim + delta] ^= 0x40;
        std::fs::write(&seg, &data).unwrap();
        let err = ApiServer::start(config(dir.path())).await.err().unwrap();
        match &err {
            StartError::Persistence(PersistError::Corrupt { path, offset, .. }) => {
                assert_eq!(*offset, victim as u64, "{err}");
                assert_eq!(path, &seg);
            }
            other => panic!("unexpected: {other}"),
        }
        assert!(
            err.to_string().contains(&format!("offset {victim}")),
            "{err}"
        );
        // Nothing was cut off or rewritten.
        assert_eq!(std::fs::read(&seg).unwrap(), data);
    }

    // A damaged file header.
    let mut data = pristine.clone();
    data[3] ^= 1;
    std::fs::write(&seg, &data).unwrap();
    let err = ApiServer::start(config(dir.path())).await.err().unwrap();
    assert!(
        matches!(
            err,
            StartError::Persistence(PersistError::Corrupt { offset: 0, .. })
        ),
        "{err}"
    );

    // Repaired, it starts again with everything.
    std::fs::write(&seg, &pristine).unwrap();
    let server = start(dir.path()).await;
    let http = Http::new(server.url());
    assert_eq!(
        http.get("/api/v1/namespaces/default/configmaps/cm5")
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn a_damaged_snapshot_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    {
        let server = start(dir.path()).await;
        let http = Http::new(server.url());
        for i in 0..5 {
            ok(
                http.post(
                    "/api/v1/namespaces/default/configmaps",
                    json!({"metadata": {"name": format!("cm{i}")}}),
                )
                .await,
                201,
            );
        }
        server
            .persistence()
            .unwrap()
            .snapshot(&server.shared().inner)
            .unwrap();
    }
    let snap = dir.path().join("snapshot");
    let pristine = std::fs::read(&snap).unwrap();
    // Cut short (no end record) or a flipped bit: both are errors, since a
    // snapshot is only ever renamed into place whole.
    let mut flipped = pristine.clone();
    flipped[pristine.len() / 2] ^= 2;
    for data in [pristine[..pristine.len() - 5].to_vec(), flipped] {
        std::fs::write(&snap, &data).unwrap();
        let err = ApiServer::start(config(dir.path())).await.err().unwrap();
        match err {
            StartError::Persistence(PersistError::Corrupt { path, .. }) => assert_eq!(path, snap),
            other => panic!("unexpected: {other}"),
        }
    }
    std::fs::write(&snap, &pristine).unwrap();
    let server = start(dir.path()).await;
    let http = Http::new(server.url());
    assert_eq!(
        http.get("/api/v1/namespaces/default/configmaps/cm4")
            .await
            .0,
        200
    );
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut segs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("log-"))
        .collect();
    segs.sort();
    segs
}

#[tokio::test]
async fn a_crash_in_the_middle_of_compaction_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let http = Http::new(server.url());
    let cm = "/api/v1/namespaces/default/configmaps";
    let snapshot = || {
        server
            .persistence()
            .unwrap()
            .snapshot(&server.shared().inner)
            .unwrap()
    };
    for i in 0..10 {
        ok(
            http.post(cm, json!({"metadata": {"name": format!("a{i}")}}))
                .await,
            201,
        );
    }
    snapshot();
    for i in 0..10 {
        ok(
            http.post(cm, json!({"metadata": {"name": format!("b{i}")}}))
                .await,
            201,
        );
    }
    let old_snapshot = std::fs::read(dir.path().join("snapshot")).unwrap();
    let old_segment = segments(dir.path()).pop().unwrap();
    let old_segment_data = std::fs::read(&old_segment).unwrap();
    snapshot();
    ok(http.post(cm, json!({"metadata": {"name": "c"}})).await, 201);
    let want = http.get(cm).await;
    drop(server);

    // Died after writing the new snapshot, before deleting the old segment:
    // its records are skipped (the snapshot has them) and it goes.
    std::fs::write(&old_segment, &old_segment_data).unwrap();
    let server = start(dir.path()).await;
    assert_eq!(Http::new(server.url()).get(cm).await, want);
    assert_eq!(segments(dir.path()).len(), 1);
    drop(server);

    // Died after starting the new segment, before the new snapshot was
    // renamed into place: the old snapshot and both segments have it all.
    std::fs::write(&old_segment, &old_segment_data).unwrap();
    std::fs::write(dir.path().join("snapshot.tmp"), b"half a snapshot").unwrap();
    std::fs::write(dir.path().join("snapshot"), &old_snapshot).unwrap();
    let server = start(dir.path()).await;
    assert_eq!(Http::new(server.url()).get(cm).await, want);
    assert!(!dir.path().join("snapshot.tmp").exists());
    drop(server);

    // The old snapshot with only the newer segment: the writes in between
    // are missing, and starting refuses rather than serve a hole.
    std::fs::remove_file(&old_segment).unwrap();
    let err = ApiServer::start(config(dir.path())).await.err().unwrap();
    assert!(
        matches!(
            &err,
            StartError::Persistence(PersistError::Corrupt { offset: 0, .. })
        ) && err.to_string().contains("writes in between are missing"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// kill -9 of a real server process.

const CHILD_ENV: &str = "APISERVER_PERSIST_CHILD_DIR";

/// Not a test on its own: the server process for
/// `kill_9_loses_no_acknowledged_write`, run when `CHILD_ENV` is set.
#[test]
fn persist_child_server() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let server = start(Path::new(&dir)).await;
        println!("LISTENING {}", server.url());
        std::io::stdout().flush().unwrap();
        // Serve until killed, or until the parent goes away (stdin closes).
        tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            while std::io::stdin().read_line(&mut line).unwrap_or(0) > 0 {}
        })
        .await
        .unwrap();
        std::process::exit(0);
    });
}

struct ChildServer {
    child: Child,
    url: String,
}

fn spawn_child(dir: &Path) -> ChildServer {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "persist_child_server",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the server process");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // libtest may print "test name ... " before it on the same line.
            if let Some(at) = line.find("LISTENING ")
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(line[at + "LISTENING ".len()..].trim().to_string());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the server process reports its address");
    ChildServer { child, url }
}

/// Acknowledged writes: the object's name and its last acknowledged state
/// (`None` once deleted).
type Acked = Arc<Mutex<Vec<(String, Option<Vec<u8>>)>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = spawn_child(dir.path());
    let http = Http::new(server.url.clone());
    let path = "/api/v1/namespaces/default/configmaps";

    // N acknowledged writes: creates, updates and deletes...
    let n = 300;
    let acked: Acked = Arc::default();
    for i in 0..n {
        let r = http
            .post(
                path,
                json!({"metadata": {"name": format!("cm{i}")}, "data": {"i": i.to_string()}}),
            )
            .await;
        assert_eq!(r.0, 201);
        acked.lock().push((format!("cm{i}"), Some(r.1)));
    }
    for i in (0..n).step_by(3) {
        let r = http
            .merge_patch(
                &format!("{path}/cm{i}"),
                json!({"data": {"updated": "yes"}}),
            )
            .await;
        assert_eq!(r.0, 200);
        acked.lock().push((format!("cm{i}"), Some(r.1)));
    }
    for i in (1..n).step_by(5) {
        assert_eq!(http.delete(&format!("{path}/cm{i}")).await.0, 200);
        acked.lock().push((format!("cm{i}"), None));
    }
    // ...and more still arriving from four clients when the process dies.
    let mut writers = Vec::new();
    for w in 0..4 {
        let http = http.clone();
        let acked = acked.clone();
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let name = format!("late-{w}-{i}");
                let Ok(resp) = http
                    .client
                    .post(format!("{}{path}", http.base))
                    .json(&json!({"metadata": {"name": name}}))
                    .send()
                    .await
                else {
                    return;
                };
                let code = resp.status().as_u16();
                let Ok(body) = resp.bytes().await else { return };
                assert_eq!(code, 201);
                acked.lock().push((name, Some(body.to_vec())));
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    for w in writers {
        w.await.unwrap();
    }
    let acked = std::mem::take(&mut *acked.lock());
    let late = acked.iter().filter(|(n, _)| n.starts_with("late-")).count();
    assert!(late > 0, "no write was in flight at the kill");

    let mut server = spawn_child(dir.path());
    let http = Http::new(server.url.clone());
    let mut last: std::collections::BTreeMap<String, Option<Vec<u8>>> = Default::default();
    for (name, body) in acked {
        last.insert(name, body);
    }
    for (name, body) in &last {
        let got = http.get(&format!("{path}/{name}")).await;
        match body {
            Some(b) => assert_eq!(
                (got.0, String::from_utf8_lossy(&got.1)),
                (200, String::from_utf8_lossy(b)),
                "{name}"
            ),
            None => assert_eq!(got.0, 404, "{name}"),
        }
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}
