//! Lists: filtering a resource's objects by namespace and selectors, paging
//! with `limit` and `continue` over a frozen snapshot (as etcd-backed lists
//! read one revision), and serialising the result.

use std::collections::HashMap;
use std::sync::Arc;

use axum::response::Response;
use base64::Engine;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult, Reason};
use crate::meta::at_version;
use crate::query::{matches, selectors};
use crate::registry::ResourceInfo;
use crate::response::{json_response, value_response};
use crate::state::Shared;
use crate::store::Key;

/// Serialises a list without cloning its items.
pub fn list_body(
    info: &ResourceInfo,
    rv: u64,
    items: &[Arc<Value>],
    cont: Option<&str>,
    remaining: Option<usize>,
) -> Vec<u8> {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let Some(c) = cont {
        meta["continue"] = json!(c);
    }
    if let Some(r) = remaining {
        meta["remainingItemCount"] = json!(r);
    }
    let mut out = Vec::with_capacity(256 + items.len() * 512);
    out.extend_from_slice(b"{\"kind\":");
    out.extend_from_slice(&serde_json::to_vec(&info.list_kind).unwrap());
    out.extend_from_slice(b",\"apiVersion\":");
    out.extend_from_slice(&serde_json::to_vec(&info.api_version()).unwrap());
    out.extend_from_slice(b",\"metadata\":");
    out.extend_from_slice(&serde_json::to_vec(&meta).unwrap());
    out.extend_from_slice(b",\"items\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let _ = serde_json::to_writer(&mut out, &*at_version(item, info));
    }
    out.extend_from_slice(b"]}");
    out
}

fn encode_continue(rv: u64, ns: &str, name: &str) -> String {
    let v = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": [ns, name]});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&v).unwrap())
}

fn decode_continue(s: &str) -> ApiResult<(u64, Key)> {
    let bad = || ApiError::bad_request("continue key is not valid: invalid token");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let rv = v["rv"].as_u64().ok_or_else(bad)?;
    let ns = v["start"][0].as_str().ok_or_else(bad)?.to_string();
    let name = v["start"][1].as_str().ok_or_else(bad)?.to_string();
    Ok((rv, (ns, name)))
}

pub(crate) fn list(
    shared: &Shared,
    info: &ResourceInfo,
    ns: Option<&str>,
    q: &HashMap<String, String>,
    table: bool,
) -> ApiResult<Response> {
    let (labels, fields) = selectors(info, q)?;
    let limit: usize = match q.get("limit").map(String::as_str) {
        None | Some("") | Some("0") => 0,
        Some(l) => l
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid limit: {l}")))?,
    };
    let gr = info.group_resource();
    let (rv, snapshot, start) = match q.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            let (rv, start) = decode_continue(token)?;
            let snap = shared.snapshots.lock().get(&gr, rv).ok_or_else(|| {
                ApiError::new(
                    Reason::Expired,
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                )
            })?;
            (rv, snap, Some(start))
        }
        None => {
            let inner = shared.inner.lock();
            let (rv, snap) = inner.snapshot(&gr).ok_or_else(ApiError::path_not_found)?;
            (rv, snap, None)
        }
    };
    let ns_start = ns.map(|n| (n.to_string(), String::new()));
    let lower = match (&start, &ns_start) {
        (Some(s), _) => Some(s.clone()),
        (None, Some(n)) => Some(n.clone()),
        (None, None) => None,
    };
    let iter: Box<dyn Iterator<Item = (&Key, &Arc<Value>)>> = match &lower {
        Some(l) => Box::new(snapshot.range(l.clone()..)),
        None => Box::new(snapshot.iter()),
    };
    let mut items = Vec::new();
    let mut next: Option<Key> = None;
    for (k, v) in iter {
        if let Some(n) = ns
            && k.0 != n
        {
            break;
        }
        if !matches(info, v, &labels, &fields) {
            continue;
        }
        if limit > 0 && items.len() == limit {
            next = Some(k.clone());
            break;
        }
        items.push(v.clone());
    }
    let cont = next.as_ref().map(|(n, name)| encode_continue(rv, n, name));
    let remaining = match (&next, labels.is_everything() && fields.is_empty()) {
        (Some(k), true) => Some(
            snapshot
                .range(k.clone()..)
                .take_while(|(key, _)| ns.is_none_or(|n| key.0 == n))
                .count(),
        ),
        _ => None,
    };
    if next.is_some() {
        shared.snapshots.lock().keep(&gr, rv, snapshot.clone());
    }
    if table {
        let items: Vec<Arc<Value>> = items.iter().map(|i| at_version(i, info)).collect();
        let mut t = crate::table::table(info, &items, cont.as_deref(), false);
        t["metadata"]["resourceVersion"] = json!(rv.to_string());
        return Ok(value_response(200, &t));
    }
    Ok(json_response(
        200,
        list_body(info, rv, &items, cont.as_deref(), remaining),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip() {
        let t = encode_continue(42, "ns", "b");
        assert_eq!(
            decode_continue(&t).unwrap(),
            (42, ("ns".into(), "b".into()))
        );
        assert!(decode_continue("!!").is_err());
    }
}
