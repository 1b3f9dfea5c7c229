//! Strategic merge patch metadata of built-in Kubernetes kinds.
//!
//! Hand-written from the `patchStrategy` / `patchMergeKey` struct tags of
//! `k8s.io/api` (`core/v1/types.go`, `apps/v1/types.go`,
//! `batch/v1/types.go`, ...) and `k8s.io/apimachinery/pkg/apis/meta/v1/types.go`.
//! Only tagged fields and the objects leading to them are listed; lists
//! Kubernetes treats as atomic are listed as such where readers might
//! expect otherwise (for example `tolerations`, `envFrom`,
//! `ServiceAccount.imagePullSecrets`, `Namespace.spec.finalizers`).
//!
//! The tables are keyed by API group and kind only: the tags are the same in
//! every served version of these kinds.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use crate::schema::{FieldSchema, Schema};

/// Strategic merge patch metadata of a built-in kind, `None` for kinds
/// without it (custom resources, unknown kinds). `group` is `""` for the
/// core group.
pub fn schema_for(group: &str, kind: &str) -> Option<&'static Schema> {
    let schema: &'static Arc<Schema> = BUILTIN.get(group)?.get(kind)?;
    Some(schema)
}

/// Every (group, kind) with built-in metadata, sorted.
pub fn builtin_kinds() -> Vec<(&'static str, &'static str)> {
    let mut kinds: Vec<_> = BUILTIN
        .iter()
        .flat_map(|(group, kinds)| kinds.keys().map(move |kind| (*group, *kind)))
        .collect();
    kinds.sort_unstable();
    kinds
}

/// Schemas by API group, then kind.
type Table = HashMap<&'static str, HashMap<&'static str, Arc<Schema>>>;

static BUILTIN: LazyLock<Table> = LazyLock::new(build);

/// Tagged fields of `ObjectMeta`, present on every object and on embedded
/// templates.
fn object_meta() -> Arc<Schema> {
    Arc::new(
        Schema::new()
            // Finalizers []string `patchStrategy:"merge"`
            .merge_set("finalizers")
            // OwnerReferences `patchStrategy:"merge" patchMergeKey:"uid"`
            .merge_by("ownerReferences", "uid", None),
    )
}

/// `Container` and `EphemeralContainerCommon` carry the same tags.
fn container() -> Arc<Schema> {
    Arc::new(
        Schema::new()
            .merge_by("ports", "containerPort", None)
            .merge_by("env", "name", None)
            .merge_by("volumeMounts", "mountPath", None)
            .merge_by("volumeDevices", "devicePath", None)
            .atomic("envFrom")
            .atomic("resizePolicy"),
    )
}

fn pod_spec() -> Arc<Schema> {
    let container = container();
    Arc::new(
        Schema::new()
            .with("volumes", FieldSchema::merge_by("name").with_retain_keys())
            .merge_by("initContainers", "name", Some(container.clone()))
            .merge_by("containers", "name", Some(container.clone()))
            .merge_by("ephemeralContainers", "name", Some(container))
            .merge_by("imagePullSecrets", "name", None)
            .merge_by("hostAliases", "ip", None)
            .merge_by("topologySpreadConstraints", "topologyKey", None)
            .merge_by("schedulingGates", "name", None)
            .with(
                "resourceClaims",
                FieldSchema::merge_by("name").with_retain_keys(),
            )
            .atomic("tolerations")
            .atomic("readinessGates"),
    )
}

fn pod_status() -> Arc<Schema> {
    Arc::new(
        Schema::new()
            .merge_by("conditions", "type", None)
            .merge_by("hostIPs", "ip", None)
            .merge_by("podIPs", "ip", None)
            .with(
                "resourceClaimStatuses",
                FieldSchema::merge_by("name").with_retain_keys(),
            )
            .atomic("containerStatuses")
            .atomic("initContainerStatuses")
            .atomic("ephemeralContainerStatuses"),
    )
}

/// A status whose only tagged field is `conditions`, merged by `type`.
fn conditions_status() -> Arc<Schema> {
    Arc::new(Schema::new().merge_by("conditions", "type", None))
}

struct Parts {
    meta: Arc<Schema>,
    pod_template: Arc<Schema>,
    conditions: Arc<Schema>,
}

impl Parts {
    /// An object with `metadata` and the given extra fields.
    fn object(&self, fields: Schema) -> Arc<Schema> {
        Arc::new(fields.object("metadata", self.meta.clone()))
    }

    /// A workload whose `spec.template` is a pod template, with
    /// `status.conditions` merged by type.
    fn workload(&self, spec: Schema) -> Arc<Schema> {
        self.object(
            Schema::new()
                .object(
                    "spec",
                    Arc::new(spec.object("template", self.pod_template.clone())),
                )
                .object("status", self.conditions.clone()),
        )
    }
}

fn build() -> Table {
    let meta = object_meta();
    let pod_spec = pod_spec();
    let pod_template = Arc::new(
        Schema::new()
            .object("metadata", meta.clone())
            .object("spec", pod_spec.clone()),
    );
    let parts = Parts {
        meta: meta.clone(),
        pod_template: pod_template.clone(),
        conditions: conditions_status(),
    };
    let plain = parts.object(Schema::new());
    let with_status_conditions =
        parts.object(Schema::new().object("status", parts.conditions.clone()));

    let job_spec = Schema::new().object("template", pod_template.clone());
    let job = parts.workload(Schema::new());
    let cron_job = parts.object(
        Schema::new().object(
            "spec",
            Arc::new(
                Schema::new().object(
                    "jobTemplate",
                    Arc::new(
                        Schema::new()
                            .object("metadata", meta.clone())
                            .object("spec", Arc::new(job_spec)),
                    ),
                ),
            ),
        ),
    );

    let webhook = Arc::new(Schema::new().merge_by("matchConditions", "name", None));
    let webhook_configuration =
        parts.object(Schema::new().merge_by("webhooks", "name", Some(webhook)));
    let admission_policy = parts.object(
        Schema::new().object(
            "spec",
            Arc::new(
                Schema::new()
                    .merge_by("matchConditions", "name", None)
                    .merge_by("variables", "name", None),
            ),
        ),
    );

    let mut table = Table::new();
    let mut add = |group: &'static str, kinds: &[&'static str], schema: &Arc<Schema>| {
        for kind in kinds {
            table.entry(group).or_default().insert(kind, schema.clone());
        }
    };

    // core/v1
    add(
        "",
        &["Pod"],
        &parts.object(
            Schema::new()
                .object("spec", pod_spec.clone())
                .object("status", pod_status()),
        ),
    );
    add(
        "",
        &["PodTemplate"],
        &parts.object(Schema::new().object("template", pod_template.clone())),
    );
    add(
        "",
        &["ReplicationController"],
        &parts.workload(Schema::new()),
    );
    add(
        "",
        &["Service"],
        &parts.object(
            Schema::new()
                .object(
                    "spec",
                    Arc::new(Schema::new().merge_by("ports", "port", None)),
                )
                .object("status", parts.conditions.clone()),
        ),
    );
    add(
        "",
        &["Endpoints"],
        &parts.object(Schema::new().atomic("subsets")),
    );
    add(
        "",
        &["Namespace"],
        &parts.object(
            Schema::new()
                .object("spec", Arc::new(Schema::new().atomic("finalizers")))
                .object("status", parts.conditions.clone()),
        ),
    );
    add(
        "",
        &["ServiceAccount"],
        &parts.object(
            Schema::new()
                .merge_by("secrets", "name", None)
                .atomic("imagePullSecrets"),
        ),
    );
    add("", &["PersistentVolumeClaim"], &with_status_conditions);
    add(
        "",
        &["Node"],
        &parts.object(
            Schema::new()
                .object(
                    "spec",
                    Arc::new(Schema::new().merge_set("podCIDRs").atomic("taints")),
                )
                .object(
                    "status",
                    Arc::new(Schema::new().merge_by("conditions", "type", None).merge_by(
                        "addresses",
                        "type",
                        None,
                    )),
                ),
        ),
    );
    add(
        "",
        &["ComponentStatus"],
        &parts.object(Schema::new().merge_by("conditions", "type", None)),
    );
    add(
        "",
        &[
            "ConfigMap",
            "Secret",
            "PersistentVolume",
            "Event",
            "LimitRange",
            "ResourceQuota",
            "Binding",
        ],
        &plain,
    );

    // apps/v1
    add(
        "apps",
        &["Deployment"],
        &parts
            .workload(Schema::new().with("strategy", FieldSchema::plain(None).with_retain_keys())),
    );
    add(
        "apps",
        &["ReplicaSet", "StatefulSet", "DaemonSet"],
        &parts.workload(Schema::new()),
    );
    add("apps", &["ControllerRevision"], &plain);

    // batch/v1
    add("batch", &["Job"], &job);
    add("batch", &["CronJob"], &cron_job);

    // autoscaling/v2
    add(
        "autoscaling",
        &["HorizontalPodAutoscaler"],
        &with_status_conditions,
    );

    // policy/v1
    add(
        "policy",
        &["PodDisruptionBudget"],
        &parts.object(
            Schema::new()
                .object(
                    "spec",
                    Arc::new(Schema::new().with("selector", FieldSchema::replace())),
                )
                .object("status", parts.conditions.clone()),
        ),
    );
    add("policy", &["Eviction"], &plain);

    add(
        "rbac.authorization.k8s.io",
        &["Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"],
        &plain,
    );
    add(
        "networking.k8s.io",
        &["Ingress", "IngressClass", "NetworkPolicy", "IPAddress"],
        &plain,
    );
    add(
        "networking.k8s.io",
        &["ServiceCIDR"],
        &with_status_conditions,
    );
    add("coordination.k8s.io", &["Lease"], &plain);
    add("discovery.k8s.io", &["EndpointSlice"], &plain);
    add("events.k8s.io", &["Event"], &plain);
    add(
        "storage.k8s.io",
        &[
            "StorageClass",
            "CSIDriver",
            "VolumeAttachment",
            "CSIStorageCapacity",
        ],
        &plain,
    );
    add(
        "storage.k8s.io",
        &["CSINode"],
        &parts.object(Schema::new().object(
            "spec",
            Arc::new(Schema::new().merge_by("drivers", "name", None)),
        )),
    );
    add("scheduling.k8s.io", &["PriorityClass"], &plain);
    add("node.k8s.io", &["RuntimeClass"], &plain);
    add(
        "certificates.k8s.io",
        &["CertificateSigningRequest"],
        &plain,
    );
    add(
        "admissionregistration.k8s.io",
        &[
            "ValidatingWebhookConfiguration",
            "MutatingWebhookConfiguration",
        ],
        &webhook_configuration,
    );
    add(
        "admissionregistration.k8s.io",
        &["ValidatingAdmissionPolicy"],
        &admission_policy,
    );
    add(
        "admissionregistration.k8s.io",
        &["ValidatingAdmissionPolicyBinding"],
        &plain,
    );
    add(
        "apiextensions.k8s.io",
        &["CustomResourceDefinition"],
        &plain,
    );
    add(
        "apiregistration.k8s.io",
        &["APIService"],
        &with_status_conditions,
    );
    add(
        "flowcontrol.apiserver.k8s.io",
        &["FlowSchema", "PriorityLevelConfiguration"],
        &with_status_conditions,
    );
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::PatchStrategy;

    const POD_SPEC_PREFIXES: &[(&str, &str, &[&str])] = &[
        ("", "Pod", &["spec"]),
        ("", "PodTemplate", &["template", "spec"]),
        ("", "ReplicationController", &["spec", "template", "spec"]),
        ("apps", "Deployment", &["spec", "template", "spec"]),
        ("apps", "ReplicaSet", &["spec", "template", "spec"]),
        ("apps", "StatefulSet", &["spec", "template", "spec"]),
        ("apps", "DaemonSet", &["spec", "template", "spec"]),
        ("batch", "Job", &["spec", "template", "spec"]),
        (
            "batch",
            "CronJob",
            &["spec", "jobTemplate", "spec", "template", "spec"],
        ),
    ];

    /// (path below the pod spec, merge key or None for a primitive set,
    /// retainKeys); `Some("")` marks an atomic list.
    const POD_SPEC_FIELDS: &[(&[&str], Option<&str>, bool)] = &[
        (&["containers"], Some("name"), false),
        (&["initContainers"], Some("name"), false),
        (&["ephemeralContainers"], Some("name"), false),
        (&["containers", "env"], Some("name"), false),
        (&["containers", "ports"], Some("containerPort"), false),
        (&["containers", "volumeMounts"], Some("mountPath"), false),
        (&["containers", "volumeDevices"], Some("devicePath"), false),
        (&["initContainers", "env"], Some("name"), false),
        (
            &["ephemeralContainers", "volumeMounts"],
            Some("mountPath"),
            false,
        ),
        (&["containers", "envFrom"], Some(""), false),
        (&["volumes"], Some("name"), true),
        (&["imagePullSecrets"], Some("name"), false),
        (&["hostAliases"], Some("ip"), false),
        (&["topologySpreadConstraints"], Some("topologyKey"), false),
        (&["schedulingGates"], Some("name"), false),
        (&["resourceClaims"], Some("name"), true),
        (&["tolerations"], Some(""), false),
    ];

    fn check(schema: &Schema, path: &[&str], key: Option<&str>, retain: bool) {
        let field = schema
            .lookup(path)
            .unwrap_or_else(|| panic!("no metadata at {path:?}"));
        match key {
            Some("") => {
                assert_eq!(field.strategy(), PatchStrategy::Default, "{path:?}");
                assert_eq!(field.merge_key(), None, "{path:?}");
            }
            Some(key) => {
                assert_eq!(field.strategy(), PatchStrategy::Merge, "{path:?}");
                assert_eq!(field.merge_key(), Some(key), "{path:?}");
            }
            None => {
                assert_eq!(field.strategy(), PatchStrategy::Merge, "{path:?}");
                assert_eq!(field.merge_key(), None, "{path:?}");
            }
        }
        assert_eq!(field.retain_keys(), retain, "{path:?}");
    }

    #[test]
    fn pod_spec_everywhere() {
        for (group, kind, prefix) in POD_SPEC_PREFIXES {
            let schema = schema_for(group, kind).unwrap_or_else(|| panic!("{kind}"));
            for (rest, key, retain) in POD_SPEC_FIELDS {
                let path: Vec<&str> = prefix.iter().chain(rest.iter()).copied().collect();
                check(schema, &path, *key, *retain);
            }
            // the template's own metadata is an ObjectMeta too
            let mut meta_path: Vec<&str> = prefix[..prefix.len() - 1].to_vec();
            meta_path.extend(["metadata", "finalizers"]);
            check(schema, &meta_path, None, false);
        }
    }

    #[test]
    fn kind_specific_fields() {
        /// (group, kind, path, merge key as in `check`, retainKeys)
        type Case = (
            &'static str,
            &'static str,
            &'static [&'static str],
            Option<&'static str>,
            bool,
        );
        let cases: &[Case] = &[
            ("", "Pod", &["status", "conditions"], Some("type"), false),
            ("", "Pod", &["status", "podIPs"], Some("ip"), false),
            ("", "Pod", &["status", "containerStatuses"], Some(""), false),
            ("", "Service", &["spec", "ports"], Some("port"), false),
            (
                "",
                "Service",
                &["status", "conditions"],
                Some("type"),
                false,
            ),
            ("", "Endpoints", &["subsets"], Some(""), false),
            (
                "",
                "Namespace",
                &["status", "conditions"],
                Some("type"),
                false,
            ),
            ("", "Namespace", &["spec", "finalizers"], Some(""), false),
            ("", "ServiceAccount", &["secrets"], Some("name"), false),
            ("", "ServiceAccount", &["imagePullSecrets"], Some(""), false),
            (
                "",
                "PersistentVolumeClaim",
                &["status", "conditions"],
                Some("type"),
                false,
            ),
            ("", "Node", &["spec", "podCIDRs"], None, false),
            ("", "Node", &["status", "addresses"], Some("type"), false),
            (
                "apps",
                "Deployment",
                &["status", "conditions"],
                Some("type"),
                false,
            ),
            (
                "apps",
                "ReplicaSet",
                &["status", "conditions"],
                Some("type"),
                false,
            ),
            (
                "apps",
                "StatefulSet",
                &["status", "conditions"],
                Some("type"),
                false,
            ),
            (
                "apps",
                "DaemonSet",
                &["status", "conditions"],
                Some("type"),
                false,
            ),
            (
                "batch",
                "Job",
                &["status", "conditions"],
                Some("type"),
                false,
            ),
            (
                "admissionregistration.k8s.io",
                "MutatingWebhookConfiguration",
                &["webhooks", "matchConditions"],
                Some("name"),
                false,
            ),
            (
                "storage.k8s.io",
                "CSINode",
                &["spec", "drivers"],
                Some("name"),
                false,
            ),
        ];
        for (group, kind, path, key, retain) in cases {
            let schema = schema_for(group, kind).unwrap_or_else(|| panic!("{kind}"));
            check(schema, path, *key, *retain);
        }

        let strategy = schema_for("apps", "Deployment")
            .and_then(|s| s.lookup(&["spec", "strategy"]))
            .expect("deployment strategy");
        assert!(strategy.retain_keys());
        assert_eq!(strategy.strategy(), PatchStrategy::Default);

        let selector = schema_for("policy", "PodDisruptionBudget")
            .and_then(|s| s.lookup(&["spec", "selector"]))
            .expect("pdb selector");
        assert_eq!(selector.strategy(), PatchStrategy::Replace);
    }

    #[test]
    fn object_meta_on_every_kind() {
        for (group, kind) in builtin_kinds() {
            let schema = schema_for(group, kind).expect("listed");
            check(schema, &["metadata", "finalizers"], None, false);
            check(schema, &["metadata", "ownerReferences"], Some("uid"), false);
        }
    }

    #[test]
    fn unknown_kinds() {
        for (group, kind) in [
            ("metacontroller.k8s.io", "CompositeController"),
            ("example.com", "Widget"),
            ("apps", "Pod"),
            ("", "Deployment"),
            ("", "pod"),
        ] {
            assert!(schema_for(group, kind).is_none(), "{group}/{kind}");
        }
        for (group, kind) in [("", "ConfigMap"), ("", "Secret"), ("apps", "Deployment")] {
            assert!(schema_for(group, kind).is_some(), "{group}/{kind}");
        }
    }
}
