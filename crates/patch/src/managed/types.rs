//! [`Type`]: how a value splits into fields, from the patch metadata of
//! built-in kinds or a custom resource's schema (atomic and granular maps,
//! atomic lists, sets and keyed lists).

use std::sync::LazyLock;

use serde_json::Value;

use super::path::{PathElement, go_quote};
use crate::builtin::schema_for;
use crate::schema::{FieldSchema, PatchStrategy, Schema};

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
pub struct Type<'a>(pub(super) Ty<'a>);

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
pub(super) enum Ty<'a> {
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
pub(super) enum Body<'a> {
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
pub(super) enum Special {
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

pub(super) fn special_for(name: &str, fs: Option<&FieldSchema>) -> Special {
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

pub(super) static OBJECT_META: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new()
        .merge_set("finalizers")
        .merge_by("ownerReferences", "uid", None)
});

/// How the items of a list are told apart.
#[derive(Clone, Debug)]
pub(super) enum ListKind {
    /// Replaced as a whole.
    Atomic,
    /// Items are scalars identified by value.
    Set,
    /// Items are maps identified by these fields (with their defaults).
    Map(Vec<(String, Option<Value>)>),
}

impl<'a> Ty<'a> {
    /// Whether `key` is a declared field of this map type, and its type.
    pub(super) fn field(self, key: &str) -> (bool, Ty<'a>) {
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
    pub(super) fn atomic_map(self) -> bool {
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
    pub(super) fn list(self) -> ListKind {
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
    pub(super) fn item(self) -> Ty<'a> {
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
pub(super) fn item_element(item: &Value, kind: &ListKind) -> Result<PathElement, String> {
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
