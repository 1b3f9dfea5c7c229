//! Field managers and `metadata.managedFields`: who owns which fields, read
//! from and written to an object, with the cap on `Update` entries.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use super::path::{go_json, go_quote};
use super::set::FieldSet;

/// How many `Update` entries an object keeps before the oldest ones are
/// merged into an `ancient-changes` entry (Kubernetes' default).
pub const MAX_UPDATE_MANAGERS: usize = 10;

/// The operation of a `managedFields` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    /// A server-side apply.
    Apply,
    /// Any other write (create, update, patch).
    Update,
}

impl Operation {
    /// The name written in `managedFields` (`Apply`, `Update`).
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// Identifies a `managedFields` entry: appliers are identified by name and
/// subresource, updaters also by API version.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ManagerId {
    /// The field manager's name.
    pub manager: String,
    /// Apply or update.
    pub operation: Operation,
    /// Empty for appliers.
    pub api_version: String,
    /// The subresource written (`status`, `scale`), empty for the main resource.
    pub subresource: String,
}

impl ManagerId {
    /// The entry of manager `manager` applying (to `subresource`, `""` for
    /// the object itself).
    pub fn apply(manager: &str, subresource: &str) -> Self {
        ManagerId {
            manager: manager.to_owned(),
            operation: Operation::Apply,
            api_version: String::new(),
            subresource: subresource.to_owned(),
        }
    }

    /// The entry of manager `manager` writing with a non-apply verb at
    /// `api_version`.
    pub fn update(manager: &str, api_version: &str, subresource: &str) -> Self {
        ManagerId {
            manager: manager.to_owned(),
            operation: Operation::Update,
            api_version: api_version.to_owned(),
            subresource: subresource.to_owned(),
        }
    }

    /// The identifier Kubernetes keys managers by (a `ManagedFieldsEntry`
    /// without fields and time, as JSON).
    pub fn identifier(&self) -> String {
        let mut parts = Vec::new();
        if !self.manager.is_empty() {
            parts.push(format!(
                "\"manager\":{}",
                go_json(&Value::String(self.manager.clone()))
            ));
        }
        parts.push(format!("\"operation\":\"{}\"", self.operation.as_str()));
        if !self.api_version.is_empty() {
            parts.push(format!(
                "\"apiVersion\":{}",
                go_json(&Value::String(self.api_version.clone()))
            ));
        }
        if !self.subresource.is_empty() {
            parts.push(format!(
                "\"subresource\":{}",
                go_json(&Value::String(self.subresource.clone()))
            ));
        }
        format!("{{{}}}", parts.join(","))
    }

    /// How conflict messages name the manager: `"kubectl"`,
    /// `"kubectl-edit" using v1`, `"ctl" with subresource "status"`.
    pub fn describe(&self) -> String {
        let mut s = go_quote(&self.manager);
        if !self.subresource.is_empty() {
            s.push_str(&format!(
                " with subresource {}",
                go_quote(&self.subresource)
            ));
        }
        if self.operation == Operation::Update {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }
}

/// The fields one manager owns.
#[derive(Clone, Debug, PartialEq)]
pub struct ManagedEntry {
    /// The owned fields.
    pub set: FieldSet,
    /// The API version the fields are expressed in.
    pub api_version: String,
    /// When the entry last changed the object (RFC 3339).
    pub time: Option<String>,
}

/// The decoded `metadata.managedFields` of an object.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ManagedFields {
    pub(super) entries: BTreeMap<ManagerId, ManagedEntry>,
}

impl ManagedFields {
    /// No managers.
    pub fn new() -> Self {
        ManagedFields::default()
    }

    /// Whether no manager owns anything.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The entry of manager `id`.
    pub fn get(&self, id: &ManagerId) -> Option<&ManagedEntry> {
        self.entries.get(id)
    }

    /// Sets the entry of manager `id`.
    pub fn insert(&mut self, id: ManagerId, entry: ManagedEntry) {
        self.entries.insert(id, entry);
    }

    /// Removes and returns the entry of manager `id`.
    pub fn remove(&mut self, id: &ManagerId) -> Option<ManagedEntry> {
        self.entries.remove(id)
    }

    /// The entries, ordered by manager.
    pub fn iter(&self) -> impl Iterator<Item = (&ManagerId, &ManagedEntry)> {
        self.entries.iter()
    }

    /// Decodes `metadata.managedFields` (absent or `null`: no managers),
    /// rejecting entries Kubernetes rejects.
    pub fn decode(v: Option<&Value>) -> Result<Self, String> {
        let items = match v {
            None | Some(Value::Null) => return Ok(ManagedFields::new()),
            Some(Value::Array(items)) => items,
            Some(_) => return Err("managedFields must be a list".into()),
        };
        let mut out = ManagedFields::new();
        for (i, item) in items.iter().enumerate() {
            let Value::Object(e) = item else {
                return Err(format!("managed fields entry {i} must be an object"));
            };
            let text = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or_default();
            let operation = match text("operation") {
                "Apply" => Operation::Apply,
                "Update" => Operation::Update,
                _ => return Err("operation must be `Apply` or `Update`".into()),
            };
            let api_version = text("apiVersion");
            if api_version.is_empty() {
                return Err("apiVersion must not be empty".into());
            }
            match text("fieldsType") {
                "FieldsV1" => {}
                "" => return Err(format!("missing fieldsType in managed fields entry {i}")),
                other => {
                    return Err(format!(
                        "invalid fieldsType {other:?} in managed fields entry {i}"
                    ));
                }
            }
            let set = match e.get("fieldsV1") {
                None | Some(Value::Null) => FieldSet::new(),
                Some(f) => FieldSet::from_fields_v1(f)
                    .map_err(|err| format!("error decoding set of entry {i}: {err}"))?,
            };
            let id = ManagerId {
                manager: text("manager").to_owned(),
                operation,
                api_version: match operation {
                    Operation::Apply => String::new(),
                    Operation::Update => api_version.to_owned(),
                },
                subresource: text("subresource").to_owned(),
            };
            out.entries.insert(
                id,
                ManagedEntry {
                    set,
                    api_version: api_version.to_owned(),
                    time: e.get("time").and_then(Value::as_str).map(str::to_owned),
                },
            );
        }
        Ok(out)
    }

    /// Whether a `managedFields` value asks to reset ownership tracking
    /// (`[]` or `[{}]`).
    pub fn is_reset(v: Option<&Value>) -> bool {
        match v {
            Some(Value::Array(items)) => match items.as_slice() {
                [] => true,
                [Value::Object(e)] => e.values().all(|v| match v {
                    Value::Null => true,
                    Value::String(s) => s.is_empty(),
                    Value::Object(m) => m.is_empty(),
                    _ => false,
                }),
                _ => false,
            },
            _ => false,
        }
    }

    /// The `metadata.managedFields` list, sorted as Kubernetes sorts it
    /// (appliers first, then by time, manager, version and subresource);
    /// `None` when there are no managers.
    pub fn encode(&self) -> Option<Value> {
        if self.entries.is_empty() {
            return None;
        }
        let mut entries: Vec<(&ManagerId, &ManagedEntry)> = self.entries.iter().collect();
        entries.sort_by(|(a, ae), (b, be)| {
            a.operation
                .cmp(&b.operation)
                .then_with(|| {
                    ae.time
                        .as_deref()
                        .unwrap_or("")
                        .cmp(be.time.as_deref().unwrap_or(""))
                })
                .then_with(|| a.manager.cmp(&b.manager))
                .then_with(|| ae.api_version.cmp(&be.api_version))
                .then_with(|| a.subresource.cmp(&b.subresource))
        });
        let items = entries
            .into_iter()
            .map(|(id, e)| {
                let mut m = Map::new();
                if !id.manager.is_empty() {
                    m.insert("manager".into(), Value::String(id.manager.clone()));
                }
                m.insert(
                    "operation".into(),
                    Value::String(id.operation.as_str().into()),
                );
                m.insert("apiVersion".into(), Value::String(e.api_version.clone()));
                if let Some(t) = &e.time {
                    m.insert("time".into(), Value::String(t.clone()));
                }
                m.insert("fieldsType".into(), Value::String("FieldsV1".into()));
                m.insert("fieldsV1".into(), e.set.to_fields_v1());
                if !id.subresource.is_empty() {
                    m.insert("subresource".into(), Value::String(id.subresource.clone()));
                }
                Value::Object(m)
            })
            .collect();
        Some(Value::Array(items))
    }

    /// Merges the oldest `Update` entries into `ancient-changes` entries
    /// (one per API version) until at most `max` remain.
    pub(super) fn cap_updates(&mut self, max: usize) {
        let mut updaters: Vec<ManagerId> = self
            .entries
            .keys()
            .filter(|id| id.operation == Operation::Update)
            .cloned()
            .collect();
        if updaters.len() <= max {
            return;
        }
        let time = |id: &ManagerId| self.entries[id].time.clone().unwrap_or_default();
        updaters.sort_by_cached_key(|id| (time(id), id.identifier()));
        let mut first_of_version: HashMap<String, ManagerId> = HashMap::new();
        let mut length = updaters.len();
        for id in updaters {
            if length <= max {
                break;
            }
            let Some(entry) = self.entries.get(&id).cloned() else {
                continue;
            };
            let bucket = ManagerId::update("ancient-changes", &entry.api_version, "");
            if id == bucket {
                continue;
            }
            match first_of_version.get(&entry.api_version) {
                Some(first) => {
                    if !self.entries.contains_key(&bucket)
                        && let Some(first_entry) = self.entries.remove(first)
                    {
                        self.entries.insert(bucket.clone(), first_entry);
                    }
                    self.entries.remove(&id);
                    if let Some(b) = self.entries.get_mut(&bucket) {
                        b.set = entry.set.union(&b.set);
                        b.time = entry.time;
                    }
                    length -= 1;
                }
                None => {
                    first_of_version.insert(entry.api_version.clone(), id);
                }
            }
        }
    }
}
