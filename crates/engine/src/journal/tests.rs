use serde_json::{Value, json};

use super::*;

fn record(controller: &str, key: &str, error: Option<&str>) -> SyncRecord {
    SyncRecord {
        seq: 0,
        controller_kind: "CompositeController".into(),
        controller: controller.into(),
        key: key.into(),
        parent: Value::Null,
        started: now(),
        finished: now(),
        duration_ms: 1.0,
        calls: Vec::new(),
        actions: Vec::new(),
        error: error.map(str::to_owned),
    }
}

#[test]
fn keeps_the_last_syncs_of_each_parent() {
    let journal = Journal::new();
    for _ in 0..PER_PARENT + 5 {
        journal.sync(record("c", "ns/a", None));
    }
    let snapshot = journal.snapshot();
    assert_eq!(snapshot.parents.len(), 1);
    let syncs = &snapshot.parents[0].syncs;
    assert_eq!(syncs.len(), PER_PARENT);
    assert_eq!(syncs.last().unwrap().seq, (PER_PARENT + 5) as u64);
    assert_eq!(syncs[0].seq, 6);
}

#[test]
fn forgets_the_least_recently_synced_parent() {
    let journal = Journal::new();
    for i in 0..MAX_PARENTS {
        journal.sync(record("c", &format!("ns/p{i}"), None));
    }
    // p0 synced again: p1 is now the oldest.
    journal.sync(record("c", "ns/p0", None));
    journal.sync(record("c", "ns/new", None));
    let ids: Vec<String> = journal
        .snapshot()
        .parents
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(ids.len(), MAX_PARENTS);
    assert!(ids.contains(&"CompositeController/c/ns/p0".to_owned()));
    assert!(ids.contains(&"CompositeController/c/ns/new".to_owned()));
    assert!(!ids.contains(&"CompositeController/c/ns/p1".to_owned()));
}

#[test]
fn controller_health_counts_failures_and_broadcasts() {
    let journal = Journal::new();
    let mut events = journal.subscribe();
    journal.controller("CompositeController", "c", ControllerState::Running);
    journal.sync(record("c", "ns/a", Some("boom")));
    journal.sync(record("c", "ns/b", None));
    let health = &journal.snapshot().controllers[0];
    assert_eq!((health.syncs, health.failures), (2, 1));
    assert_eq!(health.last_error, None);
    assert_eq!(health.state, ControllerState::Running);
    let mut seqs = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let JournalEvent::Sync(record) = event {
            seqs.push(record.seq);
        }
    }
    assert_eq!(seqs, vec![1, 2]);
}

#[test]
fn secrets_and_credentials_are_hidden() {
    let mut request = json!({
        "parent": {"metadata": {"name": "p"}, "spec": {"token": "hunter2"}},
        "children": {"Secret.v1": {"s": {
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s", "annotations": {"metacontroller.k8s.io/last-applied-configuration": "{\"data\":{\"k\":\"c2VjcmV0\"}}", "other": "kept"}},
            "data": {"k": "c2VjcmV0"}, "stringData": {"p": "plain"}
        }}},
    });
    redact_secrets(&mut request, &|s: &str| s.replace("hunter2", "<redacted>"));
    let text = request.to_string();
    assert!(!text.contains("c2VjcmV0"), "{text}");
    assert!(!text.contains("plain"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("kept"), "{text}");
    assert_eq!(request["parent"]["spec"]["token"], "<redacted>");
}
