//! Sync failures as users see them: Warning `SyncError` Events that name the
//! hook's URL and the kind of failure with a short snippet of the answer, a
//! Normal `SyncRecovered` Event after failures, a rate limit that never hides
//! a new reason or a new kind of failure behind an old one, and credentials
//! that never appear in Events or logs.
//!
//! Every test of this file runs with every log target of the process at
//! TRACE (except the embedded API server's, which in production is another
//! process), captured in memory, so the logs can be scanned.

mod common;

use std::io::Write;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use common::*;
use kube::core::ApiResource;
use metacontroller_engine::EngineConfig;
use parking_lot::Mutex;
use serde_json::{Value, json};

/// Everything logged by the process.
static LOGS: LazyLock<Arc<Mutex<Vec<u8>>>> = LazyLock::new(|| {
    let logs = Arc::new(Mutex::new(Vec::new()));
    let sink = logs.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "trace,metacontroller_apiserver=off",
        ))
        .with_ansi(false)
        .with_writer(move || Capture(sink.clone()))
        .init();
    logs
});

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn start(config: EngineConfig) -> Harness {
    LazyLock::force(&LOGS);
    Harness::start_with(EngineConfig {
        discovery_interval: Duration::from_secs(2),
        ..config
    })
    .await
}

fn logs() -> String {
    String::from_utf8_lossy(&LOGS.lock()).into_owned()
}

/// A namespaced parent CRD, a namespace of the same name, and a
/// CompositeController `name` whose sync hook is `url`.
async fn setup(h: &Harness, name: &str, kind: &str, url: &str, timeout: &str) -> ApiResource {
    h.create_namespace(name).await;
    let plural = format!("{}s", kind.to_lowercase());
    let parent_ar = h.create_crd(kind, &plural, true, true).await;
    let mut cc = composite_controller(name, &parent_ar, &[], url);
    cc["spec"]["hooks"]["sync"]["webhook"]["timeout"] = json!(timeout);
    h.create_cc(cc).await;
    h.create(
        &parent_ar,
        Some(name),
        parent(&parent_ar, "p", labels(name), json!({"v": 0})),
    )
    .await;
    parent_ar
}

fn labels(name: &str) -> Value {
    json!({"app": name})
}

fn message(e: &Value) -> &str {
    e["message"].as_str().unwrap_or_default()
}

async fn wait_event(
    h: &Harness,
    namespace: &str,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    wait_for(what, || async {
        h.events_for(namespace, "p").await.into_iter().find(&pred)
    })
    .await
}

/// A hook that does not answer in time: a Warning `SyncError` Event that
/// names the URL and says it was a timeout.
#[tokio::test]
async fn timeout_event_names_url_and_timeout() {
    let h = start(EngineConfig::default()).await;
    let hook = HookServer::start(|_| {
        Reply::Delayed(
            Duration::from_secs(3),
            Box::new(Reply::Json(json!({"status": {}}))),
        )
    })
    .await;
    setup(&h, "slow", "SlowParent", &hook.url, "300ms").await;
    let event = wait_event(&h, "slow", "timeout SyncError", |e| {
        e["reason"] == "SyncError"
    })
    .await;
    let text = message(&event);
    assert_eq!(event["type"], "Warning", "{event}");
    assert!(text.starts_with("Sync error: "), "{text}");
    assert!(text.contains(&hook.url), "{text}");
    assert!(text.contains("timeout"), "{text}");
    assert!(text.contains("sync hook"), "{text}");
    h.shutdown().await;
}

/// An answer that is not JSON, and an error status with a long body: the
/// Events carry a bounded snippet of what the hook said.
#[tokio::test]
async fn garbage_and_error_answers_show_a_bounded_snippet() {
    let h = start(EngineConfig::default()).await;
    let mode = Arc::new(Mutex::new("garbage"));
    let hook_mode = mode.clone();
    let tail = "x".repeat(2000);
    let hook = HookServer::start(move |_| match *hook_mode.lock() {
        "garbage" => Reply::Status(200, format!("<html>gateway oops {tail}")),
        _ => Reply::Status(502, format!("upstream down {tail}")),
    })
    .await;
    let parent_ar = setup(&h, "junk", "JunkParent", &hook.url, "5s").await;
    let event = wait_event(&h, "junk", "garbage SyncError", |e| {
        e["reason"] == "SyncError" && message(e).contains("invalid response")
    })
    .await;
    let text = message(&event);
    assert!(text.contains(&hook.url), "{text}");
    assert!(text.contains("response: <html>gateway oops xxx"), "{text}");
    assert!(text.contains("more bytes truncated"), "{text}");
    assert!(
        text.len() < 1000,
        "snippet not bounded: {} bytes",
        text.len()
    );

    *mode.lock() = "502";
    h.merge_patch(&parent_ar, Some("junk"), "p", json!({"spec": {"v": 1}}))
        .await;
    let event = wait_event(&h, "junk", "502 SyncError", |e| {
        e["reason"] == "SyncError" && message(e).contains("status 502")
    })
    .await;
    let text = message(&event);
    assert!(text.contains(&hook.url), "{text}");
    assert!(text.contains("body: upstream down xxx"), "{text}");
    assert!(
        text.len() < 1000,
        "snippet not bounded: {} bytes",
        text.len()
    );
    h.shutdown().await;
}

/// Twenty failures of one kind exhaust the Event budget of that kind (ten
/// here); a failure of a new kind and then the recovery still show, and the
/// recovery is logged.
#[tokio::test]
async fn new_kinds_and_recovery_show_after_many_old_failures() {
    let h = start(EngineConfig {
        events_burst: 10,
        ..EngineConfig::default()
    })
    .await;
    let mode = Arc::new(Mutex::new("500"));
    let hook_mode = mode.clone();
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let hook_calls = calls.clone();
    let hook = HookServer::start(move |_| {
        let n = hook_calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        match *hook_mode.lock() {
            "500" => Reply::Status(500, format!("failure number {n}")),
            "garbage" => Reply::Status(200, "{not json".into()),
            _ => Reply::Json(json!({"status": {"ok": true}})),
        }
    })
    .await;
    let parent_ar = setup(&h, "flaky", "FlakyParent", &hook.url, "5s").await;
    for i in 1..=20 {
        let before = hook.calls();
        h.merge_patch(&parent_ar, Some("flaky"), "p", json!({"spec": {"v": i}}))
            .await;
        wait_for("hook call", || async {
            (hook.calls() > before).then_some(())
        })
        .await;
    }
    assert!(hook.calls() >= 20);
    // The old kind has used up its budget.
    let warnings = |events: &[Value]| {
        events
            .iter()
            .filter(|e| e["reason"] == "SyncError" && message(e).contains("status 500"))
            .count()
    };
    wait_for("ten status 500 Events", || async {
        (warnings(&h.events_for("flaky", "p").await) == 10).then_some(())
    })
    .await;

    *mode.lock() = "garbage";
    h.merge_patch(&parent_ar, Some("flaky"), "p", json!({"spec": {"v": 21}}))
        .await;
    let event = wait_event(&h, "flaky", "a new kind of failure", |e| {
        e["reason"] == "SyncError" && message(e).contains("invalid response")
    })
    .await;
    assert!(message(&event).contains("response: {not json"), "{event}");

    *mode.lock() = "ok";
    h.merge_patch(&parent_ar, Some("flaky"), "p", json!({"spec": {"v": 22}}))
        .await;
    let event = wait_event(&h, "flaky", "SyncRecovered", |e| {
        e["reason"] == "SyncRecovered"
    })
    .await;
    assert_eq!(event["type"], "Normal", "{event}");
    assert!(
        message(&event).starts_with("Sync recovered after "),
        "{event}"
    );
    let events = h.events_for("flaky", "p").await;
    assert_eq!(warnings(&events), 10, "the rate limit let more through");
    let log = logs();
    assert!(
        log.lines()
            .any(|l| l.contains("sync recovered") && l.contains("FlakyParent flaky/p")),
        "no recovery log line"
    );
    assert!(
        log.lines().any(|l| l.contains("WARN")
            && l.contains("sync failed")
            && l.contains("controller=flaky")),
        "no failure log line"
    );
    h.shutdown().await;
}

/// Credentials from Secrets (a bearer token and basic auth) and a token in
/// the hook URL's query never show up in Events or logs, even when the hook
/// echoes them in its failures.
#[tokio::test]
async fn credentials_never_leak() {
    let h = start(EngineConfig::default()).await;
    h.create_namespace("creds").await;
    let parent_ar = h.create_crd("CredParent", "credparents", true, true).await;
    let suffix = std::process::id();
    let token = format!("tok-{suffix}-Zq81xk");
    let user = "hookuser".to_owned();
    let password = format!("pw-{suffix}-Wm27yv");
    let query_token = format!("qt-{suffix}-Pv55cz");
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let basic = b64(&format!("{user}:{password}"));
    let secrets = core("Secret", "secrets");
    h.create(
        &secrets,
        Some("creds"),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "token"},
            "data": {"token": b64(&format!("{token}\n"))}}),
    )
    .await;
    h.create(
        &secrets,
        Some("creds"),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "basic"},
            "data": {"username": b64(&user), "password": b64(&password)}}),
    )
    .await;

    // Both hooks echo what they were sent in their failures, as a debugging
    // proxy might, then answer properly.
    let mode = Arc::new(Mutex::new(0u32));
    let (sync_mode, echo) = (mode.clone(), format!("Bearer {token}"));
    let sync = HookServer::start(move |_| match *sync_mode.lock() {
        0 => Reply::Status(401, format!("bad Authorization: {echo} ({echo})")),
        1 => Reply::Status(200, format!("{{not json, you sent {echo}")),
        // A decoding error quotes the string it did not expect.
        2 => Reply::Json(json!({"children": echo.clone()})),
        _ => Reply::Json(json!({"status": {"synced": true}})),
    })
    .await;
    let finalize_mode = mode.clone();
    let (basic_echo, password_echo) = (format!("Basic {basic}"), password.clone());
    let finalize = HookServer::start(move |_| match *finalize_mode.lock() {
        0..=3 => Reply::Status(
            403,
            format!("refused {basic_echo}: password {password_echo} is wrong"),
        ),
        _ => Reply::Json(json!({"finalized": true})),
    })
    .await;
    let sync_url = format!("{}?token={query_token}", sync.url);
    let mut cc = composite_controller("creds", &parent_ar, &[], &sync_url);
    cc["spec"]["hooks"]["sync"]["webhook"]["authorization"] =
        json!({"secretRef": {"name": "token", "namespace": "creds", "key": "token"}});
    cc["spec"]["hooks"]["finalize"] = json!({"webhook": {"url": finalize.url,
        "basicAuth": {"secretRef": {"name": "basic", "namespace": "creds"}}}});
    h.create_cc(cc).await;
    h.create(
        &parent_ar,
        Some("creds"),
        parent(&parent_ar, "p", labels("creds"), json!({"v": 0})),
    )
    .await;
    wait_event(&h, "creds", "echoed 401", |e| {
        message(e).contains("status 401")
    })
    .await;
    *mode.lock() = 1;
    h.merge_patch(&parent_ar, Some("creds"), "p", json!({"spec": {"v": 1}}))
        .await;
    wait_event(&h, "creds", "echoed garbage", |e| {
        message(e).contains("invalid response")
    })
    .await;
    *mode.lock() = 2;
    h.merge_patch(&parent_ar, Some("creds"), "p", json!({"spec": {"v": 2}}))
        .await;
    wait_event(&h, "creds", "echoed string of the wrong type", |e| {
        message(e).contains("invalid type: string")
    })
    .await;
    *mode.lock() = 3;
    h.merge_patch(&parent_ar, Some("creds"), "p", json!({"spec": {"v": 3}}))
        .await;
    wait_for("synced", || async {
        let p = h.get(&parent_ar, Some("creds"), "p").await?;
        (p["status"]["synced"] == true).then_some(())
    })
    .await;
    h.delete(&parent_ar, Some("creds"), "p").await;
    wait_event(&h, "creds", "echoed 403", |e| {
        message(e).contains("status 403")
    })
    .await;
    *mode.lock() = 4;
    wait_for("finalized", || async {
        h.get(&parent_ar, Some("creds"), "p")
            .await
            .is_none()
            .then_some(())
    })
    .await;
    assert_eq!(
        sync.authorization_headers()[0].as_deref(),
        Some(echo_of(&token).as_str())
    );
    assert!(sync.calls() >= 4 && finalize.calls() >= 2);

    let events: Vec<String> = h
        .list(&core("Event", "events"), None)
        .await
        .iter()
        .map(Value::to_string)
        .collect();
    let events = events.join("\n");
    assert!(
        events.contains("<redacted>"),
        "the echoes were not recorded"
    );
    assert!(events.contains("token=redacted"), "{events}");
    let log = logs();
    assert!(log.contains("TRACE"), "logging is not at its most verbose");
    assert!(
        log.lines()
            .any(|l| l.contains("hook response body") && l.contains("<redacted>")),
        "the echoed answers were not logged"
    );
    for (what, secret) in [
        ("bearer token", token.clone()),
        ("password", password.clone()),
        ("basic credentials", basic.clone()),
        ("query token", query_token.clone()),
        ("token as stored", b64(&format!("{token}\n"))),
        ("password as stored", b64(&password)),
    ] {
        assert!(!events.contains(&secret), "{what} in an Event");
        if let Some(line) = log.lines().find(|l| l.contains(&secret)) {
            panic!("{what} in the logs: {line}");
        }
    }
    h.shutdown().await;
}

fn echo_of(token: &str) -> String {
    format!("Bearer {token}")
}
