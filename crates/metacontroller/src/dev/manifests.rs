//! The manifests of a `dev -f DIR` folder: every `*.yaml`, `*.yml` and
//! `*.json` file directly in DIR except the dev file, each holding one or
//! more objects (`---`-separated YAML documents, or a `List`). `${NAME}`
//! placeholders are filled in from the hooks' ports (see
//! [`super::hooks::Hooks::variables`]) before parsing.
//!
//! Objects are applied with server-side apply (field manager
//! `metacontroller-dev`, forced) in three rounds, as `kubectl apply` of a
//! whole folder would need them: CustomResourceDefinitions first, waiting
//! until each is `Established`; then every other object; then the
//! CompositeControllers and DecoratorControllers, so that they start on a
//! complete world.
//!
//! An object that was applied and is no longer in any file (its file was
//! deleted, or it was removed from it) is deleted ([`delete_all`]), in the
//! reverse order: controllers, other objects, CRDs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::{Discovery, Scope};
use serde::Deserialize;
use serde_json::Value;

/// Field manager of the applies.
const FIELD_MANAGER: &str = "metacontroller-dev";
/// How long a CRD may take to become Established.
const ESTABLISH_TIMEOUT: Duration = Duration::from_secs(30);

/// Why manifests could not be read or applied.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{what}: {source}")]
    Api { what: String, source: kube::Error },
    #[error("{what}: no such resource on the server")]
    UnknownKind { what: String },
    #[error("CustomResourceDefinition {name} not Established within {ESTABLISH_TIMEOUT:?}")]
    NotEstablished { name: String },
}

/// One object read from a file.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The file it came from.
    pub file: PathBuf,
    pub object: Value,
}

impl Manifest {
    fn gvk(&self) -> GroupVersionKind {
        let api_version = self.object["apiVersion"].as_str().unwrap_or_default();
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let kind = self.object["kind"].as_str().unwrap_or_default();
        GroupVersionKind::gvk(group, version, kind)
    }

    fn name(&self) -> &str {
        self.object["metadata"]["name"].as_str().unwrap_or_default()
    }

    /// `kind/name`, as kubectl prints it.
    pub fn describe(&self) -> String {
        format!(
            "{}/{}",
            self.object["kind"]
                .as_str()
                .unwrap_or_default()
                .to_lowercase(),
            self.name()
        )
    }

    /// What names the object on the server, whatever its file: API group,
    /// kind, namespace (`default` when none is written, as it is applied)
    /// and name.
    pub fn identity(&self) -> (String, String, String, String) {
        let gvk = self.gvk();
        (
            gvk.group,
            gvk.kind,
            self.object["metadata"]["namespace"]
                .as_str()
                .filter(|ns| !ns.is_empty())
                .unwrap_or("default")
                .to_owned(),
            self.name().to_owned(),
        )
    }

    fn round(&self) -> u8 {
        let gvk = self.gvk();
        match (gvk.group.as_str(), gvk.kind.as_str()) {
            ("apiextensions.k8s.io", "CustomResourceDefinition") => 0,
            ("metacontroller.k8s.io", "CompositeController" | "DecoratorController") => 2,
            _ => 1,
        }
    }
}

/// Whether `path` is a manifest file by its name.
pub fn is_manifest(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// The manifest files directly in `dir`, sorted, except `skip`.
pub fn files(dir: &Path, skip: &Path) -> Result<Vec<PathBuf>, ManifestError> {
    let read = |source| ManifestError::Read {
        path: dir.display().to_string(),
        source,
    };
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read)? {
        let path = entry.map_err(read)?.path();
        if path.is_file() && is_manifest(&path) && path != skip {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

/// Replaces `${NAME}` for every NAME in `vars`; other text is kept.
pub fn substitute(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = text.to_owned();
    for (name, value) in vars {
        out = out.replace(&format!("${{{name}}}"), value);
    }
    out
}

/// Reads the objects of `file`, with `vars` substituted.
pub fn read(file: &Path, vars: &BTreeMap<String, String>) -> Result<Vec<Manifest>, ManifestError> {
    let path = file.display().to_string();
    let text = std::fs::read_to_string(file).map_err(|source| ManifestError::Read {
        path: path.clone(),
        source,
    })?;
    let text = substitute(&text, vars);
    let mut objects = Vec::new();
    for document in serde_yaml::Deserializer::from_str(&text) {
        let value =
            serde_json::to_value(serde_yaml::Value::deserialize(document).map_err(|e| {
                ManifestError::Parse {
                    path: path.clone(),
                    message: e.to_string(),
                }
            })?)
            .map_err(|e| ManifestError::Parse {
                path: path.clone(),
                message: e.to_string(),
            })?;
        match value {
            Value::Null => {}
            Value::Object(ref map) if map.get("kind").and_then(Value::as_str) == Some("List") => {
                for item in map
                    .get("items")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    objects.push(item.clone());
                }
            }
            Value::Object(_) => objects.push(value),
            _ => {
                return Err(ManifestError::Parse {
                    path,
                    message: "a document is not an object".into(),
                });
            }
        }
    }
    for object in &objects {
        if object["apiVersion"].as_str().is_none()
            || object["kind"].as_str().is_none()
            || object["metadata"]["name"].as_str().is_none()
        {
            return Err(ManifestError::Parse {
                path,
                message: "every object needs apiVersion, kind and metadata.name".into(),
            });
        }
    }
    Ok(objects
        .into_iter()
        .map(|object| Manifest {
            file: file.to_owned(),
            object,
        })
        .collect())
}

/// Applies `manifests` in their three rounds; returns what was applied, as
/// `kind/name`, in order.
pub async fn apply_all(
    client: &kube::Client,
    manifests: &[Manifest],
) -> Result<Vec<String>, ManifestError> {
    let mut applied = Vec::new();
    for round in 0..3 {
        let batch: Vec<&Manifest> = manifests.iter().filter(|m| m.round() == round).collect();
        if batch.is_empty() {
            continue;
        }
        let discovery = discover(client).await?;
        for manifest in &batch {
            apply(client, &discovery, manifest).await?;
            applied.push(manifest.describe());
        }
        if round == 0 {
            for manifest in &batch {
                wait_established(client, manifest.name()).await?;
            }
        }
    }
    Ok(applied)
}

/// The server's resources, as they are now.
async fn discover(client: &kube::Client) -> Result<Discovery, ManifestError> {
    Discovery::new(client.clone())
        .run()
        .await
        .map_err(|source| ManifestError::Api {
            what: "API discovery".into(),
            source,
        })
}

/// Deletes `manifests`, controllers first and CRDs last; an object already
/// gone is fine. Returns what was deleted, as `kind/name`.
pub async fn delete_all(
    client: &kube::Client,
    manifests: &[Manifest],
) -> Result<Vec<String>, ManifestError> {
    let mut deleted = Vec::new();
    if manifests.is_empty() {
        return Ok(deleted);
    }
    let discovery = discover(client).await?;
    for round in (0..3).rev() {
        for manifest in manifests.iter().filter(|m| m.round() == round) {
            let what = format!("{} ({})", manifest.describe(), manifest.file.display());
            let Some(api) = api_for(client, &discovery, manifest) else {
                // Its type is gone (a deleted CRD takes its objects along).
                continue;
            };
            match api
                .delete(manifest.name(), &DeleteParams::background())
                .await
            {
                Ok(_) => deleted.push(manifest.describe()),
                Err(kube::Error::Api(status)) if status.is_not_found() => {}
                Err(source) => return Err(ManifestError::Api { what, source }),
            }
        }
    }
    Ok(deleted)
}

/// The API of `manifest`'s type and namespace, if the server has the type.
fn api_for(
    client: &kube::Client,
    discovery: &Discovery,
    manifest: &Manifest,
) -> Option<kube::Api<DynamicObject>> {
    let (resource, capabilities) = discovery.resolve_gvk(&manifest.gvk())?;
    Some(match capabilities.scope {
        Scope::Cluster => kube::Api::all_with(client.clone(), &resource),
        Scope::Namespaced => {
            let namespace = manifest.object["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default");
            kube::Api::namespaced_with(client.clone(), namespace, &resource)
        }
    })
}

async fn apply(
    client: &kube::Client,
    discovery: &Discovery,
    manifest: &Manifest,
) -> Result<(), ManifestError> {
    let what = format!("{} ({})", manifest.describe(), manifest.file.display());
    let api = api_for(client, discovery, manifest)
        .ok_or_else(|| ManifestError::UnknownKind { what: what.clone() })?;
    api.patch(
        manifest.name(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&manifest.object),
    )
    .await
    .map_err(|source| ManifestError::Api { what, source })?;
    Ok(())
}

async fn wait_established(client: &kube::Client, name: &str) -> Result<(), ManifestError> {
    let resource = ApiResource {
        group: "apiextensions.k8s.io".into(),
        version: "v1".into(),
        api_version: "apiextensions.k8s.io/v1".into(),
        kind: "CustomResourceDefinition".into(),
        plural: "customresourcedefinitions".into(),
    };
    let api: kube::Api<DynamicObject> = kube::Api::all_with(client.clone(), &resource);
    let start = Instant::now();
    while start.elapsed() < ESTABLISH_TIMEOUT {
        let crd = api.get(name).await.map_err(|source| ManifestError::Api {
            what: format!("customresourcedefinition/{name}"),
            source,
        })?;
        let established = crd.data["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Established" && c["status"] == "True");
        if established {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(ManifestError::NotEstablished { name: name.into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_documents_lists_and_placeholders_in_rounds() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("all.yaml");
        std::fs::write(
            &file,
            "apiVersion: metacontroller.k8s.io/v1alpha1\nkind: CompositeController\nmetadata: {name: c}\nspec: {url: 'http://127.0.0.1:${HOOK_PORT}/sync'}\n---\n\
             apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: m}}\n---\n\
             apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: things.example.com}\n",
        )
        .unwrap();
        let vars = BTreeMap::from([("HOOK_PORT".to_owned(), "8123".to_owned())]);
        let read = read(&file, &vars).unwrap();
        let described: Vec<(String, u8)> = read.iter().map(|m| (m.describe(), m.round())).collect();
        assert_eq!(
            described,
            [
                ("compositecontroller/c".to_owned(), 2),
                ("configmap/m".to_owned(), 1),
                ("customresourcedefinition/things.example.com".to_owned(), 0)
            ]
        );
        assert_eq!(read[0].object["spec"]["url"], "http://127.0.0.1:8123/sync");
        // No namespace and `default` name the same object.
        let mut explicit = read[1].clone();
        explicit.object["metadata"]["namespace"] = "default".into();
        assert_eq!(explicit.identity(), read[1].identity());
        std::fs::write(&file, "kind: ConfigMap\nmetadata: {name: m}\n").unwrap();
        assert!(super::read(&file, &vars).is_err(), "apiVersion is required");
        let dev = dir.path().join("dev.yaml");
        std::fs::write(&dev, "hooks: []\n").unwrap();
        std::fs::write(dir.path().join("hook.py"), "").unwrap();
        assert_eq!(files(dir.path(), &dev).unwrap(), [file]);
    }
}
