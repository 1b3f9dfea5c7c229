//! `metacontroller render --apply-strategy=server-side-apply` against the
//! engine's server-side apply, on the server `MC_TEST_CLUSTER` names.
//!
//! Needs kubectl and python3 (skipped without them unless
//! `MC_REQUIRE_KUBECTL` is set).
#![cfg(unix)]

mod common;

use common::paths::repo_root;
use common::render_bed::*;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

/// The fields a server-side apply result is compared on (the server adds
/// its own metadata on every write).
const COMPARED: &[&str] = &[
    "/apiVersion",
    "/kind",
    "/metadata/name",
    "/metadata/namespace",
    "/metadata/labels",
    "/metadata/annotations",
    "/metadata/ownerReferences",
    "/data",
];

/// `--apply-strategy=server-side-apply`: on the embedded server running the
/// engine with server-side apply (the cluster-parent example, InPlace
/// ConfigMaps, one of them also written by kubectl), render finds the
/// converged world applied; with the parent's data changed offline it plans
/// one apply (field manager, force, the applied object) whose computed
/// result is the ConfigMap the engine's apply left on the server: a field
/// it no longer applies is gone, kubectl's label and data key stay.
#[test]
fn server_side_apply_renders_what_the_engine_applies() {
    let Some(kubectl_bin) = kubectl() else { return };
    let here = repo_root().join("examples/cluster-parent");
    let tmp = tempfile::tempdir().unwrap();
    let server = start_server(tmp.path(), &["--apply-strategy=server-side-apply"]);
    let k = Kubectl {
        bin: kubectl_bin,
        kubeconfig: server.kubeconfig.clone(),
    };
    let (_hook, port) = start_hook(&here);
    k.apply_crd(&here.join("crd.yaml"), "sharedconfigs.demo.example.com");
    let controller = controller_file(&here, port, tmp.path());
    k.ok(&["apply", "-f", controller.to_str().unwrap()]);
    k.ok(&[
        "apply",
        "-f",
        here.join("shared-config.yaml").to_str().unwrap(),
    ]);
    wait_until("the ConfigMap", || {
        k.run(&["get", "configmap", "greeting", "-n", "team-a"])
            .status
            .success()
    });
    k.ok(&[
        "label",
        "configmap",
        "greeting",
        "-n",
        "team-a",
        "by-hand=yes",
    ]);
    k.ok(&[
        "patch",
        "configmap",
        "greeting",
        "-n",
        "team-a",
        "--type=merge",
        "-p",
        r#"{"data":{"extra":"by hand"}}"#,
    ]);
    let snapshot = |dir: &Path| {
        std::fs::create_dir(dir).unwrap();
        std::fs::copy(here.join("crd.yaml"), dir.join("0-crd.yaml")).unwrap();
        std::fs::copy(&controller, dir.join("1-controller.yaml")).unwrap();
        let mut stable = (Value::Null, Value::Null);
        wait_until("stable", || {
            std::thread::sleep(Duration::from_secs(2));
            let now = (
                k.json(&["get", "sharedconfig", "greeting"]),
                // Server-side apply's bookkeeping is an input too (read
                // with --show-managed-fields).
                k.json(&["get", "configmap", "greeting", "-n", "team-a"]),
            );
            let same = now == stable
                && now.0["status"]["observedGeneration"] == now.0["metadata"]["generation"];
            stable = now;
            same
        });
        std::fs::write(dir.join("2-parent.json"), stable.0.to_string()).unwrap();
        std::fs::write(dir.join("3-child.json"), stable.1.to_string()).unwrap();
        stable
    };
    let exec = exec_example("cluster-parent");
    let ssa = [
        "--apply-strategy=server-side-apply",
        "--hook-exec",
        &exec,
        "-o",
        "json",
    ];

    // Converged: nothing to apply.
    let before_dir = tmp.path().join("before");
    let (parent, _) = snapshot(&before_dir);
    let mut args = vec!["-f", before_dir.to_str().unwrap()];
    args.extend(ssa);
    let (code, stdout, stderr) = render(&args);
    assert_eq!(code, 0, "converged: {stdout}\n{stderr}");

    // Offline: new data, one key dropped.
    let mut changed = parent.clone();
    changed["spec"]["data"] = serde_json::json!({"greeting": "bonjour"});
    std::fs::write(before_dir.join("2-parent.json"), changed.to_string()).unwrap();
    let (code, stdout, stderr) = render(&args);
    assert_eq!(code, 2, "changed: {stdout}\n{stderr}");
    let report = &reports(&stdout)[0];
    assert_eq!(report["plan"]["applyStrategy"], "server-side-apply");
    let steps = report["plan"]["children"].as_array().unwrap();
    assert_eq!(steps.len(), 1, "{stdout}");
    assert_eq!(steps[0]["action"], "update");
    let request = &steps[0]["serverSideApply"];
    assert_eq!(request["fieldManager"], "metacontroller");
    assert_eq!(request["force"], true);
    assert_eq!(
        request["object"]["data"],
        serde_json::json!({"greeting": "bonjour"})
    );
    assert!(request["object"]["metadata"]["annotations"][LAST_APPLIED].is_null());
    // The JSON report carries the result as a diff; the diff output names
    // the apply.
    let diff_args = vec![
        "-f",
        before_dir.to_str().unwrap(),
        "--apply-strategy=server-side-apply",
        "--hook-exec",
        &exec,
        "-o",
        "diff",
    ];
    let (_, diff, _) = render(&diff_args);
    assert!(
        diff.contains("server-side apply, field manager metacontroller, force"),
        "{diff}"
    );
    assert!(diff.contains("-   audience: world"), "{diff}");
    assert!(diff.contains("+   greeting: bonjour"), "{diff}");

    // The engine's apply of the same change.
    k.ok(&[
        "patch",
        "sharedconfig",
        "greeting",
        "--type=merge",
        "-p",
        r#"{"spec":{"data":{"greeting":"bonjour","audience":null}}}"#,
    ]);
    wait_until("the engine's apply", || {
        k.json(&["get", "configmap", "greeting", "-n", "team-a"])["data"]["greeting"] == "bonjour"
    });
    let after_dir = tmp.path().join("after");
    let (_, stored) = snapshot(&after_dir);
    let result = ssa_result(&before_dir, &exec);
    for field in COMPARED {
        assert_eq!(
            result.pointer(field),
            stored.pointer(field),
            "{field}: {stored}"
        );
    }
    assert_eq!(
        stored["data"],
        serde_json::json!({"greeting": "bonjour", "extra": "by hand"})
    );
    assert_eq!(stored["metadata"]["labels"]["by-hand"], "yes");

    // And the world after the engine's apply is converged for render too.
    let mut args = vec!["-f", after_dir.to_str().unwrap()];
    args.extend(ssa);
    let (code, stdout, stderr) = render(&args);
    assert_eq!(code, 0, "after: {stdout}\n{stderr}");
}

/// The object render computes as the result of the one apply it plans for
/// the input in `dir` (the step's `result`).
fn ssa_result(dir: &Path, exec: &str) -> Value {
    let (_, stdout, stderr) = render(&[
        "-f",
        dir.to_str().unwrap(),
        "--apply-strategy=server-side-apply",
        "--hook-exec",
        exec,
        "-o",
        "json",
    ]);
    let report = reports(&stdout).remove(0);
    let result = report["plan"]["children"][0]["result"].clone();
    assert!(result.is_object(), "no result: {stdout}\n{stderr}");
    result
}
