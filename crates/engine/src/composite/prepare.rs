//! What a CompositeController adds to and checks on each desired child
//! before it is managed: the `controller-uid` label with
//! `generateSelector`, labels that are a map of strings, and labels that
//! match the parent's selector (a violation fails the whole sync).

use metacontroller_selectors::Selector;
use serde_json::{Map, Value};

use crate::hosted::SyncError;
use crate::object;

/// Prepares `child` of `parent` (see the [module documentation](self)).
pub(crate) fn prepare_child(
    child: &mut Value,
    parent: &Value,
    generate: bool,
    selector: &Selector,
) -> Result<(), SyncError> {
    let uid_label = || {
        (
            metacontroller_api::CONTROLLER_UID_LABEL.to_owned(),
            Value::String(object::uid(parent).to_owned()),
        )
    };
    let described = object::describe(child);
    let Some(meta) = object::metadata_mut(child) else {
        return Ok(());
    };
    match meta.get_mut("labels") {
        None | Some(Value::Null) => {
            if generate {
                meta.insert(
                    "labels".into(),
                    Value::Object(Map::from_iter([uid_label()])),
                );
            }
        }
        Some(Value::Object(labels)) if labels.values().all(Value::is_string) => {
            if generate && !labels.contains_key(metacontroller_api::CONTROLLER_UID_LABEL) {
                let (k, v) = uid_label();
                labels.insert(k, v);
            }
        }
        Some(_) => {
            return Err(SyncError::Invalid(format!(
                "invalid labels on desired child {described}: labels must be a map of strings"
            )));
        }
    }
    if !selector.matches_object_labels(child) {
        return Err(SyncError::Invalid(format!(
            "labels on desired child {} don't match parent selector",
            object::describe(child)
        )));
    }
    Ok(())
}
