//! Patch metadata for strategic merge patch.
//!
//! Kubernetes reads the strategic merge behaviour of a field from the Go
//! struct tags `patchStrategy` and `patchMergeKey` of the built-in API types
//! (see `k8s.io/apimachinery/pkg/util/strategicpatch/meta.go` and
//! `third_party/forked/golang/json/fields.go`). A [`Schema`] is the same
//! information written down as a sparse tree: it only needs entries for the
//! fields whose behaviour differs from the default, plus the objects that
//! lead to them. Fields without an entry behave like untagged fields:
//! objects merge key by key and lists are replaced wholesale.

use std::collections::BTreeMap;
use std::sync::Arc;

/// The `patchStrategy` of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PatchStrategy {
    /// No strategy tag: objects merge recursively, lists are replaced.
    #[default]
    Default,
    /// `patchStrategy:"merge"`: lists are merged, either item by item using
    /// the merge key (lists of objects) or as a set (lists of primitives).
    Merge,
    /// `patchStrategy:"replace"`: the patch value replaces the field as a
    /// whole, even when it is an object.
    Replace,
}

/// Patch metadata of one field of an object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSchema {
    strategy: PatchStrategy,
    merge_key: Option<String>,
    retain_keys: bool,
    schema: Option<Arc<Schema>>,
}

impl FieldSchema {
    /// An untagged field, optionally with a schema for its value (for an
    /// object) or for its items (for a list of objects).
    pub fn plain(schema: Option<Arc<Schema>>) -> Self {
        FieldSchema {
            schema,
            ..FieldSchema::default()
        }
    }

    /// A nested object described by `schema`.
    pub fn object(schema: Arc<Schema>) -> Self {
        FieldSchema::plain(Some(schema))
    }

    /// A list of objects merged item by item, matching items on `merge_key`
    /// (`patchStrategy:"merge" patchMergeKey:"<merge_key>"`).
    pub fn merge_by(merge_key: &str) -> Self {
        FieldSchema {
            strategy: PatchStrategy::Merge,
            merge_key: Some(merge_key.to_owned()),
            ..FieldSchema::default()
        }
    }

    /// A list of primitives merged as a set (`patchStrategy:"merge"` without
    /// a merge key), such as `metadata.finalizers`.
    pub fn merge_set() -> Self {
        FieldSchema {
            strategy: PatchStrategy::Merge,
            ..FieldSchema::default()
        }
    }

    /// A list that is always replaced as a whole. This is the default for
    /// untagged lists; tables use it to record that a list is atomic on
    /// purpose (for example `tolerations` or `envFrom`).
    pub fn atomic() -> Self {
        FieldSchema::default()
    }

    /// An object replaced as a whole (`patchStrategy:"replace"`).
    pub fn replace() -> Self {
        FieldSchema {
            strategy: PatchStrategy::Replace,
            ..FieldSchema::default()
        }
    }

    /// Marks the field as carrying the `retainKeys` strategy.
    ///
    /// Clients use this to decide when to send a `$retainKeys` directive
    /// (for example `kubectl apply` for `spec.volumes[*]` or a Deployment's
    /// `spec.strategy`). The server side honours a `$retainKeys` directive in
    /// any object regardless of this flag, exactly like Kubernetes'
    /// `applyRetainKeysDirective`, so it is informational here.
    pub fn with_retain_keys(mut self) -> Self {
        self.retain_keys = true;
        self
    }

    /// Sets the schema of the field's value (object) or items (list).
    pub fn with_schema(mut self, schema: Arc<Schema>) -> Self {
        self.schema = Some(schema);
        self
    }

    /// The field's patch strategy.
    pub fn strategy(&self) -> PatchStrategy {
        self.strategy
    }

    /// The merge key of a list of objects merged item by item.
    pub fn merge_key(&self) -> Option<&str> {
        self.merge_key.as_deref()
    }

    /// Whether the field carries the `retainKeys` strategy.
    pub fn retain_keys(&self) -> bool {
        self.retain_keys
    }

    /// Schema of the field's value (object) or of its items (list).
    pub fn schema(&self) -> Option<&Schema> {
        self.schema.as_deref()
    }
}

/// Strategic merge patch metadata of an object type: its fields whose patch
/// behaviour is not the default, and the nested objects leading to them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Schema {
    fields: BTreeMap<String, FieldSchema>,
}

impl Schema {
    /// An empty schema: every field behaves like an untagged field.
    pub fn new() -> Self {
        Schema::default()
    }

    /// Adds (or replaces) the metadata of field `name`.
    pub fn with(mut self, name: &str, field: FieldSchema) -> Self {
        self.fields.insert(name.to_owned(), field);
        self
    }

    /// Adds a nested object field described by `schema`.
    pub fn object(self, name: &str, schema: Arc<Schema>) -> Self {
        self.with(name, FieldSchema::object(schema))
    }

    /// Adds a list of objects merged on `merge_key`, whose items are
    /// described by `items` (if they have tagged fields of their own).
    pub fn merge_by(self, name: &str, merge_key: &str, items: Option<Arc<Schema>>) -> Self {
        let mut field = FieldSchema::merge_by(merge_key);
        field.schema = items;
        self.with(name, field)
    }

    /// Adds a list of primitives merged as a set.
    pub fn merge_set(self, name: &str) -> Self {
        self.with(name, FieldSchema::merge_set())
    }

    /// Adds a list that is replaced as a whole.
    pub fn atomic(self, name: &str) -> Self {
        self.with(name, FieldSchema::atomic())
    }

    /// Metadata of field `name`, if the schema has any.
    pub fn field(&self, name: &str) -> Option<&FieldSchema> {
        self.fields.get(name)
    }

    /// Metadata of the field at `path`, walking nested objects and list
    /// items (`&["spec", "template", "spec", "containers", "env"]`).
    pub fn lookup(&self, path: &[&str]) -> Option<&FieldSchema> {
        let (last, parents) = path.split_last()?;
        let mut schema = self;
        for name in parents {
            schema = schema.field(name)?.schema()?;
        }
        schema.field(last)
    }

    /// All fields with metadata, in name order.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &FieldSchema)> {
        self.fields.iter().map(|(k, v)| (k.as_str(), v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_record_tags() {
        let item = Arc::new(Schema::new().merge_set("tags"));
        let schema = Schema::new()
            .merge_by("items", "id", Some(item))
            .with("strategy", FieldSchema::plain(None).with_retain_keys())
            .with("selector", FieldSchema::replace())
            .atomic("plain");

        let cases: &[(&[&str], PatchStrategy, Option<&str>, bool)] = &[
            (&["items"], PatchStrategy::Merge, Some("id"), false),
            (&["items", "tags"], PatchStrategy::Merge, None, false),
            (&["strategy"], PatchStrategy::Default, None, true),
            (&["selector"], PatchStrategy::Replace, None, false),
            (&["plain"], PatchStrategy::Default, None, false),
        ];
        for (path, strategy, key, retain) in cases {
            let field = schema.lookup(path).unwrap_or_else(|| panic!("{path:?}"));
            assert_eq!(field.strategy(), *strategy, "{path:?}");
            assert_eq!(field.merge_key(), *key, "{path:?}");
            assert_eq!(field.retain_keys(), *retain, "{path:?}");
        }
        assert!(schema.lookup(&["missing"]).is_none());
        assert!(schema.lookup(&["plain", "deeper"]).is_none());
        assert!(schema.lookup(&[]).is_none());
        assert_eq!(schema.fields().count(), 4);
    }
}
