//! Installs Metacontroller on a real control plane from what this repository
//! ships, and runs it with the installed identity:
//!
//! - `manifests/production` and `manifests/dev` render with
//!   `kubectl kustomize`; the chart `deploy/helm/metacontroller` renders with
//!   `helm template` (Helm built from `testbed/helm`), with every values key
//!   Metacontroller's chart has plus the ServiceMonitor;
//! - both install on kube-apiserver: a server-side dry run, then for real
//!   (`kubectl apply --server-side -k`, `helm install`);
//! - the aggregated roles give the built-in `view` and `edit` roles what
//!   they should (`kubectl auth can-i`);
//! - `metacontroller run`, with the StatefulSet's own arguments plus leader
//!   election, authenticates as the installed ServiceAccount (a token from
//!   `kubectl create token`) and syncs a CompositeController: the
//!   ClusterRole is enough.
//!
//! There is no kubelet, so the StatefulSet's Pod never runs; the binary runs
//! as a local process instead. This always runs on a real control plane
//! (RBAC is the point), whatever `MC_TEST_CLUSTER` says.
#![cfg(unix)]

mod common;

use common::paths::repo_root;
use std::process::Command;
use std::time::Duration;

use common::hook::Hook;
use common::instance::Instance;
use common::kubectl::{kubectl_bin, run};
use common::things::{create_parent, install, wait_synced};
use common::wait_for;
use metacontroller_testbed::RealCluster;
use serde_json::Value;

/// Every document of a YAML stream, as JSON.
fn documents(yaml: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_yaml::Deserializer::from_str(yaml)
        .filter_map(|doc| {
            let value = Value::deserialize(doc).expect("YAML document");
            (!value.is_null()).then_some(value)
        })
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} among the rendered objects"))
}

fn container(statefulset: &Value) -> &Value {
    &statefulset["spec"]["template"]["spec"]["containers"][0]
}

fn args(statefulset: &Value) -> Vec<String> {
    container(statefulset)["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_and_chart_install_and_the_role_is_enough() {
    let root = repo_root();
    let kubectl = kubectl_bin();
    let helm = tokio::task::spawn_blocking(|| metacontroller_testbed::helm::ensure(None))
        .await
        .unwrap()
        .expect("build helm");
    let helm = helm.to_string_lossy().into_owned();
    let production = root.join("manifests/production");
    let production = production.to_str().unwrap();
    let chart = root.join("deploy/helm/metacontroller");
    let chart = chart.to_str().unwrap();

    // Rendering.
    let kustomized = run(&kubectl, &["kustomize", production], None);
    let docs = documents(&kustomized);
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    for kind in [
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "StatefulSet",
    ] {
        assert!(kinds.contains(&kind), "no {kind} in {kinds:?}");
    }
    let crds: Vec<_> = docs
        .iter()
        .filter(|d| d["kind"] == "CustomResourceDefinition")
        .map(|d| d["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        crds,
        [
            "compositecontrollers.metacontroller.k8s.io",
            "controllerrevisions.metacontroller.k8s.io",
            "decoratorcontrollers.metacontroller.k8s.io"
        ]
    );
    let statefulset = find(&docs, "StatefulSet", "metacontroller");
    assert_eq!(
        args(statefulset),
        ["--zap-log-level=4", "--discovery-interval=20s"]
    );
    assert_eq!(
        container(statefulset)["livenessProbe"]["httpGet"]["path"],
        "/healthz"
    );
    assert_eq!(
        container(statefulset)["readinessProbe"]["httpGet"]["path"],
        "/readyz"
    );
    let dev = documents(&run(
        &kubectl,
        &["kustomize", root.join("manifests/dev").to_str().unwrap()],
        None,
    ));
    let dev_statefulset = find(&dev, "StatefulSet", "metacontroller");
    assert_eq!(
        container(dev_statefulset)["image"],
        "localhost/metacontroller:dev"
    );
    assert!(args(dev_statefulset).contains(&"--zap-log-level=5".to_owned()));

    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("values.yaml");
    std::fs::write(
        &values,
        "replicas: 2\n\
         commandArgs: [--leader-election, --zap-log-level=4]\n\
         image: {repository: example.com/mc, tag: t1, pullPolicy: Always}\n\
         podDisruptionBudget: {minAvailable: 1}\n\
         resources: {requests: {cpu: 10m}}\n\
         priorityClassName: critical\n\
         tolerations: [{operator: Exists}]\n\
         affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: k, operator: Exists}]}]}}}\n\
         service: {enabled: true, ports: [{name: metrics, port: 9999, targetPort: metrics}]}\n\
         serviceMonitor: {enabled: true, interval: 30s}\n\
         rbac: {create: true}\n",
    )
    .unwrap();
    let rendered = documents(&run(
        &helm,
        &[
            "template",
            "mc",
            chart,
            "--namespace",
            "ops",
            "--values",
            values.to_str().unwrap(),
        ],
        None,
    ));
    let sts = find(&rendered, "StatefulSet", "mc-metacontroller-helm");
    assert_eq!(sts["spec"]["replicas"], 2);
    assert_eq!(container(sts)["image"], "example.com/mc:t1");
    assert_eq!(container(sts)["imagePullPolicy"], "Always");
    assert_eq!(container(sts)["resources"]["requests"]["cpu"], "10m");
    assert_eq!(args(sts), ["--leader-election", "--zap-log-level=4"]);
    let pod = &sts["spec"]["template"]["spec"];
    assert_eq!(pod["priorityClassName"], "critical");
    assert_eq!(pod["tolerations"][0]["operator"], "Exists");
    assert!(pod["affinity"]["nodeAffinity"].is_object());
    assert_eq!(
        find(&rendered, "PodDisruptionBudget", "mc-metacontroller-helm")["spec"]["minAvailable"],
        1
    );
    assert_eq!(
        find(&rendered, "Service", "mc-metacontroller-helm")["spec"]["ports"][0]["port"],
        9999
    );
    let monitor = find(&rendered, "ServiceMonitor", "mc-metacontroller-helm");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
    assert_eq!(monitor["spec"]["endpoints"][0]["interval"], "30s");
    let no_rbac = documents(&run(
        &helm,
        &["template", "mc", chart, "--set", "rbac.create=false"],
        None,
    ));
    assert!(
        no_rbac
            .iter()
            .all(|d| d["kind"] != "ClusterRole" && d["kind"] != "ClusterRoleBinding")
    );

    // Installing.
    let cluster = RealCluster::start().await.expect("start control plane");
    let kubeconfig = cluster.kubeconfig_path().to_str().unwrap().to_owned();
    let k = |args: &[&str], stdin: Option<&str>| {
        let mut all = vec!["--kubeconfig", kubeconfig.as_str()];
        all.extend_from_slice(args);
        run(&kubectl, &all, stdin)
    };
    // A server-side dry run needs the namespaces to exist.
    k(&["create", "namespace", "metacontroller"], None);
    k(&["create", "namespace", "mc-helm"], None);
    k(
        &[
            "apply",
            "--server-side",
            "--dry-run=server",
            "-k",
            production,
        ],
        None,
    );
    k(&["apply", "--server-side", "-k", production], None);
    let h = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--kubeconfig", kubeconfig.as_str()]);
        run(&helm, &all, None)
    };
    h(&[
        "install",
        "mc",
        chart,
        "--namespace",
        "mc-helm",
        "--dry-run=server",
    ]);
    h(&["install", "mc", chart, "--namespace", "mc-helm"]);
    let installed = k(
        &["get", "statefulsets", "--all-namespaces", "-o", "name"],
        None,
    );
    assert!(
        installed.contains("statefulset.apps/metacontroller")
            && installed.contains("statefulset.apps/mc-metacontroller-helm"),
        "{installed}"
    );
    k(
        &["wait", "--for=condition=Established", "crd", "--all"],
        None,
    );

    // The aggregated roles, through the built-in view and edit roles.
    k(
        &[
            "create",
            "rolebinding",
            "viewer",
            "--clusterrole=view",
            "--user=viewer",
            "-n",
            "default",
        ],
        None,
    );
    k(
        &[
            "create",
            "rolebinding",
            "editor",
            "--clusterrole=edit",
            "--user=editor",
            "-n",
            "default",
        ],
        None,
    );
    let can = |user: &str, verb: &str, resource: &str| {
        let out = Command::new(&kubectl)
            .args(["--kubeconfig", &kubeconfig, "auth", "can-i", verb, resource])
            .args(["--as", user, "-n", "default"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim() == "yes"
    };
    wait_for("aggregated roles", Duration::from_secs(30), || {
        let ready = can(
            "viewer",
            "list",
            "compositecontrollers.metacontroller.k8s.io",
        ) && can(
            "editor",
            "create",
            "controllerrevisions.metacontroller.k8s.io",
        );
        async move { ready.then_some(()) }
    })
    .await;
    assert!(can(
        "viewer",
        "watch",
        "decoratorcontrollers.metacontroller.k8s.io"
    ));
    assert!(!can(
        "viewer",
        "create",
        "controllerrevisions.metacontroller.k8s.io"
    ));
    assert!(!can(
        "editor",
        "create",
        "compositecontrollers.metacontroller.k8s.io"
    ));

    // Running as the installed ServiceAccount, with the manifest's arguments.
    let token = k(
        &["create", "token", "metacontroller", "-n", "metacontroller"],
        None,
    );
    let sa_kubeconfig = dir.path().join("sa.kubeconfig");
    std::fs::write(
        &sa_kubeconfig,
        cluster.token_kubeconfig("metacontroller", token.trim()),
    )
    .unwrap();
    let client = cluster.client().await.unwrap();
    let hook = Hook::start("127.0.0.1:0").await;
    install(&client, &hook).await;
    let mut manifest_args = args(statefulset);
    manifest_args.extend(
        [
            "--leader-election",
            "--leader-election-namespace=metacontroller",
            "--metrics-address=127.0.0.1:0",
            "--health-probe-bind-address=127.0.0.1:0",
        ]
        .map(String::from),
    );
    let arg_refs: Vec<&str> = manifest_args.iter().map(String::as_str).collect();
    let instance = Instance::start("installed", &sa_kubeconfig, &arg_refs);
    create_parent(&client, "default", "installed").await;
    wait_synced(&client, "default", "installed", Duration::from_secs(90)).await;
    assert!(
        instance.logged("successfully acquired lease metacontroller/metacontroller"),
        "{}",
        instance.log()
    );
    let whoami = k(
        &[
            "get",
            "lease",
            "metacontroller",
            "-n",
            "metacontroller",
            "-o",
            "json",
        ],
        None,
    );
    let lease: Value = serde_json::from_str(&whoami).unwrap();
    assert!(lease["spec"]["holderIdentity"].is_string());
    assert!(
        !instance.log().contains("forbidden"),
        "a request was forbidden:\n{}",
        instance.log()
    );
}
