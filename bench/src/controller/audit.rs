//! Request counts of a real kube-apiserver, read from its audit log.
//!
//! The embedded API server counts requests itself; kube-apiserver does not
//! expose per-client counts, but its audit log names the user, verb and
//! resource of every request. [`POLICY`] logs resource requests at level
//! `Metadata` (no bodies) and leaves out what the harness must not count:
//! the control plane's own clients, the harness's admin user and
//! non-resource URLs (discovery, health), which the embedded server does
//! not count either. What remains is the contender's.
//!
//! Each request produces one `ResponseComplete` event; a long-running one
//! (a watch) also a `ResponseStarted` event when its response begins. A
//! watch is counted at `ResponseStarted`, so that an open watch shows at
//! once, and its `ResponseComplete` is then skipped. The policy format and
//! the stages are those of
//! <https://kubernetes.io/docs/tasks/debug/debug-cluster/audit/>; the event
//! fields those of `k8s.io/apiserver/pkg/apis/audit/v1/types.go`.

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::api::Counts;

/// The audit policy, leaving out the requests of `excluded_users` and of
/// members of `excluded_groups`.
pub fn policy(excluded_users: &[&str], excluded_groups: &[&str]) -> String {
    let list = |names: &[&str]| -> String {
        names
            .iter()
            .map(|u| serde_json::to_string(u).expect("a string"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "apiVersion: audit.k8s.io/v1\n\
         kind: Policy\n\
         omitStages: [\"RequestReceived\"]\n\
         rules:\n\
         - level: None\n\
         \x20 users: [{}]\n\
         - level: None\n\
         \x20 userGroups: [{}]\n\
         - level: None\n\
         \x20 nonResourceURLs: [\"*\"]\n\
         - level: Metadata\n",
        list(excluded_users),
        list(excluded_groups)
    )
}

/// The kube-apiserver flags that turn the audit log on.
pub fn apiserver_flags(policy_file: &Path, log_file: &Path) -> Vec<String> {
    vec![
        format!("--audit-policy-file={}", policy_file.display()),
        format!("--audit-log-path={}", log_file.display()),
        "--audit-log-format=json".into(),
        // Each event written as its request finishes, not in batches.
        "--audit-log-mode=blocking".into(),
        // Megabytes; no rotation during a run (0 would mean 100).
        "--audit-log-maxsize=100000".into(),
        "--audit-log-maxbackup=1".into(),
    ]
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event {
    #[serde(default, rename = "auditID")]
    audit_id: String,
    #[serde(default)]
    stage: String,
    #[serde(default)]
    verb: String,
    #[serde(default)]
    user: User,
    object_ref: Option<ObjectRef>,
}

#[derive(Deserialize, Default)]
struct User {
    #[serde(default)]
    username: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ObjectRef {
    #[serde(default)]
    resource: String,
    #[serde(default)]
    api_group: String,
    #[serde(default)]
    subresource: String,
}

impl ObjectRef {
    /// The key the embedded server counts under: `resource[.group][/sub]`.
    fn key(&self) -> String {
        let mut key = self.resource.clone();
        if !self.api_group.is_empty() {
            key.push('.');
            key.push_str(&self.api_group);
        }
        if !self.subresource.is_empty() {
            key.push('/');
            key.push_str(&self.subresource);
        }
        key
    }
}

/// Follows one audit log file, counting requests by user, verb and resource.
pub struct AuditLog {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
    /// Requests counted at `ResponseStarted`, whose `ResponseComplete` is
    /// still to come.
    started: HashSet<String>,
    by_user: BTreeMap<String, Counts>,
    undecodable: u64,
}

impl AuditLog {
    /// Follows `path` from its start (it may not exist yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        AuditLog {
            path: path.into(),
            offset: 0,
            partial: Vec::new(),
            started: HashSet::new(),
            by_user: BTreeMap::new(),
            undecodable: 0,
        }
    }

    /// Reads what was appended since the last call.
    pub fn poll(&mut self) -> std::io::Result<()> {
        let mut file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        file.seek(SeekFrom::Start(self.offset))?;
        let mut fresh = Vec::new();
        file.read_to_end(&mut fresh)?;
        self.offset += fresh.len() as u64;
        self.feed(&fresh);
        Ok(())
    }

    /// Counts the complete lines of `bytes` (after what is left of the
    /// previous call).
    pub fn feed(&mut self, bytes: &[u8]) {
        self.partial.extend_from_slice(bytes);
        let Some(end) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return;
        };
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        for line in complete.split(|b| *b == b'\n') {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<Event>(line) {
                Ok(event) => self.count(event),
                Err(_) => self.undecodable += 1,
            }
        }
    }

    fn count(&mut self, event: Event) {
        let Some(object) = &event.object_ref else {
            return;
        };
        let counted = match event.stage.as_str() {
            "ResponseStarted" => self.started.insert(event.audit_id.clone()),
            "ResponseComplete" | "Panic" => !self.started.remove(&event.audit_id),
            _ => false,
        };
        if !counted {
            return;
        }
        *self
            .by_user
            .entry(event.user.username)
            .or_default()
            .entry((event.verb, object.key()))
            .or_default() += 1;
    }

    /// Every request counted so far, whoever made it.
    pub fn counts(&self) -> Counts {
        let mut all = Counts::new();
        for counts in self.by_user.values() {
            for (k, n) in counts {
                *all.entry(k.clone()).or_default() += n;
            }
        }
        all
    }

    /// Requests by user name.
    pub fn by_user(&self) -> &BTreeMap<String, Counts> {
        &self.by_user
    }

    /// Lines that were not audit events.
    pub fn undecodable(&self) -> u64 {
        self.undecodable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: &str, stage: &str, verb: &str, user: &str, object: &str) -> String {
        format!(
            "{{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"level\":\"Metadata\",\"auditID\":\"{id}\",\"stage\":\"{stage}\",\"verb\":\"{verb}\",\"user\":{{\"username\":\"{user}\",\"groups\":[\"system:authenticated\"]}},\"userAgent\":\"x\"{object}}}\n"
        )
    }

    #[test]
    fn counts_each_request_once_by_user_verb_and_resource() {
        let cm = r#","objectRef":{"resource":"configmaps","namespace":"bench","apiVersion":"v1"}"#;
        let status = r#","objectRef":{"resource":"benches","namespace":"bench","name":"b","apiGroup":"bench.example.com","apiVersion":"v1","subresource":"status"}"#;
        let mut log = AuditLog::new("/nonexistent");
        let text = [
            line("1", "ResponseComplete", "create", "sa", cm),
            line("2", "ResponseStarted", "watch", "sa", cm),
            line("3", "ResponseComplete", "patch", "sa", status),
            line("2", "ResponseComplete", "watch", "sa", cm),
            line("4", "ResponseComplete", "get", "other", cm),
            // A non-resource request has no objectRef.
            line("5", "ResponseComplete", "get", "sa", ""),
        ]
        .concat();
        // Fed in two pieces, split inside a line.
        let (a, b) = text.as_bytes().split_at(100);
        log.feed(a);
        log.feed(b);
        let sa = &log.by_user()["sa"];
        assert_eq!(sa[&("create".into(), "configmaps".into())], 1);
        assert_eq!(sa[&("watch".into(), "configmaps".into())], 1);
        assert_eq!(
            sa[&("patch".into(), "benches.bench.example.com/status".into())],
            1
        );
        assert_eq!(sa.len(), 3);
        assert_eq!(log.counts().values().sum::<u64>(), 4);
        assert_eq!(log.undecodable(), 0);
        assert!(log.started.is_empty());
    }

    #[test]
    fn reads_a_growing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let mut log = AuditLog::new(&path);
        log.poll().unwrap();
        assert!(log.counts().is_empty());
        let cm = r#","objectRef":{"resource":"configmaps","apiVersion":"v1"}"#;
        std::fs::write(&path, line("1", "ResponseComplete", "list", "u", cm)).unwrap();
        log.poll().unwrap();
        let mut more = std::fs::read_to_string(&path).unwrap();
        more.push_str(&line("2", "ResponseComplete", "list", "u", cm));
        more.push_str("not json\n");
        std::fs::write(&path, more).unwrap();
        log.poll().unwrap();
        assert_eq!(log.counts()[&("list".into(), "configmaps".into())], 2);
        assert_eq!(log.undecodable(), 1);
    }

    #[test]
    fn the_policy_names_the_excluded_users() {
        let p = policy(&["a", "b:c"], &["g"]);
        assert!(p.contains("users: [\"a\", \"b:c\"]"), "{p}");
        assert!(p.contains("userGroups: [\"g\"]"), "{p}");
        assert!(p.contains("omitStages: [\"RequestReceived\"]"));
    }
}
