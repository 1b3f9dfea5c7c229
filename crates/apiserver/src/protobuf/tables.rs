//! What each Kubernetes message looks like, for the decoder: per field its
//! number, JSON name, type and Go `omitempty` rule, parsed once from the
//! text in `tables.txt` (grammar: [`parse_schema`]).

use std::collections::HashMap;
use std::sync::OnceLock;

use super::ProtobufError;

/// The message tables. Field numbers are those of the `k8s.io/api` and
/// `k8s.io/apimachinery` protobuf definitions (up to Kubernetes 1.36, a
/// superset of what kubectl 1.32 and 1.33 send); JSON names and `omitempty`
/// are those of the Go structs' `json` tags.
const SCHEMA: &str = include_str!("tables.txt");

/// What a field holds (for maps: what the values are).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Base {
    String,
    Int32,
    Int64,
    Bool,
    /// `[]byte`: base64 in JSON.
    Bytes,
    /// `metav1.Time` (`seconds`, `nanos`): RFC 3339 in JSON, `null` when zero.
    Time,
    /// `resource.Quantity` (`string`).
    Quantity,
    /// `intstr.IntOrString` (`type`, `intVal`, `strVal`).
    IntOrString,
    /// `metav1.FieldsV1` (`Raw`): embedded JSON.
    FieldsV1,
    /// A message holding `repeated string items = 1` that is a plain list
    /// in JSON (`authentication/v1.ExtraValue`).
    StringList,
    /// Another message of the tables, by index.
    Message(usize),
}

impl Base {
    pub(super) fn is_varint(self) -> bool {
        matches!(self, Base::Int32 | Base::Int64 | Base::Bool)
    }

    /// Go structs (and types with their own JSON marshalling built on one)
    /// are never left out by `omitempty`.
    pub(super) fn is_struct(self) -> bool {
        matches!(
            self,
            Base::Time | Base::Quantity | Base::IntOrString | Base::FieldsV1 | Base::Message(_)
        )
    }
}

/// How many values a field holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Card {
    /// A Go value field: written by the encoder even when zero.
    Value,
    /// A Go pointer: absent means nil.
    Pointer,
    /// A Go slice (`repeated`).
    List,
    /// A Go `map[string]...` (`map<string, ...>`).
    Map,
}

#[derive(Clone, Debug)]
pub(super) struct Field {
    pub(super) number: u32,
    /// JSON name; empty for an inline (embedded) struct.
    pub(super) json: &'static str,
    pub(super) base: Base,
    pub(super) card: Card,
    pub(super) omitempty: bool,
    pub(super) inline: bool,
}

#[derive(Clone, Debug)]
pub(super) struct Message {
    /// `package.Name`, e.g. `core/v1.PodSpec`.
    pub(super) name: String,
    pub(super) fields: Vec<Field>,
}

pub(super) struct Schema {
    pub(super) messages: Vec<Message>,
    /// `(apiVersion, kind)` of the top-level objects.
    pub(super) kinds: HashMap<(String, String), usize>,
}

impl Schema {
    pub(super) fn kind(&self, api_version: &str, kind: &str) -> Option<usize> {
        self.kinds
            .get(&(api_version.to_string(), kind.to_string()))
            .copied()
    }
}

/// The `apiVersion`s whose objects are decoded, with the package of the
/// tables that hold their messages and the kinds accepted at the top level.
pub(super) const KINDS: &[(&str, &str, &[&str])] = &[
    (
        "v1",
        "core/v1",
        &[
            "Namespace",
            "ConfigMap",
            "Secret",
            "ServiceAccount",
            "Service",
            "Pod",
            "ResourceQuota",
        ],
    ),
    ("apps/v1", "apps/v1", &["Deployment"]),
    ("batch/v1", "batch/v1", &["Job", "CronJob"]),
    (
        "rbac.authorization.k8s.io/v1",
        "rbac/v1",
        &["Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"],
    ),
    (
        "policy/v1",
        "policy/v1",
        &["PodDisruptionBudget", "Eviction"],
    ),
    ("scheduling.k8s.io/v1", "scheduling/v1", &["PriorityClass"]),
    ("networking.k8s.io/v1", "networking/v1", &["Ingress"]),
    (
        "authentication.k8s.io/v1",
        "authentication/v1",
        &["TokenRequest", "SelfSubjectReview"],
    ),
    (
        "authentication.k8s.io/v1beta1",
        "authentication/v1beta1",
        &["SelfSubjectReview"],
    ),
    (
        "authentication.k8s.io/v1alpha1",
        "authentication/v1alpha1",
        &["SelfSubjectReview"],
    ),
    (
        "authorization.k8s.io/v1",
        "authorization/v1",
        &["SelfSubjectAccessReview"],
    ),
    (
        "autoscaling/v1",
        "autoscaling/v1",
        &["HorizontalPodAutoscaler", "Scale"],
    ),
    (
        "autoscaling/v2",
        "autoscaling/v2",
        &["HorizontalPodAutoscaler"],
    ),
];

pub(super) fn schema() -> Result<&'static Schema, ProtobufError> {
    static SCHEMA_TABLES: OnceLock<Result<Schema, String>> = OnceLock::new();
    SCHEMA_TABLES
        .get_or_init(|| parse_schema(SCHEMA))
        .as_ref()
        .map_err(|e| ProtobufError::Schema(e.clone()))
}

/// Parses [`SCHEMA`]: `package <name>` lines, then one entry per message,
/// `Name: <field>; <field>; ...`, continued on indented lines. A field is
/// `<number> <jsonName> <type>` where the type is `[]T` (list), `*T`
/// (pointer), `map<T>` (map with string keys) or `T`, followed by `?` for
/// `omitempty` and `^` for an inline (embedded) struct, whose JSON name is
/// `-`. `T` is a scalar (`string`, `int32`, `int64`, `bool`, `bytes`), a
/// special type (`time`, `quantity`, `intstr`, `fieldsv1`, `strlist`) or a
/// message, `Name` in the same package or `package.Name`.
pub(super) fn parse_schema(text: &'static str) -> Result<Schema, String> {
    // Entries: (package, name, field text).
    let mut entries: Vec<(&'static str, &'static str, Vec<&'static str>)> = Vec::new();
    let mut package: Option<&'static str> = None;
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if let Some(p) = line.strip_prefix("package ") {
            package = Some(p.trim());
            continue;
        }
        if line.starts_with(char::is_whitespace) {
            let Some(entry) = entries.last_mut() else {
                return Err(format!("continuation line before any message: {line:?}"));
            };
            entry.2.push(line);
            continue;
        }
        let pkg = package.ok_or_else(|| format!("message before any package: {line:?}"))?;
        let (name, rest) = line
            .split_once(':')
            .ok_or_else(|| format!("expected `Name: fields`: {line:?}"))?;
        entries.push((pkg, name.trim(), vec![rest]));
    }

    let mut by_name = HashMap::new();
    for (i, (pkg, name, _)) in entries.iter().enumerate() {
        if by_name.insert(format!("{pkg}.{name}"), i).is_some() {
            return Err(format!("message {pkg}.{name} is defined twice"));
        }
    }

    let mut messages = Vec::with_capacity(entries.len());
    for (pkg, name, lines) in &entries {
        let full = format!("{pkg}.{name}");
        let mut fields: Vec<Field> = Vec::new();
        for spec in lines.iter().flat_map(|l| l.split(';')) {
            let spec = spec.trim();
            if spec.is_empty() {
                continue;
            }
            let field = parse_field(spec, pkg, &by_name).map_err(|e| format!("{full}: {e}"))?;
            if fields.iter().any(|f| f.number == field.number) {
                return Err(format!("{full}: field number {} repeats", field.number));
            }
            if !field.inline && fields.iter().any(|f| f.json == field.json) {
                return Err(format!("{full}: JSON name {} repeats", field.json));
            }
            fields.push(field);
        }
        messages.push(Message { name: full, fields });
    }

    let mut kinds = HashMap::new();
    for (api_version, pkg, names) in KINDS {
        for kind in *names {
            let index = *by_name
                .get(&format!("{pkg}.{kind}"))
                .ok_or_else(|| format!("kind {api_version} {kind} has no message {pkg}.{kind}"))?;
            kinds.insert((api_version.to_string(), kind.to_string()), index);
        }
    }
    Ok(Schema { messages, kinds })
}

pub(super) fn parse_field(
    spec: &'static str,
    pkg: &str,
    by_name: &HashMap<String, usize>,
) -> Result<Field, String> {
    let mut parts = spec.split_whitespace();
    let (Some(number), Some(json), Some(ty), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("expected `<number> <json> <type>`: {spec:?}"));
    };
    let number: u32 = number
        .parse()
        .ok()
        .filter(|n| (1..(1 << 29)).contains(n))
        .ok_or_else(|| format!("bad field number in {spec:?}"))?;
    let mut ty = ty;
    let mut omitempty = false;
    let mut inline = false;
    loop {
        if let Some(t) = ty.strip_suffix('?') {
            omitempty = true;
            ty = t;
        } else if let Some(t) = ty.strip_suffix('^') {
            inline = true;
            ty = t;
        } else {
            break;
        }
    }
    let (card, base) = if let Some(t) = ty.strip_prefix("[]") {
        (Card::List, t)
    } else if let Some(t) = ty.strip_prefix('*') {
        (Card::Pointer, t)
    } else if let Some(t) = ty.strip_prefix("map<").and_then(|t| t.strip_suffix('>')) {
        (Card::Map, t)
    } else {
        (Card::Value, ty)
    };
    let base = match base {
        "string" => Base::String,
        "int32" => Base::Int32,
        "int64" => Base::Int64,
        "bool" => Base::Bool,
        "bytes" => Base::Bytes,
        "time" => Base::Time,
        "quantity" => Base::Quantity,
        "intstr" => Base::IntOrString,
        "fieldsv1" => Base::FieldsV1,
        "strlist" => Base::StringList,
        name => {
            let full = if name.contains('.') {
                name.to_string()
            } else {
                format!("{pkg}.{name}")
            };
            Base::Message(
                *by_name
                    .get(&full)
                    .ok_or_else(|| format!("unknown message {full} in {spec:?}"))?,
            )
        }
    };
    if inline {
        if card != Card::Value || !matches!(base, Base::Message(_)) || json != "-" {
            return Err(format!(
                "an inline field must be a plain message named `-`: {spec:?}"
            ));
        }
    } else if json == "-" {
        return Err(format!("only inline fields are named `-`: {spec:?}"));
    }
    Ok(Field {
        number,
        json: if inline { "" } else { json },
        base,
        card,
        omitempty,
        inline,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_parse_and_every_kind_has_object_meta() {
        let schema = schema().expect("tables parse");
        assert!(schema.messages.len() > 200);
        let object_meta = schema
            .messages
            .iter()
            .position(|m| m.name == "meta/v1.ObjectMeta")
            .unwrap();
        for ((api_version, kind), &index) in &schema.kinds {
            let first = &schema.messages[index].fields[0];
            assert_eq!(
                (first.number, first.json, first.base),
                (1, "metadata", Base::Message(object_meta)),
                "{api_version} {kind}"
            );
        }
    }

    #[test]
    fn table_errors_are_reported() {
        for (text, needle) in [
            ("package p\nA: 1 a B", "unknown message p.B"),
            ("package p\nA: 1 a string; 1 b string", "repeats"),
            ("package p\nA: 1 a string; 2 a int32", "repeats"),
            ("package p\nA: 1 - string^", "inline"),
            ("package p\nA: x a string", "bad field number"),
            ("A: 1 a string", "before any package"),
        ] {
            let err = parse_schema(text).err().expect(text);
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}
