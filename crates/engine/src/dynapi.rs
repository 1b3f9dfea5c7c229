//! Writes on objects of any type, as JSON, through kube-rs.

use std::time::Duration;

use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions, PropagationPolicy};
use kube::{Api, Client};
use serde_json::Value;

use crate::discovery::ResourceInfo;
use crate::object::{self, RawObject};

/// Error of an API operation.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The API server (or the transport) failed the request. Shown as one
    /// line: the status code, reason and message, or the transport failure
    /// with its URL (see [`crate::request_context`]).
    #[error("{}", crate::request_context::describe(.0))]
    Kube(#[from] kube::Error),
    /// The object was replaced by another one with the same name.
    #[error("{0} was deleted and replaced (uid changed)")]
    Replaced(String),
}

impl RequestError {
    fn status(&self) -> Option<&kube::core::Status> {
        match self {
            RequestError::Kube(kube::Error::Api(status)) => Some(status),
            _ => None,
        }
    }

    /// 404 Not Found, or the object was replaced.
    pub fn is_not_found(&self) -> bool {
        matches!(self, RequestError::Replaced(_)) || self.status().is_some_and(|s| s.is_not_found())
    }

    /// 409 Conflict (but not AlreadyExists).
    pub fn is_conflict(&self) -> bool {
        self.status()
            .is_some_and(|s| s.is_conflict() && !s.is_already_exists())
    }

    /// 409 AlreadyExists.
    pub fn is_already_exists(&self) -> bool {
        self.status().is_some_and(|s| s.is_already_exists())
    }

    /// 410 Gone.
    pub fn is_gone(&self) -> bool {
        self.status().is_some_and(|s| s.code == 410)
    }

    /// 400 Bad Request.
    pub fn is_bad_request(&self) -> bool {
        self.status().is_some_and(|s| s.code == 400)
    }

    /// 403 Forbidden.
    pub fn is_forbidden(&self) -> bool {
        self.status().is_some_and(|s| s.code == 403)
    }
}

/// An `Api` for `resource` in `namespace` (ignored for cluster-scoped
/// resources).
pub fn api(client: &Client, resource: &ResourceInfo, namespace: Option<&str>) -> Api<RawObject> {
    match namespace {
        Some(ns) if resource.namespaced && !ns.is_empty() => {
            Api::namespaced_with(client.clone(), ns, &resource.api_resource)
        }
        _ => Api::all_with(client.clone(), &resource.api_resource),
    }
}

/// GET, uncached.
pub async fn get(api: &Api<RawObject>, name: &str) -> Result<Value, RequestError> {
    Ok(api.get(name).await?.into_value())
}

/// POST.
pub async fn create(api: &Api<RawObject>, obj: Value) -> Result<Value, RequestError> {
    Ok(api
        .create(&PostParams::default(), &RawObject::new(obj))
        .await?
        .into_value())
}

/// POST, for callers that need only the outcome: the answer's status is
/// checked, its body is read but not decoded (a created child costs one
/// object decode less; the watch brings it to the cache anyway).
pub async fn create_unread(api: &Api<RawObject>, obj: &Value) -> Result<(), RequestError> {
    let body =
        serde_json::to_vec(obj).map_err(|e| RequestError::Kube(kube::Error::SerdeError(e)))?;
    let request = kube::core::Request::new(api.resource_url())
        .create(&PostParams::default(), body)
        .map_err(|e| RequestError::Kube(kube::Error::BuildRequest(e)))?;
    let client: Client = api.clone().into();
    client.request::<serde::de::IgnoredAny>(request).await?;
    Ok(())
}

/// Server-side apply (`PATCH` with `application/apply-patch+yaml`) with
/// `force=true`, optionally as a dry run (`dryRun=All`).
pub async fn apply(
    api: &Api<RawObject>,
    name: &str,
    obj: &Value,
    field_manager: &str,
    dry_run: bool,
) -> Result<Value, RequestError> {
    let mut params = PatchParams::apply(field_manager).force();
    params.dry_run = dry_run;
    Ok(api
        .patch(name, &params, &Patch::Apply(obj))
        .await?
        .into_value())
}

/// JSON patch (`application/json-patch+json`) of the object `name` of
/// `resource` in `namespace`.
pub async fn json_patch(
    client: &Client,
    resource: &ResourceInfo,
    namespace: Option<&str>,
    name: &str,
    operations: &Value,
) -> Result<Value, RequestError> {
    let namespace = namespace.filter(|ns| resource.namespaced && !ns.is_empty());
    let url = format!(
        "{}/{name}",
        <RawObject as kube::Resource>::url_path(&resource.api_resource, namespace)
    );
    let request = http::Request::patch(url)
        .header(http::header::CONTENT_TYPE, "application/json-patch+json")
        .body(serde_json::to_vec(operations).unwrap_or_default())
        .map_err(|e| RequestError::Kube(kube::Error::HttpError(e)))?;
    let obj: RawObject = client.request(request).await?;
    Ok(obj.into_value())
}

/// PUT of the whole object (carrying its resourceVersion).
pub async fn replace(api: &Api<RawObject>, obj: Value) -> Result<Value, RequestError> {
    let name = object::name(&obj).to_owned();
    Ok(api
        .replace(&name, &PostParams::default(), &RawObject::new(obj))
        .await?
        .into_value())
}

/// PUT to the `status` subresource.
pub async fn replace_status(api: &Api<RawObject>, obj: Value) -> Result<Value, RequestError> {
    let name = object::name(&obj).to_owned();
    Ok(api
        .replace_status(&name, &PostParams::default(), &RawObject::new(obj))
        .await?
        .into_value())
}

/// DELETE with background propagation and a UID precondition, so that
/// dependents are collected even for types that default to orphaning and
/// a replacement object with the same name is never deleted by mistake.
pub async fn delete_background(
    api: &Api<RawObject>,
    name: &str,
    uid: &str,
) -> Result<(), RequestError> {
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        preconditions: Some(Preconditions {
            uid: Some(uid.to_owned()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    api.delete(name, &params).await?;
    Ok(())
}

/// Waits between attempts of an optimistic-concurrency retry loop (client-go's
/// `retry.DefaultBackoff`: 4 attempts, 10 ms growing fivefold).
const CONFLICT_BACKOFF: [Duration; 3] = [
    Duration::from_millis(10),
    Duration::from_millis(50),
    Duration::from_millis(250),
];

/// Read-modify-write with conflict retries, starting from `start` (usually
/// the cached object, which must carry its `resourceVersion`): `mutate`
/// changes a copy (returning `false` when nothing needs to change) and the
/// copy is PUT, to `/status` when `status` is set. A stale copy gets a 409
/// from the server (the PUT carries its resourceVersion); every later
/// attempt GETs the live object, which must still have `start`'s UID.
/// Returns the final object.
///
/// Starting from the cache saves the GET of client-go's `RetryOnConflict`
/// pattern on the common path without weakening it: the write only lands
/// when the copy was current.
pub async fn atomic_update(
    api: &Api<RawObject>,
    start: &Value,
    status: bool,
    mut mutate: impl FnMut(&mut Value) -> bool,
) -> Result<Value, RequestError> {
    let name = object::name(start);
    let uid = object::uid(start);
    let mut cached = (!object::resource_version(start).is_empty()).then(|| start.clone());
    let mut attempt = 0;
    loop {
        let from_cache = cached.is_some();
        let mut current = match cached.take() {
            Some(copy) => copy,
            None => get(api, name).await?,
        };
        if object::uid(&current) != uid {
            return Err(RequestError::Replaced(object::describe(&current)));
        }
        if !mutate(&mut current) {
            return Ok(current);
        }
        let result = if status {
            replace_status(api, current).await
        } else {
            replace(api, current).await
        };
        match result {
            // The cached copy was stale: read the live object at once.
            Err(err) if err.is_conflict() && from_cache => {}
            Err(err) if err.is_conflict() && attempt < CONFLICT_BACKOFF.len() => {
                tokio::time::sleep(CONFLICT_BACKOFF[attempt]).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}
