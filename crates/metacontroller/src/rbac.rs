//! `metacontroller rbac`: a least-privilege ClusterRole for a given set of
//! CompositeControllers and DecoratorControllers.
//!
//! Metacontroller installs with a wildcard role (every verb on every
//! resource), because it cannot know in advance which resources its
//! controllers will name. Once they are written, it can: this command reads
//! their manifests and prints a ClusterRole (and a binding to the
//! controller's ServiceAccount) that allows exactly what the engine does:
//!
//! | resources | verbs | why |
//! |---|---|---|
//! | `compositecontrollers`, `decoratorcontrollers` | get, list, watch | the controllers themselves |
//! | `controllerrevisions` (`metacontroller.k8s.io`) | get, list, watch, create, update, patch, delete | rolling updates of composite parents |
//! | each parent / decorated resource | get, list, watch, update, patch | finalizers, adoption labels, decorator labels and annotations |
//! | `customresourcedefinitions`, only the composite parents' by name | get | checking that the parent has the status subresource |
//! | its `status` subresource | update, patch | the status the hook returns |
//! | each child / attachment resource | get, list, watch, create, update, patch, delete | the children |
//! | `events` (core and `events.k8s.io`) | list, create, patch, update | Events on parents; the live view (`--view-address`) lists them |
//! | `namespaces` | get, list, watch | customize hooks' namespace selectors (only with a customize hook) |
//! | `leases` (`coordination.k8s.io`) | get, create, update | `--leader-election` |
//!
//! Related objects that a customize hook asks for are chosen by the hook at
//! run time, so they cannot be read from the manifests: `--related
//! GROUP/RESOURCE` adds read access (get, list, watch) to each one, and the
//! output says so in a comment when a controller has a customize hook.
//!
//! Pure: reads files, prints YAML; talks to no server.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use clap::Args;
use metacontroller_api::v1alpha1::{CompositeControllerSpec, DecoratorControllerSpec};
use serde_json::{Value, json};

/// Flags of `metacontroller rbac`.
#[derive(Args, Clone, Debug)]
pub struct RbacArgs {
    /// Files or directories (read recursively: `.yaml`, `.yml`, `.json`)
    /// holding CompositeControllers and DecoratorControllers; other
    /// documents are ignored.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    /// Name of the ClusterRole and ClusterRoleBinding.
    #[arg(long, default_value = "metacontroller")]
    pub name: String,
    /// The ServiceAccount the binding names.
    #[arg(long, default_value = "metacontroller")]
    pub service_account: String,
    /// Namespace of that ServiceAccount.
    #[arg(long, default_value = "metacontroller")]
    pub namespace: String,
    /// Also allow Leases, for `--leader-election`.
    #[arg(long)]
    pub leader_election: bool,
    /// Read access (get, list, watch) to a resource that a customize hook
    /// asks for, as `GROUP/RESOURCE` (`/configmaps` or `configmaps` for the
    /// core group). Repeatable.
    #[arg(long = "related")]
    pub related: Vec<String>,
}

/// Why no role could be generated.
#[derive(Debug, thiserror::Error)]
pub enum RbacError {
    /// A file or directory could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is not YAML or JSON.
    #[error("{path}: not YAML: {source}")]
    Parse {
        /// The path.
        path: PathBuf,
        /// The parser's error.
        source: serde_yaml::Error,
    },
    /// A controller's spec does not decode.
    #[error("{path}: {kind} {name}: invalid spec: {source}")]
    Spec {
        /// The file.
        path: PathBuf,
        /// CompositeController or DecoratorController.
        kind: &'static str,
        /// Its name.
        name: String,
        /// The decoding error.
        source: serde_json::Error,
    },
    /// None of the inputs held a controller.
    #[error("no CompositeController or DecoratorController in {0:?}")]
    NoControllers(Vec<PathBuf>),
    /// A `--related` value is not `GROUP/RESOURCE`.
    #[error("--related {0:?}: expected GROUP/RESOURCE, e.g. apps/deployments or /configmaps")]
    Related(String),
}

/// Verbs on a resource that parents and decorated objects get.
const PARENT: &[&str] = &["get", "list", "watch", "update", "patch"];
/// Verbs on a status subresource.
const STATUS: &[&str] = &["update", "patch"];
/// Verbs on children and attachments.
const CHILD: &[&str] = &[
    "get", "list", "watch", "create", "update", "patch", "delete",
];
/// Read-only verbs.
const READ: &[&str] = &["get", "list", "watch"];

/// Verbs per (API group, resource), merged across controllers.
#[derive(Default, Debug, PartialEq)]
struct Grants(BTreeMap<(String, String), BTreeSet<&'static str>>);

impl Grants {
    fn allow(&mut self, group: &str, resource: &str, verbs: &[&'static str]) {
        self.0
            .entry((group.to_string(), resource.to_string()))
            .or_default()
            .extend(verbs);
    }

    /// A parent or decorated resource, with its status subresource.
    fn parent(&mut self, api_version: &str, resource: &str) {
        let group = group_of(api_version);
        self.allow(group, resource, PARENT);
        self.allow(group, &format!("{resource}/status"), STATUS);
    }

    /// Rules: one per API group and verb set, resources sorted, so the
    /// output is stable and short.
    fn rules(&self) -> Vec<Value> {
        let mut by_verbs: BTreeMap<(String, Vec<&str>), Vec<String>> = BTreeMap::new();
        for ((group, resource), verbs) in &self.0 {
            let verbs = ordered(verbs);
            by_verbs
                .entry((group.clone(), verbs))
                .or_default()
                .push(resource.clone());
        }
        by_verbs
            .into_iter()
            .map(|((group, verbs), resources)| {
                json!({"apiGroups": [group], "resources": resources, "verbs": verbs})
            })
            .collect()
    }
}

/// Verbs in the order Kubernetes documents them, not alphabetical.
fn ordered(verbs: &BTreeSet<&'static str>) -> Vec<&'static str> {
    const ORDER: &[&str] = &[
        "get", "list", "watch", "create", "update", "patch", "delete",
    ];
    ORDER
        .iter()
        .copied()
        .filter(|v| verbs.contains(v))
        .collect()
}

/// The API group of an `apiVersion` (`apps/v1` → `apps`, `v1` → core).
fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

/// What the manifests asked for.
#[derive(Default)]
struct Found {
    grants: Grants,
    /// The CustomResourceDefinitions of composite parents, by name.
    parent_crds: BTreeSet<String>,
    controllers: Vec<String>,
    customized: Vec<String>,
}

impl Found {
    fn composite(&mut self, name: &str, spec: &CompositeControllerSpec) {
        let parent = &spec.parent_resource;
        self.grants.parent(&parent.api_version, &parent.resource);
        self.parent_crds.insert(format!(
            "{}.{}",
            parent.resource,
            group_of(&parent.api_version)
        ));
        for child in spec.child_resources.iter().flatten() {
            self.grants
                .allow(group_of(&child.api_version), &child.resource, CHILD);
        }
        if spec.hooks.as_ref().is_some_and(|h| h.customize.is_some()) {
            self.customized.push(format!("CompositeController {name}"));
        }
        self.controllers.push(format!("CompositeController {name}"));
    }

    fn decorator(&mut self, name: &str, spec: &DecoratorControllerSpec) {
        for resource in &spec.resources {
            self.grants
                .parent(&resource.api_version, &resource.resource);
        }
        for attachment in spec.attachments.iter().flatten() {
            self.grants.allow(
                group_of(&attachment.api_version),
                &attachment.resource,
                CHILD,
            );
        }
        if spec.hooks.as_ref().is_some_and(|h| h.customize.is_some()) {
            self.customized.push(format!("DecoratorController {name}"));
        }
        self.controllers.push(format!("DecoratorController {name}"));
    }

    fn document(&mut self, path: &Path, doc: &Value) -> Result<(), RbacError> {
        if doc["apiVersion"] != "metacontroller.k8s.io/v1alpha1" {
            return Ok(());
        }
        let name = doc["metadata"]["name"].as_str().unwrap_or("").to_string();
        let spec = doc.get("spec").cloned().unwrap_or(Value::Null);
        let invalid = |kind, source| RbacError::Spec {
            path: path.to_path_buf(),
            kind,
            name: name.clone(),
            source,
        };
        match doc["kind"].as_str() {
            Some("CompositeController") => {
                let spec: CompositeControllerSpec =
                    serde_json::from_value(spec).map_err(|e| invalid("CompositeController", e))?;
                self.composite(&name, &spec);
            }
            Some("DecoratorController") => {
                let spec: DecoratorControllerSpec =
                    serde_json::from_value(spec).map_err(|e| invalid("DecoratorController", e))?;
                self.decorator(&name, &spec);
            }
            _ => {}
        }
        Ok(())
    }
}

/// Every manifest file under `path` (itself when it is a file), sorted.
fn manifest_files(path: &Path) -> Result<Vec<PathBuf>, RbacError> {
    let read = |source| RbacError::Read {
        path: path.to_path_buf(),
        source,
    };
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(read)? {
        let entry = entry.map_err(read)?.path();
        if entry.is_dir() {
            files.extend(manifest_files(&entry)?);
        } else if matches!(
            entry.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            files.push(entry);
        }
    }
    files.sort();
    Ok(files)
}

/// The documents of one file (YAML streams; JSON is YAML too). `List`
/// documents are opened.
fn documents(path: &Path) -> Result<Vec<Value>, RbacError> {
    let text = std::fs::read_to_string(path).map_err(|source| RbacError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let value: Value =
            serde::Deserialize::deserialize(doc).map_err(|source| RbacError::Parse {
                path: path.to_path_buf(),
                source,
            })?;
        match value {
            Value::Null => {}
            Value::Object(ref map) if map.get("kind").and_then(Value::as_str) == Some("List") => {
                docs.extend(map["items"].as_array().cloned().unwrap_or_default());
            }
            other => docs.push(other),
        }
    }
    Ok(docs)
}

/// The ClusterRole and its binding, as YAML (two documents), with a header
/// naming the controllers they were made for.
pub fn generate(args: &RbacArgs) -> Result<String, RbacError> {
    let mut found = Found::default();
    for root in &args.files {
        for path in manifest_files(root)? {
            for doc in documents(&path)? {
                found.document(&path, &doc)?;
            }
        }
    }
    if found.controllers.is_empty() {
        return Err(RbacError::NoControllers(args.files.clone()));
    }
    let grants = &mut found.grants;
    grants.allow("metacontroller.k8s.io", "compositecontrollers", READ);
    grants.allow("metacontroller.k8s.io", "decoratorcontrollers", READ);
    grants.allow("metacontroller.k8s.io", "controllerrevisions", CHILD);
    grants.allow("", "events", &["list", "create", "update", "patch"]);
    grants.allow("events.k8s.io", "events", &["list", "create", "update", "patch"]);
    if !found.customized.is_empty() {
        grants.allow("", "namespaces", READ);
    }
    if args.leader_election {
        grants.allow(
            "coordination.k8s.io",
            "leases",
            &["get", "create", "update"],
        );
    }
    for related in &args.related {
        let (group, resource) = related.split_once('/').unwrap_or(("", related));
        if resource.is_empty() || resource.contains('/') {
            return Err(RbacError::Related(related.clone()));
        }
        grants.allow(group, resource, READ);
    }

    let mut rules = grants.rules();
    if !found.parent_crds.is_empty() {
        rules.push(json!({
            "apiGroups": ["apiextensions.k8s.io"],
            "resources": ["customresourcedefinitions"],
            "resourceNames": found.parent_crds,
            "verbs": ["get"],
        }));
    }
    let role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": args.name},
        "rules": rules,
    });
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": args.name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": args.name},
        "subjects": [{"kind": "ServiceAccount", "name": args.service_account, "namespace": args.namespace}],
    });

    let mut out = String::from("# Least-privilege role for:\n");
    for controller in &found.controllers {
        out.push_str(&format!("#   {controller}\n"));
    }
    if !found.customized.is_empty() {
        out.push_str(&format!(
            "# {} a customize hook: the related resources it asks for need read access\n\
             # too (add --related GROUP/RESOURCE for each{}).\n",
            found.customized.join(", ")
                + if found.customized.len() == 1 {
                    " has"
                } else {
                    " have"
                },
            if args.related.is_empty() {
                "; none given"
            } else {
                ""
            },
        ));
    }
    out.push_str(&to_yaml(&role));
    out.push_str("---\n");
    out.push_str(&to_yaml(&binding));
    Ok(out)
}

fn to_yaml(value: &Value) -> String {
    serde_yaml::to_string(value).expect("JSON values always encode as YAML")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(files: Vec<PathBuf>) -> RbacArgs {
        RbacArgs {
            files,
            name: "metacontroller".into(),
            service_account: "metacontroller".into(),
            namespace: "metacontroller".into(),
            leader_election: false,
            related: vec![],
        }
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn rules(yaml: &str) -> Vec<Value> {
        let docs: Vec<Value> = serde_yaml::Deserializer::from_str(yaml)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect();
        assert_eq!(docs[1]["kind"], "ClusterRoleBinding");
        docs[0]["rules"].as_array().unwrap().clone()
    }

    fn verbs_for(rules: &[Value], group: &str, resource: &str) -> Vec<String> {
        rules
            .iter()
            .filter(|r| r["apiGroups"][0] == group)
            .filter(|r| {
                r["resources"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|x| x == resource)
            })
            .flat_map(|r| r["verbs"].as_array().unwrap().clone())
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    }

    const COMPOSITE: &str = r#"
apiVersion: metacontroller.k8s.io/v1alpha1
kind: CompositeController
metadata: {name: bluegreen}
spec:
  parentResource: {apiVersion: ctl.example.com/v1, resource: bluegreens}
  childResources:
  - {apiVersion: v1, resource: services}
  - {apiVersion: apps/v1, resource: replicasets}
  hooks:
    sync: {webhook: {url: "http://hook/sync"}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: unrelated}
"#;

    const DECORATOR: &str = r#"
apiVersion: metacontroller.k8s.io/v1alpha1
kind: DecoratorController
metadata: {name: service-per-pod}
spec:
  resources:
  - {apiVersion: apps/v1, resource: statefulsets}
  attachments:
  - {apiVersion: v1, resource: services}
  hooks:
    sync: {webhook: {url: "http://hook/sync"}}
    customize: {webhook: {url: "http://hook/customize"}}
"#;

    #[test]
    fn composite_grants_parent_status_and_children() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "cc.yaml", COMPOSITE);
        let out = generate(&args(vec![path])).unwrap();
        assert!(out.contains("#   CompositeController bluegreen"), "{out}");
        let rules = rules(&out);
        assert_eq!(
            verbs_for(&rules, "ctl.example.com", "bluegreens"),
            ["get", "list", "watch", "update", "patch"]
        );
        assert_eq!(
            verbs_for(&rules, "ctl.example.com", "bluegreens/status"),
            ["update", "patch"]
        );
        for (group, resource) in [("", "services"), ("apps", "replicasets")] {
            assert_eq!(
                verbs_for(&rules, group, resource),
                [
                    "get", "list", "watch", "create", "update", "patch", "delete"
                ],
                "{group}/{resource}"
            );
        }
        assert_eq!(
            verbs_for(&rules, "metacontroller.k8s.io", "controllerrevisions").len(),
            7
        );
        assert!(verbs_for(&rules, "", "namespaces").is_empty());
        assert!(verbs_for(&rules, "coordination.k8s.io", "leases").is_empty());
        let crds: Vec<&Value> = rules
            .iter()
            .filter(|r| r["resources"][0] == "customresourcedefinitions")
            .collect();
        assert_eq!(crds.len(), 1);
        assert_eq!(
            crds[0]["resourceNames"],
            json!(["bluegreens.ctl.example.com"])
        );
        assert_eq!(crds[0]["verbs"], json!(["get"]));
        assert!(verbs_for(&rules, "", "configmaps").is_empty());
        assert!(!out.contains('*'), "no wildcard: {out}");
    }

    #[test]
    fn directories_merge_and_customize_is_flagged() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.yaml", COMPOSITE);
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        write(&dir.path().join("sub"), "b.yml", DECORATOR);
        write(dir.path(), "notes.txt", "not a manifest");
        let mut a = args(vec![dir.path().to_path_buf()]);
        a.leader_election = true;
        a.related = vec!["/configmaps".into(), "apps/deployments".into()];
        let out = generate(&a).unwrap();
        assert!(out.contains("DecoratorController service-per-pod has a customize hook"));
        let rules = rules(&out);
        // services are a child of one controller and an attachment of the other.
        assert_eq!(verbs_for(&rules, "", "services").len(), 7);
        assert_eq!(
            verbs_for(&rules, "apps", "statefulsets"),
            ["get", "list", "watch", "update", "patch"]
        );
        assert_eq!(
            verbs_for(&rules, "", "namespaces"),
            ["get", "list", "watch"]
        );
        assert_eq!(
            verbs_for(&rules, "", "configmaps"),
            ["get", "list", "watch"]
        );
        assert_eq!(
            verbs_for(&rules, "apps", "deployments"),
            ["get", "list", "watch"]
        );
        assert_eq!(
            verbs_for(&rules, "coordination.k8s.io", "leases"),
            ["get", "create", "update"]
        );
    }

    #[test]
    fn bad_input_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let none = write(dir.path(), "cm.yaml", "apiVersion: v1\nkind: ConfigMap\n");
        let err = generate(&args(vec![none])).unwrap_err();
        assert!(matches!(err, RbacError::NoControllers(_)), "{err}");

        let broken = write(
            dir.path(),
            "cc.yaml",
            "apiVersion: metacontroller.k8s.io/v1alpha1\nkind: CompositeController\nmetadata: {name: x}\nspec: {parentResource: 7}\n",
        );
        let err = generate(&args(vec![broken])).unwrap_err().to_string();
        assert!(err.contains("CompositeController x: invalid spec"), "{err}");

        let good = write(dir.path(), "ok.yaml", COMPOSITE);
        let mut a = args(vec![good]);
        a.related = vec!["apps/deployments/scale".into()];
        assert!(matches!(generate(&a), Err(RbacError::Related(_))));

        let missing = dir.path().join("missing.yaml");
        let err = generate(&args(vec![missing])).unwrap_err().to_string();
        assert!(err.contains("missing.yaml"), "{err}");
    }
}
