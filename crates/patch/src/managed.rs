//! Field management for server-side apply (`metadata.managedFields`).
//!
//! Kubernetes records, for every object, which *field manager* owns which
//! fields, and uses that record to merge applied configurations, to remove
//! fields a manager stops applying, and to detect conflicts between
//! managers. The model is the one of `sigs.k8s.io/structured-merge-diff`:
//!
//! * a [`FieldSet`] is a set of [`FieldPath`]s, each a list of
//!   [`PathElement`]s: a map key (`f:name`), a keyed list item
//!   (`k:{"name":"x"}`), a set item (`v:"x"`) or a list index (`i:0`);
//! * a set is written in the `FieldsV1` encoding: nested JSON objects keyed
//!   by path elements, where `{}` marks a member and `".": {}` marks a node
//!   that is a member and also has members below it;
//! * how a value is split into fields depends on its [`Type`]: maps are
//!   granular unless atomic, lists are atomic unless their schema makes
//!   them sets or lists keyed by some of their items' fields;
//! * [`apply`] merges a configuration into a live object and moves
//!   ownership, [`update`] records the fields a non-apply write changed.
//!
//! Everything here is a pure function over [`serde_json::Value`].

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::LazyLock;

use serde_json::{Map, Value};

use crate::builtin::schema_for;
use crate::schema::{FieldSchema, PatchStrategy, Schema};

/// How many `Update` entries an object keeps before the oldest ones are
/// merged into an `ancient-changes` entry (Kubernetes' default).
pub const MAX_UPDATE_MANAGERS: usize = 10;

// ---------------------------------------------------------------------------
// Path elements and paths
// ---------------------------------------------------------------------------

/// One step of a [`FieldPath`].
#[derive(Clone, Debug)]
pub enum PathElement {
    /// A key of a map (or a field of a struct): `f:name`.
    Field(String),
    /// An item of a list keyed by some of its fields, sorted by field
    /// name: `k:{"name":"x"}`.
    Key(Vec<(String, Value)>),
    /// An item of a set of scalars: `v:"x"`.
    Value(Value),
    /// An item of a list by position: `i:0`.
    Index(usize),
}

impl PathElement {
    /// A map key.
    pub fn field(name: &str) -> Self {
        PathElement::Field(name.to_owned())
    }

    /// A keyed list item; the key fields are sorted by name.
    pub fn key<I, S>(fields: I) -> Self
    where
        I: IntoIterator<Item = (S, Value)>,
        S: Into<String>,
    {
        let mut fields: Vec<(String, Value)> =
            fields.into_iter().map(|(k, v)| (k.into(), v)).collect();
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        PathElement::Key(fields)
    }

    fn rank(&self) -> u8 {
        match self {
            PathElement::Field(_) => 0,
            PathElement::Key(_) => 1,
            PathElement::Value(_) => 2,
            PathElement::Index(_) => 3,
        }
    }

    /// The `FieldsV1` spelling of the element.
    pub fn encode(&self) -> String {
        match self {
            PathElement::Field(name) => format!("f:{name}"),
            PathElement::Key(fields) => {
                let mut out = String::from("k:{");
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&go_json(&Value::String(name.clone())));
                    out.push(':');
                    out.push_str(&go_json(value));
                }
                out.push('}');
                out
            }
            PathElement::Value(value) => format!("v:{}", go_json(value)),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    /// Parses the `FieldsV1` spelling of an element.
    pub fn decode(s: &str) -> Result<Self, String> {
        let (kind, rest) = match s.as_bytes() {
            [k, b':', ..] => (*k, &s[2..]),
            _ if s.len() < 2 => return Err(format!("key must be 2 characters long: {s:?}")),
            _ => return Err(format!("missing colon: {s}")),
        };
        match kind {
            b'f' => Ok(PathElement::Field(rest.to_owned())),
            b'v' => serde_json::from_str(rest)
                .map(PathElement::Value)
                .map_err(|e| format!("invalid value path element {s:?}: {e}")),
            b'k' => match serde_json::from_str::<Value>(rest) {
                Ok(Value::Object(m)) => Ok(PathElement::key(m)),
                Ok(_) => Err(format!("invalid key path element {s:?}: not an object")),
                Err(e) => Err(format!("invalid key path element {s:?}: {e}")),
            },
            b'i' => rest
                .parse()
                .map(PathElement::Index)
                .map_err(|e| format!("invalid index path element {s:?}: {e}")),
            _ => Err(format!("unknown path element type: {s:?}")),
        }
    }
}

impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.cmp(b),
            (PathElement::Key(a), PathElement::Key(b)) => compare_field_lists(a, b),
            (PathElement::Value(a), PathElement::Value(b)) => compare_values(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for PathElement {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for PathElement {}

impl fmt::Display for PathElement {
    /// The human-readable form used in conflict messages:
    /// `.name`, `[name="x",port=80]`, `[="x"]`, `[0]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(fields) => {
                f.write_str("[")?;
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{name}={}", value_string(value))?;
                }
                f.write_str("]")
            }
            PathElement::Value(value) => write!(f, "[={}]", value_string(value)),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A path from the top of an object to one of its fields.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct FieldPath(pub Vec<PathElement>);

impl FieldPath {
    /// A path made of map keys only (`["spec", "replicas"]`).
    pub fn fields(names: &[&str]) -> Self {
        FieldPath(names.iter().map(|n| PathElement::field(n)).collect())
    }

    /// Appends an element.
    pub fn with(mut self, pe: PathElement) -> Self {
        self.0.push(pe);
        self
    }
}

impl fmt::Display for FieldPath {
    /// `.spec.containers[name="web"].image`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for pe in &self.0 {
            write!(f, "{pe}")?;
        }
        Ok(())
    }
}

/// Orders values the way structured-merge-diff does: numbers (compared
/// numerically) < strings < booleans < lists < maps < null.
fn compare_values(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Number(_) => 0,
            Value::String(_) => 1,
            Value::Bool(_) => 2,
            Value::Array(_) => 3,
            Value::Object(_) => 4,
            Value::Null => 5,
        }
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let int = |n: &serde_json::Number| {
                n.as_i64()
                    .map(i128::from)
                    .or_else(|| n.as_u64().map(i128::from))
            };
            match (int(x), int(y)) {
                (Some(x), Some(y)) => x.cmp(&y),
                _ => {
                    let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
                    x.partial_cmp(&y).unwrap_or(Ordering::Equal)
                }
            }
        }
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (a, b) in x.iter().zip(y) {
                match compare_values(a, b) {
                    Ordering::Equal => {}
                    o => return o,
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            for ((ka, va), (kb, vb)) in x.iter().zip(y) {
                match ka.cmp(kb).then_with(|| compare_values(va, vb)) {
                    Ordering::Equal => {}
                    o => return o,
                }
            }
            x.len().cmp(&y.len())
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

fn compare_field_lists(a: &[(String, Value)], b: &[(String, Value)]) -> Ordering {
    for ((na, va), (nb, vb)) in a.iter().zip(b) {
        match na.cmp(nb).then_with(|| compare_values(va, vb)) {
            Ordering::Equal => {}
            o => return o,
        }
    }
    a.len().cmp(&b.len())
}

/// Deep equality where numbers compare numerically (`1 == 1.0`).
pub fn values_equal(a: &Value, b: &Value) -> bool {
    compare_values(a, b) == Ordering::Equal
}

/// JSON as Go's `encoding/json` writes it (HTML characters escaped).
fn go_json(v: &Value) -> String {
    let s = serde_json::to_string(v).unwrap_or_default();
    if !s.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        return s;
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// A string quoted like Go's `%q`.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A value as structured-merge-diff prints it in paths.
fn value_string(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => go_quote(s),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(value_string).collect();
            format!("[{}]", parts.join(","))
        }
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{k}={}", value_string(v)))
            .collect(),
    }
}

// ---------------------------------------------------------------------------
// Field sets
// ---------------------------------------------------------------------------

/// A set of field paths, stored as a tree. A node is a *member* when its
/// own path is in the set; it may also have members below it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSet {
    nodes: BTreeMap<PathElement, SetNode>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct SetNode {
    member: bool,
    children: FieldSet,
}

impl SetNode {
    fn is_empty(&self) -> bool {
        !self.member && self.children.is_empty()
    }
}

impl FieldSet {
    /// The empty set.
    pub fn new() -> Self {
        FieldSet::default()
    }

    /// The set of the given paths.
    pub fn from_paths<I: IntoIterator<Item = FieldPath>>(paths: I) -> Self {
        let mut s = FieldSet::new();
        for p in paths {
            s.insert(&p.0);
        }
        s
    }

    /// Whether the set has no member at all.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Adds a path. The empty path (the whole object) is never tracked.
    pub fn insert(&mut self, path: &[PathElement]) {
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        let node = self.nodes.entry(first.clone()).or_default();
        if rest.is_empty() {
            node.member = true;
        } else {
            node.children.insert(rest);
        }
    }

    /// Whether `path` is a member.
    pub fn has(&self, path: &[PathElement]) -> bool {
        let Some((first, rest)) = path.split_first() else {
            return false;
        };
        match self.nodes.get(first) {
            Some(node) if rest.is_empty() => node.member,
            Some(node) => node.children.has(rest),
            None => false,
        }
    }

    /// The members below `pe`, relative to it.
    pub fn child(&self, pe: &PathElement) -> Option<&FieldSet> {
        self.nodes.get(pe).map(|n| &n.children)
    }

    fn put(&mut self, pe: PathElement, node: SetNode) {
        if !node.is_empty() {
            self.nodes.insert(pe, node);
        }
    }

    /// Members of either set.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        for (pe, node) in &other.nodes {
            match out.nodes.get_mut(pe) {
                Some(mine) => {
                    mine.member |= node.member;
                    mine.children = mine.children.union(&node.children);
                }
                None => {
                    out.nodes.insert(pe.clone(), node.clone());
                }
            }
        }
        out
    }

    /// Members of both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        for (pe, node) in &self.nodes {
            if let Some(theirs) = other.nodes.get(pe) {
                out.put(
                    pe.clone(),
                    SetNode {
                        member: node.member && theirs.member,
                        children: node.children.intersection(&theirs.children),
                    },
                );
            }
        }
        out
    }

    /// Members of `self` that are not members of `other`. Removing a member
    /// does not remove what lies below it (see
    /// [`FieldSet::recursive_difference`]).
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        for (pe, node) in &self.nodes {
            match other.nodes.get(pe) {
                Some(theirs) => out.put(
                    pe.clone(),
                    SetNode {
                        member: node.member && !theirs.member,
                        children: node.children.difference(&theirs.children),
                    },
                ),
                None => out.put(pe.clone(), node.clone()),
            }
        }
        out
    }

    /// Like [`FieldSet::difference`], but a member of `other` also removes
    /// everything below it.
    pub fn recursive_difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        for (pe, node) in &self.nodes {
            match other.nodes.get(pe) {
                Some(theirs) if theirs.member => {}
                Some(theirs) => out.put(
                    pe.clone(),
                    SetNode {
                        member: node.member,
                        children: node.children.recursive_difference(&theirs.children),
                    },
                ),
                None => out.put(pe.clone(), node.clone()),
            }
        }
        out
    }

    /// Every member, in structured-merge-diff's order: the members of a
    /// level first, then the levels below.
    pub fn paths(&self) -> Vec<FieldPath> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<FieldPath>) {
        for (pe, node) in &self.nodes {
            if node.member {
                let mut p = prefix.clone();
                p.push(pe.clone());
                out.push(FieldPath(p));
            }
        }
        for (pe, node) in &self.nodes {
            if !node.children.is_empty() {
                prefix.push(pe.clone());
                node.children.collect_paths(prefix, out);
                prefix.pop();
            }
        }
    }

    /// The `FieldsV1` encoding of the set.
    pub fn to_fields_v1(&self) -> Value {
        let mut out = Map::new();
        for (pe, node) in &self.nodes {
            let mut inner = match node.children.to_fields_v1() {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            if node.member && !inner.is_empty() {
                inner.insert(".".into(), Value::Object(Map::new()));
            }
            out.insert(pe.encode(), Value::Object(inner));
        }
        Value::Object(out)
    }

    /// Parses the `FieldsV1` encoding of a set.
    pub fn from_fields_v1(v: &Value) -> Result<FieldSet, String> {
        let Value::Object(m) = v else {
            return Err("a FieldsV1 value must be a JSON object".into());
        };
        let mut out = FieldSet::new();
        for (k, child) in m {
            if k == "." {
                continue;
            }
            let pe = PathElement::decode(k)?;
            let Value::Object(cm) = child else {
                return Err(format!("the value of {k:?} must be a JSON object"));
            };
            let member = cm.is_empty() || cm.contains_key(".");
            let children = FieldSet::from_fields_v1(child)?;
            out.put(pe, SetNode { member, children });
        }
        Ok(out)
    }

    /// Makes every declared field that has members below it a member
    /// itself, so that removing the set removes emptied parents too
    /// (structured-merge-diff's `EnsureNamedFieldsAreMembers`).
    fn ensure_named_fields(&self, ty: Ty<'_>) -> FieldSet {
        let mut out = FieldSet::new();
        for (pe, node) in &self.nodes {
            let (declared, child_ty) = match pe {
                PathElement::Field(name) => ty.field(name),
                _ => (false, ty.item()),
            };
            out.put(
                pe.clone(),
                SetNode {
                    member: node.member || (declared && matches!(pe, PathElement::Field(_))),
                    children: node.children.ensure_named_fields(child_ty),
                },
            );
        }
        out
    }
}

impl fmt::Display for FieldSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.paths().iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

/// What field management knows about the type of an object: which lists
/// are keyed (and by what), which are sets, and which maps and lists are
/// atomic.
///
/// * Built-in kinds are described by their strategic merge patch metadata
///   ([`schema_for`]): lists merged by a key are keyed lists (container and
///   service ports by port *and* protocol, as their `listMapKey`s say),
///   lists merged as sets are sets, every other list is atomic, and label
///   selectors are atomic maps.
/// * Custom resources follow their structural schema:
///   `x-kubernetes-list-type` (`map` with `x-kubernetes-list-map-keys`,
///   `set`, otherwise atomic) and `x-kubernetes-map-type: atomic`.
/// * Without a schema, maps are granular and lists atomic.
///
/// `metadata` is always an `ObjectMeta`: `finalizers` is a set and
/// `ownerReferences` a list keyed by `uid`.
#[derive(Clone, Copy, Debug)]
pub struct Type<'a>(Ty<'a>);

impl Type<'static> {
    /// An object of a built-in kind (`group` is `""` for the core group).
    pub fn builtin(group: &str, kind: &str) -> Type<'static> {
        Type(Ty::Object(Body::Builtin(schema_for(group, kind))))
    }

    /// An object of unknown type.
    pub fn deduced() -> Type<'static> {
        Type(Ty::Object(Body::Deduced))
    }
}

impl<'a> Type<'a> {
    /// An object described by strategic merge patch metadata.
    pub fn from_schema(schema: Option<&'a Schema>) -> Type<'a> {
        Type(Ty::Object(Body::Builtin(schema)))
    }

    /// A custom resource with the given `openAPIV3Schema` (if any).
    pub fn custom_resource(schema: Option<&'a Value>) -> Type<'a> {
        Type(Ty::Object(match schema {
            Some(s) => Body::OpenApi(s),
            None => Body::Deduced,
        }))
    }
}

#[derive(Clone, Copy, Debug)]
enum Ty<'a> {
    /// Unknown: maps are granular and their keys are not declared fields,
    /// lists are atomic.
    Deduced,
    /// A scalar or a value replaced as a whole.
    Atomic,
    /// A built-in object with the given tagged fields.
    Builtin(Option<&'a Schema>),
    /// A field of a built-in object: its tags, if any, and what its name
    /// implies.
    BuiltinField {
        field: Option<&'a FieldSchema>,
        special: Special,
    },
    /// A node of a structural OpenAPI schema.
    OpenApi(&'a Value),
    /// The top level of an object.
    Object(Body<'a>),
}

#[derive(Clone, Copy, Debug)]
enum Body<'a> {
    Builtin(Option<&'a Schema>),
    OpenApi(&'a Value),
    Deduced,
}

impl<'a> Body<'a> {
    fn ty(self) -> Ty<'a> {
        match self {
            Body::Builtin(s) => Ty::Builtin(s),
            Body::OpenApi(s) => Ty::OpenApi(s),
            Body::Deduced => Ty::Deduced,
        }
    }
}

/// Built-in fields whose behaviour under server-side apply is not what
/// their strategic merge patch tags say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Special {
    None,
    /// `+mapType=atomic` / `+structType=atomic` (label selectors and
    /// `nodeSelector`).
    AtomicMap,
    /// `Container.ports`: keyed by `containerPort` and `protocol`.
    ContainerPorts,
    /// `ServiceSpec.ports`: keyed by `port` and `protocol`.
    ServicePorts,
    /// `PodSpec.topologySpreadConstraints`: keyed by `topologyKey` and
    /// `whenUnsatisfiable`.
    TopologySpread,
}

fn special_for(name: &str, fs: Option<&FieldSchema>) -> Special {
    match (name, fs.and_then(FieldSchema::merge_key)) {
        ("ports", Some("containerPort")) => Special::ContainerPorts,
        ("ports", Some("port")) => Special::ServicePorts,
        ("topologySpreadConstraints", Some("topologyKey")) => Special::TopologySpread,
        (
            "selector" | "podSelector" | "namespaceSelector" | "nodeSelector" | "labelSelector",
            None,
        ) => Special::AtomicMap,
        _ => Special::None,
    }
}

static OBJECT_META: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new()
        .merge_set("finalizers")
        .merge_by("ownerReferences", "uid", None)
});

/// How the items of a list are told apart.
#[derive(Clone, Debug)]
enum ListKind {
    /// Replaced as a whole.
    Atomic,
    /// Items are scalars identified by value.
    Set,
    /// Items are maps identified by these fields (with their defaults).
    Map(Vec<(String, Option<Value>)>),
}

impl<'a> Ty<'a> {
    /// Whether `key` is a declared field of this map type, and its type.
    fn field(self, key: &str) -> (bool, Ty<'a>) {
        match self {
            Ty::Deduced => (false, Ty::Deduced),
            Ty::Atomic => (true, Ty::Atomic),
            Ty::Builtin(schema) => {
                let fs = schema.and_then(|s| s.field(key));
                (
                    true,
                    Ty::BuiltinField {
                        field: fs,
                        special: special_for(key, fs),
                    },
                )
            }
            Ty::BuiltinField { field, .. } => {
                Ty::Builtin(field.and_then(FieldSchema::schema)).field(key)
            }
            Ty::OpenApi(s) => {
                if let Some(p) = s.get("properties").and_then(|p| p.get(key)) {
                    return (true, Ty::OpenApi(p));
                }
                match s.get("additionalProperties") {
                    Some(ap @ Value::Object(_)) => (false, Ty::OpenApi(ap)),
                    _ => (false, Ty::Deduced),
                }
            }
            Ty::Object(body) => match key {
                "metadata" => (true, Ty::Builtin(Some(&*OBJECT_META))),
                "apiVersion" | "kind" => (true, Ty::Atomic),
                _ => body.ty().field(key),
            },
        }
    }

    /// Whether a map of this type is replaced as a whole.
    fn atomic_map(self) -> bool {
        match self {
            Ty::Atomic => true,
            Ty::BuiltinField { field, special } => {
                special == Special::AtomicMap
                    || field.is_some_and(|f| f.strategy() == PatchStrategy::Replace)
            }
            Ty::OpenApi(s) => {
                s.get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic")
            }
            _ => false,
        }
    }

    /// How a list of this type is merged.
    fn list(self) -> ListKind {
        match self {
            Ty::BuiltinField {
                field: Some(fs),
                special,
            } if fs.strategy() == PatchStrategy::Merge => match fs.merge_key() {
                Some(key) => {
                    let keys: &[(&str, Option<&str>)] = match special {
                        Special::ContainerPorts => {
                            &[("containerPort", None), ("protocol", Some("TCP"))]
                        }
                        Special::ServicePorts => &[("port", None), ("protocol", Some("TCP"))],
                        Special::TopologySpread => {
                            &[("topologyKey", None), ("whenUnsatisfiable", None)]
                        }
                        _ => &[(key, None)],
                    };
                    ListKind::Map(
                        keys.iter()
                            .map(|(k, d)| (k.to_string(), d.map(|d| Value::String(d.into()))))
                            .collect(),
                    )
                }
                None => ListKind::Set,
            },
            Ty::OpenApi(s) => match s.get("x-kubernetes-list-type").and_then(Value::as_str) {
                Some("map") => {
                    let keys: Vec<(String, Option<Value>)> = s
                        .get("x-kubernetes-list-map-keys")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(|k| {
                            let default = s
                                .get("items")
                                .and_then(|i| i.get("properties"))
                                .and_then(|p| p.get(k))
                                .and_then(|p| p.get("default"))
                                .cloned();
                            (k.to_string(), default)
                        })
                        .collect();
                    if keys.is_empty() {
                        ListKind::Atomic
                    } else {
                        ListKind::Map(keys)
                    }
                }
                Some("set") => ListKind::Set,
                _ => ListKind::Atomic,
            },
            _ => ListKind::Atomic,
        }
    }

    /// The type of the items of a list of this type.
    fn item(self) -> Ty<'a> {
        match self {
            Ty::BuiltinField { field, .. } => Ty::Builtin(field.and_then(FieldSchema::schema)),
            Ty::OpenApi(s) => match s.get("items") {
                Some(items @ Value::Object(_)) => Ty::OpenApi(items),
                _ => Ty::Deduced,
            },
            Ty::Atomic => Ty::Atomic,
            _ => Ty::Deduced,
        }
    }
}

/// The path element naming `item` in a list of kind `kind`.
fn item_element(item: &Value, kind: &ListKind) -> Result<PathElement, String> {
    match kind {
        ListKind::Map(keys) => {
            let m = match item {
                Value::Object(m) => m,
                Value::Null => {
                    return Err("associative list with keys may not have a null element".into());
                }
                _ => return Err("associative list with keys may not have non-map elements".into()),
            };
            let mut fields = Vec::with_capacity(keys.len());
            for (k, default) in keys {
                if let Some(v) = m.get(k) {
                    fields.push((k.clone(), v.clone()));
                } else if let Some(d) = default {
                    fields.push((k.clone(), d.clone()));
                }
            }
            if fields.is_empty() {
                let names: Vec<String> = keys.iter().map(|(k, _)| go_quote(k)).collect();
                return Err(format!(
                    "associative list with keys has an element that omits all key fields [{}] (and doesn't have default values for any key fields)",
                    names.join(" ")
                ));
            }
            Ok(PathElement::key(fields))
        }
        ListKind::Set => match item {
            Value::Object(_) => {
                Err("associative list without keys has an element that's a map type".into())
            }
            Value::Array(_) => Err("not supported: associative list with lists as elements".into()),
            Value::Null => {
                Err("associative list without keys has an element that's an explicit null".into())
            }
            v => Ok(PathElement::Value(v.clone())),
        },
        ListKind::Atomic => Err("invalid indexing of non-associative list".into()),
    }
}

// ---------------------------------------------------------------------------
// Walking values
// ---------------------------------------------------------------------------

/// The fields a value sets, as recorded for the manager that applies it.
/// Fails on list items that cannot be identified (missing keys, maps in a
/// set) and on duplicate items, like Kubernetes does for an applied
/// configuration.
pub fn field_set(value: &Value, ty: Type<'_>) -> Result<FieldSet, String> {
    collect(value, ty.0, true, &mut Vec::new()).map(|(_, s)| s)
}

/// Like [`field_set`] but skips items that cannot be identified (live
/// objects are not validated again).
fn field_set_lenient(value: &Value, ty: Ty<'_>) -> FieldSet {
    collect(value, ty, false, &mut Vec::new())
        .map(|(_, s)| s)
        .unwrap_or_default()
}

/// Returns whether the value is a leaf (a member by itself) and the
/// members below it.
fn collect(
    v: &Value,
    ty: Ty<'_>,
    strict: bool,
    path: &mut Vec<PathElement>,
) -> Result<(bool, FieldSet), String> {
    match v {
        Value::Object(m) => {
            if ty.atomic_map() {
                return Ok((true, FieldSet::new()));
            }
            let mut set = FieldSet::new();
            for (k, cv) in m {
                let (declared, cty) = ty.field(k);
                let pe = PathElement::Field(k.clone());
                path.push(pe.clone());
                let (leaf, children) = collect(cv, cty, strict, path)?;
                path.pop();
                let empty_map = matches!(cv, Value::Object(cm) if cm.is_empty());
                let member = leaf || cv.is_null() || empty_map || !declared;
                set.put(pe, SetNode { member, children });
            }
            Ok((false, set))
        }
        Value::Array(items) => {
            let kind = ty.list();
            if matches!(kind, ListKind::Atomic) {
                return Ok((true, FieldSet::new()));
            }
            let item_ty = ty.item();
            let mut set = FieldSet::new();
            for (i, item) in items.iter().enumerate() {
                let pe = match item_element(item, &kind) {
                    Ok(pe) => pe,
                    Err(e) if strict => {
                        return Err(format!("{}: element {i}: {e}", FieldPath(path.clone())));
                    }
                    Err(_) => continue,
                };
                if strict && set.nodes.contains_key(&pe) {
                    return Err(format!(
                        "{}: duplicate entries for key {pe}",
                        FieldPath(path.clone())
                    ));
                }
                path.push(pe.clone());
                let (_, children) = collect(item, item_ty, strict, path)?;
                path.pop();
                let node = SetNode {
                    member: true,
                    children,
                };
                match set.nodes.get_mut(&pe) {
                    Some(existing) => existing.children = existing.children.union(&node.children),
                    None => set.put(pe, node),
                }
            }
            Ok((false, set))
        }
        _ => Ok((true, FieldSet::new())),
    }
}

/// What changed between two versions of an object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Comparison {
    /// Fields present only in the new object.
    pub added: FieldSet,
    /// Fields present in both with different values.
    pub modified: FieldSet,
    /// Fields present only in the old object.
    pub removed: FieldSet,
}

impl Comparison {
    /// Whether the objects are the same.
    pub fn is_same(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.removed.is_empty()
    }

    fn exclude(&mut self, ignored: &FieldSet) {
        if ignored.is_empty() {
            return;
        }
        self.added = self.added.recursive_difference(ignored);
        self.modified = self.modified.recursive_difference(ignored);
        self.removed = self.removed.recursive_difference(ignored);
    }
}

/// Compares two versions of an object (`None` for an object that does not
/// exist yet). Leaves (scalars, atomic values) are added, modified or
/// removed; a map, list item or list that appears or disappears as a whole
/// is added or removed itself too.
pub fn compare(old: Option<&Value>, new: Option<&Value>, ty: Type<'_>) -> Comparison {
    let mut out = Comparison::default();
    compare_walk(old, new, ty.0, &mut Vec::new(), &mut out);
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Map,
    List,
    Leaf,
}

fn shape(l: Option<&Value>, r: Option<&Value>) -> Shape {
    let nullish = |v: Option<&Value>| matches!(v, None | Some(Value::Null));
    let is_map = |v: Option<&Value>| matches!(v, Some(Value::Object(_)));
    let is_list = |v: Option<&Value>| matches!(v, Some(Value::Array(_)));
    if (is_map(l) || is_map(r)) && (is_map(l) || nullish(l)) && (is_map(r) || nullish(r)) {
        Shape::Map
    } else if (is_list(l) || is_list(r)) && (is_list(l) || nullish(l)) && (is_list(r) || nullish(r))
    {
        Shape::List
    } else {
        Shape::Leaf
    }
}

fn empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        _ => false,
    }
}

/// Maps are walked key by key unless atomic or empty on both sides (which
/// keeps the difference between empty and null).
fn map_is_leaf(ty: Ty<'_>, l: Option<&Value>, r: Option<&Value>) -> bool {
    ty.atomic_map() || (empty(l) && empty(r))
}

fn as_map(v: Option<&Value>) -> Option<&Map<String, Value>> {
    v.and_then(Value::as_object)
}

fn as_list(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The items of a list by path element; the first of duplicates wins and
/// items that cannot be identified are skipped.
fn index_items<'v>(
    items: &'v [Value],
    kind: &ListKind,
) -> (Vec<PathElement>, BTreeMap<PathElement, &'v Value>) {
    let mut order = Vec::with_capacity(items.len());
    let mut by_pe = BTreeMap::new();
    for item in items {
        if let Ok(pe) = item_element(item, kind)
            && !by_pe.contains_key(&pe)
        {
            order.push(pe.clone());
            by_pe.insert(pe, item);
        }
    }
    (order, by_pe)
}

fn compare_walk(
    l: Option<&Value>,
    r: Option<&Value>,
    ty: Ty<'_>,
    path: &mut Vec<PathElement>,
    out: &mut Comparison,
) {
    if let (Some(a), Some(b)) = (l, r)
        && a == b
    {
        // Nothing differs below.
        return;
    }
    let leaf = |out: &mut Comparison, path: &[PathElement]| match (l, r) {
        (None, _) => out.added.insert(path),
        (_, None) => out.removed.insert(path),
        (Some(a), Some(b)) if !values_equal(a, b) => out.modified.insert(path),
        _ => {}
    };
    match shape(l, r) {
        Shape::Map if !map_is_leaf(ty, l, r) => {
            let (lm, rm) = (as_map(l), as_map(r));
            let keys: BTreeSet<&String> = lm.into_iter().chain(rm).flat_map(Map::keys).collect();
            for k in keys {
                path.push(PathElement::Field(k.clone()));
                compare_walk(
                    lm.and_then(|m| m.get(k)),
                    rm.and_then(|m| m.get(k)),
                    ty.field(k).1,
                    path,
                    out,
                );
                path.pop();
            }
        }
        Shape::List if !(empty(l) && empty(r)) => {
            let kind = ty.list();
            if matches!(kind, ListKind::Atomic) {
                return leaf(out, path);
            }
            let (_, li) = index_items(as_list(l), &kind);
            let (_, ri) = index_items(as_list(r), &kind);
            let pes: BTreeSet<&PathElement> = li.keys().chain(ri.keys()).collect();
            for pe in pes {
                path.push(pe.clone());
                compare_walk(
                    li.get(pe).copied(),
                    ri.get(pe).copied(),
                    ty.item(),
                    path,
                    out,
                );
                path.pop();
            }
        }
        _ => return leaf(out, path),
    }
    match (l, r) {
        (None, _) => out.added.insert(path),
        (_, None) => out.removed.insert(path),
        _ => {}
    }
}

/// Merges an applied configuration into a live object: values of the
/// configuration win, maps merge key by key, keyed lists and sets merge
/// item by item (keeping the live order of items and placing new ones
/// after the configuration's preceding item), atomic values are replaced.
/// A `null` in the configuration clears a scalar.
pub fn merge(live: &Value, config: &Value, ty: Type<'_>) -> Value {
    merge_walk(Some(live), Some(config), ty.0).unwrap_or_else(|| Value::Object(Map::new()))
}

fn merge_walk(l: Option<&Value>, r: Option<&Value>, ty: Ty<'_>) -> Option<Value> {
    match shape(l, r) {
        Shape::Map if !map_is_leaf(ty, l, r) => {
            let (lm, rm) = (as_map(l), as_map(r));
            let keys: BTreeSet<&String> = lm.into_iter().chain(rm).flat_map(Map::keys).collect();
            let mut out = Map::new();
            for k in keys {
                let lc = lm.and_then(|m| m.get(k));
                let rc = rm.and_then(|m| m.get(k));
                if rc.is_some_and(Value::is_null)
                    && !matches!(lc, Some(Value::Object(_) | Value::Array(_)))
                {
                    continue;
                }
                if let Some(v) = merge_walk(lc, rc, ty.field(k).1) {
                    out.insert(k.clone(), v);
                }
            }
            Some(Value::Object(out))
        }
        Shape::List if !(empty(l) && empty(r)) => {
            let kind = ty.list();
            if matches!(kind, ListKind::Atomic) {
                return r.or(l).cloned();
            }
            Some(Value::Array(merge_list(
                as_list(l),
                as_list(r),
                &kind,
                ty.item(),
            )))
        }
        _ => r.or(l).cloned(),
    }
}

/// structured-merge-diff's list merge: shared items are merged in place,
/// items only the live object has keep their position, and items only the
/// configuration has follow the configuration's order.
fn merge_list(lhs: &[Value], rhs: &[Value], kind: &ListKind, item_ty: Ty<'_>) -> Vec<Value> {
    let (rhs_pes, observed_rhs) = index_items(rhs, kind);
    let mut lhs_pes = Vec::with_capacity(lhs.len());
    let mut observed_lhs: BTreeMap<PathElement, Option<&Value>> = BTreeMap::new();
    for (i, item) in lhs.iter().enumerate() {
        // Items that cannot be identified never match the configuration.
        let pe = item_element(item, kind).unwrap_or(PathElement::Index(i));
        match observed_lhs.get_mut(&pe) {
            Some(seen) => *seen = None,
            None => {
                observed_lhs.insert(pe.clone(), Some(item));
            }
        }
        lhs_pes.push(pe);
    }
    let mut shared = rhs_pes.iter().filter(|pe| observed_lhs.contains_key(*pe));
    let mut next_shared = shared.next();
    let mut merged_rhs: BTreeSet<&PathElement> = BTreeSet::new();
    let mut out = Vec::with_capacity(lhs.len().max(rhs.len()));
    let merge_item = |l: Option<&Value>, r: Option<&Value>| merge_walk(l, r, item_ty);
    let (mut li, mut ri) = (0, 0);
    while li < lhs_pes.len() || ri < rhs_pes.len() {
        if li < lhs_pes.len() && ri < rhs_pes.len() {
            let pe = &lhs_pes[li];
            if *pe == rhs_pes[ri] {
                merged_rhs.insert(pe);
                let l = observed_lhs.get(pe).copied().flatten();
                out.extend(merge_item(l, observed_rhs.get(pe).copied()));
                li += 1;
                ri += 1;
                next_shared = shared.next();
                continue;
            }
            if observed_rhs.contains_key(pe) && next_shared.is_some_and(|n| n != pe) {
                li += 1;
                continue;
            }
        }
        if li < lhs_pes.len() {
            let pe = &lhs_pes[li];
            if !observed_rhs.contains_key(pe) {
                out.extend(merge_item(Some(&lhs[li]), None));
                li += 1;
                continue;
            } else if merged_rhs.contains(pe) {
                li += 1;
            }
        }
        if ri < rhs_pes.len() {
            let pe = &rhs_pes[ri];
            merged_rhs.insert(pe);
            let l = observed_lhs.get(pe).copied().flatten();
            out.extend(merge_item(l, observed_rhs.get(pe).copied()));
            ri += 1;
            if next_shared == Some(pe) {
                next_shared = shared.next();
            }
        }
    }
    out
}

/// Removes the members of `set` from a value: a member map key or list
/// item goes away with everything below it. Maps and lists emptied this
/// way go away too.
pub fn remove_items(value: &Value, set: &FieldSet, ty: Type<'_>) -> Value {
    remove_walk(value, set, ty.0).unwrap_or_else(|| Value::Object(Map::new()))
}

fn remove_walk(v: &Value, set: &FieldSet, ty: Ty<'_>) -> Option<Value> {
    match v {
        Value::Object(m) => {
            if m.is_empty() || ty.atomic_map() {
                return if set.is_empty() {
                    Some(v.clone())
                } else {
                    None
                };
            }
            let mut out = Map::new();
            for (k, cv) in m {
                let pe = PathElement::Field(k.clone());
                match set.nodes.get(&pe) {
                    Some(node) if node.member => {}
                    Some(node) if !node.children.is_empty() => {
                        if let Some(x) = remove_walk(cv, &node.children, ty.field(k).1) {
                            out.insert(k.clone(), x);
                        }
                    }
                    _ => {
                        out.insert(k.clone(), cv.clone());
                    }
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        Value::Array(items) => {
            let kind = ty.list();
            if items.is_empty() || matches!(kind, ListKind::Atomic) {
                return if set.is_empty() {
                    Some(v.clone())
                } else {
                    None
                };
            }
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let Ok(pe) = item_element(item, &kind) else {
                    out.push(item.clone());
                    continue;
                };
                match set.nodes.get(&pe) {
                    Some(node) if node.member => {}
                    Some(node) if !node.children.is_empty() => {
                        out.extend(remove_walk(item, &node.children, ty.item()));
                    }
                    _ => out.push(item.clone()),
                }
            }
            (!out.is_empty()).then_some(Value::Array(out))
        }
        _ => Some(v.clone()),
    }
}

// ---------------------------------------------------------------------------
// Managers
// ---------------------------------------------------------------------------

/// The operation of a `managedFields` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    Apply,
    Update,
}

impl Operation {
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
    pub manager: String,
    pub operation: Operation,
    /// Empty for appliers.
    pub api_version: String,
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
    pub set: FieldSet,
    /// The API version the fields are expressed in.
    pub api_version: String,
    /// When the entry last changed the object (RFC 3339).
    pub time: Option<String>,
}

/// The decoded `metadata.managedFields` of an object.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ManagedFields {
    entries: BTreeMap<ManagerId, ManagedEntry>,
}

impl ManagedFields {
    /// No managers.
    pub fn new() -> Self {
        ManagedFields::default()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn get(&self, id: &ManagerId) -> Option<&ManagedEntry> {
        self.entries.get(id)
    }

    pub fn insert(&mut self, id: ManagerId, entry: ManagedEntry) {
        self.entries.insert(id, entry);
    }

    pub fn remove(&mut self, id: &ManagerId) -> Option<ManagedEntry> {
        self.entries.remove(id)
    }

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
    fn cap_updates(&mut self, max: usize) {
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

// ---------------------------------------------------------------------------
// Conflicts
// ---------------------------------------------------------------------------

/// A field an apply would change that another manager owns.
#[derive(Clone, Debug, PartialEq)]
pub struct Conflict {
    pub manager: ManagerId,
    pub path: FieldPath,
}

/// The conflicts of a refused apply, by manager then path.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Conflicts(pub Vec<Conflict>);

impl Conflicts {
    fn from_sets(sets: BTreeMap<ManagerId, FieldSet>) -> Self {
        let mut managers: Vec<(String, ManagerId, FieldSet)> = sets
            .into_iter()
            .map(|(id, set)| (id.identifier(), id, set))
            .collect();
        managers.sort_by(|a, b| a.0.cmp(&b.0));
        Conflicts(
            managers
                .into_iter()
                .flat_map(|(_, id, set)| {
                    set.paths().into_iter().map(move |path| Conflict {
                        manager: id.clone(),
                        path,
                    })
                })
                .collect(),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The conflicting paths.
    pub fn to_set(&self) -> FieldSet {
        FieldSet::from_paths(self.0.iter().map(|c| c.path.clone()))
    }

    /// The message of Kubernetes' apply conflict error.
    pub fn message(&self) -> String {
        if let [c] = self.0.as_slice() {
            return format!(
                "Apply failed with 1 conflict: conflict with {}: {}",
                c.manager.describe(),
                c.path
            );
        }
        let mut by_manager: BTreeMap<String, (&ManagerId, Vec<&FieldPath>)> = BTreeMap::new();
        for c in &self.0 {
            by_manager
                .entry(c.manager.identifier())
                .or_insert_with(|| (&c.manager, Vec::new()))
                .1
                .push(&c.path);
        }
        let mut lines = Vec::new();
        for (id, paths) in by_manager.values() {
            lines.push(format!("conflicts with {}:", id.describe()));
            lines.extend(paths.iter().map(|p| format!("- {p}")));
        }
        format!(
            "Apply failed with {} conflicts: {}",
            self.0.len(),
            lines.join("\n")
        )
    }
}

impl fmt::Display for Conflicts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for Conflicts {}

// ---------------------------------------------------------------------------
// Apply and update
// ---------------------------------------------------------------------------

/// The fields the server owns: never recorded for any manager.
static STRIPPED: LazyLock<FieldSet> = LazyLock::new(|| {
    FieldSet::from_paths(
        [
            &["apiVersion"][..],
            &["kind"],
            &["metadata"],
            &["metadata", "name"],
            &["metadata", "namespace"],
            &["metadata", "creationTimestamp"],
            &["metadata", "selfLink"],
            &["metadata", "uid"],
            &["metadata", "clusterName"],
            &["metadata", "generation"],
            &["metadata", "managedFields"],
            &["metadata", "resourceVersion"],
        ]
        .into_iter()
        .map(FieldPath::fields),
    )
});

/// Removes the fields the server owns (`apiVersion`, `kind`, and the
/// system fields of `metadata`) from a manager's set.
pub fn strip_meta(set: &FieldSet) -> FieldSet {
    set.difference(&STRIPPED)
}

/// Why an apply failed.
#[derive(Clone, Debug, PartialEq)]
pub enum ApplyError {
    /// The configuration is not valid for its type (duplicate or
    /// unidentifiable list items).
    Invalid(String),
    /// Other managers own fields the configuration changes.
    Conflicts(Conflicts),
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApplyError::Invalid(m) => f.write_str(m),
            ApplyError::Conflicts(c) => c.fmt(f),
        }
    }
}

impl std::error::Error for ApplyError {}

/// The outcome of an [`apply`].
#[derive(Clone, Debug, PartialEq)]
pub struct Applied {
    /// The merged object (without `managedFields`).
    pub object: Value,
    /// The managers after the apply.
    pub managed: ManagedFields,
    /// Whether the object differs from the live one.
    pub changed: bool,
}

/// Applies `config` for `manager` to `live` (both without
/// `managedFields`; `live` is `{}` for an object that does not exist yet).
///
/// The configuration is merged into the live object; fields `manager`
/// applied before and omits now are removed unless another manager owns
/// them; fields the merge changes that other managers own are conflicts,
/// refused unless `force`, which takes them over. Managers that set a field
/// to the value it already has share it. `ignored` fields (reset by the
/// addressed subresource) are neither recorded nor compared.
#[allow(clippy::too_many_arguments)]
pub fn apply(
    live: &Value,
    config: &Value,
    ty: Type<'_>,
    managed: &ManagedFields,
    manager: &ManagerId,
    api_version: &str,
    force: bool,
    ignored: &FieldSet,
    now: &str,
) -> Result<Applied, ApplyError> {
    let ty = ty.0;
    let config_set = collect(config, ty, true, &mut Vec::new())
        .map(|(_, s)| s)
        .map_err(ApplyError::Invalid)?;
    let mut managers = managed.entries.clone();
    let merged =
        merge_walk(Some(live), Some(config), ty).unwrap_or_else(|| Value::Object(Map::new()));
    let previous = managers.get(manager).cloned();
    managers.insert(
        manager.clone(),
        ManagedEntry {
            set: config_set.recursive_difference(ignored),
            api_version: api_version.to_owned(),
            time: previous.as_ref().and_then(|p| p.time.clone()),
        },
    );
    let merged = prune(merged, &managers, previous.as_ref().map(|p| &p.set), ty);
    update_sets(
        Some(live),
        &merged,
        ty,
        &mut managers,
        Some(manager),
        force,
        ignored,
    )
    .map_err(ApplyError::Conflicts)?;
    let changed = !values_equal(live, &merged);
    if let Some(entry) = managers.get_mut(manager) {
        entry.set = strip_meta(&entry.set);
        if entry.set.is_empty() {
            managers.remove(manager);
        } else if changed {
            entry.time = Some(now.to_owned());
        }
    }
    Ok(Applied {
        object: merged,
        managed: ManagedFields { entries: managers },
        changed,
    })
}

/// Records a non-apply write (create, update, patch) of `new` over `old`
/// (`None` for a create) by `manager`: it takes ownership of the fields it
/// added or changed, other managers lose those and the removed ones.
#[allow(clippy::too_many_arguments)]
pub fn update(
    old: Option<&Value>,
    new: &Value,
    ty: Type<'_>,
    managed: &ManagedFields,
    manager: &ManagerId,
    api_version: &str,
    ignored: &FieldSet,
    now: &str,
) -> ManagedFields {
    let ty = ty.0;
    let mut managers = managed.entries.clone();
    let Ok(cmp) = update_sets(old, new, ty, &mut managers, None, true, ignored) else {
        unreachable!("a forced update has no conflicts")
    };
    let current = strip_meta(&cmp.modified.union(&cmp.added).recursive_difference(ignored));
    if !current.is_empty() {
        let set = match managers.get(manager) {
            Some(previous) => current.union(&previous.set),
            None => current,
        };
        managers.insert(
            manager.clone(),
            ManagedEntry {
                set,
                api_version: api_version.to_owned(),
                time: Some(now.to_owned()),
            },
        );
    }
    let mut out = ManagedFields { entries: managers };
    out.cap_updates(MAX_UPDATE_MANAGERS);
    out
}

/// Moves ownership for a change from `old` to `new`: managers other than
/// `skip` lose the fields that were removed, and the ones that were changed
/// or added (which are conflicts unless `force`).
fn update_sets(
    old: Option<&Value>,
    new: &Value,
    ty: Ty<'_>,
    managers: &mut BTreeMap<ManagerId, ManagedEntry>,
    skip: Option<&ManagerId>,
    force: bool,
    ignored: &FieldSet,
) -> Result<Comparison, Conflicts> {
    let mut cmp = Comparison::default();
    compare_walk(old, Some(new), ty, &mut Vec::new(), &mut cmp);
    cmp.exclude(ignored);
    let changed = cmp.modified.union(&cmp.added);
    let mut conflicts = BTreeMap::new();
    for (id, entry) in managers.iter() {
        if Some(id) == skip {
            continue;
        }
        let c = entry.set.intersection(&changed);
        if !c.is_empty() {
            conflicts.insert(id.clone(), c);
        }
    }
    if !force && !conflicts.is_empty() {
        return Err(Conflicts::from_sets(conflicts));
    }
    for (id, entry) in managers.iter_mut() {
        if Some(id) == skip {
            continue;
        }
        if let Some(c) = conflicts.get(id) {
            entry.set = entry.set.difference(c);
        }
        if !cmp.removed.is_empty() {
            entry.set = entry.set.difference(&cmp.removed);
        }
    }
    managers.retain(|_, e| !e.set.is_empty());
    Ok(cmp)
}

/// Removes from `merged` what the applier applied last time and no longer
/// applies, unless some manager (including the applier's new
/// configuration) still owns it.
fn prune(
    merged: Value,
    managers: &BTreeMap<ManagerId, ManagedEntry>,
    last: Option<&FieldSet>,
    ty: Ty<'_>,
) -> Value {
    let Some(last) = last.filter(|l| !l.is_empty()) else {
        return merged;
    };
    let empty = || Value::Object(Map::new());
    let last = last.ensure_named_fields(ty);
    let pruned = remove_walk(&merged, &last, ty).unwrap_or_else(empty);
    // Add back what any manager owns.
    let owned = managers
        .values()
        .fold(FieldSet::new(), |acc, e| acc.union(&e.set))
        .ensure_named_fields(ty);
    let merged_set = field_set_lenient(&merged, ty).ensure_named_fields(ty);
    let pruned_set = field_set_lenient(&pruned, ty).ensure_named_fields(ty);
    let remove = merged_set.difference(&pruned_set.union(&owned));
    let pruned = remove_walk(&merged, &remove, ty).unwrap_or_else(empty);
    // Only remove what the applier owned.
    let pruned_set = field_set_lenient(&pruned, ty).ensure_named_fields(ty);
    let remove = merged_set.difference(&pruned_set).intersection(&last);
    remove_walk(&merged, &remove, ty).unwrap_or_else(empty)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(names: &[&str]) -> FieldPath {
        FieldPath::fields(names)
    }

    fn key(name: &str, v: &str) -> PathElement {
        PathElement::key([(name, json!(v))])
    }

    const NOW: &str = "2026-01-01T00:00:00Z";
    const LATER: &str = "2026-01-01T00:01:00Z";

    fn deployment() -> Type<'static> {
        Type::builtin("apps", "Deployment")
    }

    #[test]
    fn path_elements_round_trip_their_encoding() {
        let cases = [
            (PathElement::field("spec"), "f:spec", ".spec"),
            (key("name", "web"), r#"k:{"name":"web"}"#, r#"[name="web"]"#),
            (
                PathElement::key([("protocol", json!("TCP")), ("containerPort", json!(80))]),
                r#"k:{"containerPort":80,"protocol":"TCP"}"#,
                r#"[containerPort=80,protocol="TCP"]"#,
            ),
            (
                PathElement::Value(json!("a<b")),
                r#"v:"a\u003cb""#,
                r#"[="a<b"]"#,
            ),
            (PathElement::Value(json!(3)), "v:3", "[=3]"),
            (PathElement::Index(2), "i:2", "[2]"),
        ];
        for (pe, encoded, shown) in cases {
            assert_eq!(pe.encode(), encoded);
            assert_eq!(pe.to_string(), shown);
            assert_eq!(PathElement::decode(encoded).unwrap(), pe, "{encoded}");
        }
        for bad in ["", "x", "q:1", "k:[1]", "v:{", "i:x", "fx"] {
            assert!(PathElement::decode(bad).is_err(), "{bad:?}");
        }
        // Field names sort before keys, keys before values, values before indexes.
        let mut pes = [
            PathElement::Index(0),
            PathElement::Value(json!("a")),
            key("name", "a"),
            PathElement::field("z"),
            PathElement::Value(json!(10)),
        ];
        pes.sort();
        let encoded: Vec<String> = pes.iter().map(PathElement::encode).collect();
        assert_eq!(
            encoded,
            ["f:z", r#"k:{"name":"a"}"#, "v:10", r#"v:"a""#, "i:0"]
        );
    }

    #[test]
    fn set_algebra() {
        let a = FieldSet::from_paths([f(&["spec"]), f(&["spec", "a"]), f(&["spec", "b"])]);
        let b = FieldSet::from_paths([f(&["spec", "b"]), f(&["spec", "c"])]);
        assert_eq!(a.union(&b).paths().len(), 4);
        assert_eq!(a.intersection(&b).paths(), vec![f(&["spec", "b"])]);
        assert_eq!(
            a.difference(&b).paths(),
            vec![f(&["spec"]), f(&["spec", "a"])]
        );
        // A member removes its subtree only in a recursive difference.
        let spec = FieldSet::from_paths([f(&["spec"])]);
        assert_eq!(
            a.difference(&spec).paths(),
            vec![f(&["spec", "a"]), f(&["spec", "b"])]
        );
        assert!(a.recursive_difference(&spec).is_empty());
        assert!(a.has(&f(&["spec", "a"]).0));
        assert!(!b.has(&f(&["spec"]).0));
        assert!(FieldSet::new().is_empty());
        let mut s = FieldSet::new();
        s.insert(&[]);
        assert!(s.is_empty(), "the whole object is never tracked");
    }

    #[test]
    fn fields_v1_encoding() {
        let set = FieldSet::from_paths([
            f(&["metadata", "labels", "app"]),
            f(&["spec", "template", "spec", "containers"]).with(key("name", "web")),
            f(&["spec", "template", "spec", "containers"])
                .with(key("name", "web"))
                .with(PathElement::field("image")),
            f(&["spec", "replicas"]),
        ]);
        let v1 = set.to_fields_v1();
        assert_eq!(
            v1,
            json!({
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:replicas": {},
                    "f:template": {"f:spec": {"f:containers": {
                        "k:{\"name\":\"web\"}": {".": {}, "f:image": {}}
                    }}}
                }
            })
        );
        assert_eq!(FieldSet::from_fields_v1(&v1).unwrap(), set);
        assert!(FieldSet::from_fields_v1(&json!({"f:a": 1})).is_err());
        assert!(FieldSet::from_fields_v1(&json!({"bad": {}})).is_err());
        assert!(FieldSet::from_fields_v1(&json!([])).is_err());
    }

    #[test]
    fn field_sets_of_builtin_objects() {
        let obj = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}, "finalizers": ["a/b"], "annotations": {}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"spec": {
                    "containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}], "args": ["-v"]}],
                    "tolerations": [{"key": "k"}]
                }}
            }
        });
        let set = field_set(&obj, deployment()).unwrap();
        let shown: Vec<String> = set.paths().iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                ".apiVersion",
                ".kind",
                ".metadata.annotations",
                ".metadata.name",
                ".metadata.finalizers[=\"a/b\"]",
                ".metadata.labels.app",
                ".spec.replicas",
                ".spec.selector",
                ".spec.template.spec.tolerations",
                ".spec.template.spec.containers[name=\"web\"]",
                ".spec.template.spec.containers[name=\"web\"].args",
                ".spec.template.spec.containers[name=\"web\"].image",
                ".spec.template.spec.containers[name=\"web\"].name",
                ".spec.template.spec.containers[name=\"web\"].ports[containerPort=80,protocol=\"TCP\"]",
                ".spec.template.spec.containers[name=\"web\"].ports[containerPort=80,protocol=\"TCP\"].containerPort",
            ]
        );
        // Applied sets have no "." on maps, only on list items.
        assert_eq!(
            strip_meta(&set).to_fields_v1()["f:metadata"],
            json!({"f:annotations": {}, "f:finalizers": {"v:\"a/b\"": {}}, "f:labels": {"f:app": {}}})
        );
    }

    #[test]
    fn invalid_lists_are_rejected() {
        let ty = Type::builtin("", "Pod");
        let dup = json!({"spec": {"containers": [{"name": "a"}, {"name": "a"}]}});
        assert_eq!(
            field_set(&dup, ty).unwrap_err(),
            ".spec.containers: duplicate entries for key [name=\"a\"]"
        );
        let nokey = json!({"spec": {"containers": [{"image": "x"}]}});
        assert_eq!(
            field_set(&nokey, ty).unwrap_err(),
            ".spec.containers: element 0: associative list with keys has an element that omits all key fields [\"name\"] (and doesn't have default values for any key fields)"
        );
        let set_of_maps = json!({"metadata": {"finalizers": [{"a": 1}]}});
        assert!(field_set(&set_of_maps, ty).is_err());
    }

    fn widget_schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {
                        "items": {
                            "type": "array",
                            "x-kubernetes-list-type": "map",
                            "x-kubernetes-list-map-keys": ["name", "zone"],
                            "items": {"type": "object", "properties": {
                                "name": {"type": "string"},
                                "zone": {"type": "string", "default": "a"},
                                "size": {"type": "integer"}
                            }}
                        },
                        "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                        "plain": {"type": "array", "items": {"type": "string"}},
                        "selector": {"type": "object", "x-kubernetes-map-type": "atomic"},
                        "extra": {"type": "object", "additionalProperties": {"type": "object", "properties": {"x": {"type": "integer"}}}}
                    }
                }
            }
        })
    }

    #[test]
    fn field_sets_of_custom_resources_follow_the_schema() {
        let schema = widget_schema();
        let ty = Type::custom_resource(Some(&schema));
        let obj = json!({"spec": {
            "items": [{"name": "x", "size": 1}, {"name": "x", "zone": "b"}],
            "tags": ["t1"],
            "plain": ["p"],
            "selector": {"a": "b"},
            "extra": {"e": {"x": 1}}
        }});
        let set = field_set(&obj, ty).unwrap();
        assert_eq!(
            set.to_fields_v1()["f:spec"],
            json!({
                "f:items": {
                    "k:{\"name\":\"x\",\"zone\":\"a\"}": {".": {}, "f:name": {}, "f:size": {}},
                    "k:{\"name\":\"x\",\"zone\":\"b\"}": {".": {}, "f:name": {}, "f:zone": {}}
                },
                "f:tags": {"v:\"t1\"": {}},
                "f:plain": {},
                "f:selector": {},
                "f:extra": {"f:e": {".": {}, "f:x": {}}}
            })
        );
        // Without a schema every key is a map element and lists are atomic.
        let set = field_set(
            &json!({"spec": {"a": {"b": 1}, "l": [1]}}),
            Type::custom_resource(None),
        )
        .unwrap();
        assert_eq!(
            set.to_fields_v1(),
            json!({"f:spec": {".": {}, "f:a": {".": {}, "f:b": {}}, "f:l": {}}})
        );
    }

    #[test]
    fn comparisons() {
        let ty = deployment();
        let old = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}}});
        let new = json!({"metadata": {"labels": {"a": "1", "c": "3"}, "annotations": {"n": "v"}}, "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b"}]}}}});
        let c = compare(Some(&old), Some(&new), ty);
        let show = |s: &FieldSet| {
            s.paths()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(show(&c.modified), [".spec.replicas"]);
        assert_eq!(
            show(&c.added),
            [
                ".metadata.annotations",
                ".metadata.annotations.n",
                ".metadata.labels.c",
                ".spec.template.spec.containers[name=\"b\"]",
                ".spec.template.spec.containers[name=\"b\"].name",
            ]
        );
        assert_eq!(show(&c.removed), [".metadata.labels.b"]);
        assert!(compare(Some(&old), Some(&old), ty).is_same());
        // Numbers compare numerically.
        assert!(compare(Some(&json!({"a": 1})), Some(&json!({"a": 1.0})), ty).is_same());
    }

    #[test]
    fn merging_keeps_live_items_and_orders_new_ones_like_kubernetes() {
        let ty = Type::builtin("", "Pod");
        let live = json!({"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b"}, {"name": "c"}], "tolerations": [{"key": "x"}]}});
        let config = json!({"spec": {"containers": [{"name": "d"}, {"name": "b", "image": "2"}], "tolerations": [{"key": "y"}]}});
        let out = merge(&live, &config, ty);
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "a", "image": "1"}, {"name": "d"}, {"name": "b", "image": "2"}, {"name": "c"}])
        );
        assert_eq!(
            out["spec"]["tolerations"],
            json!([{"key": "y"}]),
            "atomic lists are replaced"
        );
        let out = merge(
            &json!({"a": 1, "b": {"c": 1}}),
            &json!({"a": null, "b": null}),
            Type::deduced(),
        );
        assert_eq!(out, json!({"b": {"c": 1}}), "null clears scalars");
    }

    fn mgr(name: &str) -> ManagerId {
        ManagerId::apply(name, "")
    }

    fn run_apply(
        live: &Value,
        config: &Value,
        managed: &ManagedFields,
        who: &str,
        force: bool,
    ) -> Result<Applied, ApplyError> {
        apply(
            live,
            config,
            deployment(),
            managed,
            &mgr(who),
            "apps/v1",
            force,
            &FieldSet::new(),
            NOW,
        )
    }

    fn deploy(spec: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": spec})
    }

    #[test]
    fn apply_creates_records_and_prunes() {
        let first = run_apply(
            &json!({}),
            &deploy(json!({"replicas": 1, "paused": true, "template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}})),
            &ManagedFields::new(),
            "alice",
            false,
        )
        .unwrap();
        assert!(first.changed);
        let entry = first.managed.get(&mgr("alice")).unwrap();
        assert_eq!(entry.time.as_deref(), Some(NOW));
        assert_eq!(entry.api_version, "apps/v1");
        assert_eq!(
            entry.set.to_fields_v1(),
            json!({"f:spec": {"f:paused": {}, "f:replicas": {}, "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"a\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}})
        );
        // Dropping fields from the configuration removes them.
        let second = apply(
            &first.object,
            &deploy(json!({"replicas": 1, "template": {"spec": {"containers": []}}})),
            deployment(),
            &first.managed,
            &mgr("alice"),
            "apps/v1",
            false,
            &FieldSet::new(),
            LATER,
        )
        .unwrap();
        assert_eq!(second.object["spec"], json!({"replicas": 1}));
        assert_eq!(
            second.managed.get(&mgr("alice")).unwrap().time.as_deref(),
            Some(LATER)
        );
        // Applying the same again changes nothing, not even the time.
        let third = apply(
            &second.object,
            &deploy(json!({"replicas": 1})),
            deployment(),
            &second.managed,
            &mgr("alice"),
            "apps/v1",
            false,
            &FieldSet::new(),
            "2030-01-01T00:00:00Z",
        )
        .unwrap();
        assert!(!third.changed);
        assert_eq!(third.managed, second.managed);
    }

    #[test]
    fn conflicts_force_and_shared_ownership() {
        let a = run_apply(
            &json!({}),
            &deploy(json!({"replicas": 1, "paused": false})),
            &ManagedFields::new(),
            "alice",
            false,
        )
        .unwrap();
        // Same value: shared, no conflict.
        let b = run_apply(
            &a.object,
            &deploy(json!({"replicas": 1})),
            &a.managed,
            "bob",
            false,
        )
        .unwrap();
        assert!(!b.changed);
        let replicas = f(&["spec", "replicas"]);
        assert!(b.managed.get(&mgr("alice")).unwrap().set.has(&replicas.0));
        assert!(b.managed.get(&mgr("bob")).unwrap().set.has(&replicas.0));
        // Different value: conflict with the one owner (bob's own share is not a conflict).
        let err = run_apply(
            &b.object,
            &deploy(json!({"replicas": 3, "paused": true})),
            &b.managed,
            "bob",
            false,
        )
        .unwrap_err();
        let ApplyError::Conflicts(c) = err else {
            panic!("{err:?}")
        };
        assert_eq!(
            c.message(),
            "Apply failed with 2 conflicts: conflicts with \"alice\":\n- .spec.paused\n- .spec.replicas"
        );
        // Forcing takes ownership.
        let forced = run_apply(
            &b.object,
            &deploy(json!({"replicas": 3})),
            &b.managed,
            "bob",
            true,
        )
        .unwrap();
        assert_eq!(forced.object["spec"]["replicas"], 3);
        assert!(
            !forced
                .managed
                .get(&mgr("alice"))
                .unwrap()
                .set
                .has(&replicas.0)
        );
        assert!(
            forced
                .managed
                .get(&mgr("bob"))
                .unwrap()
                .set
                .has(&replicas.0)
        );
        // A field still owned by another applier survives its other owner dropping it.
        let bare =
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}});
        let dropped = run_apply(&b.object, &bare, &b.managed, "bob", false).unwrap();
        assert_eq!(dropped.object["spec"]["replicas"], 1);
        assert!(
            dropped.managed.get(&mgr("bob")).is_none(),
            "an empty applier entry goes away"
        );
    }

    #[test]
    fn updates_take_ownership_and_conflict_with_appliers() {
        let created = update(
            None,
            &deploy(json!({"replicas": 1, "template": {"metadata": {"labels": {"app": "x"}}}})),
            deployment(),
            &ManagedFields::new(),
            &ManagerId::update("kubectl-create", "apps/v1", ""),
            "apps/v1",
            &FieldSet::new(),
            NOW,
        );
        let creator = ManagerId::update("kubectl-create", "apps/v1", "");
        assert_eq!(
            created.get(&creator).unwrap().set.to_fields_v1(),
            json!({"f:spec": {".": {}, "f:replicas": {}, "f:template": {".": {}, "f:metadata": {".": {}, "f:labels": {".": {}, "f:app": {}}}}}})
        );
        let live =
            deploy(json!({"replicas": 1, "template": {"metadata": {"labels": {"app": "x"}}}}));
        let err = run_apply(
            &live,
            &deploy(json!({"replicas": 2})),
            &created,
            "kubectl",
            false,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Apply failed with 1 conflict: conflict with \"kubectl-create\" using apps/v1: .spec.replicas"
        );
        // An edit moves the field it changes to the editor.
        let edited = update(
            Some(&live),
            &deploy(json!({"replicas": 5, "template": {"metadata": {"labels": {"app": "x"}}}})),
            deployment(),
            &created,
            &ManagerId::update("kubectl-edit", "apps/v1", ""),
            "apps/v1",
            &FieldSet::new(),
            LATER,
        );
        let editor = edited
            .get(&ManagerId::update("kubectl-edit", "apps/v1", ""))
            .unwrap();
        assert_eq!(editor.set.paths(), vec![f(&["spec", "replicas"])]);
        assert_eq!(editor.time.as_deref(), Some(LATER));
        assert!(
            !edited
                .get(&creator)
                .unwrap()
                .set
                .has(&f(&["spec", "replicas"]).0)
        );
        // A write that changes nothing records nothing.
        let same = update(
            Some(&live),
            &live,
            deployment(),
            &created,
            &ManagerId::update("x", "apps/v1", ""),
            "apps/v1",
            &FieldSet::new(),
            LATER,
        );
        assert_eq!(same, created);
    }

    #[test]
    fn ignored_fields_are_not_owned() {
        let status = FieldSet::from_paths([f(&["status"])]);
        let mut config = deploy(json!({"replicas": 1}));
        config["status"] = json!({"replicas": 1});
        let out = apply(
            &json!({}),
            &config,
            deployment(),
            &ManagedFields::new(),
            &mgr("a"),
            "apps/v1",
            false,
            &status,
            NOW,
        )
        .unwrap();
        let set = &out.managed.get(&mgr("a")).unwrap().set;
        assert!(set.child(&PathElement::field("status")).is_none());
        assert!(set.has(&f(&["spec", "replicas"]).0));
    }

    #[test]
    fn managed_fields_round_trip_and_validation() {
        let mut m = ManagedFields::new();
        m.insert(
            ManagerId::update("kube-controller-manager", "v1", "status"),
            ManagedEntry {
                set: FieldSet::from_paths([f(&["status", "phase"])]),
                api_version: "v1".into(),
                time: Some(LATER.into()),
            },
        );
        m.insert(
            mgr("kubectl"),
            ManagedEntry {
                set: FieldSet::from_paths([f(&["data", "k"])]),
                api_version: "v1".into(),
                time: Some(LATER.into()),
            },
        );
        m.insert(
            ManagerId::update("kubectl-create", "v1", ""),
            ManagedEntry {
                set: FieldSet::from_paths([f(&["data", "j"])]),
                api_version: "v1".into(),
                time: Some(NOW.into()),
            },
        );
        let encoded = m.encode().unwrap();
        let order: Vec<&str> = encoded
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["manager"].as_str().unwrap())
            .collect();
        assert_eq!(
            order,
            ["kubectl", "kubectl-create", "kube-controller-manager"]
        );
        assert_eq!(encoded[2]["subresource"], "status");
        assert_eq!(encoded[0]["fieldsType"], "FieldsV1");
        assert_eq!(ManagedFields::decode(Some(&encoded)).unwrap(), m);
        assert!(ManagedFields::new().encode().is_none());
        for bad in [
            json!([{"operation": "Patch", "apiVersion": "v1", "fieldsType": "FieldsV1"}]),
            json!([{"operation": "Apply", "fieldsType": "FieldsV1"}]),
            json!([{"operation": "Apply", "apiVersion": "v1"}]),
            json!([{"operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV2"}]),
            json!({}),
        ] {
            assert!(ManagedFields::decode(Some(&bad)).is_err(), "{bad}");
        }
        assert!(ManagedFields::is_reset(Some(&json!([]))));
        assert!(ManagedFields::is_reset(Some(&json!([{}]))));
        assert!(!ManagedFields::is_reset(None));
        assert!(!ManagedFields::is_reset(Some(&encoded)));
        assert_eq!(
            ManagerId::update("a", "v1", "status").describe(),
            "\"a\" with subresource \"status\" using v1"
        );
        assert_eq!(
            mgr("a").identifier(),
            r#"{"manager":"a","operation":"Apply"}"#
        );
    }

    #[test]
    fn update_managers_are_capped() {
        let mut m = ManagedFields::new();
        let live = json!({"data": {}});
        let mut obj = live.clone();
        for i in 0..12 {
            let mut next = obj.clone();
            next["data"][format!("k{i}")] = json!("v");
            m = update(
                Some(&obj),
                &next,
                Type::builtin("", "ConfigMap"),
                &m,
                &ManagerId::update(&format!("m{i:02}"), "v1", ""),
                "v1",
                &FieldSet::new(),
                &format!("2026-01-01T00:00:{i:02}Z"),
            );
            obj = next;
        }
        assert_eq!(m.len(), MAX_UPDATE_MANAGERS);
        let ancient = m
            .get(&ManagerId::update("ancient-changes", "v1", ""))
            .unwrap();
        assert_eq!(ancient.set.paths().len(), 3);
    }
}
