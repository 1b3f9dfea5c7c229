//! `metacontroller render` against the engine and against itself.
//!
//! * For each example whose hook runs here and whose controller is a
//!   CompositeController (hello-world, indexed-job, cluster-parent,
//!   configmap-propagation, catset): the example runs
//!   on the embedded server (`metacontroller dev`, its `hook.py`, kubectl,
//!   as `examples/*/test.sh` do); once it has converged, the objects are read
//!   back with kubectl and rendered. Render must find nothing to do (exit
//!   0), its desired children must be byte for byte the
//!   `last-applied-configuration` the engine stored on each child, and
//!   rendering the parent alone must plan one create per child whose
//!   annotation is again byte for byte the stored one (exit 2). The
//!   example's hook functions run behind a server that records the
//!   engine's last requests: render's requests for the converged state are
//!   the same bytes.
//!   The catset example (RollingRecreate Pods through ControllerRevisions,
//!   the test playing the kubelet) joins them: its revision is an input
//!   object, and render must find it unchanged.
//! * `--hook-exec` with a wrapper around the example's own `sync` function
//!   gives the same report as the hook over HTTP; `customize` runs first.
//! * Golden files: `--check` passes on fresh `--update`d goldens and fails
//!   with a diff once the hook answers differently.
//! * Exit status 1 for a failing hook, an invalid answer and a child the
//!   parent's selector refuses; `--deleting` calls the finalize hook and
//!   plans the deletes and the finalizer's removal; v1 and v2 hooks get
//!   their children keyed differently.
//!
//! The comparison of the examples with the engine runs on the server
//! `MC_TEST_CLUSTER` names: `dev` on the embedded server (default), or
//! `metacontroller run` on a real control plane (`real`). The rolling step
//! and server-side apply have their own files (`render_rollout.rs`,
//! `render_ssa.rs`); what they share is in `common/render_bed.rs`.
//!
//! Needs kubectl and python3 (skipped without them unless
//! `MC_REQUIRE_KUBECTL` is set).
#![cfg(unix)]

mod common;

use common::paths::repo_root;
use common::render_bed::*;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// An example, set up: `(name, parent resource, child resources, input
/// file, namespace of the children or None for all)`.
struct Example {
    name: &'static str,
    parents: &'static str,
    children: &'static [&'static str],
    input: &'static str,
    /// Whether the test plays the kubelet (marks Pods Running and Ready).
    kubelet: bool,
}

const EXAMPLES: &[Example] = &[
    // A rolling update (RollingRecreate) through ControllerRevisions: the
    // revision is an input object like the children. First, as it takes
    // longest (the examples run two at a time).
    Example {
        name: "catset",
        parents: "catsets.ctl.example.com",
        children: &[
            "pods",
            "persistentvolumeclaims",
            "controllerrevisions.metacontroller.k8s.io",
        ],
        input: "catset.yaml",
        kubelet: true,
    },
    Example {
        name: "hello-world",
        parents: "helloworlds.demo.example.com",
        children: &["pods"],
        input: "hello.yaml",
        kubelet: false,
    },
    Example {
        name: "indexed-job",
        parents: "indexedjobs.demo.example.com",
        children: &["pods"],
        input: "job.yaml",
        kubelet: false,
    },
    Example {
        name: "cluster-parent",
        parents: "sharedconfigs.demo.example.com",
        children: &["configmaps"],
        input: "shared-config.yaml",
        kubelet: false,
    },
    Example {
        name: "configmap-propagation",
        parents: "configmappropagations.propagation.example.com",
        children: &["configmaps", "namespaces"],
        input: "propagation.yaml",
        kubelet: false,
    },
];

fn children_of(items: &Value) -> Vec<&Value> {
    items["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["metadata"]["annotations"][LAST_APPLIED].is_string())
        .collect()
}

/// Examples checked at once (each has its own server and hook).
const EXAMPLE_JOBS: usize = 2;

#[test]
fn examples_render_what_the_engine_applies() {
    let Some(kubectl_bin) = kubectl() else { return };
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..EXAMPLE_JOBS {
            scope.spawn(|| {
                while let Some(ex) = EXAMPLES.get(next.fetch_add(1, Ordering::SeqCst)) {
                    render_example(&kubectl_bin, ex);
                }
            });
        }
    });
}

/// Runs one example on its own server until it converges, then renders
/// its objects and compares (see the file's documentation).
fn render_example(kubectl_bin: &Path, ex: &Example) {
    let started = Instant::now();
    let root = repo_root();
    let here = root.join("examples").join(ex.name);
    let tmp = tempfile::tempdir().unwrap();
    let server = start_server(tmp.path(), &[]);
    let k = Kubectl {
        bin: kubectl_bin.to_owned(),
        kubeconfig: server.kubeconfig.clone(),
    };
    let engine_requests = tmp.path().join("engine-requests");
    std::fs::create_dir(&engine_requests).unwrap();
    let (_hook, port) = start_recorder(&here, &engine_requests);
    let crd = here.join("crd.yaml");
    k.apply_crd(&crd, ex.parents);
    let controller = controller_file(&here, port, tmp.path());
    k.ok(&["apply", "-f", controller.to_str().unwrap()]);
    k.ok(&["apply", "-f", here.join(ex.input).to_str().unwrap()]);

    // Converged: every parent has a status for its generation and the
    // children stay as they are for a few seconds.
    let snapshot = || {
        if ex.kubelet {
            play_kubelet(&k);
        }
        let parents = k.json(&["get", ex.parents, "-A"]);
        let mut children = Vec::new();
        for kind in ex.children {
            children.push(k.json(&["get", kind, "-A"]));
        }
        (parents, children)
    };
    wait_until(&format!("{}: parents synced", ex.name), || {
        let (parents, children) = snapshot();
        let synced = parents["items"].as_array().unwrap().iter().all(|p| {
            p["status"]["observedGeneration"] == p["metadata"]["generation"]
                && (!ex.kubelet || p["status"]["readyReplicas"] == p["spec"]["replicas"])
        });
        synced && children.iter().any(|c| !children_of(c).is_empty())
    });
    let mut stable = snapshot();
    wait_until(&format!("{}: stable", ex.name), || {
        std::thread::sleep(Duration::from_secs(2));
        let now = snapshot();
        let same = now == stable;
        stable = now;
        same
    });
    let (parents, children) = stable;

    // The converged state: nothing to do, and the desired children are
    // what the engine applied, byte for byte.
    let input = tmp.path().join("input");
    std::fs::create_dir(&input).unwrap();
    std::fs::copy(&crd, input.join("0-crd.yaml")).unwrap();
    std::fs::copy(&controller, input.join("1-controller.yaml")).unwrap();
    std::fs::write(input.join("2-parents.json"), parents.to_string()).unwrap();
    for (i, list) in children.iter().enumerate() {
        std::fs::write(input.join(format!("3-children-{i}.json")), list.to_string()).unwrap();
    }
    let (code, stdout, stderr) = render(&["-f", input.to_str().unwrap(), "-o", "json"]);
    assert_eq!(code, 0, "{}: converged state: {stdout}\n{stderr}", ex.name);
    let applied: Vec<&Value> = children.iter().flat_map(children_of).collect();
    let mut rendered = Vec::new();
    for report in reports(&stdout) {
        assert_eq!(
            report["plan"]["children"],
            Value::Array(vec![]),
            "{}",
            ex.name
        );
        assert_eq!(report["plan"]["status"], "unchanged", "{}", ex.name);
        if ex.kubelet {
            let revisions = report["plan"]["revisions"].as_array().unwrap();
            assert_eq!(revisions.len(), 1, "{}: {stdout}", ex.name);
            assert_eq!(revisions[0]["action"], "unchanged", "{}", ex.name);
            assert_eq!(revisions[0]["latest"], true, "{}", ex.name);
        }
        for child in report["desired"]["children"].as_array().unwrap() {
            rendered.push(child.clone());
        }
    }
    assert_eq!(rendered.len(), applied.len(), "{}: {stdout}", ex.name);
    for child in &rendered {
        let name = child["metadata"]["name"].as_str().unwrap();
        let ns = &child["metadata"]["namespace"];
        let stored = applied
            .iter()
            .find(|a| a["metadata"]["name"] == name && &a["metadata"]["namespace"] == ns)
            .unwrap_or_else(|| panic!("{}: no applied child {name}", ex.name));
        let annotation = stored["metadata"]["annotations"][LAST_APPLIED]
            .as_str()
            .unwrap();
        let bytes = metacontroller_api::gojson::to_go_json(child).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            annotation,
            "{}: desired child {name}",
            ex.name
        );
    }

    // The requests are the engine's, byte for byte: the last one it sent
    // (for the converged state) and render's for the same state.
    let render_requests = tmp.path().join("render-requests");
    std::fs::create_dir(&render_requests).unwrap();
    let recording = format!(
        "tee {}/$METACONTROLLER_HOOK.json | {}",
        render_requests.display(),
        exec_example(ex.name)
    );
    let (code, stdout, stderr) =
        render(&["-f", input.to_str().unwrap(), "--hook-exec", &recording]);
    assert_eq!(
        code, 0,
        "{}: converged state, exec: {stdout}\n{stderr}",
        ex.name
    );
    let mut compared = Vec::new();
    for entry in std::fs::read_dir(&engine_requests).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let name = path.file_name().unwrap();
            let engine = std::fs::read_to_string(&path).unwrap();
            let ours = std::fs::read_to_string(render_requests.join(name))
                .unwrap_or_else(|e| panic!("{}: no {name:?} request from render: {e}", ex.name));
            assert_eq!(ours, engine, "{}: {name:?} request", ex.name);
            compared.push(name.to_string_lossy().into_owned());
        }
    }
    compared.sort();
    let expected: &[&str] = if ex.name == "configmap-propagation" {
        &["customize.json", "sync.json"]
    } else {
        &["sync.json"]
    };
    assert_eq!(compared, expected, "{}", ex.name);

    // The parents alone (no observed children): one create per child,
    // with the annotation the engine stored.
    let fresh = tmp.path().join("fresh");
    std::fs::create_dir(&fresh).unwrap();
    for file in ["0-crd.yaml", "1-controller.yaml", "2-parents.json"] {
        std::fs::copy(input.join(file), fresh.join(file)).unwrap();
    }
    if ex.name == "configmap-propagation" {
        // The related objects: the source ConfigMap and the Namespaces.
        let source = k.json(&["get", "configmap", "settings", "-n", "platform"]);
        std::fs::write(fresh.join("4-source.json"), source.to_string()).unwrap();
        std::fs::copy(
            input.join("3-children-1.json"),
            fresh.join("4-namespaces.json"),
        )
        .unwrap();
    }
    let (code, stdout, stderr) = render(&["-f", fresh.to_str().unwrap(), "-o", "json"]);
    assert_eq!(code, 2, "{}: fresh: {stdout}\n{stderr}", ex.name);
    let fresh_reports = reports(&stdout);
    let creates: Vec<Value> = fresh_reports
        .iter()
        .flat_map(|r| r["plan"]["children"].as_array().unwrap().clone())
        .collect();
    if ex.kubelet {
        // Pods start one at a time: only the first is asked for. The
        // revision to create is the one the engine made.
        assert!(!creates.is_empty(), "{}: {stdout}", ex.name);
        let stored: Vec<&Value> = children
            .iter()
            .flat_map(|c| c["items"].as_array().unwrap())
            .filter(|o| o["kind"] == "ControllerRevision")
            .collect();
        assert_eq!(stored.len(), 1, "{}", ex.name);
        let planned = &fresh_reports[0]["plan"]["revisions"];
        assert_eq!(planned[0]["action"], "create", "{}: {stdout}", ex.name);
        let object = &planned[0]["object"];
        for field in [
            "/metadata/name",
            "/metadata/labels",
            "/metadata/ownerReferences",
            "/parentPatch",
        ] {
            assert_eq!(
                object.pointer(field),
                stored[0].pointer(field),
                "{}: revision {field}",
                ex.name
            );
        }
    } else {
        assert_eq!(creates.len(), applied.len(), "{}: {stdout}", ex.name);
    }
    for step in &creates {
        assert_eq!(step["action"], "create");
        let obj = &step["object"];
        let stored = applied
            .iter()
            .find(|a| {
                a["metadata"]["name"] == obj["metadata"]["name"]
                    && a["metadata"]["namespace"] == obj["metadata"]["namespace"]
            })
            .unwrap();
        assert_eq!(
            obj["metadata"]["annotations"][LAST_APPLIED],
            stored["metadata"]["annotations"][LAST_APPLIED],
            "{}",
            ex.name
        );
        assert_eq!(
            obj["metadata"]["ownerReferences"], stored["metadata"]["ownerReferences"],
            "{}",
            ex.name
        );
    }
    eprintln!(
        "{}: {} children rendered as applied, requests {compared:?} identical ({:.1} s)",
        ex.name,
        rendered.len(),
        started.elapsed().as_secs_f64()
    );
}

// --- offline: hooks run as commands ---------------------------------------------

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: things.test.example.com
spec:
  group: test.example.com
  scope: Namespaced
  names: {kind: Thing, plural: things, singular: thing, listKind: ThingList}
  versions:
    - name: v1
      served: true
      storage: true
      subresources: {status: {}}
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
"#;

/// A CompositeController of Things with ConfigMap children (`method`)
/// whose sync (and finalize) hooks are `version`.
fn thing_controller(method: &str, version: &str, finalize: bool) -> String {
    let finalize = if finalize {
        format!(
            "    finalize:\n      version: {version}\n      webhook: {{url: http://127.0.0.1:1/finalize}}\n"
        )
    } else {
        String::new()
    };
    format!(
        r#"
apiVersion: metacontroller.k8s.io/v1alpha1
kind: CompositeController
metadata:
  name: things
spec:
  generateSelector: true
  parentResource: {{apiVersion: test.example.com/v1, resource: things}}
  childResources:
    - apiVersion: v1
      resource: configmaps
      updateStrategy: {{method: {method}}}
  hooks:
    sync:
      version: {version}
      webhook: {{url: http://127.0.0.1:1/sync}}
{finalize}"#
    )
}

const THING: &str = r#"
apiVersion: test.example.com/v1
kind: Thing
metadata: {name: one, namespace: ns, uid: 11111111-2222-3333-4444-555555555555, generation: 1}
spec: {value: a}
"#;

/// A hook answering one ConfigMap `<parent>-cm` holding spec.value, with
/// the observed children's keys and `finalizing` in its status; on
/// finalize, no children and `finalized`.
const THING_HOOK: &str = r#"
import json, sys
req = json.load(sys.stdin)
parent = req["parent"]
keys = sorted(k for group in req["children"].values() for k in group)
status = {"keys": keys, "finalizing": req["finalizing"]}
if req["finalizing"]:
    print(json.dumps({"status": status, "children": [], "finalized": True}))
else:
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": parent["metadata"]["name"] + "-cm"},
          "data": {"value": parent["spec"]["value"]}}
    print(json.dumps({"status": status, "children": [cm]}))
"#;

/// A folder with the CRD, a Thing controller and a Thing, plus `extra`
/// files; and the hook script.
fn thing_dir(controller: &str, extra: &[(&str, &str)]) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    std::fs::write(input.join("crd.yaml"), CRD).unwrap();
    std::fs::write(input.join("controller.yaml"), controller).unwrap();
    std::fs::write(input.join("thing.yaml"), THING).unwrap();
    for (name, text) in extra {
        std::fs::write(input.join(name), text).unwrap();
    }
    let hook = dir.path().join("hook.py");
    std::fs::write(&hook, THING_HOOK).unwrap();
    let command = format!("python3 {}", hook.display());
    (dir, command)
}

fn input_of(dir: &tempfile::TempDir) -> String {
    dir.path().join("in").to_str().unwrap().to_owned()
}

/// The ConfigMap the Thing hook asks for, as the engine created it (with
/// the annotation and owner reference from a first render's plan), with
/// `value` in place of the desired one.
fn observed_child(dir: &tempfile::TempDir, command: &str, value: &str) -> String {
    let (code, stdout, stderr) =
        render(&["-f", &input_of(dir), "--hook-exec", command, "-o", "json"]);
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    let mut obj = reports(&stdout)[0]["plan"]["children"][0]["object"].clone();
    obj["data"]["value"] = Value::from(value);
    obj["metadata"]["uid"] = Value::from("c1");
    obj.to_string()
}

#[test]
fn hook_exec_matches_http_and_runs_customize_first() {
    if kubectl().is_none() {
        return;
    }
    let root = repo_root();
    // configmap-propagation has a customize hook; its related objects and
    // the parent come from the example's own files.
    let here = root.join("examples/configmap-propagation");
    let tmp = tempfile::tempdir().unwrap();
    let (_hook, port) = start_hook(&here);
    let controller = controller_file(&here, port, tmp.path());
    let parent_uid = r#"{"apiVersion":"propagation.example.com/v1","kind":"ConfigMapPropagation","metadata":{"name":"settings","uid":"u-1","generation":1},"spec":{"source":{"namespace":"platform","name":"settings"},"namespaceSelector":{"matchLabels":{"propagation.example.com/settings":"copy"}}}}"#;
    let input = tmp.path().join("in");
    std::fs::create_dir(&input).unwrap();
    std::fs::copy(here.join("crd.yaml"), input.join("0-crd.yaml")).unwrap();
    std::fs::copy(&controller, input.join("1-controller.yaml")).unwrap();
    // The example's objects minus its parent (which has no uid there).
    let objects = std::fs::read_to_string(here.join("propagation.yaml")).unwrap();
    let without_parent: Vec<&str> = objects
        .split("\n---\n")
        .filter(|d| !d.contains("kind: ConfigMapPropagation"))
        .collect();
    std::fs::write(input.join("2-objects.yaml"), without_parent.join("\n---\n")).unwrap();
    std::fs::write(input.join("3-parent.json"), parent_uid).unwrap();
    let dir = input.to_str().unwrap();

    let (code, http, stderr) = render(&["-f", dir]);
    assert_eq!(code, 2, "{http}\n{stderr}");
    let (code, exec, stderr) = render(&[
        "-f",
        dir,
        "--hook-exec",
        &exec_example("configmap-propagation"),
    ]);
    assert_eq!(code, 2, "{exec}\n{stderr}");
    assert_eq!(http, exec);
    // The related objects reached the sync hook: one copy per labelled
    // namespace, holding the source's data.
    let report: Value = serde_yaml::from_str(http.trim_end_matches("---\n")).unwrap();
    let children = report["desired"]["children"].as_array().unwrap();
    let namespaces: Vec<&str> = children
        .iter()
        .map(|c| c["metadata"]["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(namespaces, ["team-a", "team-b"]);
    assert_eq!(children[0]["data"]["log-level"], "info");

    // Without the customize hook's related objects in the input, no copies.
    std::fs::write(input.join("2-objects.yaml"), "").unwrap();
    let (_, stdout, _) = render(&["-f", dir, "-o", "json"]);
    assert_eq!(
        reports(&stdout)[0]["desired"]["children"],
        Value::Array(vec![])
    );
}

#[test]
fn exit_codes() {
    if kubectl().is_none() {
        return;
    }
    let controller = thing_controller("InPlace", "v1", false);
    let (dir, command) = thing_dir(&controller, &[]);
    // 2: a child to create and a status to write.
    let (code, stdout, _) = render(&["-f", &input_of(&dir), "--hook-exec", &command, "-o", "diff"]);
    assert_eq!(code, 2, "{stdout}");
    assert!(
        stdout.contains("create ConfigMap.v1 ns/one-cm (InPlace)"),
        "{stdout}"
    );
    assert!(stdout.contains("update status"), "{stdout}");

    // 0: the child exists as desired and the status is the hook's.
    let child = observed_child(&dir, &command, "a");
    let converged_parent = THING.replace(
        "spec: {value: a}",
        "spec: {value: a}\nstatus: {keys: [one-cm], finalizing: false, observedGeneration: 1}",
    );
    let (dir0, _) = thing_dir(&controller, &[("child.json", &child)]);
    std::fs::write(dir0.path().join("in/thing.yaml"), &converged_parent).unwrap();
    let (code, stdout, stderr) = render(&["-f", &input_of(&dir0), "--hook-exec", &command]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");

    // 1: the hook fails, answers something that is not JSON, or asks for
    // a child the parent's selector refuses.
    let (code, _, stderr) = render(&[
        "-f",
        &input_of(&dir),
        "--hook-exec",
        "echo broken >&2; exit 3",
    ]);
    assert_eq!(code, 1);
    assert!(stderr.contains("broken"), "{stderr}");
    let (code, _, stderr) = render(&["-f", &input_of(&dir), "--hook-exec", "echo '{not json'"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("invalid response"), "{stderr}");
    let bad = r#"echo '{"children":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","labels":{"controller-uid":"other"}}}]}'"#;
    let (code, _, stderr) = render(&["-f", &input_of(&dir), "--hook-exec", bad]);
    assert_eq!(code, 1);
    assert!(stderr.contains("don't match parent selector"), "{stderr}");
    // 1: a hook URL nothing listens on.
    let (code, _, stderr) = render(&[
        "-f",
        &input_of(&dir),
        "--hook-url",
        "http://127.0.0.1:1/sync",
    ]);
    assert_eq!(code, 1);
    assert!(stderr.contains("sync hook failed"), "{stderr}");
}

#[test]
fn update_strategies_in_the_plan() {
    if kubectl().is_none() {
        return;
    }
    for (method, action, code) in [
        ("InPlace", "update", 2),
        ("Recreate", "recreate", 2),
        ("OnDelete", "skip", 0),
    ] {
        let controller = thing_controller(method, "v1", false);
        let (dir, command) = thing_dir(&controller, &[]);
        let child = observed_child(&dir, &command, "old");
        std::fs::write(dir.path().join("in/child.json"), &child).unwrap();
        // The status is already the hook's: only the child can differ.
        std::fs::write(
            dir.path().join("in/thing.yaml"),
            THING.replace(
                "spec: {value: a}",
                "spec: {value: a}\nstatus: {keys: [one-cm], finalizing: false, observedGeneration: 1}",
            ),
        )
        .unwrap();
        let (got, stdout, stderr) =
            render(&["-f", &input_of(&dir), "--hook-exec", &command, "-o", "json"]);
        assert_eq!(got, code, "{method}: {stdout}\n{stderr}");
        let step = &reports(&stdout)[0]["plan"]["children"][0];
        assert_eq!(step["action"], action, "{method}");
        let diff = step["diff"].as_str().unwrap();
        assert!(
            diff.contains("-   value: old") && diff.contains("+   value: a"),
            "{diff}"
        );
    }
}

#[test]
fn deleting_calls_finalize() {
    if kubectl().is_none() {
        return;
    }
    let controller = thing_controller("InPlace", "v1", true);
    let (dir, command) = thing_dir(&controller, &[]);
    let child = observed_child(&dir, &command, "a");
    std::fs::write(dir.path().join("in/child.json"), &child).unwrap();
    let (code, stdout, stderr) = render(&[
        "-f",
        &input_of(&dir),
        "--hook-exec",
        &command,
        "--deleting",
        "-o",
        "json",
    ]);
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    let report = &reports(&stdout)[0];
    assert_eq!(report["hook"], "finalize");
    assert_eq!(report["desired"]["status"]["finalizing"], true);
    assert_eq!(report["desired"]["finalized"], true);
    assert_eq!(report["plan"]["finalizer"], "remove");
    assert_eq!(report["plan"]["children"][0]["action"], "delete");
    assert_eq!(
        report["plan"]["children"][0]["child"],
        "ConfigMap.v1 ns/one-cm"
    );

    // Without --deleting the same controller syncs, and first adds its
    // finalizer.
    let (code, stdout, _) = render(&["-f", &input_of(&dir), "--hook-exec", &command, "-o", "json"]);
    assert_eq!(code, 2);
    let report = &reports(&stdout)[0];
    assert_eq!(report["hook"], "sync");
    assert_eq!(report["plan"]["finalizer"], "add");
}

#[test]
fn v1_and_v2_hooks_key_children_differently() {
    if kubectl().is_none() {
        return;
    }
    for (version, key) in [("v1", "one-cm"), ("v2", "ns/one-cm")] {
        let controller = thing_controller("InPlace", version, false);
        let (dir, command) = thing_dir(&controller, &[]);
        let child = observed_child(&dir, &command, "a");
        std::fs::write(dir.path().join("in/child.json"), &child).unwrap();
        let (_, stdout, stderr) =
            render(&["-f", &input_of(&dir), "--hook-exec", &command, "-o", "json"]);
        let report = &reports(&stdout)[0];
        assert_eq!(
            report["desired"]["status"]["keys"],
            serde_json::json!([key]),
            "{version}: {stderr}"
        );
    }
}

#[test]
fn check_against_golden_files() {
    if kubectl().is_none() {
        return;
    }
    let controller = thing_controller("InPlace", "v2", false);
    let (dir, command) = thing_dir(&controller, &[]);
    let golden = dir.path().join("golden");
    let golden_dir = golden.to_str().unwrap();
    let input = input_of(&dir);

    // No golden file yet: the check fails.
    let (code, _, stderr) = render(&["-f", &input, "--hook-exec", &command, "--check", golden_dir]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("no golden file"), "{stderr}");

    let (code, _, stderr) = render(&[
        "-f",
        &input,
        "--hook-exec",
        &command,
        "--check",
        golden_dir,
        "--update",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let written = std::fs::read_to_string(golden.join("ns.one.yaml")).unwrap();
    assert!(written.contains("action: create"), "{written}");
    let (code, stdout, stderr) =
        render(&["-f", &input, "--hook-exec", &command, "--check", golden_dir]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");

    // The hook changes what it answers: the check fails with the diff.
    let hook = dir.path().join("hook.py");
    let changed = THING_HOOK.replace(
        r#""data": {"value": parent["spec"]["value"]}"#,
        r#""data": {"value": parent["spec"]["value"] + "!"}"#,
    );
    assert_ne!(changed, THING_HOOK);
    std::fs::write(&hook, changed).unwrap();
    let (code, stdout, stderr) =
        render(&["-f", &input, "--hook-exec", &command, "--check", golden_dir]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("-       value: a") && stdout.contains("+       value: a!"),
        "{stdout}"
    );
}

#[test]
fn parent_label_selector() {
    if kubectl().is_none() {
        return;
    }
    let controller = thing_controller("InPlace", "v1", false).replace(
        "resource: things}",
        "resource: things, labelSelector: {matchLabels: {pick: \"yes\"}}}",
    );
    assert!(controller.contains("labelSelector"));
    let (dir, command) = thing_dir(&controller, &[]);
    // Not selected: skipped, nothing to do.
    let (code, stdout, stderr) = render(&["-f", &input_of(&dir), "--hook-exec", &command]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("does not match parentResource.labelSelector"),
        "{stderr}"
    );
    // Selected: rendered.
    std::fs::write(
        dir.path().join("in/thing.yaml"),
        THING.replace("generation: 1}", "generation: 1, labels: {pick: \"yes\"}}"),
    )
    .unwrap();
    let (code, stdout, stderr) = render(&["-f", &input_of(&dir), "--hook-exec", &command]);
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    assert!(stdout.contains("action: create"), "{stdout}");
}

// --- DecoratorControllers -------------------------------------------------------

/// The service-per-pod example on the embedded server: once converged,
/// render's desired attachments are the Services the engine applied, byte
/// for byte; without the Services the plan creates them; `--deleting`
/// calls finalize, which deletes them and removes the count annotation.
#[test]
fn service_per_pod_renders_what_the_engine_applies() {
    let Some(kubectl_bin) = kubectl() else { return };
    let here = repo_root().join("examples/service-per-pod");
    let tmp = tempfile::tempdir().unwrap();
    let (_server, kubeconfig) = start_dev(tmp.path());
    let k = Kubectl {
        bin: kubectl_bin,
        kubeconfig,
    };
    let (_hook, port) = start_hook(&here);
    let text = std::fs::read_to_string(here.join("decorators.yaml"))
        .unwrap()
        .replace("${HOOK_PORT}", &port.to_string());
    let controllers = tmp.path().join("decorators.yaml");
    std::fs::write(&controllers, &text).unwrap();
    k.ok(&["apply", "-f", controllers.to_str().unwrap()]);
    k.ok(&[
        "apply",
        "-f",
        here.join("statefulset.yaml").to_str().unwrap(),
    ]);
    let services = || k.json(&["get", "services", "-n", "web-demo"]);
    wait_until("three Services", || children_of(&services()).len() == 3);
    wait_until("count annotation", || {
        k.json(&["get", "statefulset", "web", "-n", "web-demo"])["metadata"]["annotations"]["service-per-pod.example.com/services"]
            == "3"
    });
    let sts = k.json(&["get", "statefulset", "web", "-n", "web-demo"]);
    let svcs = services();
    let applied = children_of(&svcs);

    // Only the service-per-pod controller (the first document).
    let input = tmp.path().join("input");
    std::fs::create_dir(&input).unwrap();
    let first = text.split("\n---\n").next().unwrap();
    std::fs::write(input.join("1-controller.yaml"), first).unwrap();
    std::fs::write(input.join("2-target.json"), sts.to_string()).unwrap();
    let (code, stdout, stderr) = render(&["-f", input.to_str().unwrap(), "-o", "json"]);
    assert_eq!(code, 2, "target alone: {stdout}\n{stderr}");
    let report = &reports(&stdout)[0];
    assert_eq!(report["object"], "StatefulSet web-demo/web");
    let creates = report["plan"]["attachments"].as_array().unwrap();
    assert_eq!(creates.len(), 3, "{stdout}");
    assert!(creates.iter().all(|s| s["action"] == "create"));
    assert!(report["plan"].get("object").is_none(), "{stdout}");

    std::fs::write(input.join("3-services.json"), svcs.to_string()).unwrap();
    let (code, stdout, stderr) = render(&["-f", input.to_str().unwrap(), "-o", "json"]);
    assert_eq!(code, 0, "converged: {stdout}\n{stderr}");
    let report = &reports(&stdout)[0];
    assert_eq!(report["plan"]["attachments"], Value::Array(vec![]));
    assert_eq!(report["plan"]["unchangedAttachments"], 3);
    let rendered = report["desired"]["attachments"].as_array().unwrap();
    assert_eq!(rendered.len(), applied.len());
    for svc in rendered {
        let stored = applied
            .iter()
            .find(|a| a["metadata"]["name"] == svc["metadata"]["name"])
            .unwrap();
        let bytes = metacontroller_api::gojson::to_go_json(svc).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            stored["metadata"]["annotations"][LAST_APPLIED]
                .as_str()
                .unwrap()
        );
    }

    // Offline, the hook run as a command, being deleted: finalize deletes
    // the three Services and drops the count annotation.
    let (code, stdout, stderr) = render(&[
        "-f",
        input.to_str().unwrap(),
        "-o",
        "json",
        "--deleting",
        "--hook-exec",
        &exec_example("service-per-pod").replace(
            "os.environ[\"METACONTROLLER_HOOK\"]",
            "\"service_per_pod_\" + os.environ[\"METACONTROLLER_HOOK\"]",
        ),
    ]);
    assert_eq!(code, 2, "deleting: {stdout}\n{stderr}");
    let report = &reports(&stdout)[0];
    assert_eq!(report["hook"], "finalize");
    let steps = report["plan"]["attachments"].as_array().unwrap();
    assert_eq!(steps.len(), 3, "{stdout}");
    assert!(steps.iter().all(|s| s["action"] == "delete"), "{stdout}");
    let diff = report["plan"]["object"]["diff"].as_str().unwrap();
    assert!(
        diff.lines()
            .any(|l| l.starts_with('-') && l.contains("service-per-pod.example.com/services")),
        "{diff}"
    );

    // Two controllers in the input: refused.
    std::fs::write(input.join("1-controller.yaml"), &text).unwrap();
    let (code, _, stderr) = render(&["-f", input.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
}
