//! Reading the objects `render` works on: YAML (or JSON) files, or
//! directories of them (`.yaml`, `.yml`, `.json`, read in name order),
//! each holding any number of documents; `List` documents (as `kubectl get
//! -o yaml` prints them) are flattened. The objects are then sorted by
//! kind: the controller, CustomResourceDefinitions, and everything else
//! (parents, observed children, related objects).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

/// Why the input could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A file or directory could not be read.
    #[error("can't read {}: {source}", path.display())]
    Read {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A document is not valid YAML.
    #[error("{}: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_yaml::Error,
    },
}

/// Every object of the inputs, in reading order.
pub fn read_objects(paths: &[PathBuf]) -> Result<Vec<Value>, InputError> {
    let mut out = Vec::new();
    for path in paths {
        read_path(path, &mut out)?;
    }
    Ok(out)
}

fn read_path(path: &Path, out: &mut Vec<Value>) -> Result<(), InputError> {
    let read_err = |source| InputError::Read {
        path: path.to_owned(),
        source,
    };
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(read_err)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && p.extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
            })
            .collect();
        entries.sort();
        for entry in entries {
            read_path(&entry, out)?;
        }
        return Ok(());
    }
    let text = std::fs::read_to_string(path).map_err(read_err)?;
    for document in serde_yaml::Deserializer::from_str(&text) {
        let value = Value::deserialize(document).map_err(|source| InputError::Parse {
            path: path.to_owned(),
            source,
        })?;
        push(value, out);
    }
    Ok(())
}

fn push(value: Value, out: &mut Vec<Value>) {
    match value {
        Value::Null => {}
        Value::Object(ref map)
            if map
                .get("kind")
                .and_then(Value::as_str)
                .is_some_and(|k| k == "List" || k.ends_with("List"))
                && map.get("items").is_some_and(Value::is_array) =>
        {
            if let Some(Value::Array(items)) = value.get("items").cloned() {
                for item in items {
                    push(item, out);
                }
            }
        }
        other => out.push(other),
    }
}

/// The inputs sorted by kind.
#[derive(Debug, Default)]
pub struct Inputs {
    /// CompositeControllers and DecoratorControllers.
    pub controllers: Vec<Value>,
    /// CustomResourceDefinitions.
    pub crds: Vec<Value>,
    /// Everything else.
    pub objects: Vec<Value>,
}

impl Inputs {
    /// Sorts `objects` by kind.
    pub fn sort(objects: Vec<Value>) -> Inputs {
        let mut inputs = Inputs::default();
        for obj in objects {
            let api_version = obj["apiVersion"].as_str().unwrap_or_default();
            let kind = obj["kind"].as_str().unwrap_or_default();
            if api_version.starts_with("metacontroller.k8s.io/")
                && matches!(kind, "CompositeController" | "DecoratorController")
            {
                inputs.controllers.push(obj);
            } else if api_version.starts_with("apiextensions.k8s.io/")
                && kind == "CustomResourceDefinition"
            {
                inputs.crds.push(obj);
            } else {
                inputs.objects.push(obj);
            }
        }
        inputs
    }
}
