//! `metacontroller render` of a rolling update (the catset example,
//! RollingRecreate Pods through ControllerRevisions) against the engine,
//! on the server `MC_TEST_CLUSTER` names: with the observed Pods at an old
//! revision, render plans exactly the rollout step the engine takes.
//!
//! Needs kubectl and python3 (skipped without them unless
//! `MC_REQUIRE_KUBECTL` is set).
#![cfg(unix)]

mod common;

use common::paths::repo_root;
use common::render_bed::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// The catset example converged with every Pod Ready: `(server, hook,
/// kubectl, input dir with the CRD and controller)`.
fn converged_catset(tmp: &Path, kubectl_bin: PathBuf) -> (Server, Proc, Kubectl, PathBuf) {
    let here = repo_root().join("examples/catset");
    let server = start_server(tmp, &[]);
    let k = Kubectl {
        bin: kubectl_bin,
        kubeconfig: server.kubeconfig.clone(),
    };
    let (hook, port) = start_hook(&here);
    k.apply_crd(&here.join("crd.yaml"), "catsets.ctl.example.com");
    let controller = controller_file(&here, port, tmp);
    k.ok(&["apply", "-f", controller.to_str().unwrap()]);
    k.ok(&["apply", "-f", here.join("catset.yaml").to_str().unwrap()]);
    wait_until("catset: 3 ready replicas on the latest revision", || {
        play_kubelet(&k);
        let catset = k.json(&["get", "catset", "nginx-backend"]);
        catset["status"]["readyReplicas"] == 3
            && catset["status"]["conditions"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["reason"] == "OnLatestRevision"))
    });
    let input = tmp.join("input");
    std::fs::create_dir(&input).unwrap();
    std::fs::copy(here.join("crd.yaml"), input.join("0-crd.yaml")).unwrap();
    std::fs::copy(&controller, input.join("1-controller.yaml")).unwrap();
    (server, hook, k, input)
}

/// The catset world as kubectl reads it, written into `dir`: the CatSet,
/// its Pods, claims and ControllerRevisions (after two equal reads 2 s
/// apart).
fn catset_world(k: &Kubectl, dir: &Path) -> Vec<Value> {
    let read = || {
        [
            "catsets",
            "pods",
            "persistentvolumeclaims",
            "controllerrevisions.metacontroller.k8s.io",
        ]
        .map(|kind| k.json(&["get", kind]))
        .to_vec()
    };
    let mut world = read();
    wait_until("catset: stable", || {
        std::thread::sleep(Duration::from_secs(2));
        let now = read();
        let same = now == world;
        world = now;
        same
    });
    for (i, list) in world.iter().enumerate() {
        std::fs::write(dir.join(format!("2-world-{i}.json")), list.to_string()).unwrap();
    }
    world
}

fn named<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {list}"))
}

/// Observed Pods at an old revision: render plans exactly one rolling step
/// (the new ControllerRevision, the old one keeping the other Pods, one
/// Pod recreated, `Updated` False/RolloutProgressing), and the engine, given
/// the same change on the embedded server, takes that step: the same
/// revisions, the same Pod recreated (and only it), the same condition.
/// Without a kubelet the new Pod never gets Ready, so the engine then
/// waits; rendering that world plans nothing and the waiting condition the
/// engine wrote.
#[test]
fn rolling_step_is_the_engines() {
    let Some(kubectl_bin) = kubectl() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (_server, _hook, k, input) = converged_catset(tmp.path(), kubectl_bin);
    let before = catset_world(&k, &input);
    let exec = exec_example("catset");

    // Offline: the CatSet's template moves to nginx:1.27.
    let mut catset = named(&before[0], "nginx-backend").clone();
    catset["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.27".into();
    let generation = catset["metadata"]["generation"].as_i64().unwrap();
    catset["metadata"]["generation"] = (generation + 1).into();
    let offline = tmp.path().join("offline");
    std::fs::create_dir(&offline).unwrap();
    for entry in std::fs::read_dir(&input).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, offline.join(path.file_name().unwrap())).unwrap();
    }
    std::fs::write(offline.join("2-world-0.json"), catset.to_string()).unwrap();
    let (code, stdout, stderr) = render_json(&offline, &exec);
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    let report = &reports(&stdout)[0];
    let steps = report["plan"]["children"].as_array().unwrap();
    assert_eq!(steps.len(), 1, "one child moves: {stdout}");
    assert_eq!(steps[0]["action"], "recreate");
    assert_eq!(steps[0]["child"], "Pod.v1 default/nginx-backend-2");
    let condition = report["desired"]["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Updated")
        .unwrap()
        .clone();
    assert_eq!(condition["reason"], "RolloutProgressing");
    assert_eq!(condition["message"], "updating Pod nginx-backend-2");
    let planned = report["plan"]["revisions"].as_array().unwrap();
    assert_eq!(planned.len(), 2, "{stdout}");
    assert_eq!(planned[0]["action"], "create");
    assert_eq!(planned[0]["latest"], true);
    assert_eq!(planned[1]["action"], "update");
    let old_name = before[3]["items"][0]["metadata"]["name"].clone();
    assert_eq!(planned[1]["revision"], old_name);

    // On the server: the same change, a watch on the CatSet's status, and
    // no kubelet from now on.
    let watch_out = tmp.path().join("watch.json");
    let watch = Proc(
        Command::new(&k.bin)
            .arg("--kubeconfig")
            .arg(&k.kubeconfig)
            .args(["get", "catset", "nginx-backend", "-w", "-o", "json"])
            .stdout(std::fs::File::create(&watch_out).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_secs(1));
    k.ok(&[
        "patch",
        "catset",
        "nginx-backend",
        "--type",
        "json",
        "-p",
        r#"[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"nginx:1.27"}]"#,
    ]);
    wait_until("catset: the engine's step", || {
        let revisions = k.json(&["get", "controllerrevisions.metacontroller.k8s.io"]);
        revisions["items"].as_array().unwrap().len() == 2
            && k.json(&["get", "pod", "nginx-backend-2"])["spec"]["containers"][0]["image"]
                == "nginx:1.27"
    });
    let after_dir = tmp.path().join("after");
    std::fs::create_dir(&after_dir).unwrap();
    for file in ["0-crd.yaml", "1-controller.yaml"] {
        std::fs::copy(input.join(file), after_dir.join(file)).unwrap();
    }
    let after = catset_world(&k, &after_dir);
    drop(watch);

    // The revisions the engine wrote are the ones render planned.
    for planned in planned {
        let object = planned.get("object").unwrap_or(&Value::Null);
        let stored = named(&after[3], planned["revision"].as_str().unwrap());
        let wanted = if planned["action"] == "create" {
            object.clone()
        } else {
            // An update's result: the observed revision with its new claims.
            let mut obj = named(&before[3], planned["revision"].as_str().unwrap()).clone();
            obj["children"] = planned["children"].clone();
            obj
        };
        for field in [
            "/metadata/name",
            "/metadata/labels",
            "/metadata/ownerReferences",
            "/parentPatch",
            "/children",
        ] {
            assert_eq!(
                stored.pointer(field),
                wanted.pointer(field),
                "revision {} {field}",
                planned["revision"]
            );
        }
    }
    // Only the planned Pod was replaced, with the object render planned.
    for name in ["nginx-backend-0", "nginx-backend-1"] {
        assert_eq!(
            named(&after[1], name)["metadata"]["uid"],
            named(&before[1], name)["metadata"]["uid"],
            "{name} was left alone"
        );
    }
    let new_pod = named(&after[1], "nginx-backend-2");
    assert_ne!(
        new_pod["metadata"]["uid"],
        named(&before[1], "nginx-backend-2")["metadata"]["uid"]
    );
    let planned_pod = &steps[0]["diff"];
    assert!(planned_pod.is_string(), "{stdout}");
    let rendered_child = report["desired"]["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "Pod" && c["metadata"]["name"] == "nginx-backend-2")
        .unwrap();
    assert_eq!(
        String::from_utf8(metacontroller_api::gojson::to_go_json(rendered_child).unwrap()).unwrap(),
        new_pod["metadata"]["annotations"][LAST_APPLIED]
            .as_str()
            .unwrap(),
        "the recreated Pod is render's desired Pod"
    );
    // The engine wrote render's condition on its way.
    let text = std::fs::read_to_string(&watch_out).unwrap();
    let conditions: Vec<Value> = reports(&text)
        .iter()
        .filter_map(|c| {
            c["status"]["conditions"]
                .as_array()?
                .iter()
                .find(|c| c["type"] == "Updated")
                .cloned()
        })
        .collect();
    assert!(
        conditions.contains(&condition),
        "render's {condition} among the engine's {conditions:?}"
    );

    // The engine now waits for the new Pod; render of that world agrees.
    let written = named(&after[0], "nginx-backend")["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Updated")
        .unwrap()
        .clone();
    assert_eq!(written["reason"], "RolloutWaiting", "{written}");
    let (code, stdout, stderr) = render_json(&after_dir, &exec);
    assert_eq!(code, 0, "the waiting world: {stdout}\n{stderr}");
    let report = &reports(&stdout)[0];
    assert_eq!(report["plan"]["status"], "unchanged");
    eprintln!(
        "rolling step: {} revisions and Pod nginx-backend-2 as planned; engine conditions {:?}",
        planned.len(),
        conditions.iter().map(|c| &c["reason"]).collect::<Vec<_>>()
    );
}

/// `render -f DIR --hook-exec EXEC -o json`.
fn render_json(dir: &Path, exec: &str) -> (i32, String, String) {
    render(&[
        "-f",
        dir.to_str().unwrap(),
        "--hook-exec",
        exec,
        "-o",
        "json",
    ])
}
