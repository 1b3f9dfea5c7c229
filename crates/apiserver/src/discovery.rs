//! Discovery and OpenAPI documents, computed from the registry as plain JSON
//! (and, for OpenAPI v2, protobuf) values. Nothing here knows about HTTP: the
//! handlers negotiate with [`negotiate`] / [`negotiate_openapi_v2`] /
//! [`accepts_json`], call the document builders and send the result with the
//! matching content type.
//!
//! What clients do with these documents, and therefore what they must contain:
//!
//! * **Legacy discovery** (`/api`, `/api/v1`, `/apis`, `/apis/{g}`,
//!   `/apis/{g}/{v}`): `APIVersions`, `APIGroupList`, `APIGroup` and
//!   `APIResourceList` from `k8s.io/apimachinery/pkg/apis/meta/v1/types.go`.
//!   Subresources are listed as `parent/sub` entries; `scale` answers with
//!   `autoscaling/v1` `Scale`.
//! * **Aggregated discovery** (`/api` and `/apis` only): client-go asks for it
//!   first (`k8s.io/client-go/discovery/discovery_client.go`, `acceptDiscoveryFormats`;
//!   v2beta1 only up to 1.29, v2 first from 1.30) and recognises it solely by the
//!   `g`, `v` and `as` parameters of the response Content-Type (`ContentTypeIsGVK`).
//!   The body follows `k8s.io/api/apidiscovery/v2/types.go`; v2beta1 has the same
//!   JSON shape. When both `/api` and `/apis` answer in this form, client-go
//!   never fetches the per-group-version lists.
//! * **OpenAPI v3** (`/openapi/v3`, `/openapi/v3/{api/v1|apis/g/v}`): kubectl
//!   decides whether a kind supports server-side field validation by finding a
//!   PATCH operation tagged with the kind's `x-kubernetes-group-version-kind`
//!   whose parameters include the `fieldValidation` query parameter
//!   (`k8s.io/cli-runtime/pkg/resource/query_param_verifier_v3.go`). `kubectl
//!   explain` locates the collection path of the resource and then the
//!   component schema carrying the same GVK (`k8s.io/kubectl/pkg/explain/v2/templates/plaintext.tmpl`).
//!   `kubectl apply` computes a strategic merge patch from these schemas only
//!   when the PATCH request body lists `application/strategic-merge-patch+json`
//!   (`k8s.io/kubectl/pkg/cmd/apply/patcher.go`, `gvkSupportsPatchOpenAPIV3`).
//! * **OpenAPI v2** (`/openapi/v2`): client-go always asks for the gnostic
//!   protobuf encoding and proto-decodes the body (`OpenAPISchema` in
//!   `discovery_client.go`). kubectl 1.27 and 1.28 fetch it eagerly for `apply`,
//!   `create`, `replace`, `edit`, `diff` and `explain` (`Validator` in
//!   `k8s.io/kubectl/pkg/cmd/util/factory_client_access.go`) and fail when it
//!   cannot be decoded, so [`openapi_v2_protobuf`] encodes the document.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::registry::{ResourceInfo, compare_versions};

/// Content type of legacy discovery and of every other JSON document here.
pub const CONTENT_TYPE_JSON: &str = "application/json";
/// Content type of an `apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`.
pub const CONTENT_TYPE_AGGREGATED_V2: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
/// Content type of an `apidiscovery.k8s.io/v2beta1` `APIGroupDiscoveryList`.
pub const CONTENT_TYPE_AGGREGATED_V2BETA1: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";
/// Content type the Kubernetes OpenAPI handler answers protobuf requests with
/// (`k8s.io/kube-openapi/pkg/handler/handler.go`); the `@v1.0` spelling that
/// client-go sends is accepted as a request type only.
pub const CONTENT_TYPE_OPENAPI_V2_PROTOBUF: &str =
    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

const DISCOVERY_GROUP: &str = "apidiscovery.k8s.io";
const DISCOVERY_LIST_KIND: &str = "APIGroupDiscoveryList";
const OPENAPI_V2_PROTOBUF_SUBTYPES: [&str; 2] = [
    "com.github.proto-openapi.spec.v2.v1.0+protobuf",
    "com.github.proto-openapi.spec.v2@v1.0+protobuf",
];

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
const SCALE: &str = "io.k8s.api.autoscaling.v1.Scale";

/// Verbs of the `status` and `scale` subresources.
const SUBRESOURCE_VERBS: [&str; 3] = ["get", "patch", "update"];

// ---------------------------------------------------------------------------
// Content negotiation
// ---------------------------------------------------------------------------

/// Which representation a discovery request accepts, parsed from the Accept header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiscoveryFormat {
    /// `APIVersions` / `APIGroupList` as plain `application/json`.
    Legacy,
    /// `apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`.
    AggregatedV2,
    /// `apidiscovery.k8s.io/v2beta1` `APIGroupDiscoveryList` (kubectl 1.27–1.29).
    AggregatedV2Beta1,
}

/// One media range of an Accept header.
struct MediaRange {
    main: String,
    sub: String,
    params: Vec<(String, String)>,
    quality: f32,
}

impl MediaRange {
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `*/*` or `application/*`, which any JSON document satisfies.
    fn is_json_wildcard(&self) -> bool {
        (self.main == "*" || self.main == "application") && self.sub == "*"
    }

    fn specificity(&self) -> u8 {
        match (self.main.as_str(), self.sub.as_str()) {
            ("*", _) => 0,
            (_, "*") => 1,
            _ => 2,
        }
    }
}

/// Splits an Accept header into media ranges, best first: by descending
/// `q`, then more specific ranges before wildcards, otherwise in the order
/// sent (the ordering `github.com/munnerz/goautoneg` gives the Kubernetes
/// negotiators). Ranges with `q=0` are dropped.
fn parse_accept(header: &str) -> Vec<MediaRange> {
    let mut ranges = Vec::new();
    for part in header.split(',') {
        let mut pieces = part.split(';');
        let media = pieces.next().unwrap_or("").trim();
        if media.is_empty() {
            continue;
        }
        let (main, sub) = media.split_once('/').unwrap_or((media, "*"));
        let mut range = MediaRange {
            main: main.trim().to_ascii_lowercase(),
            sub: sub.trim().to_ascii_lowercase(),
            params: Vec::new(),
            quality: 1.0,
        };
        for piece in pieces {
            let Some((key, value)) = piece.split_once('=') else {
                continue;
            };
            let key = key.trim().to_ascii_lowercase();
            let value = value.trim().trim_matches('"').to_string();
            if key == "q" {
                range.quality = value.parse().unwrap_or(0.0);
            } else {
                range.params.push((key, value));
            }
        }
        if range.quality > 0.0 {
            ranges.push(range);
        }
    }
    ranges.sort_by(|a, b| {
        b.quality
            .partial_cmp(&a.quality)
            .unwrap_or(Ordering::Equal)
            .then(b.specificity().cmp(&a.specificity()))
    });
    ranges
}

/// The discovery format to answer `/api` or `/apis` with, or `None` when the
/// header names only representations this server cannot produce (the
/// Kubernetes server answers 406 then). A missing or empty header means
/// legacy JSON. Aggregated ranges must carry `g=apidiscovery.k8s.io` and
/// `as=APIGroupDiscoveryList`; extra parameters such as `profile=nopeer`
/// (sent by newer client-go) or `charset` are ignored. Protobuf ranges are
/// skipped, as are JSON ranges asking for another kind (`as=Table`).
pub fn negotiate_strict(accept: Option<&str>) -> Option<DiscoveryFormat> {
    let Some(header) = accept.filter(|h| !h.trim().is_empty()) else {
        return Some(DiscoveryFormat::Legacy);
    };
    for range in parse_accept(header) {
        let json = range.main == "application" && range.sub == "json";
        if !json && !range.is_json_wildcard() {
            continue;
        }
        match (range.param("g"), range.param("v"), range.param("as")) {
            (None, None, None) => return Some(DiscoveryFormat::Legacy),
            (Some(DISCOVERY_GROUP), Some(version), Some(DISCOVERY_LIST_KIND)) if json => {
                match version {
                    "v2" => return Some(DiscoveryFormat::AggregatedV2),
                    "v2beta1" => return Some(DiscoveryFormat::AggregatedV2Beta1),
                    _ => continue,
                }
            }
            _ => continue,
        }
    }
    None
}

/// Like [`negotiate_strict`], but falls back to legacy JSON when nothing in
/// the header is acceptable.
pub fn negotiate(accept: Option<&str>) -> DiscoveryFormat {
    negotiate_strict(accept).unwrap_or(DiscoveryFormat::Legacy)
}

/// Content-Type to answer with for that format. client-go tells the formats
/// apart by exactly these parameters (`ContentTypeIsGVK` in
/// `k8s.io/client-go/discovery/discovery_client.go`); an aggregated body sent
/// as plain `application/json` would be misread as an `APIGroupList`.
pub fn content_type(format: &DiscoveryFormat) -> &'static str {
    match format {
        DiscoveryFormat::Legacy => CONTENT_TYPE_JSON,
        DiscoveryFormat::AggregatedV2 => CONTENT_TYPE_AGGREGATED_V2,
        DiscoveryFormat::AggregatedV2Beta1 => CONTENT_TYPE_AGGREGATED_V2BETA1,
    }
}

/// Whether a plain JSON answer satisfies the Accept header (`application/json`,
/// `application/*`, `*/*`, or no header). Used for the OpenAPI v3 endpoints,
/// which are served as JSON only: the Kubernetes handler
/// (`k8s.io/kube-openapi/pkg/handler3/handler.go`) matches on type and subtype
/// and answers 406 when nothing matches.
pub fn accepts_json(accept: Option<&str>) -> bool {
    let Some(header) = accept.filter(|h| !h.trim().is_empty()) else {
        return true;
    };
    parse_accept(header)
        .iter()
        .any(|r| r.is_json_wildcard() || (r.main == "application" && r.sub == "json"))
}

/// Representation of `/openapi/v2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenApiV2Format {
    Json,
    /// gnostic `openapi.v2.Document` protobuf; what client-go requests.
    Protobuf,
}

/// Chooses the `/openapi/v2` representation the way
/// `k8s.io/kube-openapi/pkg/handler/handler.go` does: the best media range
/// that names JSON or one of the two protobuf spellings wins, wildcards mean
/// JSON, no header means `*/*`. `None` means 406 Not Acceptable.
pub fn negotiate_openapi_v2(accept: Option<&str>) -> Option<OpenApiV2Format> {
    let Some(header) = accept.filter(|h| !h.trim().is_empty()) else {
        return Some(OpenApiV2Format::Json);
    };
    for range in parse_accept(header) {
        if range.is_json_wildcard() || (range.main == "application" && range.sub == "json") {
            return Some(OpenApiV2Format::Json);
        }
        if range.main == "application" && OPENAPI_V2_PROTOBUF_SUBTYPES.contains(&range.sub.as_str())
        {
            return Some(OpenApiV2Format::Protobuf);
        }
    }
    None
}

/// Content-Type for an `/openapi/v2` answer.
pub fn openapi_v2_content_type(format: &OpenApiV2Format) -> &'static str {
    match format {
        OpenApiV2Format::Json => CONTENT_TYPE_JSON,
        OpenApiV2Format::Protobuf => CONTENT_TYPE_OPENAPI_V2_PROTOBUF,
    }
}

// ---------------------------------------------------------------------------
// Grouping the registry
// ---------------------------------------------------------------------------

/// A group with its served versions, most preferred first.
struct GroupVersions<'a> {
    name: &'a str,
    versions: Vec<&'a str>,
}

/// Groups in the order they first appear in `resources` (clients such as
/// kubectl's RESTMapper resolve an ambiguous resource name to the earliest
/// group, so the registry order is the group priority), each with its
/// versions ordered by [`compare_versions`]. The core group is included only
/// when `core` is set, and then alone.
fn groups(resources: &[ResourceInfo], core: bool) -> Vec<GroupVersions<'_>> {
    let mut out: Vec<GroupVersions<'_>> = Vec::new();
    for r in resources {
        if r.group.is_empty() != core {
            continue;
        }
        match out.iter_mut().find(|g| g.name == r.group) {
            Some(g) => {
                if !g.versions.contains(&r.version.as_str()) {
                    g.versions.push(&r.version);
                }
            }
            None => out.push(GroupVersions {
                name: &r.group,
                versions: vec![&r.version],
            }),
        }
    }
    for g in &mut out {
        g.versions.sort_by(|a, b| compare_versions(a, b));
    }
    out
}

/// The resources of one group-version, sorted by plural name.
fn resources_of<'a>(
    resources: &'a [ResourceInfo],
    group: &str,
    version: &str,
) -> Vec<&'a ResourceInfo> {
    let mut list: Vec<&ResourceInfo> = resources
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    list.sort_by(|a, b| a.plural.cmp(&b.plural));
    list
}

fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

fn strings(list: &[String]) -> Value {
    Value::Array(list.iter().map(|s| Value::String(s.clone())).collect())
}

fn subresource_verbs() -> Value {
    json!(SUBRESOURCE_VERBS)
}

// ---------------------------------------------------------------------------
// Legacy discovery
// ---------------------------------------------------------------------------

/// `GET /api` in the legacy format: `APIVersions`. `serverAddressByClientCIDRs`
/// is a required field for the Python client and kube-rs (k8s-openapi), so it
/// always carries one catch-all entry.
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ]
    })
}

fn version_for_discovery(group: &str, version: &str) -> Value {
    json!({"groupVersion": group_version(group, version), "version": version})
}

fn api_group_value(g: &GroupVersions<'_>) -> Value {
    json!({
        "name": g.name,
        "versions": g.versions.iter().map(|v| version_for_discovery(g.name, v)).collect::<Vec<_>>(),
        "preferredVersion": version_for_discovery(g.name, g.versions[0]),
    })
}

/// `GET /apis` in the legacy format: `APIGroupList` of every non-core group.
pub fn api_group_list(resources: &[ResourceInfo]) -> Value {
    json!({
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": groups(resources, false).iter().map(api_group_value).collect::<Vec<_>>(),
    })
}

/// `GET /apis/{group}`: `APIGroup`, or `None` when the group is not served
/// (or is the core group, which has no such endpoint).
pub fn api_group(resources: &[ResourceInfo], group: &str) -> Option<Value> {
    if group.is_empty() {
        return None;
    }
    let groups = groups(resources, false);
    let g = groups.iter().find(|g| g.name == group)?;
    let mut value = api_group_value(g);
    let obj = value.as_object_mut()?;
    obj.insert("kind".into(), json!("APIGroup"));
    obj.insert("apiVersion".into(), json!("v1"));
    Some(value)
}

/// The legacy `APIResource` entries of one resource: the resource itself
/// followed by its `status` and `scale` subresources. Subresource entries
/// carry an empty `singularName`, and `scale` names its `autoscaling/v1`
/// kind through the `group`/`version` fields, as the Kubernetes server does.
fn legacy_entries(r: &ResourceInfo) -> Vec<Value> {
    let mut main = json!({
        "name": r.plural,
        "singularName": r.singular,
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": strings(&r.verbs),
    });
    if !r.short_names.is_empty() {
        main["shortNames"] = strings(&r.short_names);
    }
    if !r.categories.is_empty() {
        main["categories"] = strings(&r.categories);
    }
    let mut out = vec![main];
    if r.scale.is_some() {
        out.push(json!({
            "name": format!("{}/scale", r.plural),
            "singularName": "",
            "namespaced": r.namespaced,
            "group": "autoscaling",
            "version": "v1",
            "kind": "Scale",
            "verbs": subresource_verbs(),
        }));
    }
    if r.status {
        out.push(json!({
            "name": format!("{}/status", r.plural),
            "singularName": "",
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": subresource_verbs(),
        }));
    }
    out
}

/// `GET /api/v1` (group `""`) or `GET /apis/{group}/{version}`:
/// `APIResourceList`, or `None` when nothing is served at that group-version.
pub fn api_resource_list(resources: &[ResourceInfo], group: &str, version: &str) -> Option<Value> {
    let list = resources_of(resources, group, version);
    if list.is_empty() {
        return None;
    }
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version(group, version),
        "resources": list.into_iter().flat_map(legacy_entries).collect::<Vec<_>>(),
    }))
}

// ---------------------------------------------------------------------------
// Aggregated discovery
// ---------------------------------------------------------------------------

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "version": version, "kind": kind})
}

/// `APIResourceDiscovery` (`k8s.io/api/apidiscovery/v2/types.go`).
fn aggregated_resource(r: &ResourceInfo) -> Value {
    let mut value = json!({
        "resource": r.plural,
        "responseKind": gvk(&r.group, &r.version, &r.kind),
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": strings(&r.verbs),
    });
    if !r.short_names.is_empty() {
        value["shortNames"] = strings(&r.short_names);
    }
    if !r.categories.is_empty() {
        value["categories"] = strings(&r.categories);
    }
    let mut subresources = Vec::new();
    if r.scale.is_some() {
        subresources.push(json!({
            "subresource": "scale",
            "responseKind": gvk("autoscaling", "v1", "Scale"),
            "verbs": subresource_verbs(),
        }));
    }
    if r.status {
        subresources.push(json!({
            "subresource": "status",
            "responseKind": gvk(&r.group, &r.version, &r.kind),
            "verbs": subresource_verbs(),
        }));
    }
    if !subresources.is_empty() {
        value["subresources"] = Value::Array(subresources);
    }
    value
}

/// `GET /api` (`core = true`) or `GET /apis` (`core = false`) in the
/// negotiated format. For the aggregated formats this is an
/// `APIGroupDiscoveryList` whose groups list their versions most preferred
/// first (client-go takes the first non-stale version as preferred); the
/// core group's entry has no name. Given [`DiscoveryFormat::Legacy`] it
/// returns the legacy document instead ([`api_group_list`], or for `/api` an
/// `APIVersions` whose server address is empty — use [`api_versions`] to
/// fill it in).
pub fn aggregated(resources: &[ResourceInfo], core: bool, format: &DiscoveryFormat) -> Value {
    let api_version = match format {
        DiscoveryFormat::Legacy if core => return api_versions(""),
        DiscoveryFormat::Legacy => return api_group_list(resources),
        DiscoveryFormat::AggregatedV2 => "apidiscovery.k8s.io/v2",
        DiscoveryFormat::AggregatedV2Beta1 => "apidiscovery.k8s.io/v2beta1",
    };
    let items: Vec<Value> = groups(resources, core)
        .iter()
        .map(|g| {
            let versions: Vec<Value> = g
                .versions
                .iter()
                .map(|v| {
                    json!({
                        "version": v,
                        "resources": resources_of(resources, g.name, v)
                            .into_iter()
                            .map(aggregated_resource)
                            .collect::<Vec<_>>(),
                        "freshness": "Current",
                    })
                })
                .collect();
            let metadata = if g.name.is_empty() {
                json!({})
            } else {
                json!({"name": g.name})
            };
            json!({"metadata": metadata, "versions": versions})
        })
        .collect();
    json!({
        "kind": DISCOVERY_LIST_KIND,
        "apiVersion": api_version,
        "metadata": {},
        "items": items,
    })
}

// ---------------------------------------------------------------------------
// OpenAPI: operations shared by v2 and v3
// ---------------------------------------------------------------------------

/// A parameter of an operation or path.
struct Param {
    name: &'static str,
    location: &'static str,
    ty: &'static str,
    description: &'static str,
    required: bool,
}

const fn query(name: &'static str, ty: &'static str, description: &'static str) -> Param {
    Param {
        name,
        location: "query",
        ty,
        description,
        required: false,
    }
}

const PRETTY: Param = query(
    "pretty",
    "string",
    "If 'true', the output is pretty printed.",
);
const DRY_RUN: Param = query(
    "dryRun",
    "string",
    "When present, the request is processed but not persisted. The only valid value is All.",
);
const FIELD_MANAGER: Param = query(
    "fieldManager",
    "string",
    "Name of the actor making the change, recorded in managedFields.",
);
const FIELD_VALIDATION: Param = query(
    "fieldValidation",
    "string",
    "How to treat unknown or duplicate fields in the request body: Ignore, Warn or Strict.",
);
const FORCE: Param = query(
    "force",
    "boolean",
    "Force an apply request to take ownership of conflicting fields. Only valid for apply patches.",
);
const GRACE_PERIOD: Param = query(
    "gracePeriodSeconds",
    "integer",
    "Seconds to wait before the object is deleted.",
);
const PROPAGATION_POLICY: Param = query(
    "propagationPolicy",
    "string",
    "Whether and how dependents are garbage collected: Orphan, Background or Foreground.",
);
const LIST_PARAMS: [Param; 7] = [
    query(
        "labelSelector",
        "string",
        "Only return objects whose labels match this selector.",
    ),
    query(
        "fieldSelector",
        "string",
        "Only return objects whose fields match this selector.",
    ),
    query(
        "limit",
        "integer",
        "Maximum number of objects to return in one page.",
    ),
    query(
        "continue",
        "string",
        "Token of the page to continue from, taken from a previous list.",
    ),
    query(
        "resourceVersion",
        "string",
        "Resource version the list is served from.",
    ),
    query(
        "resourceVersionMatch",
        "string",
        "How resourceVersion is interpreted: Exact or NotOlderThan.",
    ),
    query(
        "timeoutSeconds",
        "integer",
        "Time limit of the list or watch call.",
    ),
];
const WATCH_PARAMS: [Param; 3] = [
    query(
        "watch",
        "boolean",
        "Stream add, update and delete events instead of returning a list.",
    ),
    query(
        "allowWatchBookmarks",
        "boolean",
        "Ask for BOOKMARK events on a watch.",
    ),
    query(
        "sendInitialEvents",
        "boolean",
        "Start a watch with synthetic ADDED events for existing objects.",
    ),
];

const NAME_PARAM: Param = Param {
    name: "name",
    location: "path",
    ty: "string",
    description: "Name of the object.",
    required: true,
};
const NAMESPACE_PARAM: Param = Param {
    name: "namespace",
    location: "path",
    ty: "string",
    description: "Namespace of the object.",
    required: true,
};

/// What a request body holds.
enum Body {
    /// The object itself (create, replace), by component name.
    Object(String),
    /// A patch document.
    Patch,
    /// Optional `DeleteOptions`.
    DeleteOptions,
}

/// One operation on a path.
struct Operation {
    method: &'static str,
    action: &'static str,
    operation_id: String,
    description: String,
    tag: String,
    params: Vec<&'static Param>,
    body: Option<Body>,
    /// Success codes and the component name of the response body.
    responses: Vec<(&'static str, &'static str, String)>,
    /// GVK in `x-kubernetes-group-version-kind`.
    gvk: Value,
    /// PATCH only: the resource is built in (accepts strategic merge patch).
    builtin: bool,
    /// GET on a collection: also streams watch events.
    watch: bool,
}

struct PathSpec {
    path: String,
    params: Vec<&'static Param>,
    operations: Vec<Operation>,
}

/// Component (definition) name of a kind. Custom resources use the reversed
/// group as Kubernetes does for CRDs
/// (`k8s.io/apiextensions-apiserver/pkg/controller/openapi/builder/builder.go`);
/// built-in kinds follow the Go package naming of `k8s.io/api`.
fn schema_name(r: &ResourceInfo, kind: &str) -> String {
    let prefix = if r.crd {
        let mut labels: Vec<&str> = r.group.split('.').collect();
        labels.reverse();
        labels.join(".")
    } else if r.group.is_empty() {
        "io.k8s.api.core".to_string()
    } else if r.group == "apiextensions.k8s.io" {
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions".to_string()
    } else if r.group == "apiregistration.k8s.io" {
        "io.k8s.kube-aggregator.pkg.apis.apiregistration".to_string()
    } else {
        format!(
            "io.k8s.api.{}",
            r.group.split('.').next().unwrap_or_default()
        )
    };
    format!("{prefix}.{}.{kind}", r.version)
}

/// `AppsV1`, `CoreV1`, `RbacAuthorizationV1`, `ExampleComV1`: the group and
/// version part of Kubernetes operation ids.
fn operation_group(r: &ResourceInfo) -> String {
    let group = if r.group.is_empty() {
        "core"
    } else if r.crd {
        r.group.as_str()
    } else {
        r.group.strip_suffix(".k8s.io").unwrap_or(&r.group)
    };
    let mut out = String::new();
    for part in group
        .split(['.', '-'])
        .chain(std::iter::once(r.version.as_str()))
    {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        }
    }
    out
}

fn tag(r: &ResourceInfo) -> String {
    let group = if r.group.is_empty() {
        "core"
    } else {
        r.group.as_str()
    };
    format!("{group}_{}", r.version)
}

fn has_verb(r: &ResourceInfo, verb: &str) -> bool {
    r.verbs.iter().any(|v| v == verb)
}

/// The REST paths and operations of one resource, mirroring the routes the
/// Kubernetes server installs (`k8s.io/apiserver/pkg/endpoints/installer.go`),
/// without the deprecated `watch/` paths.
fn resource_paths(r: &ResourceInfo) -> Vec<PathSpec> {
    let root = if r.group.is_empty() {
        format!("/api/{}", r.version)
    } else {
        format!("/apis/{}/{}", r.group, r.version)
    };
    let scope = if r.namespaced { "Namespaced" } else { "" };
    let collection = if r.namespaced {
        format!("{root}/namespaces/{{namespace}}/{}", r.plural)
    } else {
        format!("{root}/{}", r.plural)
    };
    let item = format!("{collection}/{{name}}");
    let group_id = operation_group(r);
    let kind = r.kind.as_str();
    let kind_schema = schema_name(r, kind);
    let list_schema = schema_name(r, &r.list_kind);
    let kind_gvk = gvk(&r.group, &r.version, kind);
    let tag = tag(r);
    let op =
        |method: &'static str, action: &'static str, id: String, description: String| Operation {
            method,
            action,
            operation_id: id,
            description,
            tag: tag.clone(),
            params: Vec::new(),
            body: None,
            responses: Vec::new(),
            gvk: kind_gvk.clone(),
            builtin: !r.crd,
            watch: false,
        };
    let namespace_params: Vec<&'static Param> = if r.namespaced {
        vec![&NAMESPACE_PARAM, &PRETTY]
    } else {
        vec![&PRETTY]
    };
    let item_params: Vec<&'static Param> = if r.namespaced {
        vec![&NAME_PARAM, &NAMESPACE_PARAM, &PRETTY]
    } else {
        vec![&NAME_PARAM, &PRETTY]
    };
    let write_params = || vec![&DRY_RUN, &FIELD_MANAGER, &FIELD_VALIDATION];
    let patch_params = || vec![&DRY_RUN, &FIELD_MANAGER, &FIELD_VALIDATION, &FORCE];
    let list_params = |watch: bool| {
        let mut params: Vec<&'static Param> = LIST_PARAMS.iter().collect();
        if watch {
            params.extend(WATCH_PARAMS.iter());
        }
        params
    };

    let mut paths = Vec::new();

    // Collection.
    let mut ops = Vec::new();
    if has_verb(r, "list") {
        let mut o = op(
            "get",
            "list",
            format!("list{group_id}{scope}{kind}"),
            format!("List or watch {kind} objects."),
        );
        o.params = list_params(has_verb(r, "watch"));
        o.responses = vec![("200", "OK", list_schema.clone())];
        o.watch = has_verb(r, "watch");
        ops.push(o);
    }
    if has_verb(r, "create") {
        let mut o = op(
            "post",
            "post",
            format!("create{group_id}{scope}{kind}"),
            format!("Create a {kind}."),
        );
        o.params = write_params();
        o.body = Some(Body::Object(kind_schema.clone()));
        o.responses = vec![
            ("200", "OK", kind_schema.clone()),
            ("201", "Created", kind_schema.clone()),
            ("202", "Accepted", kind_schema.clone()),
        ];
        ops.push(o);
    }
    if has_verb(r, "deletecollection") {
        let mut o = op(
            "delete",
            "deletecollection",
            format!("deleteCollection{group_id}{scope}{kind}"),
            format!("Delete a collection of {kind} objects."),
        );
        o.params = vec![&DRY_RUN, &GRACE_PERIOD, &PROPAGATION_POLICY];
        o.params.extend(list_params(false));
        o.body = Some(Body::DeleteOptions);
        o.responses = vec![("200", "OK", STATUS.to_string())];
        ops.push(o);
    }
    if !ops.is_empty() {
        paths.push(PathSpec {
            path: collection.clone(),
            params: namespace_params,
            operations: ops,
        });
    }

    // Namespaced resources can also be listed across all namespaces.
    if r.namespaced && has_verb(r, "list") {
        let mut o = op(
            "get",
            "list",
            format!("list{group_id}{kind}ForAllNamespaces"),
            format!("List or watch {kind} objects in all namespaces."),
        );
        o.params = list_params(has_verb(r, "watch"));
        o.responses = vec![("200", "OK", list_schema.clone())];
        o.watch = has_verb(r, "watch");
        paths.push(PathSpec {
            path: format!("{root}/{}", r.plural),
            params: vec![&PRETTY],
            operations: vec![o],
        });
    }

    // Single object, then its subresources.
    let mut ops = Vec::new();
    if has_verb(r, "get") {
        let mut o = op(
            "get",
            "get",
            format!("read{group_id}{scope}{kind}"),
            format!("Read the named {kind}."),
        );
        o.responses = vec![("200", "OK", kind_schema.clone())];
        ops.push(o);
    }
    if has_verb(r, "update") {
        let mut o = op(
            "put",
            "put",
            format!("replace{group_id}{scope}{kind}"),
            format!("Replace the named {kind}."),
        );
        o.params = write_params();
        o.body = Some(Body::Object(kind_schema.clone()));
        o.responses = vec![
            ("200", "OK", kind_schema.clone()),
            ("201", "Created", kind_schema.clone()),
        ];
        ops.push(o);
    }
    if has_verb(r, "patch") {
        let mut o = op(
            "patch",
            "patch",
            format!("patch{group_id}{scope}{kind}"),
            format!("Partially update the named {kind}."),
        );
        o.params = patch_params();
        o.body = Some(Body::Patch);
        o.responses = vec![
            ("200", "OK", kind_schema.clone()),
            ("201", "Created", kind_schema.clone()),
        ];
        ops.push(o);
    }
    if has_verb(r, "delete") {
        let mut o = op(
            "delete",
            "delete",
            format!("delete{group_id}{scope}{kind}"),
            format!("Delete the named {kind}."),
        );
        o.params = vec![&DRY_RUN, &GRACE_PERIOD, &PROPAGATION_POLICY];
        o.body = Some(Body::DeleteOptions);
        o.responses = vec![
            ("200", "OK", STATUS.to_string()),
            ("202", "Accepted", STATUS.to_string()),
        ];
        ops.push(o);
    }
    if !ops.is_empty() {
        paths.push(PathSpec {
            path: item.clone(),
            params: item_params.clone(),
            operations: ops,
        });
    }

    let mut subresource = |sub: &str, schema: &str, sub_gvk: Value| {
        let suffix = if sub == "scale" { "Scale" } else { "Status" };
        let mut ops = Vec::new();
        for (method, action, verb, text) in [
            ("get", "get", "read", "Read"),
            ("put", "put", "replace", "Replace"),
            ("patch", "patch", "patch", "Partially update"),
        ] {
            let mut o = op(
                method,
                action,
                format!("{verb}{group_id}{scope}{kind}{suffix}"),
                format!("{text} the {sub} of the named {kind}."),
            );
            o.gvk = sub_gvk.clone();
            o.responses = vec![("200", "OK", schema.to_string())];
            match method {
                "put" => {
                    o.params = write_params();
                    o.body = Some(Body::Object(schema.to_string()));
                    o.responses.push(("201", "Created", schema.to_string()));
                }
                "patch" => {
                    o.params = patch_params();
                    o.body = Some(Body::Patch);
                    o.responses.push(("201", "Created", schema.to_string()));
                }
                _ => {}
            }
            ops.push(o);
        }
        paths.push(PathSpec {
            path: format!("{item}/{sub}"),
            params: item_params.clone(),
            operations: ops,
        });
    };
    if r.scale.is_some() {
        subresource("scale", SCALE, gvk("autoscaling", "v1", "Scale"));
    }
    if r.status {
        subresource("status", &kind_schema, kind_gvk.clone());
    }
    paths
}

fn all_paths(resources: &[&ResourceInfo]) -> Vec<PathSpec> {
    resources.iter().flat_map(|r| resource_paths(r)).collect()
}

/// Patch content types. Strategic merge patch is only offered by built-in
/// kinds; custom resources reject it (as in Kubernetes).
fn patch_types(builtin: bool) -> Vec<&'static str> {
    let mut types = vec![
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/apply-patch+yaml",
    ];
    if builtin {
        types.push("application/strategic-merge-patch+json");
    }
    types
}

// ---------------------------------------------------------------------------
// OpenAPI v3
// ---------------------------------------------------------------------------

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn v3_param(p: &Param) -> Value {
    let mut v = json!({
        "name": p.name,
        "in": p.location,
        "description": p.description,
        "schema": {"type": p.ty},
    });
    if p.required {
        v["required"] = json!(true);
    }
    v
}

fn v3_operation(o: &Operation) -> Value {
    let mut responses = Map::new();
    for (code, description, schema) in &o.responses {
        let mut content = Map::new();
        content.insert(
            "application/json".into(),
            json!({"schema": schema_ref(schema)}),
        );
        if o.watch {
            content.insert(
                "application/json;stream=watch".into(),
                json!({"schema": schema_ref(schema)}),
            );
        }
        responses.insert(
            (*code).into(),
            json!({"description": description, "content": content}),
        );
    }
    let mut v = json!({
        "description": o.description,
        "operationId": o.operation_id,
        "tags": [o.tag],
        "parameters": o.params.iter().map(|p| v3_param(p)).collect::<Vec<_>>(),
        "responses": responses,
        "x-kubernetes-action": o.action,
        "x-kubernetes-group-version-kind": o.gvk,
    });
    match &o.body {
        Some(Body::Object(schema)) => {
            v["requestBody"] = json!({
                "content": {"application/json": {"schema": schema_ref(schema)}},
                "required": true,
            });
        }
        Some(Body::Patch) => {
            // The component schemas of built-in kinds do not describe their
            // fields, so they cannot give kubectl the patch-merge keys it
            // needs to compute a strategic merge patch. Leaving that content
            // type out of the v3 request body makes kubectl fall back to its
            // compiled-in Go types for built-ins (`patchSimple` in
            // `k8s.io/kubectl/pkg/cmd/apply/patcher.go`); the server still
            // accepts strategic merge patches for them.
            let content: Map<String, Value> = patch_types(false)
                .into_iter()
                .map(|t| (t.to_string(), json!({"schema": schema_ref(PATCH)})))
                .collect();
            v["requestBody"] = json!({"content": content, "required": true});
        }
        Some(Body::DeleteOptions) => {
            v["requestBody"] = json!({
                "content": {"application/json": {"schema": schema_ref(DELETE_OPTIONS)}},
            });
        }
        None => {}
    }
    v
}

fn v3_paths(specs: &[PathSpec]) -> Map<String, Value> {
    specs
        .iter()
        .map(|spec| {
            let mut item = Map::new();
            for o in &spec.operations {
                item.insert(o.method.into(), v3_operation(o));
            }
            item.insert(
                "parameters".into(),
                Value::Array(spec.params.iter().map(|p| v3_param(p)).collect()),
            );
            (spec.path.clone(), Value::Object(item))
        })
        .collect()
}

fn string_property(description: &str) -> Value {
    json!({"type": "string", "description": description})
}

/// The `apiVersion`, `kind` and `metadata` properties every object has.
fn object_properties(meta: &str) -> Map<String, Value> {
    let mut props = Map::new();
    props.insert(
        "apiVersion".into(),
        string_property("Versioned schema of this representation of the object."),
    );
    props.insert(
        "kind".into(),
        string_property("REST resource this object represents, in CamelCase."),
    );
    props.insert(
        "metadata".into(),
        json!({"allOf": [schema_ref(meta)], "description": "Standard object metadata."}),
    );
    props
}

/// Component schema of a kind. For a CRD it is the version's
/// `openAPIV3Schema` with the standard `apiVersion`, `kind` and `metadata`
/// properties put in place (as `k8s.io/apiextensions-apiserver/pkg/controller/openapi/builder/builder.go`
/// does); a CRD without a schema, and every built-in kind, gets an object
/// schema that keeps unknown fields, so it documents the identity of the
/// kind without constraining its content.
fn kind_schema(r: &ResourceInfo) -> Value {
    let mut schema = match (&r.schema, r.crd) {
        (Some(Value::Object(s)), true) => s.clone(),
        _ => {
            let mut s = Map::new();
            s.insert(
                "description".into(),
                json!(format!(
                    "{} of {}.",
                    r.kind,
                    group_version(&r.group, &r.version)
                )),
            );
            s.insert("x-kubernetes-preserve-unknown-fields".into(), json!(true));
            s
        }
    };
    schema.insert("type".into(), json!("object"));
    let props = schema
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(props) = props {
        props.extend(object_properties(OBJECT_META));
    }
    schema.insert(
        "x-kubernetes-group-version-kind".into(),
        json!([gvk(&r.group, &r.version, &r.kind)]),
    );
    Value::Object(schema)
}

fn list_schema(r: &ResourceInfo) -> Value {
    let mut props = object_properties(LIST_META);
    props.insert(
        "items".into(),
        json!({
            "type": "array",
            "description": format!("The {} objects.", r.kind),
            "items": schema_ref(&schema_name(r, &r.kind)),
        }),
    );
    json!({
        "description": format!("{} is a list of {} objects.", r.list_kind, r.kind),
        "type": "object",
        "required": ["items"],
        "properties": props,
        "x-kubernetes-group-version-kind": [gvk(&r.group, &r.version, &r.list_kind)],
    })
}

fn open_object(description: &str) -> Value {
    json!({
        "description": description,
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// Schemas of `k8s.io/apimachinery/pkg/apis/meta/v1` types the operations
/// refer to: `ObjectMeta` and `ListMeta` with their common fields, the rest
/// as open objects.
fn meta_schemas() -> Vec<(&'static str, Value)> {
    let object_meta = json!({
        "description": "Metadata every persisted object has.",
        "type": "object",
        "properties": {
            "name": string_property("Name, unique within a namespace."),
            "generateName": string_property("Prefix the server uses to generate a name when none is given."),
            "namespace": string_property("Namespace the object belongs to."),
            "uid": string_property("Unique identifier assigned by the server."),
            "resourceVersion": string_property("Opaque version of the object, for concurrency control."),
            "generation": {"type": "integer", "format": "int64", "description": "Sequence number of changes to the desired state."},
            "creationTimestamp": {"type": "string", "format": "date-time", "description": "When the object was created."},
            "deletionTimestamp": {"type": "string", "format": "date-time", "description": "When the object is to be deleted."},
            "deletionGracePeriodSeconds": {"type": "integer", "format": "int64", "description": "Grace period before deletion."},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Labels for selecting objects."},
            "annotations": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Arbitrary non-identifying metadata."},
            "finalizers": {"type": "array", "items": {"type": "string"}, "description": "Conditions that must be cleared before the object is deleted."},
            "ownerReferences": {"type": "array", "items": open_object("Reference to an owning object."), "description": "Objects this object depends on."},
            "managedFields": {"type": "array", "items": open_object("Fields owned by one manager."), "description": "Field ownership, maintained by the server."},
        },
    });
    let list_meta = json!({
        "description": "Metadata of a list.",
        "type": "object",
        "properties": {
            "resourceVersion": string_property("Version of the list, for watching from it."),
            "continue": string_property("Token for the next page, if any."),
            "remainingItemCount": {"type": "integer", "format": "int64", "description": "Estimated number of further items."},
        },
    });
    vec![
        (OBJECT_META, object_meta),
        (LIST_META, list_meta),
        (
            STATUS,
            open_object("Result of an operation that returns no object."),
        ),
        (DELETE_OPTIONS, open_object("Options of a delete request.")),
        (
            PATCH,
            open_object("A patch document in one of the accepted patch formats."),
        ),
    ]
}

fn scale_schema() -> Value {
    json!({
        "description": "Scale of a resource that has a scale subresource.",
        "type": "object",
        "properties": {
            "apiVersion": string_property("Versioned schema of this representation of the object."),
            "kind": string_property("REST resource this object represents, in CamelCase."),
            "metadata": {"allOf": [schema_ref(OBJECT_META)], "description": "Standard object metadata."},
            "spec": {
                "type": "object",
                "description": "Desired scale.",
                "properties": {"replicas": {"type": "integer", "format": "int32", "description": "Desired number of instances."}},
            },
            "status": {
                "type": "object",
                "description": "Observed scale.",
                "properties": {
                    "replicas": {"type": "integer", "format": "int32", "description": "Observed number of instances."},
                    "selector": string_property("Label selector of the instances, in string form."),
                },
            },
        },
        "x-kubernetes-group-version-kind": [gvk("autoscaling", "v1", "Scale")],
    })
}

/// Key of a group-version in the `/openapi/v3` root: `api/v1` or `apis/{g}/{v}`
/// (`gvToAPIPath` in `k8s.io/client-go/openapi3/root.go`).
pub fn openapi_v3_key(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `GET /openapi/v3`: the index of per-group-version documents. Each
/// `serverRelativeURL` carries the hash of the current document, so clients
/// that cache documents by URL (kubectl's disk cache; the Kubernetes server
/// marks these responses `Cache-Control: public, immutable`) fetch a new one
/// whenever it changes.
pub fn openapi_v3_root(resources: &[ResourceInfo]) -> Value {
    let mut paths = Map::new();
    for core in [true, false] {
        for g in groups(resources, core) {
            for v in &g.versions {
                if let Some(doc) = openapi_v3_group_version(resources, g.name, v) {
                    let key = openapi_v3_key(g.name, v);
                    let url = format!("/openapi/v3/{key}?hash={}", document_hash(&doc));
                    paths.insert(key, json!({"serverRelativeURL": url}));
                }
            }
        }
    }
    json!({"paths": paths})
}

/// `GET /openapi/v3/api/v1` (group `""`) or `/openapi/v3/apis/{g}/{v}`: an
/// OpenAPI 3.0 document with the REST operations of that group-version and
/// the component schemas they refer to; `None` when nothing is served there.
pub fn openapi_v3_group_version(
    resources: &[ResourceInfo],
    group: &str,
    version: &str,
) -> Option<Value> {
    let list = resources_of(resources, group, version);
    if list.is_empty() {
        return None;
    }
    let mut schemas: BTreeMap<String, Value> = meta_schemas()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    for r in &list {
        schemas.insert(schema_name(r, &r.kind), kind_schema(r));
        schemas.insert(schema_name(r, &r.list_kind), list_schema(r));
        if r.scale.is_some() {
            schemas.insert(SCALE.to_string(), scale_schema());
        }
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "unversioned"},
        "paths": v3_paths(&all_paths(&list)),
        "components": {"schemas": schemas},
    }))
}

/// A stable digest of a JSON document (FNV-1a, 128 bits, upper-case hex),
/// for the `hash` query parameter of OpenAPI v3 URLs and for ETags.
pub fn document_hash(doc: &Value) -> String {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    let bytes = serde_json::to_vec(doc).unwrap_or_default();
    let hash = bytes
        .iter()
        .fold(OFFSET, |h, b| (h ^ u128::from(*b)).wrapping_mul(PRIME));
    format!("{hash:032X}")
}

// ---------------------------------------------------------------------------
// OpenAPI v2
// ---------------------------------------------------------------------------

fn v2_param(p: &Param) -> Value {
    let mut v = json!({
        "name": p.name,
        "in": p.location,
        "description": p.description,
        "type": p.ty,
    });
    if p.required {
        v["required"] = json!(true);
    }
    v
}

fn v2_operation(o: &Operation) -> Value {
    let mut params: Vec<Value> = o.params.iter().map(|p| v2_param(p)).collect();
    let consumes: Vec<&str> = match &o.body {
        Some(Body::Patch) => patch_types(o.builtin),
        _ => vec![CONTENT_TYPE_JSON],
    };
    match &o.body {
        Some(Body::DeleteOptions) => params.push(json!({
            "name": "body", "in": "body",
            "description": "Options of the delete request.",
            "schema": {"type": "object"},
        })),
        Some(_) => params.push(json!({
            "name": "body", "in": "body", "required": true,
            "description": "The object or patch to apply.",
            "schema": {"type": "object"},
        })),
        None => {}
    }
    let mut produces = vec![CONTENT_TYPE_JSON];
    if o.watch {
        produces.push("application/json;stream=watch");
    }
    let responses: Map<String, Value> = o
        .responses
        .iter()
        .map(|(code, description, _)| ((*code).to_string(), json!({"description": description})))
        .collect();
    json!({
        "description": o.description,
        "operationId": o.operation_id,
        "tags": [o.tag],
        "consumes": consumes,
        "produces": produces,
        "parameters": params,
        "responses": responses,
        "x-kubernetes-action": o.action,
        "x-kubernetes-group-version-kind": o.gvk,
    })
}

/// `GET /openapi/v2` as JSON: a Swagger 2.0 document with every REST
/// operation of every served group-version, each PATCH carrying
/// `x-kubernetes-group-version-kind` and the `fieldValidation` parameter (what
/// `supportsQueryParam` in `k8s.io/cli-runtime/pkg/resource/query_param_verifier.go`
/// looks for when OpenAPI v3 is unavailable).
///
/// `definitions` is deliberately empty. kubectl looks kinds up there for
/// client-side validation (only used when server-side field validation is
/// reported unsupported, e.g. for a `kind: List` file), for strategic merge
/// patch metadata, and for `explain --output=plaintext-openapiv2`. With no
/// definition it skips client-side validation (`validateResource` in
/// `k8s.io/kubectl/pkg/validation/validation.go`) and computes patches from
/// its compiled-in types; a definition without field details would instead
/// make it print a warning and fall back on every apply. Bodies are
/// therefore described inline as plain objects.
pub fn openapi_v2(resources: &[ResourceInfo]) -> Value {
    let mut ordered: Vec<&ResourceInfo> = Vec::new();
    for core in [true, false] {
        for g in groups(resources, core) {
            for v in &g.versions {
                ordered.extend(resources_of(resources, g.name, v));
            }
        }
    }
    let paths: Map<String, Value> = all_paths(&ordered)
        .iter()
        .map(|spec| {
            let mut item = Map::new();
            for o in &spec.operations {
                item.insert(o.method.into(), v2_operation(o));
            }
            item.insert(
                "parameters".into(),
                Value::Array(spec.params.iter().map(|p| v2_param(p)).collect()),
            );
            (spec.path.clone(), Value::Object(item))
        })
        .collect();
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "unversioned"},
        "paths": paths,
        "definitions": {},
    })
}

/// `GET /openapi/v2` as protobuf: [`openapi_v2`] encoded as the gnostic
/// `openapi.v2.Document` message (`github.com/google/gnostic-models/openapiv2/OpenAPIv2.proto`).
pub fn openapi_v2_protobuf(resources: &[ResourceInfo]) -> Vec<u8> {
    pb::document(&openapi_v2(resources))
}

/// A minimal protobuf writer for the subset of Swagger 2.0 that
/// [`openapi_v2`] produces. Field numbers are those of `OpenAPIv2.proto`;
/// vendor extensions become `NamedAny` entries whose `Any.yaml` holds the
/// value as JSON text (which YAML parsers read unchanged, as kubectl does with
/// `x-kubernetes-group-version-kind`). Keywords outside that subset (numeric
/// limits, `enum`, `default`, `example`, header and form parameters) are not
/// encoded.
mod pb {
    use serde_json::{Map, Value};

    #[derive(Default)]
    struct Writer(Vec<u8>);

    impl Writer {
        fn varint(&mut self, mut v: u64) {
            loop {
                let byte = (v & 0x7f) as u8;
                v >>= 7;
                if v == 0 {
                    self.0.push(byte);
                    return;
                }
                self.0.push(byte | 0x80);
            }
        }

        fn tag(&mut self, field: u32, wire_type: u8) {
            self.varint((u64::from(field) << 3) | u64::from(wire_type));
        }

        fn bytes(&mut self, field: u32, bytes: &[u8]) {
            self.tag(field, 2);
            self.varint(bytes.len() as u64);
            self.0.extend_from_slice(bytes);
        }

        /// A proto3 string; the empty string is the default and is omitted.
        fn string(&mut self, field: u32, value: Option<&Value>) {
            if let Some(s) = value.and_then(Value::as_str).filter(|s| !s.is_empty()) {
                self.bytes(field, s.as_bytes());
            }
        }

        fn strings(&mut self, field: u32, value: Option<&Value>) {
            match value {
                Some(Value::Array(items)) => {
                    for item in items {
                        self.string(field, Some(item));
                    }
                }
                Some(v @ Value::String(_)) => self.string(field, Some(v)),
                _ => {}
            }
        }

        fn boolean(&mut self, field: u32, value: Option<&Value>) {
            if value.and_then(Value::as_bool) == Some(true) {
                self.tag(field, 0);
                self.varint(1);
            }
        }

        fn message(&mut self, field: u32, body: Writer) {
            self.bytes(field, &body.0);
        }

        /// `repeated NamedAny vendor_extension` from the `x-` keys of `obj`.
        fn extensions(&mut self, field: u32, obj: &Map<String, Value>) {
            for (key, value) in obj.iter().filter(|(k, _)| k.starts_with("x-")) {
                let mut any = Writer::default();
                any.bytes(2, value.to_string().as_bytes());
                let mut named = Writer::default();
                named.bytes(1, key.as_bytes());
                named.message(2, any);
                self.message(field, named);
            }
        }
    }

    fn object(value: Option<&Value>) -> Option<&Map<String, Value>> {
        value.and_then(Value::as_object)
    }

    pub(super) fn document(doc: &Value) -> Vec<u8> {
        let mut w = Writer::default();
        let Some(obj) = doc.as_object() else {
            return w.0;
        };
        w.string(1, obj.get("swagger"));
        if let Some(info) = object(obj.get("info")) {
            let mut i = Writer::default();
            i.string(1, info.get("title"));
            i.string(2, info.get("version"));
            i.string(3, info.get("description"));
            i.extensions(7, info);
            w.message(2, i);
        }
        w.string(3, obj.get("host"));
        w.string(4, obj.get("basePath"));
        w.strings(5, obj.get("schemes"));
        w.strings(6, obj.get("consumes"));
        w.strings(7, obj.get("produces"));
        if let Some(paths) = object(obj.get("paths")) {
            let mut p = Writer::default();
            p.extensions(1, paths);
            for (path, item) in paths.iter().filter(|(k, _)| !k.starts_with("x-")) {
                let mut named = Writer::default();
                named.bytes(1, path.as_bytes());
                named.message(2, path_item(item));
                p.message(2, named);
            }
            w.message(8, p);
        }
        if let Some(definitions) = object(obj.get("definitions")) {
            let mut d = Writer::default();
            for (name, s) in definitions {
                d.message(1, named_schema(name, s));
            }
            w.message(9, d);
        }
        w.extensions(16, obj);
        w.0
    }

    fn path_item(item: &Value) -> Writer {
        let mut w = Writer::default();
        let Some(obj) = item.as_object() else {
            return w;
        };
        w.string(1, obj.get("$ref"));
        for (field, method) in [
            (2, "get"),
            (3, "put"),
            (4, "post"),
            (5, "delete"),
            (6, "options"),
            (7, "head"),
            (8, "patch"),
        ] {
            if let Some(op) = object(obj.get(method)) {
                w.message(field, operation(op));
            }
        }
        parameters(&mut w, 9, obj.get("parameters"));
        w.extensions(10, obj);
        w
    }

    fn operation(op: &Map<String, Value>) -> Writer {
        let mut w = Writer::default();
        w.strings(1, op.get("tags"));
        w.string(2, op.get("summary"));
        w.string(3, op.get("description"));
        w.string(5, op.get("operationId"));
        w.strings(6, op.get("produces"));
        w.strings(7, op.get("consumes"));
        parameters(&mut w, 8, op.get("parameters"));
        if let Some(responses) = object(op.get("responses")) {
            w.message(9, responses_message(responses));
        }
        w.strings(10, op.get("schemes"));
        w.boolean(11, op.get("deprecated"));
        w.extensions(13, op);
        w
    }

    /// `repeated ParametersItem`.
    fn parameters(w: &mut Writer, field: u32, list: Option<&Value>) {
        let Some(Value::Array(list)) = list else {
            return;
        };
        for p in list.iter().filter_map(Value::as_object) {
            let mut item = Writer::default();
            if p.contains_key("$ref") {
                let mut reference = Writer::default();
                reference.string(1, p.get("$ref"));
                reference.string(2, p.get("description"));
                item.message(2, reference);
            } else {
                item.message(1, parameter(p));
            }
            w.message(field, item);
        }
    }

    /// `Parameter`: a `BodyParameter`, or a `NonBodyParameter` holding a
    /// query or path sub-schema.
    fn parameter(p: &Map<String, Value>) -> Writer {
        let mut w = Writer::default();
        match p.get("in").and_then(Value::as_str) {
            Some("body") => {
                let mut b = Writer::default();
                b.string(1, p.get("description"));
                b.string(2, p.get("name"));
                b.string(3, p.get("in"));
                b.boolean(4, p.get("required"));
                if let Some(s) = p.get("schema") {
                    b.message(5, schema(s));
                }
                b.extensions(6, p);
                w.message(1, b);
            }
            Some("query") => {
                let mut q = Writer::default();
                q.boolean(1, p.get("required"));
                q.string(2, p.get("in"));
                q.string(3, p.get("description"));
                q.string(4, p.get("name"));
                q.string(6, p.get("type"));
                q.string(7, p.get("format"));
                q.boolean(20, p.get("uniqueItems"));
                q.extensions(23, p);
                let mut non_body = Writer::default();
                non_body.message(3, q);
                w.message(2, non_body);
            }
            Some("path") => {
                let mut q = Writer::default();
                q.boolean(1, p.get("required"));
                q.string(2, p.get("in"));
                q.string(3, p.get("description"));
                q.string(4, p.get("name"));
                q.string(5, p.get("type"));
                q.string(6, p.get("format"));
                q.boolean(19, p.get("uniqueItems"));
                q.extensions(22, p);
                let mut non_body = Writer::default();
                non_body.message(4, q);
                w.message(2, non_body);
            }
            _ => {}
        }
        w
    }

    fn responses_message(responses: &Map<String, Value>) -> Writer {
        let mut w = Writer::default();
        for (code, value) in responses.iter().filter(|(k, _)| !k.starts_with("x-")) {
            let Some(r) = value.as_object() else {
                continue;
            };
            let mut response_value = Writer::default();
            if r.contains_key("$ref") {
                let mut reference = Writer::default();
                reference.string(1, r.get("$ref"));
                response_value.message(2, reference);
            } else {
                let mut response = Writer::default();
                response.string(1, r.get("description"));
                if let Some(s) = r.get("schema") {
                    let mut schema_item = Writer::default();
                    schema_item.message(1, schema(s));
                    response.message(2, schema_item);
                }
                response.extensions(5, r);
                response_value.message(1, response);
            }
            let mut named = Writer::default();
            named.bytes(1, code.as_bytes());
            named.message(2, response_value);
            w.message(1, named);
        }
        w.extensions(2, responses);
        w
    }

    fn named_schema(name: &str, s: &Value) -> Writer {
        let mut named = Writer::default();
        named.bytes(1, name.as_bytes());
        named.message(2, schema(s));
        named
    }

    fn schema(s: &Value) -> Writer {
        let mut w = Writer::default();
        let Some(obj) = s.as_object() else {
            return w;
        };
        w.string(1, obj.get("$ref"));
        w.string(2, obj.get("format"));
        w.string(3, obj.get("title"));
        w.string(4, obj.get("description"));
        w.strings(19, obj.get("required"));
        match obj.get("additionalProperties") {
            Some(Value::Bool(b)) => {
                let mut a = Writer::default();
                a.tag(2, 0);
                a.varint(u64::from(*b));
                w.message(21, a);
            }
            Some(v @ Value::Object(_)) => {
                let mut a = Writer::default();
                a.message(1, schema(v));
                w.message(21, a);
            }
            _ => {}
        }
        if obj.contains_key("type") {
            let mut t = Writer::default();
            t.strings(1, obj.get("type"));
            w.message(22, t);
        }
        match obj.get("items") {
            Some(Value::Array(items)) => {
                let mut i = Writer::default();
                for item in items {
                    i.message(1, schema(item));
                }
                w.message(23, i);
            }
            Some(item @ Value::Object(_)) => {
                let mut i = Writer::default();
                i.message(1, schema(item));
                w.message(23, i);
            }
            _ => {}
        }
        if let Some(Value::Array(all_of)) = obj.get("allOf") {
            for item in all_of {
                w.message(24, schema(item));
            }
        }
        if let Some(props) = object(obj.get("properties")) {
            let mut p = Writer::default();
            for (name, s) in props {
                p.message(1, named_schema(name, s));
            }
            w.message(25, p);
        }
        w.boolean(27, obj.get("readOnly"));
        w.extensions(31, obj);
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{ScaleInfo, standard_verbs};

    /// Accept headers real clients send to `/api` and `/apis`.
    const CLIENT_GO_1_27: &str = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
    const CLIENT_GO_1_30: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
    const CLIENT_GO_NOPEER: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList;profile=nopeer,application/json";
    const LEGACY_CLIENT: &str = "application/json, */*";
    const OPENAPI_V2_CLIENT_GO: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

    fn resource(
        group: &str,
        version: &str,
        plural: &str,
        kind: &str,
        namespaced: bool,
    ) -> ResourceInfo {
        ResourceInfo {
            group: group.into(),
            version: version.into(),
            plural: plural.into(),
            singular: kind.to_lowercase(),
            kind: kind.into(),
            list_kind: format!("{kind}List"),
            namespaced,
            short_names: vec![],
            categories: vec![],
            verbs: standard_verbs(),
            status: false,
            scale: None,
            crd: false,
            storage_version: version.into(),
            schema: None,
            printer_columns: vec![],
            selectable_fields: vec![],
        }
    }

    fn widget_schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {"size": {"type": "integer", "description": "How big."}},
                },
                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            },
        })
    }

    /// Core pods with status, apps deployments with status and scale, a
    /// namespaced CRD served at two versions (listed worst-first) and a
    /// cluster-scoped CRD.
    fn registry() -> Vec<ResourceInfo> {
        let mut pods = resource("", "v1", "pods", "Pod", true);
        pods.status = true;
        pods.short_names = vec!["po".into()];
        pods.categories = vec!["all".into()];
        let mut deployments = resource("apps", "v1", "deployments", "Deployment", true);
        deployments.status = true;
        deployments.scale = Some(ScaleInfo::builtin());
        deployments.short_names = vec!["deploy".into()];
        let mut out = vec![pods, deployments];
        for version in ["v1beta1", "v1"] {
            let mut w = resource("example.com", version, "widgets", "Widget", true);
            w.crd = true;
            w.status = true;
            w.scale = Some(ScaleInfo {
                spec_replicas_path: ".spec.replicas".into(),
                status_replicas_path: ".status.replicas".into(),
                label_selector_path: None,
            });
            w.short_names = vec!["wd".into()];
            w.categories = vec!["all".into()];
            w.storage_version = "v1".into();
            w.schema = Some(widget_schema());
            out.push(w);
        }
        let mut gadgets = resource("example.com", "v1", "gadgets", "Gadget", false);
        gadgets.crd = true;
        out.push(gadgets);
        out
    }

    /// Parses a Content-Type the way client-go's `ContentTypeIsGVK` does.
    fn gvk_params(content_type: &str) -> (String, Vec<(String, String)>) {
        let mut parts = content_type.split(';');
        let base = parts.next().unwrap().trim().to_string();
        let params = parts
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap();
                (k.trim().to_string(), v.trim().to_string())
            })
            .collect();
        (base, params)
    }

    #[test]
    fn negotiates_what_clients_send() {
        assert_eq!(
            negotiate(Some(CLIENT_GO_1_27)),
            DiscoveryFormat::AggregatedV2Beta1
        );
        assert_eq!(
            negotiate(Some(CLIENT_GO_1_30)),
            DiscoveryFormat::AggregatedV2
        );
        assert_eq!(
            negotiate(Some(CLIENT_GO_NOPEER)),
            DiscoveryFormat::AggregatedV2
        );
        assert_eq!(negotiate(Some(LEGACY_CLIENT)), DiscoveryFormat::Legacy);
        assert_eq!(negotiate(Some("application/json")), DiscoveryFormat::Legacy);
        assert_eq!(
            negotiate(Some("application/json; charset=utf-8")),
            DiscoveryFormat::Legacy
        );
        assert_eq!(negotiate(Some("*/*")), DiscoveryFormat::Legacy);
        assert_eq!(negotiate(None), DiscoveryFormat::Legacy);
        assert_eq!(negotiate(Some("  ")), DiscoveryFormat::Legacy);
    }

    #[test]
    fn negotiation_skips_unproducible_ranges() {
        // Protobuf aggregated discovery is skipped in favour of the JSON form.
        let header = "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
        assert_eq!(negotiate(Some(header)), DiscoveryFormat::AggregatedV2);
        // Unknown aggregated versions and other kinds are not discovery.
        let header =
            "application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList,application/json";
        assert_eq!(negotiate(Some(header)), DiscoveryFormat::Legacy);
        assert_eq!(
            negotiate_strict(Some("application/json;as=Table;g=meta.k8s.io;v=v1")),
            None
        );
        assert_eq!(
            negotiate_strict(Some("application/vnd.kubernetes.protobuf")),
            None
        );
        assert_eq!(negotiate_strict(Some("text/html")), None);
        assert_eq!(negotiate(Some("text/html")), DiscoveryFormat::Legacy);
        // Quality values order the ranges; q=0 excludes one.
        let header = "application/json;q=0.5,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";
        assert_eq!(negotiate(Some(header)), DiscoveryFormat::AggregatedV2Beta1);
        let header = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList;q=0,application/json";
        assert_eq!(negotiate(Some(header)), DiscoveryFormat::Legacy);
    }

    #[test]
    fn content_types_carry_the_gvk_client_go_checks() {
        assert_eq!(content_type(&DiscoveryFormat::Legacy), "application/json");
        for (format, version) in [
            (DiscoveryFormat::AggregatedV2, "v2"),
            (DiscoveryFormat::AggregatedV2Beta1, "v2beta1"),
        ] {
            let (base, params) = gvk_params(content_type(&format));
            assert_eq!(base, "application/json");
            let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
            assert_eq!(get("g"), Some("apidiscovery.k8s.io"));
            assert_eq!(get("v"), Some(version));
            assert_eq!(get("as"), Some("APIGroupDiscoveryList"));
            // The answer's own content type negotiates to the same format.
            assert_eq!(negotiate(Some(content_type(&format))), format);
        }
    }

    #[test]
    fn negotiates_openapi_v2() {
        assert_eq!(
            negotiate_openapi_v2(Some(OPENAPI_V2_CLIENT_GO)),
            Some(OpenApiV2Format::Protobuf)
        );
        assert_eq!(
            negotiate_openapi_v2(Some(CONTENT_TYPE_OPENAPI_V2_PROTOBUF)),
            Some(OpenApiV2Format::Protobuf)
        );
        assert_eq!(
            negotiate_openapi_v2(Some("application/json")),
            Some(OpenApiV2Format::Json)
        );
        assert_eq!(
            negotiate_openapi_v2(Some(LEGACY_CLIENT)),
            Some(OpenApiV2Format::Json)
        );
        assert_eq!(negotiate_openapi_v2(None), Some(OpenApiV2Format::Json));
        assert_eq!(negotiate_openapi_v2(Some("application/yaml")), None);
        assert_eq!(
            openapi_v2_content_type(&OpenApiV2Format::Protobuf),
            "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
        );
        assert_eq!(
            openapi_v2_content_type(&OpenApiV2Format::Json),
            "application/json"
        );
    }

    #[test]
    fn json_acceptance() {
        assert!(accepts_json(None));
        assert!(accepts_json(Some("application/json")));
        assert!(accepts_json(Some(LEGACY_CLIENT)));
        assert!(accepts_json(Some("application/*")));
        assert!(!accepts_json(Some(
            "application/com.github.proto-openapi.spec.v3.v1.0+protobuf"
        )));
        assert!(!accepts_json(Some("application/json;q=0")));
    }

    #[test]
    fn api_versions_document() {
        let doc = api_versions("10.0.0.1:6443");
        assert_eq!(doc["kind"], "APIVersions");
        assert_eq!(doc["versions"], json!(["v1"]));
        assert_eq!(
            doc["serverAddressByClientCIDRs"],
            json!([{"clientCIDR": "0.0.0.0/0", "serverAddress": "10.0.0.1:6443"}])
        );
    }

    #[test]
    fn group_list_orders_versions_and_prefers_the_first() {
        let doc = api_group_list(&registry());
        assert_eq!(doc["kind"], "APIGroupList");
        assert_eq!(doc["apiVersion"], "v1");
        let groups = doc["groups"].as_array().unwrap();
        let names: Vec<&str> = groups.iter().map(|g| g["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["apps", "example.com"]);
        assert_eq!(
            groups[1]["versions"],
            json!([
                {"groupVersion": "example.com/v1", "version": "v1"},
                {"groupVersion": "example.com/v1beta1", "version": "v1beta1"},
            ])
        );
        assert_eq!(
            groups[1]["preferredVersion"],
            json!({"groupVersion": "example.com/v1", "version": "v1"})
        );
    }

    #[test]
    fn version_preference_follows_kube_version_order() {
        let mut reg = Vec::new();
        for v in ["v1alpha1", "v2beta1", "v1", "v1beta2", "v1beta1"] {
            let mut r = resource("example.com", v, "things", "Thing", true);
            r.crd = true;
            reg.push(r);
        }
        let doc = api_group(&reg, "example.com").unwrap();
        let versions: Vec<&str> = doc["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_str().unwrap())
            .collect();
        assert_eq!(
            versions,
            ["v1", "v2beta1", "v1beta2", "v1beta1", "v1alpha1"]
        );
        assert_eq!(doc["preferredVersion"]["version"], "v1");
        let agg = aggregated(&reg, false, &DiscoveryFormat::AggregatedV2);
        assert_eq!(agg["items"][0]["versions"][0]["version"], "v1");
        assert_eq!(agg["items"][0]["versions"][4]["version"], "v1alpha1");
    }

    #[test]
    fn api_group_document() {
        let reg = registry();
        let doc = api_group(&reg, "apps").unwrap();
        assert_eq!(doc["kind"], "APIGroup");
        assert_eq!(doc["apiVersion"], "v1");
        assert_eq!(doc["name"], "apps");
        assert_eq!(
            doc["preferredVersion"],
            json!({"groupVersion": "apps/v1", "version": "v1"})
        );
        assert!(api_group(&reg, "").is_none());
        assert!(api_group(&reg, "batch").is_none());
    }

    #[test]
    fn resource_lists_include_subresources() {
        let reg = registry();
        let core = api_resource_list(&reg, "", "v1").unwrap();
        assert_eq!(core["kind"], "APIResourceList");
        assert_eq!(core["groupVersion"], "v1");
        assert_eq!(
            core["resources"],
            json!([
                {
                    "name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod",
                    "verbs": standard_verbs(), "shortNames": ["po"], "categories": ["all"],
                },
                {
                    "name": "pods/status", "singularName": "", "namespaced": true, "kind": "Pod",
                    "verbs": ["get", "patch", "update"],
                },
            ])
        );

        let apps = api_resource_list(&reg, "apps", "v1").unwrap();
        assert_eq!(apps["groupVersion"], "apps/v1");
        let resources = apps["resources"].as_array().unwrap();
        let names: Vec<&str> = resources
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["deployments", "deployments/scale", "deployments/status"]
        );
        assert!(resources[0].get("categories").is_none());
        assert_eq!(resources[1]["group"], "autoscaling");
        assert_eq!(resources[1]["version"], "v1");
        assert_eq!(resources[1]["kind"], "Scale");
        assert_eq!(resources[1]["verbs"], json!(["get", "patch", "update"]));
        assert!(resources[2].get("group").is_none());
        assert_eq!(resources[2]["kind"], "Deployment");

        let crd = api_resource_list(&reg, "example.com", "v1beta1").unwrap();
        let names: Vec<&str> = crd["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["widgets", "widgets/scale", "widgets/status"]);
        let cluster = api_resource_list(&reg, "example.com", "v1").unwrap();
        assert_eq!(cluster["resources"][0]["name"], "gadgets");
        assert_eq!(cluster["resources"][0]["namespaced"], false);

        assert!(api_resource_list(&reg, "apps", "v1beta1").is_none());
        assert!(api_resource_list(&reg, "batch", "v1").is_none());
    }

    #[test]
    fn aggregated_core_group() {
        let doc = aggregated(&registry(), true, &DiscoveryFormat::AggregatedV2);
        assert_eq!(doc["kind"], "APIGroupDiscoveryList");
        assert_eq!(doc["apiVersion"], "apidiscovery.k8s.io/v2");
        let items = doc["items"].as_array().unwrap();
        assert_eq!(items.len(), 1);
        assert!(items[0]["metadata"].get("name").is_none());
        let version = &items[0]["versions"][0];
        assert_eq!(version["version"], "v1");
        assert_eq!(version["freshness"], "Current");
        assert_eq!(
            version["resources"],
            json!([{
                "resource": "pods",
                "responseKind": {"group": "", "version": "v1", "kind": "Pod"},
                "scope": "Namespaced",
                "singularResource": "pod",
                "verbs": standard_verbs(),
                "shortNames": ["po"],
                "categories": ["all"],
                "subresources": [{
                    "subresource": "status",
                    "responseKind": {"group": "", "version": "v1", "kind": "Pod"},
                    "verbs": ["get", "patch", "update"],
                }],
            }])
        );
    }

    #[test]
    fn aggregated_groups() {
        let reg = registry();
        let doc = aggregated(&reg, false, &DiscoveryFormat::AggregatedV2);
        let items = doc["items"].as_array().unwrap();
        let names: Vec<&str> = items
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["apps", "example.com"]);

        let deployments = &items[0]["versions"][0]["resources"][0];
        assert_eq!(deployments["resource"], "deployments");
        assert_eq!(
            deployments["subresources"],
            json!([
                {
                    "subresource": "scale",
                    "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
                    "verbs": ["get", "patch", "update"],
                },
                {
                    "subresource": "status",
                    "responseKind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                    "verbs": ["get", "patch", "update"],
                },
            ])
        );

        let example = &items[1]["versions"];
        assert_eq!(example[0]["version"], "v1");
        assert_eq!(example[1]["version"], "v1beta1");
        let v1: Vec<&str> = example[0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["resource"].as_str().unwrap())
            .collect();
        assert_eq!(v1, ["gadgets", "widgets"]);
        let gadgets = &example[0]["resources"][0];
        assert_eq!(gadgets["scope"], "Cluster");
        assert!(gadgets.get("subresources").is_none());
        assert!(gadgets.get("shortNames").is_none());
        let widgets = &example[1]["resources"][0];
        assert_eq!(
            widgets["responseKind"],
            json!({"group": "example.com", "version": "v1beta1", "kind": "Widget"})
        );

        let beta = aggregated(&reg, false, &DiscoveryFormat::AggregatedV2Beta1);
        assert_eq!(beta["apiVersion"], "apidiscovery.k8s.io/v2beta1");
        assert_eq!(beta["items"], doc["items"]);
    }

    #[test]
    fn aggregated_given_legacy_returns_legacy_documents() {
        let reg = registry();
        assert_eq!(
            aggregated(&reg, false, &DiscoveryFormat::Legacy),
            api_group_list(&reg)
        );
        assert_eq!(
            aggregated(&reg, true, &DiscoveryFormat::Legacy)["kind"],
            "APIVersions"
        );
    }

    /// The PATCH operation kubectl's field-validation verifier looks for.
    fn patch_operation<'a>(doc: &'a Value, path: &str) -> &'a Value {
        &doc["paths"][path]["patch"]
    }

    fn has_query_param(op: &Value, name: &str) -> bool {
        op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == name && p["in"] == "query")
    }

    #[test]
    fn openapi_v3_root_lists_every_group_version() {
        let reg = registry();
        let root = openapi_v3_root(&reg);
        let paths = root["paths"].as_object().unwrap();
        let keys: Vec<&str> = paths.keys().map(String::as_str).collect();
        assert_eq!(
            keys.len(),
            4,
            "api/v1, apis/apps/v1, apis/example.com/v1, apis/example.com/v1beta1: {keys:?}"
        );
        for (key, group, version) in [
            ("api/v1", "", "v1"),
            ("apis/apps/v1", "apps", "v1"),
            ("apis/example.com/v1", "example.com", "v1"),
            ("apis/example.com/v1beta1", "example.com", "v1beta1"),
        ] {
            let doc = openapi_v3_group_version(&reg, group, version).unwrap();
            assert_eq!(
                paths[key]["serverRelativeURL"],
                format!("/openapi/v3/{key}?hash={}", document_hash(&doc))
            );
        }
        assert_eq!(openapi_v3_root(&reg), root, "stable across calls");

        // Changing a CRD schema changes the URL of its document only.
        let mut changed = reg.clone();
        changed[3].schema = Some(json!({"type": "object"}));
        let root2 = openapi_v3_root(&changed);
        assert_ne!(
            root2["paths"]["apis/example.com/v1"],
            root["paths"]["apis/example.com/v1"]
        );
        assert_eq!(
            root2["paths"]["apis/apps/v1"],
            root["paths"]["apis/apps/v1"]
        );
    }

    #[test]
    fn openapi_v3_builtin_group_version() {
        let reg = registry();
        let doc = openapi_v3_group_version(&reg, "apps", "v1").unwrap();
        assert_eq!(doc["openapi"], "3.0.0");
        let item = "/apis/apps/v1/namespaces/{namespace}/deployments/{name}";
        let patch = patch_operation(&doc, item);
        assert_eq!(
            patch["x-kubernetes-group-version-kind"],
            json!({"group": "apps", "version": "v1", "kind": "Deployment"})
        );
        for name in ["fieldValidation", "dryRun", "fieldManager", "force"] {
            assert!(has_query_param(patch, name), "{name}");
        }
        let content = patch["requestBody"]["content"].as_object().unwrap();
        assert!(content.contains_key("application/merge-patch+json"));
        assert!(content.contains_key("application/apply-patch+yaml"));
        assert!(!content.contains_key("application/strategic-merge-patch+json"));
        for method in ["get", "put", "delete"] {
            assert!(doc["paths"][item].get(method).is_some(), "{method}");
        }
        let create = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"]["post"];
        assert!(has_query_param(create, "fieldValidation"));
        assert!(doc["paths"]["/apis/apps/v1/deployments"]["get"].is_object());

        let scale = patch_operation(&doc, &format!("{item}/scale"));
        assert_eq!(
            scale["x-kubernetes-group-version-kind"],
            json!({"group": "autoscaling", "version": "v1", "kind": "Scale"})
        );
        let status = patch_operation(&doc, &format!("{item}/status"));
        assert!(has_query_param(status, "fieldValidation"));

        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let deployment = &schemas["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(
            deployment["x-kubernetes-group-version-kind"],
            json!([{"group": "apps", "version": "v1", "kind": "Deployment"}])
        );
        assert_eq!(deployment["x-kubernetes-preserve-unknown-fields"], true);
        assert_eq!(
            deployment["properties"]["metadata"]["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
        assert_eq!(
            schemas["io.k8s.api.apps.v1.DeploymentList"]["x-kubernetes-group-version-kind"][0]["kind"],
            "DeploymentList"
        );
        assert!(schemas.contains_key(SCALE));

        // Every reference resolves within the document.
        let text = serde_json::to_string(&doc).unwrap();
        for part in text.split("\"#/components/schemas/").skip(1) {
            let name = &part[..part.find('"').unwrap()];
            assert!(schemas.contains_key(name), "dangling reference {name}");
        }

        let core = openapi_v3_group_version(&reg, "", "v1").unwrap();
        let pod_patch = patch_operation(&core, "/api/v1/namespaces/{namespace}/pods/{name}");
        assert_eq!(
            pod_patch["x-kubernetes-group-version-kind"],
            json!({"group": "", "version": "v1", "kind": "Pod"})
        );
        assert!(core["components"]["schemas"]["io.k8s.api.core.v1.Pod"].is_object());
        assert!(openapi_v3_group_version(&reg, "batch", "v1").is_none());
    }

    #[test]
    fn openapi_v3_crd_group_version() {
        let reg = registry();
        let doc = openapi_v3_group_version(&reg, "example.com", "v1").unwrap();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let widget = &schemas["com.example.v1.Widget"];
        assert_eq!(widget["type"], "object");
        assert_eq!(
            widget["properties"]["spec"]["properties"]["size"]["type"],
            "integer"
        );
        assert_eq!(widget["properties"]["apiVersion"]["type"], "string");
        assert_eq!(widget["properties"]["kind"]["type"], "string");
        assert!(widget["properties"]["metadata"]["allOf"].is_array());
        assert_eq!(
            widget["x-kubernetes-group-version-kind"],
            json!([{"group": "example.com", "version": "v1", "kind": "Widget"}])
        );
        assert!(widget.get("x-kubernetes-preserve-unknown-fields").is_none());
        // A CRD without a schema keeps unknown fields.
        assert_eq!(
            schemas["com.example.v1.Gadget"]["x-kubernetes-preserve-unknown-fields"],
            true
        );

        let patch = patch_operation(
            &doc,
            "/apis/example.com/v1/namespaces/{namespace}/widgets/{name}",
        );
        assert!(has_query_param(patch, "fieldValidation"));
        let content = patch["requestBody"]["content"].as_object().unwrap();
        assert!(!content.contains_key("application/strategic-merge-patch+json"));

        // Cluster-scoped: no namespace segment, no all-namespaces list.
        let gadget = patch_operation(&doc, "/apis/example.com/v1/gadgets/{name}");
        assert_eq!(gadget["x-kubernetes-group-version-kind"]["kind"], "Gadget");
        let params = doc["paths"]["/apis/example.com/v1/gadgets/{name}"]["parameters"]
            .as_array()
            .unwrap();
        assert!(params.iter().all(|p| p["name"] != "namespace"));
        assert!(doc["paths"]["/apis/example.com/v1/gadgets"]["post"].is_object());
        // No status or scale for gadgets.
        assert!(
            doc["paths"]
                .get("/apis/example.com/v1/gadgets/{name}/status")
                .is_none()
        );

        // The other served version documents its own kind.
        let beta = openapi_v3_group_version(&reg, "example.com", "v1beta1").unwrap();
        assert_eq!(
            beta["components"]["schemas"]["com.example.v1beta1.Widget"]["x-kubernetes-group-version-kind"]
                [0]["version"],
            "v1beta1"
        );
    }

    #[test]
    fn operations_follow_verbs() {
        let mut reg = registry();
        reg[0].verbs = vec!["get".into(), "list".into(), "watch".into()];
        let doc = openapi_v3_group_version(&reg, "", "v1").unwrap();
        let item = &doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"];
        assert!(item["get"].is_object());
        assert!(item.get("patch").is_none());
        assert!(item.get("delete").is_none());
        let collection = &doc["paths"]["/api/v1/namespaces/{namespace}/pods"];
        assert!(collection.get("post").is_none());
        assert!(has_query_param(&collection["get"], "watch"));
    }

    #[test]
    fn openapi_v2_document() {
        let doc = openapi_v2(&registry());
        assert_eq!(doc["swagger"], "2.0");
        assert_eq!(doc["definitions"], json!({}));
        let deploy = patch_operation(
            &doc,
            "/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
        );
        assert!(has_query_param(deploy, "fieldValidation"));
        assert_eq!(
            deploy["x-kubernetes-group-version-kind"]["kind"],
            "Deployment"
        );
        let consumes = deploy["consumes"].as_array().unwrap();
        assert!(consumes.contains(&json!("application/strategic-merge-patch+json")));
        let widget = patch_operation(
            &doc,
            "/apis/example.com/v1/namespaces/{namespace}/widgets/{name}",
        );
        let consumes = widget["consumes"].as_array().unwrap();
        assert!(!consumes.contains(&json!("application/strategic-merge-patch+json")));
        assert!(consumes.contains(&json!("application/merge-patch+json")));
        assert!(doc["paths"]["/api/v1/namespaces/{namespace}/pods"]["get"].is_object());
        assert!(doc["paths"]["/apis/example.com/v1beta1/widgets"]["get"].is_object());
    }

    /// A field of a decoded protobuf message.
    #[derive(Debug)]
    enum Field {
        Varint(u64),
        Bytes(Vec<u8>),
    }

    fn decode(mut buf: &[u8]) -> Vec<(u32, Field)> {
        fn varint(buf: &mut &[u8]) -> u64 {
            let mut value = 0u64;
            let mut shift = 0;
            loop {
                let byte = buf[0];
                *buf = &buf[1..];
                value |= u64::from(byte & 0x7f) << shift;
                if byte & 0x80 == 0 {
                    return value;
                }
                shift += 7;
            }
        }
        let mut out = Vec::new();
        while !buf.is_empty() {
            let key = varint(&mut buf);
            let field = (key >> 3) as u32;
            match key & 7 {
                0 => out.push((field, Field::Varint(varint(&mut buf)))),
                2 => {
                    let len = varint(&mut buf) as usize;
                    out.push((field, Field::Bytes(buf[..len].to_vec())));
                    buf = &buf[len..];
                }
                other => panic!("unexpected wire type {other}"),
            }
        }
        out
    }

    fn bytes_of(fields: &[(u32, Field)], number: u32) -> Vec<&[u8]> {
        fields
            .iter()
            .filter_map(|(n, f)| match f {
                Field::Bytes(b) if *n == number => Some(b.as_slice()),
                _ => None,
            })
            .collect()
    }

    fn text_of(fields: &[(u32, Field)], number: u32) -> Option<String> {
        bytes_of(fields, number)
            .first()
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
    }

    #[test]
    fn openapi_v2_protobuf_encodes_the_document() {
        let reg = registry();
        let json_doc = openapi_v2(&reg);
        let encoded = openapi_v2_protobuf(&reg);
        let document = decode(&encoded);
        assert_eq!(text_of(&document, 1).as_deref(), Some("2.0"));
        let info = decode(bytes_of(&document, 2)[0]);
        assert_eq!(text_of(&info, 1).as_deref(), Some("Kubernetes"));

        // Paths: every JSON path is a NamedPathItem.
        let paths = decode(bytes_of(&document, 8)[0]);
        let named = bytes_of(&paths, 2);
        assert_eq!(named.len(), json_doc["paths"].as_object().unwrap().len());
        let target = "/apis/apps/v1/namespaces/{namespace}/deployments/{name}";
        let item = named
            .iter()
            .map(|b| decode(b))
            .find(|f| text_of(f, 1).as_deref() == Some(target))
            .expect("deployment item path");
        let path_item = decode(bytes_of(&item, 2)[0]);
        // PathItem.patch = 8; path-level parameters = 9.
        assert_eq!(bytes_of(&path_item, 9).len(), 3);
        let patch = decode(bytes_of(&path_item, 8)[0]);
        assert_eq!(
            text_of(&patch, 5).as_deref(),
            Some("patchAppsV1NamespacedDeployment")
        );
        let consumes: Vec<String> = bytes_of(&patch, 7)
            .iter()
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
            .collect();
        assert!(consumes.contains(&"application/strategic-merge-patch+json".to_string()));

        // Operation.parameters = 8: ParametersItem.parameter(1) ->
        // Parameter.non_body_parameter(2) -> query_parameter_sub_schema(3), name = 4.
        let query_names: Vec<String> = bytes_of(&patch, 8)
            .iter()
            .filter_map(|item| {
                let parameter = decode(bytes_of(&decode(item), 1)[0]);
                let non_body = bytes_of(&parameter, 2);
                let query = decode(bytes_of(&decode(non_body.first()?), 3)[0]);
                text_of(&query, 4)
            })
            .collect();
        assert!(query_names.contains(&"fieldValidation".to_string()));

        // Operation.vendor_extension = 13: NamedAny{name, Any{yaml = 2}}.
        let gvk = bytes_of(&patch, 13)
            .iter()
            .map(|b| decode(b))
            .find(|f| text_of(f, 1).as_deref() == Some("x-kubernetes-group-version-kind"))
            .expect("gvk extension");
        let any = decode(bytes_of(&gvk, 2)[0]);
        let yaml: Value = serde_json::from_str(&text_of(&any, 2).unwrap()).unwrap();
        assert_eq!(
            yaml,
            json!({"group": "apps", "version": "v1", "kind": "Deployment"})
        );

        // Required path parameters are encoded as true booleans.
        let name_param = bytes_of(&path_item, 9)
            .iter()
            .map(|item| decode(bytes_of(&decode(item), 1)[0]))
            .map(|parameter| decode(bytes_of(&parameter, 2)[0]))
            .find_map(|non_body| bytes_of(&non_body, 4).first().map(|b| decode(b)))
            .expect("path parameter");
        assert!(matches!(name_param[0], (1, Field::Varint(1))));

        // Definitions are present and empty.
        assert_eq!(bytes_of(&document, 9), vec![&[] as &[u8]]);
    }

    #[test]
    fn protobuf_varints_span_bytes() {
        let doc = json!({"swagger": "x".repeat(300)});
        let encoded = pb::document(&doc);
        assert_eq!(&encoded[..3], &[0x0a, 0xac, 0x02]);
        assert_eq!(encoded.len(), 303);
    }

    #[test]
    fn document_hash_is_stable_hex() {
        let a = document_hash(&json!({"a": 1}));
        assert_eq!(a.len(), 32);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
        );
        assert_eq!(a, document_hash(&json!({"a": 1})));
        assert_ne!(a, document_hash(&json!({"a": 2})));
    }
}
