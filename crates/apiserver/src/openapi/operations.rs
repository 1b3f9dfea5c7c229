//! The REST operations of a resource, as both OpenAPI versions describe
//! them: paths, methods, parameters, request bodies and responses, following
//! the routes `k8s.io/apiserver/pkg/endpoints/installer.go` registers.

use serde_json::Value;

use super::{SCALE, STATUS};
use crate::discovery::gvk;
use crate::registry::ResourceInfo;

/// A parameter of an operation or path.
pub(super) struct Param {
    pub(super) name: &'static str,
    pub(super) location: &'static str,
    pub(super) ty: &'static str,
    pub(super) description: &'static str,
    pub(super) required: bool,
}

pub(super) const fn query(
    name: &'static str,
    ty: &'static str,
    description: &'static str,
) -> Param {
    Param {
        name,
        location: "query",
        ty,
        description,
        required: false,
    }
}

pub(super) const PRETTY: Param = query(
    "pretty",
    "string",
    "If 'true', the output is pretty printed.",
);
pub(super) const DRY_RUN: Param = query(
    "dryRun",
    "string",
    "When present, the request is processed but not persisted. The only valid value is All.",
);
pub(super) const FIELD_MANAGER: Param = query(
    "fieldManager",
    "string",
    "Name of the actor making the change, recorded in managedFields.",
);
pub(super) const FIELD_VALIDATION: Param = query(
    "fieldValidation",
    "string",
    "How to treat unknown or duplicate fields in the request body: Ignore, Warn or Strict.",
);
pub(super) const FORCE: Param = query(
    "force",
    "boolean",
    "Force an apply request to take ownership of conflicting fields. Only valid for apply patches.",
);
pub(super) const GRACE_PERIOD: Param = query(
    "gracePeriodSeconds",
    "integer",
    "Seconds to wait before the object is deleted.",
);
pub(super) const PROPAGATION_POLICY: Param = query(
    "propagationPolicy",
    "string",
    "Whether and how dependents are garbage collected: Orphan, Background or Foreground.",
);
pub(super) const LIST_PARAMS: [Param; 7] = [
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
pub(super) const WATCH_PARAMS: [Param; 3] = [
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

pub(super) const NAME_PARAM: Param = Param {
    name: "name",
    location: "path",
    ty: "string",
    description: "Name of the object.",
    required: true,
};
pub(super) const NAMESPACE_PARAM: Param = Param {
    name: "namespace",
    location: "path",
    ty: "string",
    description: "Namespace of the object.",
    required: true,
};

/// What a request body holds.
pub(super) enum Body {
    /// The object itself (create, replace), by component name.
    Object(String),
    /// A patch document.
    Patch,
    /// Optional `DeleteOptions`.
    DeleteOptions,
}

/// One operation on a path.
pub(super) struct Operation {
    pub(super) method: &'static str,
    pub(super) action: &'static str,
    pub(super) operation_id: String,
    pub(super) description: String,
    pub(super) tag: String,
    pub(super) params: Vec<&'static Param>,
    pub(super) body: Option<Body>,
    /// Success codes and the component name of the response body.
    pub(super) responses: Vec<(&'static str, &'static str, String)>,
    /// GVK in `x-kubernetes-group-version-kind`.
    pub(super) gvk: Value,
    /// PATCH only: the resource is built in (accepts strategic merge patch).
    pub(super) builtin: bool,
    /// GET on a collection: also streams watch events.
    pub(super) watch: bool,
}

pub(super) struct PathSpec {
    pub(super) path: String,
    pub(super) params: Vec<&'static Param>,
    pub(super) operations: Vec<Operation>,
}

/// Component (definition) name of a kind. Custom resources use the reversed
/// group as Kubernetes does for CRDs
/// (`k8s.io/apiextensions-apiserver/pkg/controller/openapi/builder/builder.go`);
/// built-in kinds follow the Go package naming of `k8s.io/api`.
pub(super) fn schema_name(r: &ResourceInfo, kind: &str) -> String {
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
pub(super) fn operation_group(r: &ResourceInfo) -> String {
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

pub(super) fn tag(r: &ResourceInfo) -> String {
    let group = if r.group.is_empty() {
        "core"
    } else {
        r.group.as_str()
    };
    format!("{group}_{}", r.version)
}

pub(super) fn has_verb(r: &ResourceInfo, verb: &str) -> bool {
    r.verbs.iter().any(|v| v == verb)
}

/// The REST paths and operations of one resource, mirroring the routes the
/// Kubernetes server installs (`k8s.io/apiserver/pkg/endpoints/installer.go`),
/// without the deprecated `watch/` paths.
pub(super) fn resource_paths(r: &ResourceInfo) -> Vec<PathSpec> {
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

pub(super) fn all_paths(resources: &[&ResourceInfo]) -> Vec<PathSpec> {
    resources.iter().flat_map(|r| resource_paths(r)).collect()
}

/// Patch content types. Strategic merge patch is only offered by built-in
/// kinds; custom resources reject it (as in Kubernetes).
pub(super) fn patch_types(builtin: bool) -> Vec<&'static str> {
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
