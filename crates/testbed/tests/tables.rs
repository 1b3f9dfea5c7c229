//! `kubectl get` columns of built-in kinds: the embedded server's Table
//! output against kube-apiserver's. The same objects (a Pod, an Event, a
//! Service, a ConfigMap, a Deployment, a ReplicaSet, a StatefulSet, a Job,
//! and the `default` Namespace) are created on both servers; for each kind,
//! `kubectl get` and `kubectl get -o wide` must print the same column names
//! in the same order, for every kubectl the test command provides. Cells
//! are not compared: they depend on what each server defaults and fills in
//! (the real one assigns cluster IPs and sets phases), except where neither
//! fills in anything (ConfigMap data counts).
//!
//! Needs the real control plane: skipped unless `MC_TEST_CLUSTER=real`.

mod common;

use common::{Kubectl, kubectls};
use metacontroller_testbed::{ClusterKind, RealCluster, TestCluster};

const OBJECTS: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: p1, labels: {app: p1}}
spec:
  containers: [{name: c, image: busybox:1.36}]
---
apiVersion: v1
kind: Event
metadata: {name: e1}
involvedObject: {kind: Pod, name: p1, namespace: default, apiVersion: v1}
reason: Tested
message: "columns checked"
type: Normal
source: {component: tables-test}
firstTimestamp: "2026-01-01T00:00:00Z"
lastTimestamp: "2026-01-01T00:00:00Z"
count: 1
---
apiVersion: v1
kind: Service
metadata: {name: s1}
spec:
  selector: {app: p1}
  ports: [{port: 80, protocol: TCP}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: m1}
data: {a: "1", b: "2"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: d1}
spec:
  replicas: 1
  selector: {matchLabels: {app: d1}}
  template:
    metadata: {labels: {app: d1}}
    spec: {containers: [{name: c, image: busybox:1.36}]}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: r1}
spec:
  replicas: 1
  selector: {matchLabels: {app: r1}}
  template:
    metadata: {labels: {app: r1}}
    spec: {containers: [{name: c, image: busybox:1.36}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: ss1}
spec:
  replicas: 1
  serviceName: s1
  selector: {matchLabels: {app: ss1}}
  template:
    metadata: {labels: {app: ss1}}
    spec: {containers: [{name: c, image: busybox:1.36}]}
---
apiVersion: batch/v1
kind: Job
metadata: {name: j1}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox:1.36}]
"#;

/// `(resource, name)` for each kind compared.
const GETS: &[(&str, &str)] = &[
    ("pods", "p1"),
    ("events", "e1"),
    ("services", "s1"),
    ("configmaps", "m1"),
    ("deployments", "d1"),
    ("replicasets", "r1"),
    ("statefulsets", "ss1"),
    ("jobs", "j1"),
    ("namespaces", "default"),
];

/// The column names of kubectl's header line (columns are separated by at
/// least two spaces; a name may hold one, as in `NOMINATED NODE`).
fn header(output: &str) -> Vec<String> {
    let line = output.lines().next().unwrap_or("");
    line.split("  ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builtin_columns_match_kube_apiserver() {
    if ClusterKind::from_env().expect("MC_TEST_CLUSTER") != ClusterKind::Real {
        eprintln!("skipped: comparing with kube-apiserver needs MC_TEST_CLUSTER=real");
        return;
    }
    let bins = kubectls();
    if bins.is_empty() {
        return;
    }
    let (embedded, real) = tokio::join!(
        TestCluster::start_kind(ClusterKind::Embedded),
        RealCluster::start()
    );
    let embedded = embedded.expect("embedded server");
    let real = real.expect("real cluster");
    let tmp = tempfile::tempdir().unwrap();
    for (i, bin) in bins.iter().enumerate() {
        let dir = tmp.path().join(format!("k{i}"));
        let sides = [
            ("embedded", embedded.kubeconfig()),
            ("real", real.kubeconfig().to_owned()),
        ]
        .map(|(name, kubeconfig)| {
            let dir = dir.join(name);
            std::fs::create_dir_all(&dir).unwrap();
            (name, Kubectl::new(bin, &kubeconfig, &dir))
        });
        if i == 0 {
            for (name, k) in &sides {
                // The real server admits Pods only once the namespace's
                // default ServiceAccount exists.
                if *name == "real" {
                    let start = std::time::Instant::now();
                    while !k
                        .run(&["-n", "default", "get", "serviceaccount", "default"])
                        .ok
                    {
                        assert!(start.elapsed().as_secs() < 60, "no default ServiceAccount");
                        std::thread::sleep(std::time::Duration::from_millis(250));
                    }
                }
                k.ok_stdin(&["create", "-f", "-"], OBJECTS);
            }
        }
        let mut compared = 0;
        for (resource, name) in GETS {
            for wide in [false, true] {
                let mut args = vec!["get", resource, name];
                if wide {
                    args.extend(["-o", "wide"]);
                }
                let [embedded_out, real_out] = [&sides[0].1, &sides[1].1].map(|k| k.ok(&args));
                let (e, r) = (header(&embedded_out), header(&real_out));
                assert!(!r.is_empty(), "{args:?}: no header from kube-apiserver");
                assert_eq!(
                    e,
                    r,
                    "{} {args:?}\nembedded:\n{embedded_out}\nkube-apiserver:\n{real_out}",
                    bin.display()
                );
                compared += 1;
            }
        }
        // A cell that neither server fills in by itself.
        let data_cell = |k: &Kubectl| {
            let out = k.ok(&["get", "configmap", "m1", "--no-headers"]);
            out.split_whitespace().nth(1).unwrap_or("").to_owned()
        };
        assert_eq!(data_cell(&sides[0].1), "2");
        assert_eq!(data_cell(&sides[1].1), "2");
        eprintln!("{}: {compared} header lines equal", bin.display());
    }
}
