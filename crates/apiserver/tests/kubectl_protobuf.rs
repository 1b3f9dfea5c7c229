//! Typed objects in protobuf (`application/vnd.kubernetes.protobuf`), as
//! kubectl 1.32 and later send them for `kubectl create <generator>`,
//! `autoscale` and `debug node`: stored exactly as the same commands of
//! kubectl 1.31, which sends JSON, are stored.
//!
//! The kubectl binaries come from `MC_KUBECTL_DIR` (default
//! `/usr/lib/google-cloud-sdk/bin`) as `kubectl.1.33`, `kubectl.1.32` and
//! (for the JSON baseline) `kubectl.1.31`. Without them the kubectl test is
//! skipped, unless `MC_REQUIRE_KUBECTL` is set.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use metacontroller_apiserver::{ApiServer, Config};
use serde_json::{Value, json};

const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

fn kubectl_dir() -> PathBuf {
    std::env::var_os("MC_KUBECTL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/google-cloud-sdk/bin"))
}

fn kubectl_bin(version: &str) -> Option<PathBuf> {
    let p = kubectl_dir().join(format!("kubectl.{version}"));
    p.is_file().then_some(p)
}

/// kubectl against one server, with a private HOME and discovery cache.
struct Kubectl {
    bin: PathBuf,
    kubeconfig: PathBuf,
    home: PathBuf,
}

struct Output {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Kubectl {
    fn new(bin: PathBuf, kubeconfig: &Path, home: PathBuf) -> Self {
        std::fs::create_dir_all(&home).unwrap();
        Self {
            bin,
            kubeconfig: kubeconfig.to_path_buf(),
            home,
        }
    }

    /// Runs a command line: words separated by blanks, `'...'` quoting
    /// blanks.
    fn run(&self, line: &str) -> Output {
        let out = Command::new(&self.bin)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.home.join("cache"))
            .args(words(line))
            .env("HOME", &self.home)
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .output()
            .expect("kubectl runs");
        Output {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    #[track_caller]
    fn ok(&self, line: &str) -> String {
        let o = self.run(line);
        assert!(
            o.ok,
            "{} {line}: failed:\nstdout: {}\nstderr: {}",
            self.bin.display(),
            o.stdout,
            o.stderr
        );
        o.stdout
    }

    /// A command the server may not serve (its API group or version is
    /// absent): it succeeds or fails for that reason, never for the body.
    #[track_caller]
    fn ok_or_unserved(&self, line: &str) -> bool {
        let o = self.run(line);
        if !o.ok {
            assert!(
                !o.stderr.contains("UnsupportedMediaType") && !o.stderr.contains("protobuf"),
                "{} {line}: failed on the body:\n{}",
                self.bin.display(),
                o.stderr
            );
            assert!(
                o.stderr.contains("could not find the requested resource"),
                "{} {line}: failed:\n{}",
                self.bin.display(),
                o.stderr
            );
        }
        o.ok
    }

    #[track_caller]
    fn json(&self, line: &str) -> Value {
        serde_json::from_str(&self.ok(&format!("{line} -o json"))).expect("kubectl prints JSON")
    }
}

fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word: Option<String> = None;
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                word.get_or_insert_with(String::new);
            }
            c if c.is_whitespace() && !quoted => out.extend(word.take()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    out.extend(word);
    out
}

/// Files the commands read.
struct Inputs {
    binary: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn inputs(dir: &Path) -> Inputs {
    let binary = dir.join("blob.bin");
    std::fs::write(&binary, [0u8, 1, 2, 0xff]).unwrap();
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["foo.example.com".to_string()]).unwrap();
    let (cert_path, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key, signing_key.serialize_pem()).unwrap();
    Inputs {
        binary,
        cert: cert_path,
        key,
    }
}

/// Runs every typed-object command with names tagged `tag`, checks what was
/// stored and returns the stored objects by `Kind/name`, normalized for
/// comparison across kubectl versions.
fn script(k: &Kubectl, tag: &str, files: &Inputs) -> BTreeMap<String, Value> {
    let ns = format!("pb-{tag}");
    let ns = ns.as_str();
    let n = |name: &str| format!("{name}-{tag}");
    let d = format!("-n {ns}");
    for line in [
        format!("create namespace {ns}"),
        format!("{d} create configmap cm1 --from-literal=a=b"),
        format!(
            "{d} create configmap cm2 --from-literal=c=d --from-file=bin={}",
            files.binary.display()
        ),
        format!("{d} create secret generic s1 --from-literal=user=admin --type=Opaque"),
        format!(
            "{d} create secret tls tls1 --cert={} --key={}",
            files.cert.display(),
            files.key.display()
        ),
        format!(
            "{d} create secret docker-registry reg1 --docker-server=reg.example.com \
             --docker-username=u --docker-password=p --docker-email=e@example.com"
        ),
        format!("{d} create serviceaccount sa1"),
        format!("{d} create deployment d1 --image=nginx:1.25 --replicas=3 --port=80"),
        format!("{d} create deployment d2 --image=busybox -- sleep 3600"),
        format!("{d} create service clusterip svc1 --tcp=80:8080 --tcp=443"),
        format!("{d} create service clusterip headless --clusterip=None"),
        format!("{d} create service nodeport np1 --tcp=80:8080 --node-port=30080"),
        format!("{d} create service loadbalancer lb1 --tcp=443:8443"),
        format!("{d} create service externalname ext1 --external-name=example.com"),
        format!(
            "{d} create cronjob cj1 --image=busybox '--schedule=*/5 * * * *' \
             --restart=OnFailure -- echo hi"
        ),
        format!("{d} create job j1 --image=busybox -- echo hi"),
        format!("{d} create job j2 --from=cronjob/cj1"),
        format!(
            "{d} create role r1 --verb=get,list --resource=pods,deployments.apps --resource-name=x"
        ),
        format!(
            "create clusterrole {} --verb=get --resource=pods --non-resource-url=/logs/*",
            n("cr1")
        ),
        format!("create clusterrole {} --aggregation-rule=foo=bar", n("cr2")),
        format!(
            "{d} create rolebinding rb1 --role=r1 --user=alice --group=devs \
             --serviceaccount={ns}:sa1"
        ),
        format!(
            "create clusterrolebinding {} --clusterrole={} --user=bob",
            n("crb1"),
            n("cr1")
        ),
        format!("{d} create quota q1 --hard=cpu=1,memory=1G,pods=2 --scopes=BestEffort"),
        format!("{d} create poddisruptionbudget pdb1 --selector=app=x --min-available=1"),
        format!("{d} create poddisruptionbudget pdb2 --selector=app=y --max-unavailable=50%"),
        format!(
            "{d} create ingress ing1 --rule=foo.com/bar=svc1:8080,tls=my-cert --class=nginx \
             --default-backend=defsvc:80"
        ),
    ] {
        k.ok(&line);
    }
    // Groups and versions the server may not serve.
    let priority_class = k.ok_or_unserved(&format!(
        "create priorityclass {} --value=1000 --description=desc --preemption-policy=Never",
        n("pc1")
    ));
    let hpa = k.ok_or_unserved(&format!(
        "{d} autoscale deployment d1 --min=1 --max=3 --cpu-percent=50"
    ));
    // kubectl 1.33 creates autoscaling/v2 HorizontalPodAutoscalers, which
    // are served; older ones create autoscaling/v1, which is not.
    assert!(hpa || tag != "v133", "kubectl 1.33 autoscale failed");
    // `kubectl debug node` creates a Pod with host namespaces and a hostPath volume.
    let node = n("node");
    let node_file = k.home.join("node.json");
    let node_manifest = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}});
    std::fs::write(&node_file, node_manifest.to_string()).unwrap();
    k.ok(&format!("create -f {}", node_file.display()));
    k.ok(&format!(
        "{d} debug node/{node} --image=busybox --profile=sysadmin"
    ));

    // What was stored.
    let mut objects = BTreeMap::new();
    let namespaced = k.json(&format!(
        "{d} get configmaps,secrets,serviceaccounts,deployments,services,cronjobs,jobs,roles,\
         rolebindings,resourcequotas,poddisruptionbudgets,ingresses,pods,horizontalpodautoscalers"
    ));
    let mut cluster = format!(
        "get namespace/{ns} clusterrole/{} clusterrole/{} clusterrolebinding/{}",
        n("cr1"),
        n("cr2"),
        n("crb1")
    );
    if priority_class {
        cluster.push_str(&format!(" priorityclass/{}", n("pc1")));
    }
    let cluster = k.json(&cluster);
    for item in namespaced["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(cluster["items"].as_array().unwrap())
    {
        let kind = item["kind"].as_str().unwrap();
        let mut name = item["metadata"]["name"].as_str().unwrap().to_string();
        if name.starts_with("node-debugger-") {
            name = "node-debugger".to_string();
        }
        objects.insert(format!("{kind}/{name}"), item.clone());
    }
    let get = |key: &str| -> &Value {
        objects
            .get(key)
            .unwrap_or_else(|| panic!("{key} was not stored; have {:?}", objects.keys()))
    };

    let d1 = get("Deployment/d1");
    assert_eq!(d1["spec"]["replicas"], 3);
    assert_eq!(
        d1["spec"]["selector"],
        json!({"matchLabels": {"app": "d1"}})
    );
    let c = &d1["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        (&c["name"], &c["image"], &c["ports"]),
        (
            &json!("nginx"),
            &json!("nginx:1.25"),
            &json!([{"containerPort": 80}])
        )
    );
    assert_eq!(
        get("Deployment/d2")["spec"]["template"]["spec"]["containers"][0]["command"],
        json!(["sleep", "3600"])
    );
    assert_eq!(get("ConfigMap/cm1")["data"], json!({"a": "b"}));
    assert_eq!(
        get("ConfigMap/cm2")["binaryData"],
        json!({"bin": "AAEC/w=="})
    );
    assert_eq!(get("ConfigMap/cm2")["data"], json!({"c": "d"}));
    let s1 = get("Secret/s1");
    assert_eq!(
        (&s1["data"], &s1["type"]),
        (&json!({"user": "YWRtaW4="}), &json!("Opaque"))
    );
    let tls = get("Secret/tls1");
    assert_eq!(tls["type"], "kubernetes.io/tls");
    let mut tls_keys: Vec<&String> = tls["data"].as_object().unwrap().keys().collect();
    tls_keys.sort();
    assert_eq!(tls_keys, ["tls.crt", "tls.key"]);
    assert_eq!(get("Secret/reg1")["type"], "kubernetes.io/dockerconfigjson");
    assert!(get("ServiceAccount/sa1").is_object());
    let svc1 = get("Service/svc1");
    assert_eq!(
        svc1["spec"]["ports"],
        json!([
            {"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080},
            {"name": "443", "protocol": "TCP", "port": 443, "targetPort": 443}
        ])
    );
    assert_eq!(svc1["spec"]["type"], "ClusterIP");
    assert_eq!(get("Service/headless")["spec"]["clusterIP"], "None");
    assert_eq!(get("Service/np1")["spec"]["ports"][0]["nodePort"], 30080);
    assert_eq!(get("Service/lb1")["spec"]["type"], "LoadBalancer");
    assert_eq!(get("Service/ext1")["spec"]["externalName"], "example.com");
    let cj = get("CronJob/cj1");
    assert_eq!(cj["spec"]["schedule"], "*/5 * * * *");
    assert_eq!(
        cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"],
        "OnFailure"
    );
    assert_eq!(
        get("Job/j1")["spec"]["template"]["spec"]["containers"][0]["command"],
        json!(["echo", "hi"])
    );
    let j2 = get("Job/j2");
    assert_eq!(j2["metadata"]["ownerReferences"][0]["kind"], "CronJob");
    assert_eq!(j2["metadata"]["ownerReferences"][0]["controller"], true);
    assert_eq!(
        get("Role/r1")["rules"],
        json!([
            {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["x"]},
            {"verbs": ["get", "list"], "apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": ["x"]}
        ])
    );
    let cr1 = get(&format!("ClusterRole/{}", n("cr1")));
    assert_eq!(cr1["rules"][1]["nonResourceURLs"], json!(["/logs/*"]));
    let cr2 = get(&format!("ClusterRole/{}", n("cr2")));
    assert_eq!(
        cr2["aggregationRule"],
        json!({"clusterRoleSelectors": [{"matchLabels": {"foo": "bar"}}]})
    );
    let rb1 = get("RoleBinding/rb1");
    assert_eq!(
        rb1["subjects"],
        json!([
            {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"},
            {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "devs"},
            {"kind": "ServiceAccount", "name": "sa1", "namespace": ns}
        ])
    );
    assert_eq!(
        rb1["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r1"})
    );
    let crb1 = get(&format!("ClusterRoleBinding/{}", n("crb1")));
    assert_eq!(crb1["roleRef"]["name"], n("cr1"));
    let q1 = get("ResourceQuota/q1");
    assert_eq!(
        q1["spec"],
        json!({"hard": {"cpu": "1", "memory": "1G", "pods": "2"}, "scopes": ["BestEffort"]})
    );
    assert_eq!(get("PodDisruptionBudget/pdb1")["spec"]["minAvailable"], 1);
    assert_eq!(
        get("PodDisruptionBudget/pdb2")["spec"]["maxUnavailable"],
        "50%"
    );
    let ing = get("Ingress/ing1");
    assert_eq!(ing["spec"]["ingressClassName"], "nginx");
    assert_eq!(
        ing["spec"]["rules"][0]["http"]["paths"][0]["backend"],
        json!({"service": {"name": "svc1", "port": {"number": 8080}}})
    );
    assert_eq!(
        ing["spec"]["tls"],
        json!([{"hosts": ["foo.com"], "secretName": "my-cert"}])
    );
    if priority_class {
        let pc = get(&format!("PriorityClass/{}", n("pc1")));
        assert_eq!(
            (&pc["value"], &pc["preemptionPolicy"]),
            (&json!(1000), &json!("Never"))
        );
    }
    if hpa {
        assert_eq!(get("HorizontalPodAutoscaler/d1")["spec"]["maxReplicas"], 3);
    }
    let debug = &get("Pod/node-debugger")["spec"];
    assert_eq!(debug["nodeName"], node);
    assert_eq!(
        (&debug["hostPID"], &debug["hostNetwork"], &debug["hostIPC"]),
        (&json!(true), &json!(true), &json!(true))
    );
    assert_eq!(
        debug["containers"][0]["securityContext"]["privileged"],
        true
    );
    assert_eq!(debug["volumes"][0]["hostPath"]["path"], "/");
    assert_eq!(get(&format!("Namespace/{ns}"))["status"]["phase"], "Active");

    // Normalized for comparison: what differs between two runs of the
    // same commands is the tag, the server's metadata and the debug pod's
    // generated name.
    objects
        .into_iter()
        .map(|(key, mut obj)| {
            let meta = obj["metadata"].as_object_mut().unwrap();
            for field in [
                "uid",
                "resourceVersion",
                "creationTimestamp",
                "managedFields",
                "generation",
            ] {
                meta.remove(field);
            }
            if key == "Pod/node-debugger" {
                meta.remove("name");
            }
            if let Some(owners) = meta
                .get_mut("ownerReferences")
                .and_then(Value::as_array_mut)
            {
                for owner in owners {
                    owner.as_object_mut().unwrap().remove("uid");
                }
            }
            let text = obj.to_string().replace(tag, "TAG");
            (
                key.replace(tag, "TAG"),
                serde_json::from_str(&text).unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_typed_creates_send_protobuf_and_are_stored_like_json() {
    let required = std::env::var_os("MC_REQUIRE_KUBECTL").is_some();
    let protobuf_kubectls: Vec<(&str, Option<PathBuf>)> = ["1.33", "1.32"]
        .into_iter()
        .map(|v| (v, kubectl_bin(v)))
        .collect();
    let missing: Vec<&str> = protobuf_kubectls
        .iter()
        .filter(|(_, p)| p.is_none())
        .map(|(v, _)| *v)
        .collect();
    if !missing.is_empty() {
        assert!(
            !required,
            "kubectl {missing:?} not found in {} but MC_REQUIRE_KUBECTL is set",
            kubectl_dir().display()
        );
        if missing.len() == protobuf_kubectls.len() {
            eprintln!(
                "kubectl 1.32/1.33 not found in {} (set MC_KUBECTL_DIR): skipping",
                kubectl_dir().display()
            );
            return;
        }
    }

    let server = ApiServer::start(Config::default())
        .await
        .expect("server starts");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let files = std::sync::Arc::new(inputs(dir.path()));

    let mut runs = Vec::new();
    let baseline = kubectl_bin("1.31");
    let all = protobuf_kubectls
        .into_iter()
        .filter_map(|(v, p)| p.map(|p| (v, p)))
        .chain(baseline.map(|p| ("1.31", p)));
    for (version, bin) in all {
        let tag = format!("v{}", version.replace('.', ""));
        let k = Kubectl::new(bin, &kubeconfig, dir.path().join(format!("home-{tag}")));
        let files = files.clone();
        eprintln!(
            "kubectl {version}: {}",
            k.ok("version --client").lines().next().unwrap_or("")
        );
        // kubectl calls back into the server, which runs on this runtime.
        let objects = tokio::task::spawn_blocking(move || script(&k, &tag, &files))
            .await
            .unwrap();
        runs.push((version, objects));
    }

    // kubectl 1.31 sent JSON: the protobuf runs must have stored the same.
    if let Some((_, json_objects)) = runs.iter().find(|(v, _)| *v == "1.31") {
        for (version, objects) in runs.iter().filter(|(v, _)| *v != "1.31") {
            let keys = |m: &BTreeMap<String, Value>| m.keys().cloned().collect::<Vec<_>>();
            // autoscaling/v2 is served, autoscaling/v1 (kubectl < 1.33) is not.
            let comparable = |m: &BTreeMap<String, Value>| {
                let mut m = m.clone();
                m.remove("HorizontalPodAutoscaler/d1");
                m
            };
            let (a, b) = (comparable(objects), comparable(json_objects));
            assert_eq!(keys(&a), keys(&b), "kubectl {version} vs 1.31: objects");
            for (key, obj) in &a {
                assert_eq!(
                    obj, &b[key],
                    "kubectl {version} (protobuf) vs 1.31 (JSON): {key}"
                );
            }
        }
    } else {
        eprintln!("kubectl 1.31 not found: not comparing with JSON-sent objects");
    }
}

/// The `k8s\0` + `runtime.Unknown` envelope around `raw`.
fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    fn field(number: u8, bytes: &[u8], out: &mut Vec<u8>) {
        assert!(bytes.len() < 128 && number < 16);
        out.push(number << 3 | 2);
        out.push(bytes.len() as u8);
        out.extend_from_slice(bytes);
    }
    let mut type_meta = Vec::new();
    field(1, api_version.as_bytes(), &mut type_meta);
    field(2, kind.as_bytes(), &mut type_meta);
    let mut out = b"k8s\0".to_vec();
    field(1, &type_meta, &mut out);
    field(2, raw, &mut out);
    out
}

#[tokio::test]
async fn protobuf_bodies_over_http() {
    let server = ApiServer::start(Config::default())
        .await
        .expect("server starts");
    let client = reqwest::Client::new();
    let post = |path: &str, body: Vec<u8>| {
        client
            .post(format!("{}{path}", server.url()))
            .header("Content-Type", PROTOBUF)
            .header(
                "Accept",
                "application/vnd.kubernetes.protobuf,application/json",
            )
            .body(body)
            .send()
    };

    // ConfigMap{metadata: {name: "hand"}, data: {"k": "v"}}.
    let raw = [
        0x0a, 0x06, 0x0a, 0x04, b'h', b'a', b'n', b'd', // metadata.name
        0x12, 0x06, 0x0a, 0x01, b'k', 0x12, 0x01, b'v', // data entry
    ];
    let resp = post(
        "/api/v1/namespaces/default/configmaps",
        envelope("v1", "ConfigMap", &raw),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 201);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let created: Value = resp.json().await.unwrap();
    assert_eq!(created["data"], json!({"k": "v"}));
    assert_eq!(created["metadata"]["namespace"], "default");

    // Undecodable bodies: 415 with a Status naming the problem.
    for (path, body, needle) in [
        (
            "/apis/apps/v1/namespaces/default/statefulsets",
            envelope("apps/v1", "StatefulSet", &[]),
            "StatefulSet",
        ),
        (
            "/api/v1/namespaces/default/configmaps",
            b"{\"kind\":\"ConfigMap\"}".to_vec(),
            "k8s",
        ),
        (
            "/api/v1/namespaces/default/configmaps",
            envelope("v1", "ConfigMap", &[0x0a, 0x20, 0x0a]),
            "Kind=ConfigMap",
        ),
    ] {
        let resp = post(path, body).await.unwrap();
        assert_eq!(resp.status(), 415, "{path}");
        let status: Value = resp.json().await.unwrap();
        assert_eq!(status["kind"], "Status");
        assert_eq!(status["reason"], "UnsupportedMediaType");
        let message = status["message"].as_str().unwrap();
        assert!(message.contains(needle), "{message}");
    }
}
