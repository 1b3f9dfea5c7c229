//! HTTP front end: the Kubernetes URL layout, the verb of each request and
//! its dispatch to the write rules, lists ([`crate::list`]), watches
//! ([`crate::watch`]), and the discovery and OpenAPI endpoints.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use http::{HeaderMap, Method, header};
use metacontroller_patch::PatchType;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult, Reason};
use crate::meta::{Sub, at_version, key_for};
use crate::query::{matches, parse_query, selectors, truthy};
use crate::registry::ResourceInfo;
use crate::response::{error_response, json_response, value_response};
use crate::state::Shared;
use crate::version::{VERSION_MAJOR, VERSION_MINOR};
use crate::write::{self, DeleteOptions};
use crate::{discovery, negotiate, openapi};

/// Largest accepted request body (the real server's limit is 3 MiB).
const MAX_BODY: usize = 3 * 1024 * 1024;

pub fn router(shared: Arc<Shared>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(shared)
}

/// A parsed request path.
#[derive(Debug, PartialEq)]
enum Route {
    Version,
    Health,
    CoreRoot,
    GroupsRoot,
    Group(String),
    GroupVersion(String, String),
    OpenApiV2,
    OpenApiV3Root,
    OpenApiV3(String, String),
    Metrics,
    Resource(ResourcePath),
}

#[derive(Debug, PartialEq, Default)]
struct ResourcePath {
    group: String,
    version: String,
    namespace: Option<String>,
    resource: String,
    name: Option<String>,
    sub: Option<String>,
    watch: bool,
}

fn parse_path(path: &str) -> Option<Route> {
    let seg: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (group, version, rest) = match seg.as_slice() {
        ["version"] => return Some(Route::Version),
        ["healthz" | "livez" | "readyz", ..] => return Some(Route::Health),
        ["metrics"] => return Some(Route::Metrics),
        ["openapi", "v2"] => return Some(Route::OpenApiV2),
        ["openapi", "v3"] => return Some(Route::OpenApiV3Root),
        ["openapi", "v3", "api", v] => return Some(Route::OpenApiV3(String::new(), v.to_string())),
        ["openapi", "v3", "apis", g, v] => {
            return Some(Route::OpenApiV3(g.to_string(), v.to_string()));
        }
        ["api"] => return Some(Route::CoreRoot),
        ["apis"] => return Some(Route::GroupsRoot),
        ["apis", g] => return Some(Route::Group(g.to_string())),
        ["api", v] => return Some(Route::GroupVersion(String::new(), v.to_string())),
        ["apis", g, v] => return Some(Route::GroupVersion(g.to_string(), v.to_string())),
        ["api", v, rest @ ..] => (String::new(), v.to_string(), rest),
        ["apis", g, v, rest @ ..] => (g.to_string(), v.to_string(), rest),
        _ => return None,
    };
    let (watch, rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        r => (false, r),
    };
    let mut p = ResourcePath {
        group,
        version,
        watch,
        ..Default::default()
    };
    let rest = match rest {
        // /namespaces/{ns}/status|finalize are subresources of a namespace.
        ["namespaces", name, sub @ ("status" | "finalize")] => {
            p.resource = "namespaces".into();
            p.name = Some(name.to_string());
            p.sub = Some(sub.to_string());
            return Some(Route::Resource(p));
        }
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => {
            p.namespace = Some(ns.to_string());
            rest
        }
        r => r,
    };
    match rest {
        [res] => p.resource = res.to_string(),
        [res, name] => {
            p.resource = res.to_string();
            p.name = Some(name.to_string());
        }
        [res, name, sub] => {
            p.resource = res.to_string();
            p.name = Some(name.to_string());
            p.sub = Some(sub.to_string());
        }
        _ => return None,
    }
    Some(Route::Resource(p))
}

/// The counter key of a request: `verb` and `resource[.group][/sub]`.
fn counter_resource(p: &ResourcePath) -> String {
    let mut r = if p.group.is_empty() {
        p.resource.clone()
    } else {
        format!("{}.{}", p.resource, p.group)
    };
    if let Some(s) = &p.sub {
        r.push('/');
        r.push_str(s);
    }
    r
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let query = parse_query(parts.uri.query());
    let Some(route) = parse_path(&path) else {
        return error_response(&ApiError::path_not_found());
    };
    let accept = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match route {
        Route::Version => value_response(200, &version_info()),
        Route::Health => Response::builder()
            .status(200)
            .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(Body::from("ok"))
            .unwrap(),
        Route::Metrics => Response::builder()
            .status(200)
            .header(header::CONTENT_TYPE, "text/plain; version=0.0.4")
            .body(Body::from(shared.counters.render()))
            .unwrap(),
        Route::CoreRoot | Route::GroupsRoot | Route::Group(_) | Route::GroupVersion(..) => {
            discovery_response(&shared, route, accept.as_deref())
        }
        Route::OpenApiV2 | Route::OpenApiV3Root | Route::OpenApiV3(..) => {
            openapi_response(&shared, route, accept.as_deref())
        }
        Route::Resource(p) => {
            let verb = verb_of(&parts.method, &p, &query);
            shared.counters.inc(verb, &counter_resource(&p));
            if let Some(e) = shared.faults.check(verb, &counter_resource(&p)).await {
                return error_response(&e);
            }
            let body = match axum::body::to_bytes(body, MAX_BODY).await {
                Ok(b) => b,
                Err(_) => {
                    return error_response(&ApiError::new(
                        Reason::BadRequest,
                        "request body too large or unreadable",
                    ));
                }
            };
            let request = resource_request(&shared, &parts.headers, p, &query, body.clone(), verb);
            let request = crate::managed_fields::with_request(&parts.headers, &query, request);
            // Field validation (`fieldValidation`) of the writes it makes.
            let (result, warnings) =
                crate::schema::with_request(&parts.method, &parts.headers, &query, body, request)
                    .await;
            let mut response = match result {
                Ok(r) => r,
                Err(e) => error_response(&e),
            };
            crate::schema::add_warnings(&mut response, &warnings);
            response
        }
    }
}

fn verb_of(method: &Method, p: &ResourcePath, q: &HashMap<String, String>) -> &'static str {
    match *method {
        Method::GET if p.watch || truthy(q, "watch") => "watch",
        Method::GET if p.name.is_none() => "list",
        Method::GET => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if p.name.is_none() => "deletecollection",
        Method::DELETE => "delete",
        _ => "unknown",
    }
}

pub fn version_info() -> Value {
    json!({
        "major": VERSION_MAJOR,
        "minor": VERSION_MINOR,
        "gitVersion": format!("v{VERSION_MAJOR}.{VERSION_MINOR}.0"),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

fn discovery_response(shared: &Shared, route: Route, accept: Option<&str>) -> Response {
    let resources = shared.inner.lock().resources.list.clone();
    let format = negotiate::negotiate(accept);
    let legacy = matches!(format, negotiate::DiscoveryFormat::Legacy);
    let (body, ct) = match route {
        Route::CoreRoot if !legacy => (
            discovery::aggregated(&resources, true, &format),
            negotiate::content_type(&format),
        ),
        Route::GroupsRoot if !legacy => (
            discovery::aggregated(&resources, false, &format),
            negotiate::content_type(&format),
        ),
        Route::CoreRoot => (discovery::api_versions(&shared.address), "application/json"),
        Route::GroupsRoot => (discovery::api_group_list(&resources), "application/json"),
        Route::Group(g) => match discovery::api_group(&resources, &g) {
            Some(v) => (v, "application/json"),
            None => return error_response(&ApiError::path_not_found()),
        },
        Route::GroupVersion(g, v) => match discovery::api_resource_list(&resources, &g, &v) {
            Some(v) => (v, "application/json"),
            None => return error_response(&ApiError::path_not_found()),
        },
        _ => return error_response(&ApiError::path_not_found()),
    };
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, ct)
        .body(Body::from(serde_json::to_vec(&body).unwrap_or_default()))
        .unwrap()
}

fn openapi_response(shared: &Shared, route: Route, accept: Option<&str>) -> Response {
    let (key, content_type) = match &route {
        Route::OpenApiV2 => match negotiate::negotiate_openapi_v2(accept) {
            Some(f) => (format!("v2/{f:?}"), negotiate::openapi_v2_content_type(&f)),
            None => {
                return error_response(&ApiError::new(
                    Reason::NotAcceptable,
                    "only application/json and application/com.github.proto-openapi.spec.v2@v1.0+protobuf are supported",
                ));
            }
        },
        Route::OpenApiV3Root => ("v3".to_string(), negotiate::CONTENT_TYPE_JSON),
        Route::OpenApiV3(g, v) => {
            if !negotiate::accepts_json(accept) {
                return error_response(&ApiError::new(
                    Reason::NotAcceptable,
                    "only application/json is supported for OpenAPI v3 documents",
                ));
            }
            (format!("v3/{g}/{v}"), negotiate::CONTENT_TYPE_JSON)
        }
        _ => return error_response(&ApiError::path_not_found()),
    };
    let (resources, generation) = {
        let inner = shared.inner.lock();
        (inner.resources.list.clone(), inner.resources.generation)
    };
    let body = shared.docs.get_or_build(generation, &key, || match &route {
        Route::OpenApiV2 if content_type == negotiate::CONTENT_TYPE_JSON => {
            Some(serde_json::to_vec(&openapi::openapi_v2(&resources)).unwrap_or_default())
        }
        Route::OpenApiV2 => Some(openapi::openapi_v2_protobuf(&resources)),
        Route::OpenApiV3Root => {
            Some(serde_json::to_vec(&openapi::openapi_v3_root(&resources)).unwrap_or_default())
        }
        Route::OpenApiV3(g, v) => openapi::openapi_v3_group_version(&resources, g, v)
            .map(|d| serde_json::to_vec(&d).unwrap_or_default()),
        _ => None,
    });
    match body {
        Some(b) => Response::builder()
            .status(200)
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(b.to_vec()))
            .unwrap(),
        None => error_response(&ApiError::path_not_found()),
    }
}

/// Parses a request body as JSON (or YAML, when sent as YAML).
fn decode_body(headers: &HeaderMap, body: &[u8]) -> ApiResult<Value> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    if ct.contains("protobuf") {
        return crate::protobuf::decode_request(body)
            .map_err(|e| ApiError::new(Reason::UnsupportedMediaType, e.to_string()));
    }
    if ct.contains("yaml") {
        let v: Value = serde_yaml::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid YAML body: {e}")))?;
        return Ok(v);
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body of the request could not be decoded as JSON: {e}"
        ))
    })
}

fn resolve(shared: &Shared, p: &ResourcePath) -> ApiResult<ResourceInfo> {
    let inner = shared.inner.lock();
    let info = inner
        .resources
        .get(&p.group, &p.version, &p.resource)
        .cloned()
        .ok_or_else(ApiError::path_not_found)?;
    if p.namespace.is_some() && !info.namespaced {
        return Err(ApiError::path_not_found());
    }
    Ok(info)
}

fn dry_run(q: &HashMap<String, String>) -> ApiResult<bool> {
    match q.get("dryRun").map(String::as_str) {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "Invalid dryRun value: \"{other}\": supported values: \"All\""
        ))),
    }
}

fn sub_of(info: &ResourceInfo, p: &ResourcePath) -> ApiResult<Option<Sub>> {
    match p.sub.as_deref() {
        None => Ok(Some(Sub::Main)),
        Some("status") if info.status => Ok(Some(Sub::Status)),
        Some("finalize") if info.plural == "namespaces" && info.group.is_empty() => {
            Ok(Some(Sub::Finalize))
        }
        Some("scale") if info.scale.is_some() => Ok(None),
        Some(_) => Err(ApiError::path_not_found()),
    }
}

async fn resource_request(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    p: ResourcePath,
    q: &HashMap<String, String>,
    body: Bytes,
    verb: &str,
) -> ApiResult<Response> {
    let info = resolve(shared, &p)?;
    let ns = p.namespace.as_deref();
    let dry = dry_run(q)?;
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let table = crate::table::wants_table(accept);
    match (verb, &p.name) {
        ("watch", _) => {
            if p.sub.is_some() {
                return Err(ApiError::path_not_found());
            }
            let mut q = q.clone();
            if let Some(name) = &p.name {
                // Legacy /watch/.../{name} watches one object.
                q.insert("fieldSelector".into(), format!("metadata.name={name}"));
            }
            let delay = shared.faults.watch_delay(&counter_resource(&p));
            crate::watch::watch(
                shared.clone(),
                info,
                ns.map(str::to_string),
                &q,
                table,
                delay,
            )
        }
        ("list", _) => {
            if p.sub.is_some() {
                return Err(ApiError::path_not_found());
            }
            crate::list::list(shared, &info, ns, q, table)
        }
        ("get", Some(name)) => {
            let sub = sub_of(&info, &p)?;
            let key = key_for(&info, ns, name);
            let obj = shared
                .inner
                .lock()
                .get(&info.group_resource(), &key)
                .cloned()
                .ok_or_else(|| ApiError::not_found(&info.group, &info.plural, name))?;
            if sub.is_none() {
                return Ok(value_response(200, &crate::scale::to_scale(&info, &obj)?));
            }
            let obj = at_version(&obj, &info);
            if table {
                return Ok(value_response(
                    200,
                    &crate::table::table(&info, &[obj], None, true),
                ));
            }
            Ok(json_response(
                200,
                serde_json::to_vec(&*obj).unwrap_or_default(),
            ))
        }
        ("create", None) => {
            if p.sub.is_some() {
                return Err(ApiError::path_not_found());
            }
            if info.namespaced && ns.is_none() {
                return Err(ApiError::method_not_allowed(
                    "the server does not allow this method on the requested resource",
                ));
            }
            let obj = decode_body(headers, &body)?;
            let created = write::create(&mut shared.inner.lock(), &info, ns, obj, dry)?;
            Ok(json_response(
                201,
                serde_json::to_vec(&*created).unwrap_or_default(),
            ))
        }
        ("update", Some(name)) => {
            let obj = decode_body(headers, &body)?;
            let updated = match sub_of(&info, &p)? {
                Some(sub) => {
                    write::update(&mut shared.inner.lock(), &info, ns, name, obj, sub, dry)?
                }
                None => {
                    crate::scale::update_scale(&mut shared.inner.lock(), &info, ns, name, obj, dry)?
                }
            };
            if p.sub.as_deref() == Some("scale") {
                return Ok(value_response(
                    200,
                    &crate::scale::to_scale(&info, &updated)?,
                ));
            }
            Ok(json_response(
                200,
                serde_json::to_vec(&*updated).unwrap_or_default(),
            ))
        }
        ("patch", Some(name)) => {
            let ct = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if ct.starts_with("application/apply-patch") {
                return crate::server_side_apply::apply(
                    shared,
                    &info,
                    ns,
                    name,
                    q,
                    &body,
                    p.sub.as_deref(),
                    dry,
                );
            }
            let pt = PatchType::from_content_type(ct).ok_or_else(|| {
                ApiError::new(
                    Reason::UnsupportedMediaType,
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json".to_string(),
                )
            })?;
            if info.crd && pt == PatchType::StrategicMerge {
                return Err(ApiError::new(
                    Reason::UnsupportedMediaType,
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
                ));
            }
            let patched = match sub_of(&info, &p)? {
                Some(sub) => write::patch(
                    &mut shared.inner.lock(),
                    &info,
                    ns,
                    name,
                    pt,
                    &body,
                    sub,
                    dry,
                )?,
                None => {
                    let updated = crate::scale::patch_scale(
                        &mut shared.inner.lock(),
                        &info,
                        ns,
                        name,
                        pt,
                        &body,
                        dry,
                    )?;
                    return Ok(value_response(
                        200,
                        &crate::scale::to_scale(&info, &updated)?,
                    ));
                }
            };
            Ok(json_response(
                200,
                serde_json::to_vec(&*patched).unwrap_or_default(),
            ))
        }
        ("delete", Some(name)) => {
            if p.sub.is_some() {
                return Err(ApiError::method_not_allowed(
                    "the server does not allow this method on the requested resource",
                ));
            }
            let mut opts = DeleteOptions::from_body(&body)?;
            apply_delete_query(&mut opts, q)?;
            let d = write::delete(&mut shared.inner.lock(), &info, ns, name, &opts, dry)?;
            // 202 only when the object lingers and the client asked for
            // cascading with the deprecated `orphanDependents: false`
            // (k8s.io/apiserver/pkg/endpoints/handlers/delete.go).
            let code = if !d.gone && opts.orphan_dependents == Some(false) {
                202
            } else {
                200
            };
            if d.gone && !returns_deleted_object(&info) {
                let mut details = crate::error::details(name, &info.group, &info.plural);
                details["uid"] = d.object["metadata"]["uid"].clone();
                return Ok(value_response(
                    200,
                    &json!({
                        "kind": "Status",
                        "apiVersion": "v1",
                        "metadata": {},
                        "status": "Success",
                        "details": details,
                    }),
                ));
            }
            Ok(json_response(
                code,
                serde_json::to_vec(&*d.object).unwrap_or_default(),
            ))
        }
        ("deletecollection", None) => {
            let mut opts = DeleteOptions::from_body(&body)?;
            apply_delete_query(&mut opts, q)?;
            let (labels, fields) = selectors(&info, q)?;
            let mut inner = shared.inner.lock();
            let targets: Vec<Arc<Value>> = inner
                .objects_in(&info.group_resource(), ns.filter(|_| info.namespaced))
                .into_iter()
                .filter(|o| matches(&info, o, &labels, &fields))
                .collect();
            let mut items = Vec::new();
            for o in targets {
                let name = o["metadata"]["name"].as_str().unwrap_or("").to_string();
                let ons = o["metadata"]["namespace"].as_str().map(str::to_string);
                match write::delete(&mut inner, &info, ons.as_deref(), &name, &opts, dry) {
                    Ok(d) => items.push(d.object),
                    Err(e) if e.reason == Reason::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            let rv = inner.current_rv();
            drop(inner);
            Ok(json_response(
                200,
                crate::list::list_body(&info, rv, &items, None, None),
            ))
        }
        _ => Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        )),
    }
}

/// Custom resources and a few built-ins answer a completed delete with the
/// object; the rest with a `Status` (`ReturnDeletedObject` in the registries).
fn returns_deleted_object(info: &ResourceInfo) -> bool {
    info.crd
        || (info.group.is_empty() && matches!(info.plural.as_str(), "pods" | "namespaces"))
        || info.group == "apiextensions.k8s.io"
}

fn apply_delete_query(opts: &mut DeleteOptions, q: &HashMap<String, String>) -> ApiResult<()> {
    if let Some(p) = q.get("propagationPolicy") {
        opts.propagation = Some(write::parse_propagation(p)?);
    } else if let Some(o) = q.get("orphanDependents") {
        opts.orphan_dependents = Some(o == "true");
        opts.propagation = Some(if o == "true" {
            write::Propagation::Orphan
        } else {
            write::Propagation::Background
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_like_the_kubernetes_url_layout() {
        let r = parse_path("/api/v1/namespaces/default/pods/web/status").unwrap();
        let Route::Resource(p) = r else { panic!() };
        assert_eq!(p.namespace.as_deref(), Some("default"));
        assert_eq!(p.resource, "pods");
        assert_eq!(p.name.as_deref(), Some("web"));
        assert_eq!(p.sub.as_deref(), Some("status"));

        let Route::Resource(p) = parse_path("/api/v1/namespaces/kube-system").unwrap() else {
            panic!()
        };
        assert_eq!(
            (p.resource.as_str(), p.name.as_deref(), p.namespace),
            ("namespaces", Some("kube-system"), None)
        );

        let Route::Resource(p) = parse_path("/api/v1/namespaces/x/finalize").unwrap() else {
            panic!()
        };
        assert_eq!(
            (p.resource.as_str(), p.sub.as_deref()),
            ("namespaces", Some("finalize"))
        );

        let Route::Resource(p) =
            parse_path("/apis/apps/v1/watch/namespaces/d/deployments").unwrap()
        else {
            panic!()
        };
        assert!(p.watch);
        assert_eq!(
            (p.group.as_str(), p.resource.as_str()),
            ("apps", "deployments")
        );

        assert_eq!(parse_path("/apis/apps"), Some(Route::Group("apps".into())));
        assert_eq!(parse_path("/api"), Some(Route::CoreRoot));
        assert_eq!(parse_path("/nonsense/x"), None);
        assert_eq!(parse_path("/api/v1/a/b/c/d"), None);
    }
}
