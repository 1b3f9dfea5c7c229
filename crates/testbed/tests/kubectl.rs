//! kubectl conformance: every kubectl the test command provides (the newest
//! and the oldest supported) runs the same script against a fresh server of
//! the kind `MC_TEST_CLUSTER` names — the embedded API server, or the real
//! control plane that judges it. The script asserts what Kubernetes does, so
//! it passes on both.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use common::{Kubectl, kubectls};
use metacontroller_testbed::TestCluster;

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
          status: {type: object, x-kubernetes-preserve-unknown-fields: true}
"#;

const WIDGET: &str = r#"
apiVersion: example.com/v1
kind: Widget
metadata: {name: w1, namespace: conf}
spec: {size: 3}
"#;

fn deployment(image: &str, env: &str) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: conf, labels: {{app: web}}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: app
        image: {image}
        env: [{env}]
      - name: sidecar
        image: busybox
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_conformance() {
    let bins = kubectls();
    for bin in bins {
        let cluster = TestCluster::start().await.expect("the server starts");
        let dir = tempfile::tempdir().unwrap();
        let k = Kubectl::new(&bin, &cluster.kubeconfig(), dir.path());
        let v = k.ok(&["version", "--client"]);
        eprintln!(
            "testing with {} on the {} server: {}",
            bin.display(),
            cluster.kind().name(),
            v.lines().next().unwrap_or("")
        );
        // The work runs on a blocking thread: kubectl calls back into the
        // embedded server, which runs on this runtime.
        tokio::task::spawn_blocking(move || script(&k))
            .await
            .unwrap();
        drop(cluster);
    }
}

fn script(k: &Kubectl) {
    // Namespaces: imperative create (kubectl >= 1.32 sends it as protobuf).
    k.ok(&["create", "namespace", "conf"]);
    assert!(k.ok(&["get", "ns"]).contains("conf"));

    // CRD: apply, wait for it, use it by kind, plural and short name.
    k.ok_stdin(&["apply", "-f", "-"], CRD);
    k.ok(&[
        "wait",
        "--for",
        "condition=established",
        "--timeout=30s",
        "crd/widgets.example.com",
    ]);
    k.ok_stdin(&["apply", "-f", "-"], WIDGET);
    // A CRD that declares printer columns gets no Age column added.
    let table = k.ok(&["-n", "conf", "get", "wd"]);
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows, [["NAME", "SIZE"], ["w1", "3"]], "{table}");
    let w = k.json(&["-n", "conf", "get", "widget", "w1"]);
    assert_eq!(w["spec"]["size"], 3);
    assert!(
        w["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .is_string()
    );

    // Built-in object: apply, label, annotate, patch (merge and json), then
    // re-apply a changed manifest (client-side apply: a strategic merge patch).
    k.ok_stdin(
        &["apply", "-f", "-"],
        &deployment("nginx:1", r#"{name: A, value: "1"}, {name: B, value: "2"}"#),
    );
    k.ok(&["-n", "conf", "label", "deploy", "web", "team=blue"]);
    k.ok(&["-n", "conf", "annotate", "deploy", "web", "note=hi"]);
    k.ok(&[
        "-n",
        "conf",
        "patch",
        "deploy",
        "web",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"replicas":4}}"#,
    ]);
    k.ok(&[
        "-n",
        "conf",
        "patch",
        "deploy",
        "web",
        "--type",
        "json",
        "-p",
        r#"[{"op":"add","path":"/metadata/labels/tier","value":"fe"}]"#,
    ]);
    let d = k.json(&["-n", "conf", "get", "deploy", "web"]);
    assert_eq!(d["spec"]["replicas"], 4);
    assert_eq!(
        d["metadata"]["generation"], 3,
        "created, then an annotation and the replicas change a Deployment's generation; labels do not"
    );
    assert_eq!(d["metadata"]["labels"]["team"], "blue");
    assert_eq!(d["metadata"]["labels"]["tier"], "fe");
    assert_eq!(d["metadata"]["annotations"]["note"], "hi");

    let out = k.ok_stdin(
        &["apply", "-f", "-"],
        &deployment("nginx:2", r#"{name: A, value: "1"}, {name: C, value: "3"}"#),
    );
    assert!(out.contains("configured"), "{out}");
    let d = k.json(&["-n", "conf", "get", "deploy", "web"]);
    let c = &d["spec"]["template"]["spec"]["containers"];
    assert_eq!(c[0]["image"], "nginx:2");
    let env: Vec<&str> = c[0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(env, ["A", "C"], "B removed, C added: {d}");
    assert_eq!(c[1]["name"], "sidecar");
    assert_eq!(
        d["spec"]["replicas"], 2,
        "apply restores the declared replicas"
    );
    assert_eq!(
        d["metadata"]["labels"]["team"], "blue",
        "labels set imperatively survive apply"
    );
    let unchanged = k.ok_stdin(
        &["apply", "-f", "-"],
        &deployment("nginx:2", r#"{name: A, value: "1"}, {name: C, value: "3"}"#),
    );
    assert!(unchanged.contains("unchanged"), "{unchanged}");

    // A watch sees an update.
    let mut watch = k
        .command(&[
            "-n",
            "conf",
            "get",
            "wd",
            "w1",
            "-w",
            "-o",
            "jsonpath={.spec.size}{\"\\n\"}",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = watch.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    assert_eq!(rx.recv_timeout(Duration::from_secs(20)).unwrap(), "3");
    k.ok(&[
        "-n",
        "conf",
        "patch",
        "wd",
        "w1",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"size":7}}"#,
    ]);
    assert_eq!(rx.recv_timeout(Duration::from_secs(20)).unwrap(), "7");
    let _ = watch.kill();
    let _ = watch.wait();

    // Discovery.
    let ar = k.ok(&["api-resources"]);
    for needle in [
        "deployments",
        "widgets",
        "customresourcedefinitions",
        "namespaces",
    ] {
        assert!(
            ar.contains(needle),
            "{needle} missing from api-resources:\n{ar}"
        );
    }
    let line = ar.lines().find(|l| l.starts_with("widgets")).unwrap();
    assert!(
        line.contains("wd") && line.contains("example.com/v1") && line.contains("Widget"),
        "{line}"
    );

    // Delete with cascade: owned objects go with their owner.
    let d = k.json(&["-n", "conf", "get", "deploy", "web"]);
    let uid = d["metadata"]["uid"].as_str().unwrap();
    let rs = format!(
        "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: web-1\n  namespace: conf\n  ownerReferences:\n  - {{apiVersion: apps/v1, kind: Deployment, name: web, uid: {uid}, controller: true, blockOwnerDeletion: true}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec: {{containers: [{{name: app, image: nginx}}]}}\n"
    );
    k.ok_stdin(&["apply", "-f", "-"], &rs);
    k.ok(&[
        "-n",
        "conf",
        "delete",
        "deploy",
        "web",
        "--cascade=foreground",
        "--timeout=30s",
    ]);
    let left = k.ok(&["-n", "conf", "get", "rs", "-o", "name"]);
    assert!(left.trim().is_empty(), "dependents deleted: {left}");

    // Orphan cascade leaves dependents without the owner reference.
    k.ok_stdin(
        &["apply", "-f", "-"],
        &deployment("nginx:3", r#"{name: A, value: "1"}"#),
    );
    let d = k.json(&["-n", "conf", "get", "deploy", "web"]);
    let uid = d["metadata"]["uid"].as_str().unwrap();
    k.ok_stdin(
        &["apply", "-f", "-"],
        &rs.replace(
            &rs[rs.find("uid: ").unwrap() + 5..rs.find(", controller").unwrap()],
            uid,
        ),
    );
    k.ok(&["-n", "conf", "delete", "deploy", "web", "--cascade=orphan"]);
    let rs = k.json(&["-n", "conf", "get", "rs", "web-1"]);
    assert!(rs["metadata"].get("ownerReferences").is_none(), "{rs}");

    // Deleting the CRD deletes its objects; deleting the namespace empties it.
    k.ok(&["delete", "crd", "widgets.example.com", "--timeout=30s"]);
    let o = k.run(&["-n", "conf", "get", "widgets"]);
    assert!(!o.ok, "widgets are no longer served");
    k.ok(&["delete", "ns", "conf", "--timeout=30s"]);
    let o = k.run(&["get", "ns", "conf"]);
    assert!(!o.ok && o.stderr.contains("NotFound"), "{}", o.stderr);
}
