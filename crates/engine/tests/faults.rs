//! Fault suite: a CompositeController keeps its world intact through hook
//! and API faults and converges once they pass.
//!
//! Every scenario converges 10 parents with 3 ConfigMap children each,
//! injects its fault, changes the world under it (5 new parents, 5 parents
//! that want a fourth child, one child deleted by hand), lifts the fault and
//! checks the world against what the hook asks for. It counts:
//!
//! * **duplicates**: children a parent owns beyond what its hook asks for;
//! * **lost**: children the hook asks for that do not exist at the end;
//! * **wrongly deleted**: children that existed before the fault and were
//!   deleted (or replaced) although nobody asked for it;
//! * **unconverged**: parents whose status does not report their children
//!   by the deadline;
//! * **recovery**: from lifting the fault to the last parent converged.
//!
//! Each scenario prints one row of the table in the README and fails unless
//! every count is zero. Hook faults run on both servers; API faults use the
//! embedded server's fault injection and are skipped (with a message) on a
//! real control plane.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use kube::core::ApiResource;
use metacontroller_apiserver::{Fault, FaultKind};
use parking_lot::Mutex;
use serde_json::{Value, json};

/// Parents converged before the fault (times [`scale`]).
const BEFORE: usize = 10;
/// Parents created while the fault lasts (times [`scale`]).
const DURING: usize = 5;
/// Children each parent starts with.
const CHILDREN: u64 = 3;
/// The counter form of the parents' status subresource.
const PARENT_STATUS: &str = "faultparents.test.metacontroller.io/status";
/// How long each fault lasts (times [`scale`]).
const FAULT_LASTS: Duration = Duration::from_secs(4);

/// 5 in soak mode (`MC_FAULT_SOAK` set to anything but `0` or empty), else 1.
fn scale() -> usize {
    let soak = std::env::var("MC_FAULT_SOAK").is_ok_and(|v| !v.is_empty() && v != "0");
    if soak { 5 } else { 1 }
}

fn before() -> usize {
    BEFORE * scale()
}

fn during() -> usize {
    DURING * scale()
}

/// How long the parents get to converge.
fn converge_limit() -> Duration {
    timeout() * scale() as u32
}

/// How the hook behaves.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Hook {
    /// Answers with the desired children.
    Healthy,
    /// 500 with a body.
    Error,
    /// 200 with a body that is not JSON.
    Garbage,
    /// Answers after the controller's timeout (1 s).
    Timeout,
    /// 429 with `Retry-After: 1`.
    TooMany,
    /// Answers correctly after 300 ms.
    Slow,
    /// Fails every other call.
    Flapping,
}

/// What a scenario does to the API server.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Api {
    /// 409 Conflict on writes of children and parents.
    Conflicts,
    /// 500 on writes of children and parents.
    InternalErrors,
    /// 429 on writes of children and parents.
    Throttled,
    /// Every watch stream closed, repeatedly.
    WatchCuts,
    /// History compacted and watches closed: every resume gets 410 Gone.
    Gone,
    /// Half of all writes of children and parents answered 409, 429 or
    /// 500 (a seeded random mix), and every watch stream closed, repeatedly.
    Mixed,
    /// Every write of a parent's status answered 409, so that the writer's
    /// conflict retries run out: the sync must be retried, not taken for done.
    StatusConflicts,
}

/// The desired children of a parent: `<parent>-<i>` for i < spec.children.
fn desired(parent: &Value) -> Vec<String> {
    let name = parent["metadata"]["name"].as_str().unwrap_or_default();
    let n = parent["spec"]["children"].as_u64().unwrap_or(0);
    (0..n).map(|i| format!("{name}-{i}")).collect()
}

/// The status the hook last answered, by parent name.
type Answered = Arc<Mutex<BTreeMap<String, Value>>>;

fn hook_reply(req: &Value, answered: &Answered) -> Reply {
    let parent = &req["parent"];
    let labels = json!({"fault-suite": "child", "parent": parent["metadata"]["name"]});
    let children: Vec<Value> = desired(parent)
        .iter()
        .map(|name| configmap(name, &labels, json!({"owner": parent["metadata"]["name"]})))
        .collect();
    let observed = req["children"]["ConfigMap.v1"]
        .as_object()
        .map_or(0, |m| m.len());
    let status = json!({"ready": observed, "wanted": children.len()});
    if let Some(name) = parent["metadata"]["name"].as_str() {
        answered.lock().insert(name.to_owned(), status.clone());
    }
    Reply::Json(json!({"status": status, "children": children}))
}

/// A fault to inject.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Scenario {
    /// The hook misbehaves.
    Hook(Hook),
    /// Nothing listens on the hook's port.
    Refused,
    /// The API server misbehaves (embedded server only).
    Api(Api),
}

struct World {
    h: Harness,
    parents: ApiResource,
    namespace: String,
    mode: Arc<Mutex<Hook>>,
    calls: Arc<Mutex<u64>>,
    answered: Answered,
    hook: Mutex<Option<HookServer>>,
    hook_addr: std::net::SocketAddr,
}

/// The test's hook: healthy or failing as `mode` says.
fn hook_handler(
    mode: Arc<Mutex<Hook>>,
    calls: Arc<Mutex<u64>>,
    answered: Answered,
) -> impl Fn(&Value) -> Reply + Send + Sync + 'static {
    move |req| {
        let mut calls = calls.lock();
        *calls += 1;
        let hook_reply = |req| hook_reply(req, &answered);
        match *mode.lock() {
            Hook::Healthy => hook_reply(req),
            Hook::Error => Reply::Status(500, "hook failed: database unavailable".into()),
            Hook::Garbage => Reply::Status(200, "<html>not json</html>".into()),
            Hook::Timeout => Reply::Delayed(Duration::from_secs(3), Box::new(hook_reply(req))),
            Hook::TooMany => Reply::TooMany(Some("1".into())),
            Hook::Slow => Reply::Delayed(Duration::from_millis(300), Box::new(hook_reply(req))),
            Hook::Flapping if calls.is_multiple_of(2) => Reply::Status(503, "flapping".into()),
            Hook::Flapping => hook_reply(req),
        }
    }
}

impl World {
    async fn start(name: &str) -> World {
        let h = Harness::start().await;
        let namespace = format!("faults-{name}");
        h.create_namespace(&namespace).await;
        let parents = h
            .create_crd("FaultParent", "faultparents", true, true)
            .await;
        let mode = Arc::new(Mutex::new(Hook::Healthy));
        let calls = Arc::new(Mutex::new(0u64));
        let answered = Answered::default();
        let hook =
            HookServer::start(hook_handler(mode.clone(), calls.clone(), answered.clone())).await;
        let mut cc =
            composite_controller("faults", &parents, &[("v1", "configmaps", None)], &hook.url);
        cc["spec"]["hooks"]["sync"]["webhook"]["timeout"] = json!("1s");
        h.create_cc(cc).await;
        let world = World {
            h,
            parents,
            namespace,
            mode,
            calls,
            answered,
            hook_addr: hook.addr,
            hook: Mutex::new(Some(hook)),
        };
        for i in 0..before() {
            world.create_parent(i).await;
        }
        world.converged(Instant::now() + converge_limit()).await;
        world
    }

    async fn create_parent(&self, i: usize) {
        let name = format!("p{i}");
        let p = parent(
            &self.parents,
            &name,
            json!({"parent": name}),
            json!({"children": CHILDREN}),
        );
        self.h.create(&self.parents, Some(&self.namespace), p).await;
    }

    fn server(&self) -> &metacontroller_apiserver::ApiServer {
        self.h
            .embedded()
            .expect("API faults need the embedded server")
    }

    /// Starts the fault.
    async fn inject(&self, scenario: Scenario) {
        match scenario {
            Scenario::Hook(mode) => *self.mode.lock() = mode,
            Scenario::Refused => {
                drop(self.hook.lock().take());
                // The listener closes once the aborted task is dropped.
                let deadline = Instant::now() + Duration::from_secs(5);
                while tokio::net::TcpStream::connect(self.hook_addr).await.is_ok() {
                    assert!(Instant::now() < deadline, "the hook port stays open");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            Scenario::Api(api) => {
                let kind = match api {
                    Api::Conflicts => FaultKind::Conflict,
                    Api::InternalErrors => FaultKind::InternalError,
                    Api::Throttled => FaultKind::TooManyRequests {
                        retry_after_seconds: 1,
                    },
                    Api::Mixed => {
                        self.inject_mixed();
                        return;
                    }
                    Api::StatusConflicts => {
                        for verb in ["update", "patch"] {
                            self.server().faults().add(
                                Fault::new(FaultKind::Conflict)
                                    .verb(verb)
                                    .resource(PARENT_STATUS),
                            );
                        }
                        return;
                    }
                    Api::WatchCuts | Api::Gone => return,
                };
                for verb in ["create", "update", "patch", "delete"] {
                    for resource in ["configmaps", PARENT_STATUS] {
                        self.server().faults().add(
                            Fault::new(kind.clone())
                                .verb(verb)
                                .resource(resource)
                                .times(15),
                        );
                    }
                }
            }
        }
    }

    /// Half of the writes of children and parents' status fail with 409,
    /// 429 or 500, each rule with its own seed (so the runs repeat).
    fn inject_mixed(&self) {
        let mut seed = 0;
        for verb in ["create", "update", "patch", "delete"] {
            for resource in ["configmaps", PARENT_STATUS] {
                seed += 1;
                self.server().faults().add(
                    Fault::new(FaultKind::AnyOf(vec![
                        FaultKind::Conflict,
                        FaultKind::TooManyRequests {
                            retry_after_seconds: 1,
                        },
                        FaultKind::InternalError,
                    ]))
                    .verb(verb)
                    .resource(resource)
                    .fraction(0.5)
                    .seed(seed),
                );
            }
        }
    }

    /// Called every 500 ms while the fault lasts.
    fn tick(&self, scenario: Scenario) {
        match scenario {
            Scenario::Api(Api::WatchCuts | Api::Mixed) => self.server().close_watches(),
            Scenario::Api(Api::Gone) => {
                self.server().compact();
                self.server().close_watches();
            }
            _ => {}
        }
    }

    /// Ends the fault.
    async fn lift(&self, scenario: Scenario) {
        match scenario {
            Scenario::Hook(_) => *self.mode.lock() = Hook::Healthy,
            Scenario::Refused => {
                let listener = tokio::net::TcpListener::bind(self.hook_addr)
                    .await
                    .expect("the hook's port again");
                *self.hook.lock() = Some(HookServer::start_on(
                    listener,
                    hook_handler(self.mode.clone(), self.calls.clone(), self.answered.clone()),
                ));
            }
            Scenario::Api(_) => self.server().faults().clear(),
        }
    }

    /// Every ConfigMap child by name, with its UID and controller UID.
    async fn children(&self) -> BTreeMap<String, (String, String)> {
        self.h
            .list(configmaps(), Some(&self.namespace))
            .await
            .into_iter()
            .filter(|c| c["metadata"]["labels"]["fault-suite"] == "child")
            .map(|c| {
                let owner = c["metadata"]["ownerReferences"]
                    .as_array()
                    .and_then(|refs| refs.iter().find(|r| r["controller"] == true))
                    .and_then(|r| r["uid"].as_str())
                    .unwrap_or_default()
                    .to_owned();
                (
                    c["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    (
                        c["metadata"]["uid"].as_str().unwrap_or_default().to_owned(),
                        owner,
                    ),
                )
            })
            .collect()
    }

    /// Parents whose children and status are not yet what the hook asks for.
    async fn unconverged(&self) -> Vec<String> {
        let children = self.children().await;
        let mut out = Vec::new();
        for p in self.h.list(&self.parents, Some(&self.namespace)).await {
            let uid = p["metadata"]["uid"].as_str().unwrap_or_default();
            let want = desired(&p);
            let owned = children.values().filter(|(_, owner)| owner == uid).count();
            let complete = want.iter().all(|n| children.contains_key(n));
            let name = p["metadata"]["name"].as_str().unwrap_or_default();
            // The status the hook last answered, as the controller must
            // have written it, and the answer of a hook that saw every child.
            let mut answered = self.answered.lock().get(name).cloned();
            if let Some(status) = answered.as_mut() {
                status["observedGeneration"] = p["metadata"]["generation"].clone();
            }
            let status_ok = answered.as_ref() == Some(&p["status"])
                && p["status"]["ready"].as_u64() == Some(want.len() as u64);
            if !(complete && owned == want.len() && status_ok) {
                out.push(
                    p["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                );
            }
        }
        out
    }

    /// Waits until every parent converged or the deadline passes; returns
    /// the parents still unconverged.
    async fn converged(&self, deadline: Instant) -> Vec<String> {
        loop {
            let left = self.unconverged().await;
            if left.is_empty() || Instant::now() > deadline {
                return left;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Changes the world while the fault lasts: new parents, parents that
    /// want one more child, and a child deleted by hand.
    async fn change(&self) -> String {
        for i in before()..before() + during() {
            self.create_parent(i).await;
        }
        for i in 0..5 * scale() {
            self.h
                .merge_patch(
                    &self.parents,
                    Some(&self.namespace),
                    &format!("p{i}"),
                    json!({"spec": {"children": CHILDREN + 1}}),
                )
                .await;
        }
        // The test's own requests meet the injected faults too: retry.
        let deleted = "p7-0".to_owned();
        let api = self.h.api(configmaps(), Some(&self.namespace));
        let deadline = Instant::now() + timeout();
        while let Err(e) = api.delete(&deleted, &Default::default()).await {
            assert!(Instant::now() < deadline, "deleting {deleted}: {e}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        deleted
    }
}

/// The figures of one scenario.
#[derive(Debug, Default)]
struct Figures {
    duplicates: usize,
    lost: usize,
    wrongly_deleted: usize,
    unconverged: usize,
    recovery: Duration,
}

/// Runs one scenario on a converged world and checks the figures.
async fn run(name: &str, scenario: Scenario) {
    if matches!(scenario, Scenario::Api(_))
        && skip_unless_embedded("API fault injection is the embedded server's")
    {
        return;
    }
    let world = World::start(name).await;
    let figures = measure(name, &world, scenario).await;
    world.h.shutdown().await;
    assert_eq!(
        (figures.duplicates, figures.lost, figures.wrongly_deleted),
        (0, 0, 0),
        "{name}: duplicates, lost and wrongly deleted children"
    );
    assert_eq!(
        figures.unconverged, 0,
        "{name}: parents unconverged after the fault"
    );
}

async fn measure(name: &str, world: &World, scenario: Scenario) -> Figures {
    let before = world.children().await;
    world.inject(scenario).await;
    let deleted_by_hand = world.change().await;
    let until = Instant::now() + FAULT_LASTS * scale() as u32;
    while Instant::now() < until {
        world.tick(scenario);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Under the fault nothing that existed may have gone, except the child
    // deleted by hand (which the controller may already have recreated).
    let during = world.children().await;
    world.lift(scenario).await;
    let lifted = Instant::now();
    let unconverged = world.converged(lifted + converge_limit()).await;
    let recovery = lifted.elapsed();
    let after = world.children().await;

    let mut figures = Figures {
        unconverged: unconverged.len(),
        recovery,
        ..Figures::default()
    };
    for (name, (uid, _)) in &before {
        if *name == deleted_by_hand {
            continue;
        }
        let gone_during = during.get(name).is_none_or(|(u, _)| u != uid);
        let gone_after = after.get(name).is_none_or(|(u, _)| u != uid);
        if gone_during || gone_after {
            figures.wrongly_deleted += 1;
        }
    }
    let parents = world.h.list(&world.parents, Some(&world.namespace)).await;
    for p in &parents {
        let uid = p["metadata"]["uid"].as_str().unwrap_or_default();
        let want = desired(p);
        figures.lost += want.iter().filter(|n| !after.contains_key(*n)).count();
        let owned = after.values().filter(|(_, owner)| owner == uid).count();
        figures.duplicates += owned.saturating_sub(want.len());
    }
    let orphans = after.values().filter(|(_, owner)| owner.is_empty()).count();
    figures.duplicates += orphans;
    eprintln!(
        "| {name} | {} | {} | {} | {} | {} | {:.1} s |",
        parents.len(),
        figures.duplicates,
        figures.lost,
        figures.wrongly_deleted,
        figures.unconverged,
        figures.recovery.as_secs_f64()
    );
    figures
}

#[tokio::test]
async fn hook_500() {
    run("hook-500", Scenario::Hook(Hook::Error)).await;
}

#[tokio::test]
async fn hook_garbage() {
    run("hook-garbage", Scenario::Hook(Hook::Garbage)).await;
}

#[tokio::test]
async fn hook_timeout() {
    run("hook-timeout", Scenario::Hook(Hook::Timeout)).await;
}

#[tokio::test]
async fn hook_429() {
    run("hook-429", Scenario::Hook(Hook::TooMany)).await;
}

#[tokio::test]
async fn hook_slow() {
    run("hook-slow", Scenario::Hook(Hook::Slow)).await;
}

#[tokio::test]
async fn hook_flapping() {
    run("hook-flapping", Scenario::Hook(Hook::Flapping)).await;
}

#[tokio::test]
async fn hook_connection_refused() {
    run("hook-refused", Scenario::Refused).await;
}

#[tokio::test]
async fn api_conflicts() {
    run("api-409", Scenario::Api(Api::Conflicts)).await;
}

#[tokio::test]
async fn api_internal_errors() {
    run("api-500", Scenario::Api(Api::InternalErrors)).await;
}

#[tokio::test]
async fn api_throttled() {
    run("api-429", Scenario::Api(Api::Throttled)).await;
}

#[tokio::test]
async fn api_watch_cuts() {
    run("api-watch-cut", Scenario::Api(Api::WatchCuts)).await;
}

#[tokio::test]
async fn api_gone() {
    run("api-410", Scenario::Api(Api::Gone)).await;
}

#[tokio::test]
async fn api_mixed_half_of_writes() {
    run("api-half-mixed", Scenario::Api(Api::Mixed)).await;
}

#[tokio::test]
async fn api_status_conflicts_outlast_retries() {
    run("api-409-status", Scenario::Api(Api::StatusConflicts)).await;
}
