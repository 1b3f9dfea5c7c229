//! The `scale` subresource: an `autoscaling/v1` `Scale` view of an object's
//! replica count (built-in workloads, and CRDs that declare
//! `subresources.scale`).

use std::sync::Arc;

use metacontroller_patch::PatchType;
use metacontroller_selectors::Selector;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::meta::{Sub, key_for};
use crate::registry::ResourceInfo;
use crate::store::Inner;
use crate::write;

fn get_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = obj;
    for seg in path.trim_start_matches('.').split('.') {
        cur = cur.get(seg)?;
    }
    Some(cur)
}

fn set_path(obj: &mut Value, path: &str, v: Value) {
    let segs: Vec<&str> = path.trim_start_matches('.').split('.').collect();
    let mut cur = obj;
    for seg in &segs[..segs.len() - 1] {
        if !cur.get(*seg).is_some_and(Value::is_object) {
            cur[*seg] = json!({});
        }
        cur = cur.get_mut(*seg).unwrap();
    }
    cur[segs[segs.len() - 1]] = v;
}

/// The Scale object for `obj`.
pub fn to_scale(info: &ResourceInfo, obj: &Value) -> ApiResult<Value> {
    let s = info
        .scale
        .as_ref()
        .ok_or_else(|| ApiError::not_found(&info.group, &format!("{}/scale", info.plural), ""))?;
    let replicas = get_path(obj, &s.spec_replicas_path)
        .and_then(Value::as_i64)
        .unwrap_or(if info.crd { 0 } else { 1 });
    let status_replicas = get_path(obj, &s.status_replicas_path)
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let selector = if info.crd {
        s.label_selector_path
            .as_ref()
            .and_then(|p| get_path(obj, p))
            .and_then(Value::as_str)
            .map(str::to_string)
    } else {
        obj.get("spec")
            .and_then(|sp| sp.get("selector"))
            .and_then(|sel| Selector::from_label_selector(sel).ok())
            .map(|sel| sel.to_string())
    };
    let m = &obj["metadata"];
    let mut status = json!({"replicas": status_replicas});
    if let Some(sel) = selector {
        status["selector"] = json!(sel);
    }
    Ok(json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m["name"],
            "namespace": m["namespace"],
            "uid": m["uid"],
            "resourceVersion": m["resourceVersion"],
            "creationTimestamp": m["creationTimestamp"],
        },
        "spec": {"replicas": replicas},
        "status": status,
    }))
}

/// PUT /scale.
pub fn update_scale(
    inner: &mut Inner,
    info: &ResourceInfo,
    ns: Option<&str>,
    name: &str,
    scale: Value,
    dry_run: bool,
) -> ApiResult<Arc<Value>> {
    let key = key_for(info, ns, name);
    let current = inner
        .get(&info.group_resource(), &key)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&info.group, &info.plural, name))?;
    let s = info
        .scale
        .as_ref()
        .ok_or_else(|| ApiError::not_found(&info.group, &info.plural, name))?;
    let replicas = scale
        .get("spec")
        .and_then(|sp| sp.get("replicas"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if replicas < 0 {
        return Err(ApiError::invalid(
            "autoscaling",
            "Scale",
            name,
            &[(
                "spec.replicas",
                "Invalid value: must be greater than or equal to 0",
            )],
        ));
    }
    let mut obj = (*current).clone();
    if let Some(rv) = scale["metadata"]["resourceVersion"]
        .as_str()
        .filter(|r| !r.is_empty())
    {
        obj["metadata"]["resourceVersion"] = json!(rv);
    }
    set_path(&mut obj, &s.spec_replicas_path, json!(replicas));
    write::update(inner, info, ns, name, obj, Sub::Main, dry_run)
}

/// PATCH /scale: the patch applies to the Scale view.
pub fn patch_scale(
    inner: &mut Inner,
    info: &ResourceInfo,
    ns: Option<&str>,
    name: &str,
    pt: PatchType,
    patch: &[u8],
    dry_run: bool,
) -> ApiResult<Arc<Value>> {
    let key = key_for(info, ns, name);
    let current = inner
        .get(&info.group_resource(), &key)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&info.group, &info.plural, name))?;
    let scale = to_scale(info, &current)?;
    let patched = metacontroller_patch::apply_patch(pt, "autoscaling", "Scale", &scale, patch)
        .map_err(|e| write::patch_error(info, name, e))?;
    update_scale(inner, info, ns, name, patched, dry_run)
}
