//! `metacontroller rbac` on a real control plane (RBAC is the point, so this
//! always runs on one, whatever `MC_TEST_CLUSTER` says):
//!
//! - the CompositeController is read back from the server with `kubectl get
//!   -o yaml` (a `List`) and given to `metacontroller rbac -f`;
//! - the printed ClusterRole and binding apply with `kubectl apply`;
//! - `metacontroller run --leader-election`, authenticated as the bound
//!   ServiceAccount (a token from `kubectl create token`), syncs a parent
//!   with no request forbidden;
//! - the role allows no more than the controllers need (`kubectl auth
//!   can-i` on resources they never name).
#![cfg(unix)]

mod common;

use std::time::Duration;

use common::hook::Hook;
use common::instance::Instance;
use common::kubectl::{kubectl_bin, run};
use common::things::{create_parent, install, wait_synced};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use metacontroller_testbed::RealCluster;

#[tokio::test]
async fn generated_role_is_enough_and_no_more() {
    let cluster = RealCluster::start().await.expect("real control plane");
    let client = cluster.client().await.unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in metacontroller_api::crds() {
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
    let hook = Hook::start("127.0.0.1:0").await;
    install(&client, &hook).await;

    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = cluster.kubeconfig_path().to_str().unwrap().to_owned();
    let kubectl = kubectl_bin();
    let k = |args: &[&str], stdin: Option<&str>| {
        let mut all = vec!["--kubeconfig", &kubeconfig];
        all.extend_from_slice(args);
        run(&kubectl, &all, stdin)
    };

    let controllers = dir.path().join("controllers.yaml");
    std::fs::write(
        &controllers,
        k(&["get", "compositecontrollers", "-o", "yaml"], None),
    )
    .unwrap();
    let binary = env!("CARGO_BIN_EXE_metacontroller");
    let role = run(
        binary,
        &[
            "rbac",
            "-f",
            controllers.to_str().unwrap(),
            "--name",
            "things-controller",
            "--leader-election",
        ],
        None,
    );
    assert!(role.contains("#   CompositeController things"), "{role}");
    assert!(!role.contains('*'), "no wildcard in:\n{role}");

    k(&["create", "namespace", "metacontroller"], None);
    k(
        &[
            "create",
            "serviceaccount",
            "metacontroller",
            "-n",
            "metacontroller",
        ],
        None,
    );
    k(&["apply", "-f", "-"], Some(&role));

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

    let can = |verb: &str, resource: &str| {
        let out = std::process::Command::new(&kubectl)
            .args(["--kubeconfig", sa_kubeconfig.to_str().unwrap()])
            .args(["auth", "can-i", verb, resource, "-n", "default"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim() == "yes"
    };
    assert!(can("create", "configmaps"));
    assert!(can("patch", "things.le.example.com"));
    assert!(can("update", "things.le.example.com/status"));
    assert!(!can("delete", "things.le.example.com"));
    assert!(!can("list", "secrets"));
    assert!(!can("create", "deployments.apps"));
    assert!(!can("create", "compositecontrollers.metacontroller.k8s.io"));
    assert!(can(
        "get",
        "customresourcedefinitions.apiextensions.k8s.io/things.le.example.com"
    ));
    assert!(!can(
        "get",
        "customresourcedefinitions.apiextensions.k8s.io/compositecontrollers.metacontroller.k8s.io"
    ));

    let instance = Instance::start(
        "least-privilege",
        &sa_kubeconfig,
        &[
            "--leader-election",
            "--leader-election-namespace=metacontroller",
            "--metrics-address=127.0.0.1:0",
            "--health-probe-bind-address=127.0.0.1:0",
        ],
    );
    create_parent(&client, "default", "rbac").await;
    wait_synced(&client, "default", "rbac", Duration::from_secs(90)).await;
    assert!(
        instance.logged("successfully acquired lease metacontroller/metacontroller"),
        "{}",
        instance.log()
    );
    assert!(
        !instance.log().to_lowercase().contains("forbidden"),
        "a request was forbidden:\n{}",
        instance.log()
    );
}
