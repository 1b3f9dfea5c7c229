//! Convergence as the harness sees it, through two watches (parents and
//! children in the bench namespace).
//!
//! A parent is converged when it exists, its `spec.replicas` is the value
//! the workload asked for, `status.ready` equals it, and its children (the
//! ConfigMaps whose owner reference names it) are exactly `<parent>-0` ..
//! `<parent>-<replicas-1>`. A workload registers the parents it waits for,
//! marks the moment each one was written (`started`), and the observer
//! stamps the first moment the parent is seen converged after that. Child
//! repair (W5) is tracked the same way: a deleted child is repaired when it
//! is seen again after its deletion was seen.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use http_body_util::BodyExt;
use parking_lot::Mutex;
use serde_json::Value;
use tokio::task::JoinHandle;

use super::api::{Rest, collection};
use super::{GROUP, KIND, NAMESPACE, PLURAL, VERSION, child_name};

#[derive(Clone, Debug, Default)]
struct ParentInfo {
    replicas: i64,
    ready: Option<i64>,
    finalizers: usize,
}

#[derive(Clone, Debug)]
struct Wait {
    replicas: i64,
    start: Option<Instant>,
    done: Option<Instant>,
}

#[derive(Clone, Debug, Default)]
struct ChildWait {
    start: Option<Instant>,
    deleted: bool,
    done: Option<Instant>,
}

#[derive(Default)]
struct State {
    parents: HashMap<String, ParentInfo>,
    /// Child name → the parent its owner reference names.
    children: HashMap<String, Option<String>>,
    by_parent: HashMap<String, HashSet<String>>,
    waits: HashMap<String, Wait>,
    child_waits: HashMap<String, ChildWait>,
    /// Of `waits`, those done (so that waiting costs no scan).
    waits_done: usize,
    /// Of `child_waits`, those done.
    child_waits_done: usize,
    events: u64,
    /// Time spent decoding watch events and updating this state.
    busy: Duration,
}

impl State {
    fn converged(&self, parent: &str, replicas: i64) -> bool {
        let Some(p) = self.parents.get(parent) else {
            return false;
        };
        if p.replicas != replicas || p.ready != Some(replicas) {
            return false;
        }
        let empty = HashSet::new();
        let kids = self.by_parent.get(parent).unwrap_or(&empty);
        kids.len() == replicas.max(0) as usize
            && (0..replicas).all(|i| kids.contains(&child_name(parent, i)))
    }

    fn check(&mut self, parent: &str, now: Instant) {
        let Some(w) = self.waits.get(parent) else {
            return;
        };
        if w.done.is_some() || !self.converged(parent, w.replicas) {
            return;
        }
        if let Some(w) = self.waits.get_mut(parent) {
            w.done = Some(now);
            self.waits_done += 1;
        }
    }

    fn parent_event(&mut self, ty: &str, obj: &Value, now: Instant) {
        let Some(name) = obj["metadata"]["name"].as_str() else {
            return;
        };
        if ty == "DELETED" {
            self.parents.remove(name);
            return;
        }
        let info = ParentInfo {
            replicas: obj["spec"]["replicas"].as_i64().unwrap_or(0),
            ready: obj["status"]["ready"].as_i64(),
            finalizers: obj["metadata"]["finalizers"]
                .as_array()
                .map_or(0, |f| f.len()),
        };
        self.parents.insert(name.to_string(), info);
        self.check(name, now);
    }

    fn child_event(&mut self, ty: &str, obj: &Value, now: Instant) {
        let Some(name) = obj["metadata"]["name"].as_str() else {
            return;
        };
        let api_version = format!("{GROUP}/{VERSION}");
        let owner = obj["metadata"]["ownerReferences"]
            .as_array()
            .and_then(|refs| {
                refs.iter()
                    .find(|r| r["kind"] == KIND && r["apiVersion"] == api_version.as_str())
            })
            .and_then(|r| r["name"].as_str())
            .map(str::to_string);
        let previous = if ty == "DELETED" {
            self.children.remove(name)
        } else {
            self.children.insert(name.to_string(), owner.clone())
        };
        if let Some(Some(old)) = &previous
            && (ty == "DELETED" || owner.as_ref() != Some(old))
        {
            if let Some(set) = self.by_parent.get_mut(old) {
                set.remove(name);
            }
            self.check(&old.clone(), now);
        }
        if ty != "DELETED"
            && let Some(owner) = &owner
        {
            self.by_parent
                .entry(owner.clone())
                .or_default()
                .insert(name.to_string());
            self.check(&owner.clone(), now);
        }
        if let Some(w) = self.child_waits.get_mut(name) {
            if ty == "DELETED" {
                w.deleted = true;
            } else if w.deleted && w.done.is_none() {
                w.done = Some(now);
                self.child_waits_done += 1;
            }
        }
    }

    fn reset(&mut self, parents: bool) {
        if parents {
            self.parents.clear();
        } else {
            self.children.clear();
            self.by_parent.clear();
        }
    }
}

/// Latencies of the waits of one workload.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Per finished wait: from its start to convergence, in milliseconds.
    pub latencies_ms: Vec<f64>,
    /// Waits not finished.
    pub pending: Vec<String>,
    /// The last convergence seen.
    pub last_done: Option<Instant>,
}

fn outcome<'a>(
    waits: impl Iterator<Item = (&'a String, Option<Instant>, Option<Instant>)>,
) -> Outcome {
    let mut out = Outcome::default();
    for (name, start, done) in waits {
        match (start, done) {
            (Some(start), Some(done)) => {
                out.latencies_ms
                    .push(done.saturating_duration_since(start).as_secs_f64() * 1e3);
                out.last_done = out.last_done.max(Some(done));
            }
            _ => out.pending.push(name.clone()),
        }
    }
    out.pending.sort();
    out
}

/// Follows the bench namespace. See the [module documentation](self).
pub struct Observer {
    state: Arc<Mutex<State>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Observer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Observer {
    /// Starts watching parents and children; returns once both watches are
    /// open.
    pub async fn start(rest: Arc<Rest>) -> Result<Self> {
        let state = Arc::new(Mutex::new(State::default()));
        let mut tasks = Vec::new();
        for parents in [true, false] {
            let path = if parents {
                collection(GROUP, VERSION, NAMESPACE, PLURAL)
            } else {
                collection("", "v1", NAMESPACE, "configmaps")
            };
            let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
            tasks.push(tokio::spawn(follow(
                rest.clone(),
                path,
                parents,
                state.clone(),
                ready_tx,
            )));
            tokio::time::timeout(Duration::from_secs(30), ready_rx)
                .await
                .context("the harness watch did not open")?
                .ok();
        }
        Ok(Observer { state, tasks })
    }

    /// Waits for `parents` to converge with `replicas` children each.
    pub fn expect(&self, parents: &[String], replicas: i64) {
        let mut s = self.state.lock();
        for p in parents {
            let old = s.waits.insert(
                p.clone(),
                Wait {
                    replicas,
                    start: None,
                    done: None,
                },
            );
            if old.is_some_and(|w| w.done.is_some()) {
                s.waits_done -= 1;
            }
        }
    }

    /// The write that started `parent`'s wait was acknowledged at `at`.
    pub fn started(&self, parent: &str, at: Instant) {
        let mut s = self.state.lock();
        if let Some(w) = s.waits.get_mut(parent) {
            w.start = Some(at);
        }
        s.check(parent, at);
    }

    /// Waits for the child `name` to be deleted and then seen again.
    pub fn expect_repair(&self, name: &str) {
        let mut s = self.state.lock();
        let old = s.child_waits.insert(name.to_string(), ChildWait::default());
        if old.is_some_and(|w| w.done.is_some()) {
            s.child_waits_done -= 1;
        }
    }

    /// The deletion of child `name` was acknowledged at `at`.
    pub fn repair_started(&self, name: &str, at: Instant) {
        if let Some(w) = self.state.lock().child_waits.get_mut(name) {
            w.start = Some(at);
        }
    }

    /// The parent waits' outcome; clears them when `take`.
    pub fn parent_outcome(&self, take: bool) -> Outcome {
        let mut s = self.state.lock();
        let out = outcome(s.waits.iter().map(|(n, w)| (n, w.start, w.done)));
        if take {
            s.waits.clear();
            s.waits_done = 0;
        }
        out
    }

    /// The repair waits' outcome; clears them when `take`.
    pub fn repair_outcome(&self, take: bool) -> Outcome {
        let mut s = self.state.lock();
        let out = outcome(s.child_waits.iter().map(|(n, w)| (n, w.start, w.done)));
        if take {
            s.child_waits.clear();
            s.child_waits_done = 0;
        }
        out
    }

    /// Parent waits not done yet (no scan, no allocation).
    pub fn parents_pending(&self) -> usize {
        let s = self.state.lock();
        s.waits.len() - s.waits_done
    }

    /// Repair waits not done yet.
    pub fn repairs_pending(&self) -> usize {
        let s = self.state.lock();
        s.child_waits.len() - s.child_waits_done
    }

    /// Parents and children currently seen.
    pub fn counts(&self) -> (usize, usize) {
        let s = self.state.lock();
        (s.parents.len(), s.children.len())
    }

    /// Parents carrying at least one finalizer.
    pub fn parents_with_finalizers(&self) -> usize {
        self.state
            .lock()
            .parents
            .values()
            .filter(|p| p.finalizers > 0)
            .count()
    }

    /// What is wrong with the world, given the replicas each parent should
    /// have: unconverged parents, unexpected parents, stray children.
    pub fn unconverged(&self, expected: &HashMap<String, i64>) -> Vec<String> {
        let s = self.state.lock();
        let mut bad: Vec<String> = expected
            .iter()
            .filter(|(p, r)| !s.converged(p, **r))
            .map(|(p, r)| {
                let info = s.parents.get(p.as_str());
                format!(
                    "{p} (want {r}; spec {:?}, ready {:?}, children {})",
                    info.map(|i| i.replicas),
                    info.and_then(|i| i.ready),
                    s.by_parent.get(p.as_str()).map_or(0, |c| c.len())
                )
            })
            .collect();
        let extra = s.parents.len().saturating_sub(expected.len());
        if extra > 0 {
            bad.push(format!("{extra} unexpected parents"));
        }
        let stray = s
            .children
            .values()
            .filter(|o| o.as_ref().is_none_or(|p| !expected.contains_key(p)))
            .count();
        if stray > 0 {
            bad.push(format!("{stray} children without an expected parent"));
        }
        bad.sort();
        bad
    }

    /// Watch events processed so far.
    pub fn events(&self) -> u64 {
        self.state.lock().events
    }

    /// Seconds spent decoding watch events and updating the state so far
    /// (the observer's own cost, apart from receiving the bytes).
    pub fn busy_seconds(&self) -> f64 {
        self.state.lock().busy.as_secs_f64()
    }
}

/// Lists `path`, then watches it from the list's resourceVersion; relists
/// whenever the watch ends.
async fn follow(
    rest: Arc<Rest>,
    path: String,
    parents: bool,
    state: Arc<Mutex<State>>,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    loop {
        if let Err(err) = follow_once(&rest, &path, parents, &state, &mut ready).await {
            eprintln!("controller-bench: harness watch on {path}: {err:#}; relisting");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn follow_once(
    rest: &Rest,
    path: &str,
    parents: bool,
    state: &Mutex<State>,
    ready: &mut Option<tokio::sync::oneshot::Sender<()>>,
) -> Result<()> {
    let list = rest.list(path).await?;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .context("list without resourceVersion")?
        .to_string();
    {
        let now = Instant::now();
        let mut s = state.lock();
        s.reset(parents);
        for item in list["items"].as_array().into_iter().flatten() {
            if parents {
                s.parent_event("ADDED", item, now);
            } else {
                s.child_event("ADDED", item, now);
            }
        }
    }
    let mut body = rest
        .watch(&format!(
            "{path}?watch=true&allowWatchBookmarks=true&resourceVersion={rv}"
        ))
        .await?;
    if let Some(tx) = ready.take() {
        let _ = tx.send(());
    }
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
    loop {
        let Some(frame) = body.frame().await else {
            return Ok(());
        };
        let Ok(data) = frame.context("watch stream")?.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        let now = Instant::now();
        let mut stream = serde_json::Deserializer::from_slice(&buf).into_iter::<Value>();
        let mut consumed = 0;
        let mut s = state.lock();
        loop {
            match stream.next() {
                None => break,
                Some(Err(e)) if e.is_eof() => break,
                Some(Err(e)) => bail!("undecodable watch event: {e}"),
                Some(Ok(ev)) => {
                    consumed = stream.byte_offset();
                    let ty = ev["type"].as_str().unwrap_or_default();
                    match ty {
                        "ADDED" | "MODIFIED" | "DELETED" => {
                            s.events += 1;
                            if parents {
                                s.parent_event(ty, &ev["object"], now);
                            } else {
                                s.child_event(ty, &ev["object"], now);
                            }
                        }
                        "ERROR" => return Ok(()),
                        _ => {}
                    }
                }
            }
        }
        s.busy += now.elapsed();
        drop(s);
        buf.drain(..consumed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn child(name: &str, owner: &str) -> Value {
        json!({"metadata": {"name": name, "ownerReferences": [
            {"apiVersion": "bench.example.com/v1", "kind": "Bench", "name": owner, "uid": "u"}
        ]}})
    }

    #[test]
    fn a_parent_converges_with_exactly_its_children_and_status() {
        let mut s = State::default();
        let now = Instant::now();
        s.waits.insert(
            "p".into(),
            Wait {
                replicas: 2,
                start: Some(now),
                done: None,
            },
        );
        s.parent_event(
            "ADDED",
            &json!({"metadata": {"name": "p"}, "spec": {"replicas": 2}}),
            now,
        );
        s.child_event("ADDED", &child("p-0", "p"), now);
        s.child_event("ADDED", &child("p-1", "p"), now);
        assert!(s.waits["p"].done.is_none(), "no status yet");
        s.child_event("ADDED", &child("p-2", "p"), now);
        s.parent_event(
            "MODIFIED",
            &json!({"metadata": {"name": "p"}, "spec": {"replicas": 2}, "status": {"ready": 2}}),
            now,
        );
        assert!(s.waits["p"].done.is_none(), "an extra child");
        s.child_event("DELETED", &child("p-2", "p"), now);
        assert!(s.waits["p"].done.is_some());
        assert_eq!(s.waits.len() - s.waits_done, 0);
    }
}
