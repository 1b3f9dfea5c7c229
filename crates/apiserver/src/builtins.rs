//! The built-in resources the server serves, with the scope, kind, short
//! names, categories and subresources real Kubernetes (v1.33) gives them.
//! Objects are stored as schemaless JSON.

use crate::registry::{ResourceInfo, ScaleInfo, standard_verbs};

struct Def {
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    categories: &'static [&'static str],
    status: bool,
    scale: bool,
    /// Field-selector paths beyond `metadata.name`/`metadata.namespace`.
    fields: &'static [&'static str],
}

const ALL: &[&str] = &["all"];
const NONE: &[&str] = &[];

#[rustfmt::skip]
const DEFS: &[Def] = &[
    Def { group: "", version: "v1", plural: "namespaces", kind: "Namespace", namespaced: false, short: &["ns"], categories: NONE, status: true, scale: false, fields: &["status.phase"] },
    Def { group: "", version: "v1", plural: "configmaps", kind: "ConfigMap", namespaced: true, short: &["cm"], categories: NONE, status: false, scale: false, fields: NONE },
    Def { group: "", version: "v1", plural: "secrets", kind: "Secret", namespaced: true, short: NONE, categories: NONE, status: false, scale: false, fields: &["type"] },
    Def { group: "", version: "v1", plural: "services", kind: "Service", namespaced: true, short: &["svc"], categories: ALL, status: true, scale: false, fields: NONE },
    Def { group: "", version: "v1", plural: "endpoints", kind: "Endpoints", namespaced: true, short: &["ep"], categories: NONE, status: false, scale: false, fields: NONE },
    Def { group: "", version: "v1", plural: "pods", kind: "Pod", namespaced: true, short: &["po"], categories: ALL, status: true, scale: false, fields: &["spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"] },
    Def { group: "", version: "v1", plural: "serviceaccounts", kind: "ServiceAccount", namespaced: true, short: &["sa"], categories: NONE, status: false, scale: false, fields: NONE },
    Def { group: "", version: "v1", plural: "persistentvolumeclaims", kind: "PersistentVolumeClaim", namespaced: true, short: &["pvc"], categories: NONE, status: true, scale: false, fields: NONE },
    Def { group: "", version: "v1", plural: "persistentvolumes", kind: "PersistentVolume", namespaced: false, short: &["pv"], categories: NONE, status: true, scale: false, fields: NONE },
    Def { group: "", version: "v1", plural: "nodes", kind: "Node", namespaced: false, short: &["no"], categories: NONE, status: true, scale: false, fields: &["spec.unschedulable"] },
    Def { group: "", version: "v1", plural: "events", kind: "Event", namespaced: true, short: &["ev"], categories: NONE, status: false, scale: false, fields: &["involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"] },
    Def { group: "", version: "v1", plural: "replicationcontrollers", kind: "ReplicationController", namespaced: true, short: &["rc"], categories: ALL, status: true, scale: true, fields: NONE },
    Def { group: "", version: "v1", plural: "limitranges", kind: "LimitRange", namespaced: true, short: &["limits"], categories: NONE, status: false, scale: false, fields: NONE },
    Def { group: "", version: "v1", plural: "resourcequotas", kind: "ResourceQuota", namespaced: true, short: &["quota"], categories: NONE, status: true, scale: false, fields: NONE },
    Def { group: "apps", version: "v1", plural: "deployments", kind: "Deployment", namespaced: true, short: &["deploy"], categories: ALL, status: true, scale: true, fields: NONE },
    Def { group: "apps", version: "v1", plural: "replicasets", kind: "ReplicaSet", namespaced: true, short: &["rs"], categories: ALL, status: true, scale: true, fields: NONE },
    Def { group: "apps", version: "v1", plural: "statefulsets", kind: "StatefulSet", namespaced: true, short: &["sts"], categories: ALL, status: true, scale: true, fields: NONE },
    Def { group: "apps", version: "v1", plural: "daemonsets", kind: "DaemonSet", namespaced: true, short: &["ds"], categories: ALL, status: true, scale: false, fields: NONE },
    Def { group: "apps", version: "v1", plural: "controllerrevisions", kind: "ControllerRevision", namespaced: true, short: NONE, categories: NONE, status: false, scale: false, fields: NONE },
    Def { group: "batch", version: "v1", plural: "jobs", kind: "Job", namespaced: true, short: NONE, categories: ALL, status: true, scale: false, fields: &["status.successful"] },
    Def { group: "batch", version: "v1", plural: "cronjobs", kind: "CronJob", namespaced: true, short: &["cj"], categories: ALL, status: true, scale: false, fields: NONE },
    Def { group: "autoscaling", version: "v2", plural: "horizontalpodautoscalers", kind: "HorizontalPodAutoscaler", namespaced: true, short: &["hpa"], categories: ALL, status: true, scale: false, fields: NONE },
    Def { group: "autoscaling", version: "v1", plural: "horizontalpodautoscalers", kind: "HorizontalPodAutoscaler", namespaced: true, short: &["hpa"], categories: ALL, status: true, scale: false, fields: NONE },
    Def { group: "scheduling.k8s.io", version: "v1", plural: "priorityclasses", kind: "PriorityClass", namespaced: false, short: &["pc"], categories: NONE, status: false, scale: false, fields: NONE },
    Def { group: "rbac.authorization.k8s.io", version: "v1", plural: "roles", kind: "Role", namespaced: true, short: NONE, categories: NONE, status: false, scale: false, fields: NONE },
    Def { group: "rbac.authorization.k8s.io", version: "v1", plural: "rolebindings", kind: "RoleBinding", namespaced: true, short: NONE, categories: NONE, status: false, scale: false, fields: NONE },
    Def { group: "rbac.authorization.k8s.io", version: "v1", plural: "clusterroles", kind: "ClusterRole", namespaced: false, short: NONE, categories: NONE, status: false, scale: false, fields: NONE },
    Def { group: "rbac.authorization.k8s.io", version: "v1", plural: "clusterrolebindings", kind: "ClusterRoleBinding", namespaced: false, short: NONE, categories: NONE, status: false, scale: false, fields: NONE },
    Def { group: "coordination.k8s.io", version: "v1", plural: "leases", kind: "Lease", namespaced: true, short: NONE, categories: NONE, status: false, scale: false, fields: NONE },
    Def { group: "events.k8s.io", version: "v1", plural: "events", kind: "Event", namespaced: true, short: &["ev"], categories: NONE, status: false, scale: false, fields: &["reason", "regarding.kind", "regarding.namespace", "regarding.name", "regarding.uid", "type"] },
    Def { group: "policy", version: "v1", plural: "poddisruptionbudgets", kind: "PodDisruptionBudget", namespaced: true, short: &["pdb"], categories: NONE, status: true, scale: false, fields: NONE },
    Def { group: "networking.k8s.io", version: "v1", plural: "ingresses", kind: "Ingress", namespaced: true, short: &["ing"], categories: NONE, status: true, scale: false, fields: NONE },
    Def { group: "networking.k8s.io", version: "v1", plural: "networkpolicies", kind: "NetworkPolicy", namespaced: true, short: &["netpol"], categories: NONE, status: false, scale: false, fields: NONE },
    Def { group: "storage.k8s.io", version: "v1", plural: "storageclasses", kind: "StorageClass", namespaced: false, short: &["sc"], categories: NONE, status: false, scale: false, fields: NONE },
    Def { group: "apiextensions.k8s.io", version: "v1", plural: "customresourcedefinitions", kind: "CustomResourceDefinition", namespaced: false, short: &["crd", "crds"], categories: &["api-extensions"], status: true, scale: false, fields: NONE },
];

/// Every built-in resource, one entry per (group, version, resource).
pub fn builtin_resources() -> Vec<ResourceInfo> {
    DEFS.iter()
        .map(|d| ResourceInfo {
            group: d.group.into(),
            version: d.version.into(),
            plural: d.plural.into(),
            singular: d.kind.to_ascii_lowercase(),
            kind: d.kind.into(),
            list_kind: format!("{}List", d.kind),
            namespaced: d.namespaced,
            short_names: d.short.iter().map(|s| s.to_string()).collect(),
            categories: d.categories.iter().map(|s| s.to_string()).collect(),
            verbs: standard_verbs(),
            status: d.status,
            scale: d.scale.then(ScaleInfo::builtin),
            crd: false,
            // A resource served at several versions is stored at the first
            // one listed (autoscaling: v2).
            storage_version: DEFS
                .iter()
                .find(|o| o.group == d.group && o.plural == d.plural)
                .map_or(d.version, |o| o.version)
                .into(),
            schema: None,
            printer_columns: Vec::new(),
            selectable_fields: d.fields.iter().map(|s| s.to_string()).collect(),
        })
        .collect()
}

/// Whether `metadata.generation` is maintained for this resource. Kubernetes
/// sets it only in the strategies of types with a spec that controllers
/// observe (workloads, CRDs, custom resources, ...); ConfigMaps, Secrets,
/// Services, Namespaces and Pods (before 1.34) carry none.
pub fn tracks_generation(group: &str, plural: &str, custom: bool) -> bool {
    custom
        || matches!(
            (group, plural),
            ("apps", _)
                | ("batch", _)
                | ("", "replicationcontrollers")
                | ("policy", "poddisruptionbudgets")
                | ("networking.k8s.io", "ingresses")
                | ("networking.k8s.io", "networkpolicies")
                | ("autoscaling", "horizontalpodautoscalers")
                | ("apiextensions.k8s.io", "customresourcedefinitions")
        ) && !(group == "apps" && plural == "controllerrevisions")
}

/// Whether a change of `metadata.annotations` alone (through the object, not
/// `/status`) bumps `metadata.generation`. Only Deployments do, as their
/// annotations are copied to their ReplicaSets (`PrepareForUpdate` in
/// pkg/registry/apps/deployment/strategy.go).
pub fn annotations_bump_generation(group: &str, plural: &str) -> bool {
    group == "apps" && plural == "deployments"
}

/// Namespaces that exist when the server starts, as in a new cluster.
pub const INITIAL_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_is_unique_and_well_formed() {
        let all = builtin_resources();
        let mut seen = std::collections::HashSet::new();
        for r in &all {
            assert!(seen.insert((r.group.clone(), r.version.clone(), r.plural.clone())));
            assert_eq!(r.list_kind, format!("{}List", r.kind));
            assert!(r.plural.chars().all(|c| c.is_ascii_lowercase()));
        }
        let deploy = all.iter().find(|r| r.plural == "deployments").unwrap();
        assert!(deploy.status && deploy.scale.is_some() && deploy.namespaced);
        let ns = all.iter().find(|r| r.plural == "namespaces").unwrap();
        assert!(!ns.namespaced && ns.short_names == vec!["ns"]);
    }
}
