//! Server-side apply (`PATCH` with `application/apply-patch+yaml`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::response::Response;

use crate::Shared;
use crate::error::{ApiError, ApiResult, Reason};
use crate::registry::ResourceInfo;

#[allow(clippy::too_many_arguments)]
pub fn apply(
    _shared: &Arc<Shared>,
    _info: &ResourceInfo,
    _ns: Option<&str>,
    _name: &str,
    _q: &HashMap<String, String>,
    _body: &[u8],
    _sub: Option<&str>,
    _dry_run: bool,
) -> ApiResult<Response> {
    Err(ApiError::new(
        Reason::UnsupportedMediaType,
        "server-side apply is not supported by this server yet; accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json",
    ))
}
