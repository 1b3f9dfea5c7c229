//! Metacontroller ControllerRevisions (`metacontroller.k8s.io/v1alpha1`):
//! the snapshots of a parent that rolling updates move children between.
//!
//! * **Naming**: `<parent plural>.<parent group, "core" for the core
//!   group>-<sha1 hex of (parent UID bytes followed by the parentPatch JSON)>`,
//!   the prefix cut to 212 bytes so the name stays within 253 characters.
//!   The JSON is encoded as Go's `json.Marshal` encodes it (sorted keys,
//!   HTML-safe escapes, Go float formatting), so a revision created by
//!   Metacontroller for the same parent state has the same name.
//! * **parentPatch**: only the `revisionHistory.fieldPaths` subtrees of the
//!   parent (dot-separated paths, default `spec`); a path that is absent is
//!   left out.
//! * **Hypothetical parents**: the current parent with an old revision's
//!   patch written back over it (paths absent from the patch keep their
//!   current value).
//! * **Cache** ([`RevisionStore`]): revisions are read from the shared
//!   ControllerRevision watch cache, overlaid with what this controller wrote
//!   recently. The overlay makes the next sync see its own writes even when
//!   the watch has not delivered them yet; otherwise a sync right after a
//!   rollout step (triggered by the child it deleted) could read the old
//!   claims and recreate that child from the old revision. An overlay entry
//!   is dropped once the cache has caught up (same or newer
//!   resourceVersion, or the deleted object gone) or after a minute.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::core::ApiResource;
use metacontroller_api::gojson;
use metacontroller_api::{ControllerRevision, ControllerRevisionChildren};
use parking_lot::Mutex;
use serde_json::{Map, Value};

use crate::discovery::ResourceInfo;
use crate::dynapi::RequestError;
use crate::informer::InformerHandle;
use crate::object;

/// The `controllerrevisions.metacontroller.k8s.io` resource.
pub(crate) fn resource() -> ResourceInfo {
    ResourceInfo {
        api_resource: ApiResource::erase::<ControllerRevision>(&()),
        namespaced: true,
        has_status: true,
    }
}

/// Longest Kubernetes object name.
const MAX_NAME_LEN: usize = 253;
/// Length of a hex SHA-1.
const HASH_LEN: usize = 40;

/// The name of the revision of `parent_uid` whose parentPatch is `patch`,
/// for a parent of resource `plural` in API group `group`.
pub(crate) fn revision_name(plural: &str, group: &str, parent_uid: &str, patch: &Value) -> String {
    let group = if group.is_empty() { "core" } else { group };
    let mut prefix = format!("{plural}.{group}");
    let max = MAX_NAME_LEN - HASH_LEN - 1;
    if prefix.len() > max {
        let mut cut = max;
        while !prefix.is_char_boundary(cut) {
            cut -= 1;
        }
        prefix.truncate(cut);
    }
    let mut data = parent_uid.as_bytes().to_vec();
    data.extend_from_slice(gojson::to_string(patch).as_bytes());
    format!("{prefix}-{}", sha1_hex(&data))
}

/// SHA-1 of `data` as lower-case hex (FIPS 180-4). Used only to name
/// revisions the way Metacontroller does, not for security.
pub(crate) fn sha1_hex(data: &[u8]) -> String {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let mut message = data.to_vec();
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&((data.len() as u64).wrapping_mul(8)).to_be_bytes());
    for block in message.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (slot, word) in w.iter_mut().zip(block.chunks_exact(4)) {
            *slot = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, word) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*word);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (state, value) in h.iter_mut().zip([a, b, c, d, e]) {
            *state = state.wrapping_add(value);
        }
    }
    h.iter().map(|v| format!("{v:08x}")).collect()
}

/// Why a ControllerRevision could not be read, made or written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RevisionError {
    /// A field path crosses something that is not an object.
    #[error("{walked} accessor error: {found} is not an object")]
    Accessor {
        /// The path up to there.
        walked: String,
        /// What was found.
        found: &'static str,
    },
    /// A field path can't be set.
    #[error("value cannot be set because {0} is not an object")]
    NotAnObject(String),
    /// The parent's template labels are not a map of strings (the parent's
    /// description).
    #[error("invalid labels on parent {0}: spec.template.metadata.labels must be a map of strings")]
    InvalidTemplateLabels(String),
    /// The parent's patch can't be made.
    #[error("can't make patch for field {path}: {source}")]
    MakePatch {
        /// The field path.
        path: String,
        /// Why.
        #[source]
        source: Box<RevisionError>,
    },
    /// A revision's patch can't be applied.
    #[error("can't apply patch for field {path}: {source}")]
    ApplyPatch {
        /// The field path.
        path: String,
        /// Why.
        #[source]
        source: Box<RevisionError>,
    },
    /// A revision's `children` does not decode.
    #[error("can't unmarshal children of ControllerRevision {name}: {source}")]
    Children {
        /// The revision.
        name: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A revision's `parentPatch` is not an object.
    #[error("can't unmarshal ControllerRevision parentPatch of {0}: not an object")]
    ParentPatch(String),
    /// A write or read of a revision failed.
    #[error("can't {action} ControllerRevision {name} for {parent}: {source}")]
    Request {
        /// `create`, `update`, `delete` or `get`.
        action: &'static str,
        /// The revision.
        name: String,
        /// The parent.
        parent: String,
        /// The failed request.
        #[source]
        source: Box<RequestError>,
    },
    /// A revision to create exists and belongs to someone else.
    #[error(
        "can't create ControllerRevision {name} for {parent}: it exists and is controlled by {uid}"
    )]
    Controlled {
        /// The revision.
        name: String,
        /// The parent.
        parent: String,
        /// The UID of its controller.
        uid: String,
    },
}

/// Looks up a dot-separated path; `Ok(None)` when a step is missing, an
/// error when a step crosses something that is not an object.
fn nested<'a>(root: &'a Value, path: &str) -> Result<Option<&'a Value>, RevisionError> {
    let mut current = root;
    let mut walked = String::new();
    for part in path.split('.') {
        let Value::Object(map) = current else {
            return Err(RevisionError::Accessor {
                walked,
                found: type_name(current),
            });
        };
        match map.get(part) {
            Some(next) => current = next,
            None => return Ok(None),
        }
        if !walked.is_empty() {
            walked.push('.');
        }
        walked.push_str(part);
    }
    Ok(Some(current))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Sets a dot-separated path, creating intermediate objects; fails when an
/// existing intermediate value is not an object.
fn set_nested(root: &mut Value, path: &str, value: Value) -> Result<(), RevisionError> {
    let parts: Vec<&str> = path.split('.').collect();
    let mut current = root;
    for (i, part) in parts.iter().enumerate() {
        let Value::Object(map) = current else {
            return Err(RevisionError::NotAnObject(parts[..i].join(".")));
        };
        if i == parts.len() - 1 {
            map.insert((*part).to_owned(), value);
            return Ok(());
        }
        current = map
            .entry((*part).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    Ok(())
}

/// The parentPatch of `parent`: the subtrees at `field_paths`.
pub(crate) fn make_patch(parent: &Value, field_paths: &[String]) -> Result<Value, RevisionError> {
    let mut patch = Value::Object(Map::new());
    for path in field_paths {
        if let Some(value) = nested(parent, path)? {
            set_nested(&mut patch, path, value.clone()).map_err(|source| {
                RevisionError::MakePatch {
                    path: path.clone(),
                    source: Box::new(source),
                }
            })?;
        }
    }
    Ok(patch)
}

/// Writes the subtrees of `patch` at `field_paths` over `dest`.
pub(crate) fn apply_patch(
    dest: &mut Value,
    patch: &Value,
    field_paths: &[String],
) -> Result<(), RevisionError> {
    for path in field_paths {
        if let Some(value) = nested(patch, path)? {
            set_nested(dest, path, value.clone()).map_err(|source| RevisionError::ApplyPatch {
                path: path.clone(),
                source: Box::new(source),
            })?;
        }
    }
    Ok(())
}

/// A revision being worked on: the object (observed or new) and its child
/// claims.
#[derive(Clone, Debug)]
pub(crate) struct Revision {
    /// The object as cached, `None` for a revision not created yet.
    pub observed: Option<Arc<Value>>,
    /// The object to persist, apart from `children`.
    pub object: Value,
    /// Children claimed by this revision.
    pub children: Vec<ControllerRevisionChildren>,
}

impl Revision {
    /// A revision read from the cache.
    pub fn from_observed(obj: Arc<Value>) -> Result<Self, RevisionError> {
        let children = match obj.get("children") {
            None | Some(Value::Null) => Vec::new(),
            Some(value) => {
                serde_json::from_value(value.clone()).map_err(|source| RevisionError::Children {
                    name: object::name(&obj).to_owned(),
                    source,
                })?
            }
        };
        if !obj.get("parentPatch").is_some_and(Value::is_object) {
            return Err(RevisionError::ParentPatch(object::name(&obj).to_owned()));
        }
        Ok(Revision {
            object: (*obj).clone(),
            observed: Some(obj),
            children,
        })
    }

    /// A revision that does not exist yet.
    pub fn new(object: Value) -> Self {
        Revision {
            observed: None,
            object,
            children: Vec::new(),
        }
    }

    pub fn name(&self) -> &str {
        object::name(&self.object)
    }

    pub fn parent_patch(&self) -> &Value {
        self.object.get("parentPatch").unwrap_or(&Value::Null)
    }

    /// Number of claimed children.
    pub fn count_children(&self) -> usize {
        self.children.iter().map(|c| c.names.len()).sum()
    }

    /// Claims a child (no-op when already claimed).
    pub fn add_child(&mut self, group: &str, kind: &str, name: &str) {
        let position = self
            .children
            .iter()
            .position(|c| c.api_group == group && c.kind == kind);
        let entry = match position {
            Some(i) => &mut self.children[i],
            None => {
                self.children.push(ControllerRevisionChildren {
                    api_group: group.to_owned(),
                    kind: kind.to_owned(),
                    names: Vec::new(),
                });
                self.children.last_mut().expect("just pushed")
            }
        };
        if !entry.names.iter().any(|n| n == name) {
            entry.names.push(name.to_owned());
        }
    }

    /// Drops the claim on a child; a kind left without names is removed.
    pub fn remove_child(&mut self, group: &str, kind: &str, name: &str) {
        for entry in &mut self.children {
            if entry.api_group == group && entry.kind == kind {
                entry.names.retain(|n| n != name);
            }
        }
        self.children.retain(|c| !c.names.is_empty());
    }

    /// The object to persist: [`Revision::object`] with the current claims.
    pub fn to_object(&self) -> Value {
        let mut obj = self.object.clone();
        if let Value::Object(root) = &mut obj {
            if self.children.is_empty() {
                // Keep an existing empty representation as it is.
                let empty = match root.get("children") {
                    None | Some(Value::Null) => true,
                    Some(Value::Array(a)) => a.is_empty(),
                    Some(_) => false,
                };
                if !empty {
                    root.remove("children");
                }
            } else {
                root.insert(
                    "children".into(),
                    serde_json::to_value(&self.children).unwrap_or(Value::Null),
                );
            }
        }
        obj
    }
}

/// How long an overlay entry may hide the cache.
const RECENT_TTL: Duration = Duration::from_secs(60);

enum Recent {
    Written { object: Arc<Value>, at: Instant },
    Deleted { uid: String, at: Instant },
}

/// The ControllerRevision cache of one hosted controller: the shared watch
/// cache plus its own recent writes (see the [module documentation](self)).
pub(crate) struct RevisionStore {
    informer: InformerHandle,
    recent: Mutex<HashMap<String, Recent>>,
}

/// Whether `cached` reflects `written` or something newer.
fn caught_up(cached: &Value, written: &Value) -> bool {
    if object::uid(cached) != object::uid(written) {
        return false;
    }
    let (c, w) = (
        object::resource_version(cached),
        object::resource_version(written),
    );
    match (c.parse::<u64>(), w.parse::<u64>()) {
        (Ok(c), Ok(w)) => c >= w,
        _ => c == w,
    }
}

impl RevisionStore {
    pub fn new(informer: InformerHandle) -> Self {
        RevisionStore {
            informer,
            recent: Mutex::new(HashMap::new()),
        }
    }

    /// The shared watch cache.
    pub fn informer(&self) -> &InformerHandle {
        &self.informer
    }

    /// The revisions in `namespace`, recent writes included.
    pub fn list(&self, namespace: &str) -> Vec<Arc<Value>> {
        let mut objects: BTreeMap<String, Arc<Value>> = self
            .informer
            .list_namespace(namespace)
            .into_iter()
            .map(|o| (object::key(&o), o))
            .collect();
        let mut recent = self.recent.lock();
        recent.retain(|key, entry| {
            let cached = self.informer.get(key);
            match entry {
                Recent::Written { object, at } => {
                    at.elapsed() < RECENT_TTL && !cached.is_some_and(|c| caught_up(&c, object))
                }
                Recent::Deleted { uid, at } => {
                    at.elapsed() < RECENT_TTL && cached.is_some_and(|c| object::uid(&c) == uid)
                }
            }
        });
        for (key, entry) in recent.iter() {
            if object::split_key(key).0 != Some(namespace) {
                continue;
            }
            match entry {
                Recent::Written { object, .. } => {
                    objects.insert(key.clone(), object.clone());
                }
                Recent::Deleted { .. } => {
                    objects.remove(key);
                }
            }
        }
        objects.into_values().collect()
    }

    /// Records a revision as written (created, updated, adopted, released).
    pub fn written(&self, obj: Value) -> Arc<Value> {
        let obj = Arc::new(obj);
        self.recent.lock().insert(
            object::key(&obj),
            Recent::Written {
                object: obj.clone(),
                at: Instant::now(),
            },
        );
        obj
    }

    /// Records a revision as deleted.
    pub fn deleted(&self, obj: &Value) {
        self.recent.lock().insert(
            object::key(obj),
            Recent::Deleted {
                uid: object::uid(obj).to_owned(),
                at: Instant::now(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sha1_test_vectors() {
        assert_eq!(sha1_hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            sha1_hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
        let million = vec![b'a'; 1_000_000];
        assert_eq!(
            sha1_hex(&million),
            "34aa973cd4c4daa4f61eeb2bdbad27316534016f"
        );
    }

    #[test]
    fn names_hash_uid_and_go_json_of_the_patch() {
        let patch = json!({"spec": {"template": {"b": 1.5, "a": "<x>"}}});
        let name = revision_name("catsets", "ctl.enisoc.com", "uid-1", &patch);
        let expected = sha1_hex(br#"uid-1{"spec":{"template":{"a":"\u003cx\u003e","b":1.5}}}"#);
        assert_eq!(name, format!("catsets.ctl.enisoc.com-{expected}"));
        assert!(revision_name("things", "", "u", &json!({})).starts_with("things.core-"));
        let long = "x".repeat(300);
        let name = revision_name(&long, "g", "u", &json!({}));
        assert_eq!(name.len(), 253);
        assert!(name.starts_with(&"x".repeat(212)));
    }

    #[test]
    fn patches_keep_only_field_paths() {
        let parent = json!({"metadata": {"name": "p"},
            "spec": {"replicas": 3, "template": {"image": "a"}, "x": 1}});
        let paths = vec!["spec.template".to_owned(), "spec.missing".to_owned()];
        let patch = make_patch(&parent, &paths).unwrap();
        assert_eq!(patch, json!({"spec": {"template": {"image": "a"}}}));
        let mut current = json!({"spec": {"replicas": 4, "template": {"image": "b"}}});
        apply_patch(&mut current, &patch, &paths).unwrap();
        assert_eq!(
            current,
            json!({"spec": {"replicas": 4, "template": {"image": "a"}}})
        );
        // Crossing a non-object fails.
        let bad = json!({"spec": "text"});
        assert!(make_patch(&bad, &paths).is_err());
        // The default path takes the whole spec.
        let patch = make_patch(&parent, &["spec".to_owned()]).unwrap();
        assert_eq!(patch["spec"], parent["spec"]);
    }

    #[test]
    fn claims_are_added_removed_and_serialized() {
        let mut rev = Revision::new(json!({"metadata": {"name": "r"}, "parentPatch": {}}));
        rev.add_child("", "Pod", "a");
        rev.add_child("", "Pod", "b");
        rev.add_child("", "Pod", "a");
        rev.add_child("apps", "ReplicaSet", "c");
        assert_eq!(rev.count_children(), 3);
        assert_eq!(rev.children[0].names, ["a", "b"]);
        assert_eq!(
            rev.to_object()["children"],
            json!([{"apiGroup": "", "kind": "Pod", "names": ["a", "b"]},
                   {"apiGroup": "apps", "kind": "ReplicaSet", "names": ["c"]}])
        );
        rev.remove_child("apps", "ReplicaSet", "c");
        rev.remove_child("", "Pod", "zzz");
        assert_eq!(rev.children.len(), 1);
        rev.remove_child("", "Pod", "a");
        rev.remove_child("", "Pod", "b");
        assert_eq!(rev.count_children(), 0);
        assert!(rev.to_object().get("children").is_none());
        // Round trip through the cache form.
        let obj = json!({"metadata": {"name": "r"}, "parentPatch": {"spec": {}},
            "children": [{"apiGroup": "", "kind": "Pod", "names": ["x"]}]});
        let rev = Revision::from_observed(Arc::new(obj.clone())).unwrap();
        assert_eq!(rev.to_object(), obj);
        assert!(
            Revision::from_observed(Arc::new(
                json!({"metadata": {"name": "r"}, "parentPatch": 1})
            ))
            .is_err()
        );
    }

    #[test]
    fn caught_up_compares_uid_and_resource_version() {
        let a = json!({"metadata": {"uid": "u", "resourceVersion": "10"}});
        let b = json!({"metadata": {"uid": "u", "resourceVersion": "9"}});
        let c = json!({"metadata": {"uid": "v", "resourceVersion": "11"}});
        assert!(caught_up(&a, &a));
        assert!(caught_up(&a, &b));
        assert!(!caught_up(&b, &a));
        assert!(!caught_up(&c, &a));
    }
}
