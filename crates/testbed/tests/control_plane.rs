//! The real control plane from the outside: it starts, serves the pinned
//! release with RBAC on, its garbage collector and namespace controller
//! work, and stopping it — or killing the process that started it — leaves
//! no component behind.
//!
//! These tests need the Kubernetes binaries (Go builds them on first use), so
//! they run when `MC_TEST_CLUSTER=real`, as the test command sets for its
//! real-cluster pass.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kube::api::{Api, DeleteParams, PostParams};
use kube::core::{ApiResource, DynamicObject};
use metacontroller_testbed::{ClusterKind, RealCluster};
use serde_json::json;

fn real_only() -> bool {
    let real = ClusterKind::from_env().ok() == Some(ClusterKind::Real);
    if !real {
        eprintln!("skipped: set MC_TEST_CLUSTER=real to run the real control plane");
    }
    real
}

fn pids_of(dir: &Path) -> Vec<u32> {
    // Components are found by their command line, which names the
    // cluster's folder.
    let needle = dir.to_string_lossy().into_owned();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).into_owned();
        let program = cmdline.split('\0').next().unwrap_or_default();
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        if cmdline.contains(&needle)
            && ["/kube-apiserver", "/kube-controller-manager", "/etcd"]
                .iter()
                .any(|name| program.ends_with(name))
            && !stat.contains(") Z")
        {
            pids.push(pid);
        }
    }
    pids
}

async fn eventually<F, Fut>(what: &str, timeout: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !f().await {
        assert!(Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn configmaps() -> ApiResource {
    ApiResource {
        group: String::new(),
        version: "v1".into(),
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        plural: "configmaps".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_the_pinned_release_with_rbac_gc_and_namespaces() {
    if !real_only() {
        return;
    }
    let started = Instant::now();
    let mut cluster = RealCluster::start().await.expect("start");
    eprintln!("control plane ready in {:?}", started.elapsed());
    let client = cluster.client().await.unwrap();

    let version = client.apiserver_version().await.unwrap();
    assert_eq!(
        version.git_version,
        metacontroller_testbed::binaries::KUBERNETES_VERSION
    );

    // RBAC: a ServiceAccount with no bindings is refused; the admin is not.
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "rbac"}});
    let namespaces: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource {
            group: String::new(),
            version: "v1".into(),
            api_version: "v1".into(),
            kind: "Namespace".into(),
            plural: "namespaces".into(),
        },
    );
    namespaces
        .create(&PostParams::default(), &serde_json::from_value(ns).unwrap())
        .await
        .unwrap();
    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "nobody"}});
    let sas: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "rbac",
        &ApiResource {
            group: String::new(),
            version: "v1".into(),
            api_version: "v1".into(),
            kind: "ServiceAccount".into(),
            plural: "serviceaccounts".into(),
        },
    );
    sas.create(&PostParams::default(), &serde_json::from_value(sa).unwrap())
        .await
        .unwrap();
    let token_request =
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}});
    let req = http::Request::post("/api/v1/namespaces/rbac/serviceaccounts/nobody/token")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&token_request).unwrap())
        .unwrap();
    let token: serde_json::Value = client.request(req).await.unwrap();
    let token = token["status"]["token"].as_str().unwrap().to_owned();
    let sa_kubeconfig = cluster.token_kubeconfig("nobody", &token);
    let sa_client = metacontroller_testbed::cluster::client_for(&sa_kubeconfig)
        .await
        .unwrap();
    let err = Api::<DynamicObject>::namespaced_with(sa_client, "rbac", &configmaps())
        .list(&Default::default())
        .await
        .expect_err("an unbound ServiceAccount may not list ConfigMaps");
    match err {
        kube::Error::Api(s) => assert_eq!(s.code, 403, "{s:?}"),
        other => panic!("expected 403, got {other:?}"),
    }

    // The garbage collector deletes a dependent whose owner is gone.
    let cms: Api<DynamicObject> = Api::namespaced_with(client.clone(), "rbac", &configmaps());
    let owner = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let uid = owner.metadata.uid.clone().unwrap();
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "dependent", "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}
            ]}
        }))
        .unwrap(),
    )
    .await
    .unwrap();
    cms.delete("owner", &DeleteParams::default()).await.unwrap();
    eventually(
        "the dependent is garbage-collected",
        Duration::from_secs(60),
        || async { cms.get_opt("dependent").await.unwrap().is_none() },
    )
    .await;

    // The namespace controller finishes a namespace's deletion.
    namespaces
        .delete("rbac", &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        "the namespace is deleted",
        Duration::from_secs(60),
        || async { namespaces.get_opt("rbac").await.unwrap().is_none() },
    )
    .await;

    // Stopping leaves no component running.
    let dir = cluster.dir().to_owned();
    assert_eq!(
        pids_of(&dir).len(),
        3,
        "etcd, kube-apiserver, kube-controller-manager"
    );
    cluster.stop();
    assert!(pids_of(&dir).is_empty(), "left behind: {:?}", pids_of(&dir));
}

/// `metacontroller-testbed up`, killed with SIGKILL (no chance to clean up),
/// still leaves no component behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_starter_leaves_nothing_behind() {
    if !real_only() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cluster_dir = dir.path().join("cluster");
    let mut up = Command::new(env!("CARGO_BIN_EXE_metacontroller-testbed"))
        .arg("up")
        .arg("--dir")
        .arg(&cluster_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = up.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap();
        line
    })
    .await
    .unwrap();
    assert!(line.starts_with("export KUBECONFIG="), "{line:?}");
    let kubeconfig = std::fs::read_to_string(line.trim().trim_start_matches("export KUBECONFIG="))
        .expect("the kubeconfig it printed exists");
    let client = metacontroller_testbed::cluster::client_for(&kubeconfig)
        .await
        .unwrap();
    client.apiserver_version().await.expect("it serves");
    assert_eq!(pids_of(&cluster_dir).len(), 3);
    up.kill().unwrap();
    up.wait().unwrap();
    eventually(
        "every component ends after its starter is killed",
        Duration::from_secs(30),
        || async { pids_of(&cluster_dir).is_empty() },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_apiserver_keeps_its_port_and_data() {
    if !real_only() {
        return;
    }
    let mut cluster = RealCluster::start().await.expect("start");
    let client = cluster.client().await.unwrap();
    let cms: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &configmaps());
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kept"}, "data": {"k": "v"}});
    let created = cms
        .create(&PostParams::default(), &serde_json::from_value(cm).unwrap())
        .await
        .unwrap();
    let url = cluster.url().to_owned();
    let before = pids_of(cluster.dir());

    cluster.stop_apiserver();
    assert!(
        cms.get("kept").await.is_err(),
        "the API server answers while stopped"
    );
    let down = pids_of(cluster.dir());
    assert_eq!(down.len(), before.len() - 1, "{before:?} -> {down:?}");

    let started = Instant::now();
    cluster.start_apiserver().await.expect("start again");
    eprintln!("kube-apiserver ready again in {:?}", started.elapsed());
    assert_eq!(cluster.url(), url);
    // The client made before the restart reconnects and finds the object.
    let kept = cms.get("kept").await.unwrap();
    assert_eq!(kept.metadata.uid, created.metadata.uid);
    assert_eq!(pids_of(cluster.dir()).len(), before.len());
    assert!(
        cluster.start_apiserver().await.is_err(),
        "a second kube-apiserver was started"
    );

    cluster.restart_apiserver().await.expect("restart");
    assert_eq!(
        cms.get("kept").await.unwrap().metadata.uid,
        created.metadata.uid
    );
    assert!(cluster.dead_components().is_empty());
}
