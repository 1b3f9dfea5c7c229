//! Strategic merge patch, `application/strategic-merge-patch+json`.
//!
//! This follows what the Kubernetes API server does for built-in types:
//! `strategicpatch.StrategicMergeMapPatch` in
//! `k8s.io/apimachinery/pkg/util/strategicpatch/patch.go`, which merges with
//! parallel lists enabled and unmatched `null`s ignored. The patch format is
//! described in the Kubernetes community document
//! `contributors/devel/sig-api-machinery/strategic-merge-patch.md` and in
//! the design proposal on preserving list order
//! (`design-proposals-archive/cli/preserve-order-in-strategic-merge-patch.md`).
//!
//! In short:
//!
//! * objects merge key by key and `null` deletes a key;
//! * lists tagged `patchStrategy: merge` merge, either item by item on the
//!   merge key or, for primitives, as a set; other lists are replaced;
//! * `$patch: replace | delete` in an object replaces or empties it, and a
//!   list item `{"$patch": "replace"}` replaces the whole list while
//!   `{"<key>": "x", "$patch": "delete"}` deletes one item;
//! * `$retainKeys: [...]` drops every key of the target object not listed;
//! * `$deleteFromPrimitiveList/<field>: [...]` removes values from a list
//!   of primitives;
//! * `$setElementOrder/<field>: [...]` fixes the order of a merged list.
//!
//! After a merge, list order is normalised the way Kubernetes does it
//! (`normalizeElementOrder`): items named by the patch (or by
//! `$setElementOrder`) come in the patch's order, the remaining items of
//! the live object keep their relative order, and the two are interleaved
//! using the live object's order. One visible consequence, shared with
//! Kubernetes: an item that only the patch has is placed before the live
//! items that follow it in the merged list rather than appended at the end.
//!
//! No directive key survives into the result. Where Kubernetes copies a
//! patch value verbatim (a replaced list or object, a newly appended list
//! item) it leaves directive keys in place and drops them later when it
//! decodes the result into the typed object; here they are stripped
//! directly.

use serde_json::{Map, Value};

use crate::PatchError;
use crate::jsonpatch::json_type;
use crate::schema::{FieldSchema, PatchStrategy, Schema};

mod directives;
mod merge;
mod order;
#[cfg(test)]
mod tests;

use merge::merge_map;

/// Applies a strategic merge patch to `original` and returns the result;
/// neither argument is modified.
///
/// `schema` describes the object's patch metadata (see
/// [`schema_for`](crate::schema_for)); with `None` every object merges and
/// every list is replaced, like a JSON merge patch that also understands
/// the `$` directives.
///
/// `original` must be an object. `patch` must be an object; `null` is
/// accepted and changes nothing, as in Kubernetes.
pub fn strategic_merge_patch(
    original: &Value,
    patch: &Value,
    schema: Option<&Schema>,
) -> Result<Value, PatchError> {
    let Value::Object(original) = original else {
        return Err(PatchError::BadRequest(format!(
            "the document to patch must be a JSON object, got {}",
            json_type(original)
        )));
    };
    let patch = match patch {
        Value::Object(patch) => patch.clone(),
        Value::Null => Map::new(),
        other => {
            return Err(PatchError::BadRequest(format!(
                "a strategic merge patch must be a JSON object, got {}",
                json_type(other)
            )));
        }
    };
    merge_map(original.clone(), patch, schema).map(Value::Object)
}

/// Patch metadata of one field, with defaults for fields the schema does
/// not mention.
#[derive(Clone, Copy, Default)]
pub(super) struct Meta<'a> {
    strategy: PatchStrategy,
    merge_key: Option<&'a str>,
    schema: Option<&'a Schema>,
}

pub(super) fn meta<'a>(schema: Option<&'a Schema>, field: &str) -> Meta<'a> {
    schema
        .and_then(|s| s.field(field))
        .map(|f: &FieldSchema| Meta {
            strategy: f.strategy(),
            merge_key: f.merge_key(),
            schema: f.schema(),
        })
        .unwrap_or_default()
}
