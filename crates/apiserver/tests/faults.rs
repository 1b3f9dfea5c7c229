//! Fault injection as real clients see it: kube-rs gets the injected status
//! codes (and honours `Retry-After`), added latency is felt, closed watches
//! end, compaction makes old watch positions 410 Gone; the same through the
//! admin HTTP endpoints.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use metacontroller_apiserver::{ApiServer, Config, Fault, FaultKind};
use serde_json::{Value, json};

async fn server(admin: bool) -> ApiServer {
    ApiServer::start(Config {
        admin,
        ..Config::default()
    })
    .await
    .expect("server starts")
}

/// A kube-rs client from the server's kubeconfig; `retry` keeps kube's
/// default retry of 429/503 (which honours `Retry-After`).
async fn kube_client(server: &ApiServer, retry: bool) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&server.kubeconfig()).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    config.default_retry = retry;
    kube::Client::try_from(config).unwrap()
}

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}})).unwrap()
}

/// The status code and reason of a kube-rs API error.
fn api_error(r: Result<impl std::fmt::Debug, kube::Error>) -> (u16, String) {
    match r {
        Err(kube::Error::Api(s)) => (s.code, s.reason.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn raw_create(name: &str) -> http::Request<kube::client::Body> {
    http::Request::post("/api/v1/namespaces/default/configmaps")
        .header("content-type", "application/json")
        .body(kube::client::Body::from(
            serde_json::to_vec(&json!({"metadata": {"name": name}})).unwrap(),
        ))
        .unwrap()
}

#[tokio::test]
async fn too_many_requests_reaches_kube_as_429_with_retry_after() {
    let server = server(false).await;
    let client = kube_client(&server, false).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let throttle = |n| {
        Fault::new(FaultKind::TooManyRequests {
            retry_after_seconds: 1,
        })
        .verb("create")
        .resource("configmaps")
        .times(n)
    };

    server.faults().add(throttle(1));
    let (code, reason) = api_error(cms.create(&PostParams::default(), &cm("a")).await);
    assert_eq!((code, reason.as_str()), (429, "TooManyRequests"));
    assert!(
        cms.get_opt("a").await.unwrap().is_none(),
        "a rejected create must not write"
    );

    server.faults().add(throttle(1));
    let resp = client.send(raw_create("a")).await.unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "1");

    // Other verbs and resources are not affected, and the rule is used up.
    server.faults().add(throttle(1));
    Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), "default")
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "s"}})).unwrap(),
        )
        .await
        .unwrap();
    cms.list(&Default::default()).await.unwrap();
    api_error(cms.create(&PostParams::default(), &cm("a")).await);
    cms.create(&PostParams::default(), &cm("a")).await.unwrap();

    // kube-rs' default client waits as Retry-After says, then succeeds.
    let retrying: Api<ConfigMap> = Api::namespaced(kube_client(&server, true).await, "default");
    let before = server.counters().get("create", "configmaps");
    server.faults().add(throttle(2));
    let t = Instant::now();
    retrying
        .create(&PostParams::default(), &cm("b"))
        .await
        .unwrap();
    assert!(t.elapsed() >= Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(server.counters().get("create", "configmaps") - before, 3);
}

#[tokio::test]
async fn conflict_internal_error_and_unavailable_reach_kube_with_their_codes() {
    let server = server(false).await;
    let client = kube_client(&server, false).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(&PostParams::default(), &cm("x")).await.unwrap();
    for (kind, code, reason) in [
        (FaultKind::Conflict, 409, "Conflict"),
        (FaultKind::InternalError, 500, "InternalError"),
        (FaultKind::Unavailable, 503, "ServiceUnavailable"),
    ] {
        server.faults().add(
            Fault::new(kind.clone())
                .verb("get")
                .resource("configmaps")
                .times(1),
        );
        let got = api_error(cms.get("x").await);
        assert_eq!(got, (code, reason.to_string()), "{kind:?}");
        // Used up: the next request is served.
        cms.get("x").await.unwrap();

        server
            .faults()
            .add(Fault::new(kind.clone()).verb("create").times(1));
        let got = api_error(cms.create(&PostParams::default(), &cm("y")).await);
        assert_eq!(got.0, code, "{kind:?}");
        assert!(cms.get_opt("y").await.unwrap().is_none());
    }

    // 503 carries Retry-After, and kube-rs' default client retries it.
    server
        .faults()
        .add(Fault::new(FaultKind::Unavailable).verb("create").times(1));
    let resp = client.send(raw_create("y")).await.unwrap();
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().contains_key("retry-after"));
    server
        .faults()
        .add(Fault::new(FaultKind::Unavailable).verb("create").times(1));
    let retrying: Api<ConfigMap> = Api::namespaced(kube_client(&server, true).await, "default");
    retrying
        .create(&PostParams::default(), &cm("y"))
        .await
        .unwrap();

    // Without `times` a rule stays until cleared.
    server
        .faults()
        .add(Fault::new(FaultKind::InternalError).verb("list"));
    for _ in 0..3 {
        assert_eq!(api_error(cms.list(&Default::default()).await).0, 500);
    }
    server.faults().clear();
    cms.list(&Default::default()).await.unwrap();
}

#[tokio::test]
async fn added_latency_is_observed_by_kube() {
    let server = server(false).await;
    let cms: Api<ConfigMap> = Api::namespaced(kube_client(&server, false).await, "default");
    cms.create(&PostParams::default(), &cm("x")).await.unwrap();
    let delay = Duration::from_millis(300);
    server.faults().add(
        Fault::new(FaultKind::Latency(delay))
            .verb("get")
            .resource("configmaps")
            .times(2),
    );
    for _ in 0..2 {
        let t = Instant::now();
        cms.get("x").await.unwrap();
        assert!(t.elapsed() >= delay, "{:?}", t.elapsed());
    }
    // Latency and an error together: the wait, then the error.
    server
        .faults()
        .add(Fault::new(FaultKind::Latency(delay)).verb("get").times(1));
    server
        .faults()
        .add(Fault::new(FaultKind::InternalError).verb("get").times(1));
    let t = Instant::now();
    assert_eq!(api_error(cms.get("x").await).0, 500);
    assert!(t.elapsed() >= delay, "{:?}", t.elapsed());
}

/// A raw watch stream, read line by line.
struct RawWatch {
    resp: reqwest::Response,
    buf: Vec<u8>,
}

impl RawWatch {
    async fn open(url: String) -> Self {
        let resp = reqwest::get(url).await.expect("watch");
        assert_eq!(resp.status(), 200);
        Self {
            resp,
            buf: Vec::new(),
        }
    }

    /// The next event, or `None` when the stream ends.
    async fn next(&mut self) -> Option<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                return Some(serde_json::from_slice(&line).unwrap());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.resp.chunk())
                .await
                .expect("the watch to produce or end in time")
            {
                Ok(Some(chunk)) => self.buf.extend_from_slice(&chunk),
                Ok(None) | Err(_) => return None,
            }
        }
    }
}

async fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn post(url: String, body: Value) -> Value {
    let resp = reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    resp.json().await.unwrap()
}

fn rv(v: &Value) -> &str {
    v["metadata"]["resourceVersion"].as_str().unwrap()
}

#[tokio::test]
async fn close_watches_ends_an_open_watch_stream() {
    let server = server(false).await;
    let cms = format!("{}/api/v1/namespaces/default/configmaps", server.url());
    post(cms.clone(), json!({"metadata": {"name": "a"}})).await;
    let mut w = RawWatch::open(format!("{cms}?watch=true")).await;
    let first = w.next().await.unwrap();
    assert_eq!(first["type"], "ADDED");
    assert_eq!(server.counters().open_watches(), 1);

    server.close_watches();
    assert!(w.next().await.is_none(), "the stream ends");
    wait_for("the watch to be gone", || {
        server.counters().open_watches() == 0
    })
    .await;

    // A new watch works as before.
    let mut w = RawWatch::open(format!("{cms}?watch=true")).await;
    assert_eq!(w.next().await.unwrap()["type"], "ADDED");
}

#[tokio::test]
async fn compact_makes_a_watch_from_an_old_resource_version_gone() {
    let server = server(false).await;
    let cms = format!("{}/api/v1/namespaces/default/configmaps", server.url());
    let a = post(cms.clone(), json!({"metadata": {"name": "a"}})).await;
    let b = post(cms.clone(), json!({"metadata": {"name": "b"}})).await;

    // Before compaction the history is there.
    let mut w = RawWatch::open(format!("{cms}?watch=true&resourceVersion={}", rv(&a))).await;
    assert_eq!(w.next().await.unwrap()["object"]["metadata"]["name"], "b");

    let at = server.compact();
    assert_eq!(at.to_string(), rv(&b));
    let mut w = RawWatch::open(format!("{cms}?watch=true&resourceVersion={}", rv(&a))).await;
    let ev = w.next().await.unwrap();
    assert_eq!(ev["type"], "ERROR", "{ev}");
    assert_eq!(ev["object"]["code"], 410, "{ev}");
    assert_eq!(ev["object"]["reason"], "Expired", "{ev}");
    assert!(w.next().await.is_none());

    // From the compacted position on, watching works.
    let mut w = RawWatch::open(format!("{cms}?watch=true&resourceVersion={at}")).await;
    post(cms.clone(), json!({"metadata": {"name": "c"}})).await;
    assert_eq!(w.next().await.unwrap()["object"]["metadata"]["name"], "c");
}

#[tokio::test]
async fn the_admin_endpoints_drive_the_same_faults_over_http() {
    let server = server(true).await;
    let base = server.url();
    let http = reqwest::Client::new();
    let cms: Api<ConfigMap> = Api::namespaced(kube_client(&server, false).await, "default");
    cms.create(&PostParams::default(), &cm("x")).await.unwrap();

    let add = |rule: Value| {
        let http = http.clone();
        let url = format!("{base}/admin/faults");
        async move { http.post(url).json(&rule).send().await.unwrap() }
    };
    let r = add(json!({"kind": "TooManyRequests", "retryAfterSeconds": 7,
                       "verb": "get", "resource": "configmaps", "times": 1}))
    .await;
    assert_eq!(r.status(), 201);
    let resp = kube_client(&server, false)
        .await
        .send(
            http::Request::get("/api/v1/namespaces/default/configmaps/x")
                .body(kube::client::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "7");

    for (kind, code) in [
        ("Conflict", 409),
        ("InternalError", 500),
        ("Unavailable", 503),
    ] {
        let r = add(json!({"kind": kind, "verb": "get", "times": 1})).await;
        assert_eq!(r.status(), 201);
        assert_eq!(api_error(cms.get("x").await).0, code, "{kind}");
    }

    let r = add(json!({"kind": "Latency", "latencyMillis": 250, "verb": "get", "times": 1})).await;
    assert_eq!(r.status(), 201);
    let t = Instant::now();
    cms.get("x").await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(250));

    // DELETE clears rules that would otherwise stay.
    assert_eq!(add(json!({"kind": "InternalError"})).await.status(), 201);
    assert_eq!(api_error(cms.get("x").await).0, 500);
    let r = http
        .delete(format!("{base}/admin/faults"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    cms.get("x").await.unwrap();

    // Invalid rules are refused.
    for bad in [
        json!({"kind": "Explode"}),
        json!({"kind": "Latency"}),
        json!({"kind": "Conflict", "verbs": "get"}),
    ] {
        let r = add(bad.clone()).await;
        assert_eq!(r.status(), 400, "{bad}");
        let status: Value = r.json().await.unwrap();
        assert_eq!(status["kind"], "Status");
    }

    // close-watches and compact.
    let url = format!("{base}/api/v1/namespaces/default/configmaps");
    let mut w = RawWatch::open(format!("{url}?watch=true")).await;
    assert_eq!(w.next().await.unwrap()["type"], "ADDED");
    let r = http
        .post(format!("{base}/admin/close-watches"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(w.next().await.is_none());

    let x = cms.get("x").await.unwrap();
    let old = x.metadata.resource_version.unwrap();
    post(url.clone(), json!({"metadata": {"name": "z"}})).await;
    let r: Value = http
        .post(format!("{base}/admin/compact"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        r["resourceVersion"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );
    let mut w = RawWatch::open(format!("{url}?watch=true&resourceVersion={old}")).await;
    assert_eq!(w.next().await.unwrap()["object"]["code"], 410);
}

#[tokio::test]
async fn the_admin_endpoints_are_off_by_default() {
    let server = server(false).await;
    let r = reqwest::Client::new()
        .post(format!("{}/admin/faults", server.url()))
        .json(&json!({"kind": "InternalError"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let cms: Api<ConfigMap> = Api::namespaced(kube_client(&server, false).await, "default");
    cms.list(&Default::default()).await.unwrap();
}

#[tokio::test]
async fn the_admin_endpoints_fail_a_seeded_fraction_with_mixed_kinds() {
    let server = server(true).await;
    let base = server.url();
    let http = reqwest::Client::new();
    let cms: Api<ConfigMap> = Api::namespaced(kube_client(&server, false).await, "default");
    cms.create(&PostParams::default(), &cm("x")).await.unwrap();
    let rule = json!({"kinds": ["Conflict", "InternalError"], "verb": "get",
                      "resource": "configmaps", "fraction": 0.5, "seed": 3});
    let add = |rule: Value| {
        let http = http.clone();
        let url = format!("{base}/admin/faults");
        async move { http.post(url).json(&rule).send().await.unwrap() }
    };
    // The codes of 200 GETs under a fresh copy of the rule.
    let run = || async {
        assert_eq!(
            http.delete(format!("{base}/admin/faults"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        let r = add(rule.clone()).await;
        assert_eq!(r.status(), 201);
        let echo: Value = r.json().await.unwrap();
        assert_eq!(
            (echo["fraction"].clone(), echo["seed"].clone()),
            (json!(0.5), json!(3))
        );
        let mut codes = Vec::new();
        for _ in 0..200 {
            codes.push(match cms.get("x").await {
                Ok(_) => 200,
                Err(e) => api_error(Err::<(), _>(e)).0,
            });
        }
        codes
    };
    let first = run().await;
    let count = |code| first.iter().filter(|c| **c == code).count();
    assert!((70..=130).contains(&(200 - count(200))), "{first:?}");
    assert!(count(409) > 20 && count(500) > 20, "{first:?}");
    // Repeatable: the same rule again gives the same answers.
    assert_eq!(run().await, first);
    // Other verbs are untouched.
    cms.create(&PostParams::default(), &cm("y")).await.unwrap();

    for bad in [
        json!({"kind": "Conflict", "fraction": 1.5}),
        json!({"kind": "Conflict", "kinds": ["Conflict"]}),
        json!({"kinds": []}),
        json!({"kinds": ["Conflict", "Explode"]}),
        json!({"fraction": 0.5}),
    ] {
        let r = add(bad.clone()).await;
        assert_eq!(r.status(), 400, "{bad}");
    }
}
