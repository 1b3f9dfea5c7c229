//! Grouping checked desired objects by type, as child management takes
//! them: the step both renderers share after their kind's own checks.

use metacontroller_api::ChildUpdateMethod;
use metacontroller_api::hook_wire::type_key;
use serde_json::Value;

use super::Catalog;
use crate::children::{ChildError, ChildGroup, Children};
use crate::discovery::ResourceInfo;
use crate::object;
use crate::ownership;

/// `checked` (apiVersion, kind and object, from `hosted::desired::check`)
/// grouped by type under the rule that declares it, with the objects
/// `owner` may not own as refusals (their messages, as the sync's Warning
/// Event gives them). `noun` is `child` or `attachment`.
pub(super) fn by_type<'a, R>(
    checked: Vec<(String, String, Value)>,
    rules: R,
    owner: &Value,
    noun: &str,
    catalog: &Catalog,
) -> (Children<Value>, Vec<String>)
where
    R: Iterator<Item = (&'a ResourceInfo, ChildUpdateMethod)> + Clone,
{
    let mut grouped: Children<Value> = Children::new();
    let mut refused = Vec::new();
    for (api_version, kind, obj) in checked {
        let found = catalog.get_by_kind(&api_version, &kind).cloned();
        match ownership::decide(rules.clone(), found, owner, &obj, noun) {
            Ok((info, method)) => {
                grouped
                    .entry(type_key(&kind, &api_version))
                    .or_insert_with(|| ChildGroup {
                        resource: info,
                        method,
                        objects: Default::default(),
                    })
                    .objects
                    .insert(object::key(&obj), obj);
            }
            Err(err) => refused.push(ChildError::from(err).to_string()),
        }
    }
    (grouped, refused)
}
