//! Server-side apply against a server started in-process: over plain HTTP
//! for the exact semantics, and with kubectl (`apply --server-side`) for
//! what clients see.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use metacontroller_apiserver::{ApiServer, Config};
use serde_json::{Value, json};

const APPLY: &str = "application/apply-patch+yaml";

async fn server() -> ApiServer {
    ApiServer::start(Config::default())
        .await
        .expect("server starts")
}

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    fn new(s: &ApiServer) -> Self {
        Api {
            base: s.url(),
            http: reqwest::Client::new(),
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: Option<&str>,
        body: Option<String>,
        user_agent: Option<&str>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(ua) = user_agent {
            req = req.header("user-agent", ua);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", content_type.unwrap_or("application/json"))
                .body(b);
        }
        let resp = req.send().await.expect("request sent");
        let code = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            code,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Applies `body` (YAML or JSON) at `path` (which may carry a query).
    async fn apply(&self, path: &str, manager: &str, force: bool, body: &str) -> (u16, Value) {
        let sep = if path.contains('?') { '&' } else { '?' };
        let path = format!("{path}{sep}fieldManager={manager}&force={force}");
        self.send(
            reqwest::Method::PATCH,
            &path,
            Some(APPLY),
            Some(body.to_string()),
            None,
        )
        .await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, None, None, None)
            .await
    }

    async fn ok(&self, path: &str) -> Value {
        let (code, v) = self.get(path).await;
        assert_eq!(code, 200, "GET {path}: {v}");
        v
    }
}

const CM: &str = "/api/v1/namespaces/default/configmaps";
const DEPLOY: &str = "/apis/apps/v1/namespaces/default/deployments";

fn entry<'a>(obj: &'a Value, manager: &str, operation: &str) -> Option<&'a Value> {
    obj["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == operation)
}

fn deployment(name: &str, spec: &str) -> String {
    format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n{spec}")
}

const WEB_SPEC: &str = "  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: nginx\n";

#[tokio::test]
async fn apply_creates_the_object_and_records_the_manager() {
    let s = server().await;
    let api = Api::new(&s);
    let body = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n  labels: {team: a}\ndata:\n  a: '1'\n  b: '2'\n";
    let (code, created) = api.apply(&format!("{CM}/cm"), "alice", false, body).await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["data"], json!({"a": "1", "b": "2"}));
    assert!(created["metadata"]["uid"].is_string());
    let mf = created["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(mf.len(), 1, "{created}");
    let e = &mf[0];
    assert_eq!(e["manager"], "alice");
    assert_eq!(e["operation"], "Apply");
    assert_eq!(e["apiVersion"], "v1");
    assert_eq!(e["fieldsType"], "FieldsV1");
    assert!(e["time"].as_str().unwrap().ends_with('Z'));
    assert!(e.get("subresource").is_none());
    assert_eq!(
        e["fieldsV1"],
        json!({"f:data": {"f:a": {}, "f:b": {}}, "f:metadata": {"f:labels": {"f:team": {}}}})
    );
    assert_eq!(api.ok(&format!("{CM}/cm")).await, created);

    // The same configuration again, as JSON: nothing changes.
    let same = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "labels": {"team": "a"}}, "data": {"a": "1", "b": "2"}});
    let (code, again) = api
        .apply(&format!("{CM}/cm"), "alice", false, &same.to_string())
        .await;
    assert_eq!(code, 200, "{again}");
    assert_eq!(
        again["metadata"]["resourceVersion"],
        created["metadata"]["resourceVersion"]
    );

    // Objects are created in existing namespaces only.
    let (code, err) = api
        .apply(
            "/api/v1/namespaces/nope/configmaps/cm",
            "alice",
            false,
            body,
        )
        .await;
    assert_eq!(code, 404, "{err}");
    assert_eq!(err["message"], "namespaces \"nope\" not found");

    // Cluster-scoped objects too.
    let (code, ns) = api
        .apply(
            "/api/v1/namespaces/applied",
            "alice",
            false,
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: applied, labels: {x: y}}\n",
        )
        .await;
    assert_eq!(code, 201, "{ns}");
    assert_eq!(
        entry(&ns, "alice", "Apply").unwrap()["fieldsV1"],
        json!({"f:metadata": {"f:labels": {"f:x": {}}}})
    );
}

#[tokio::test]
async fn apply_removes_what_the_manager_no_longer_applies() {
    let s = server().await;
    let api = Api::new(&s);
    let path = format!("{DEPLOY}/web");
    let spec = format!("  replicas: 3\n  paused: true\n{WEB_SPEC}");
    let (code, v) = api
        .apply(&path, "alice", false, &deployment("web", &spec))
        .await;
    assert_eq!(code, 201, "{v}");
    assert_eq!(v["spec"]["paused"], true);
    // Labels set by someone else survive.
    let (code, v) = api
        .send(
            reqwest::Method::PATCH,
            &format!("{path}?fieldManager=labeler"),
            Some("application/merge-patch+json"),
            Some(r#"{"metadata":{"labels":{"owner":"ops"}}}"#.into()),
            None,
        )
        .await;
    assert_eq!(code, 200, "{v}");
    let spec = format!("  replicas: 3\n{WEB_SPEC}");
    let (code, v) = api
        .apply(&path, "alice", false, &deployment("web", &spec))
        .await;
    assert_eq!(code, 200, "{v}");
    assert!(v["spec"].get("paused").is_none(), "{v}");
    assert_eq!(v["spec"]["replicas"], 3);
    assert_eq!(v["metadata"]["labels"]["owner"], "ops");
    let alice = entry(&v, "alice", "Apply").unwrap();
    assert!(alice["fieldsV1"]["f:spec"].get("f:paused").is_none());
    assert_eq!(
        alice["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"],
        json!({"k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {}}})
    );
    assert_eq!(
        alice["fieldsV1"]["f:spec"]["f:selector"],
        json!({}),
        "label selectors are atomic"
    );
    let labeler = entry(&v, "labeler", "Update").unwrap();
    assert_eq!(labeler["apiVersion"], "apps/v1");
    assert_eq!(
        labeler["fieldsV1"],
        json!({"f:metadata": {"f:labels": {".": {}, "f:owner": {}}}})
    );

    // Dropping a container drops it; a container added by another
    // applier stays.
    let (code, v) = api
        .apply(
            &path,
            "bob",
            false,
            &deployment("web", "  template:\n    spec:\n      containers:\n      - {name: sidecar, image: busybox}\n"),
        )
        .await;
    assert_eq!(code, 200, "{v}");
    let names: Vec<&str> = v["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web", "sidecar"]);
    let spec = "  replicas: 3\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers: []\n";
    let (code, v) = api
        .apply(&path, "alice", false, &deployment("web", spec))
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        v["spec"]["template"]["spec"]["containers"],
        json!([{"name": "sidecar", "image": "busybox"}])
    );
}

#[tokio::test]
async fn conflicts_force_and_shared_ownership() {
    let s = server().await;
    let api = Api::new(&s);
    let path = format!("{DEPLOY}/web");
    let alice = deployment(
        "web",
        &format!("  replicas: 1\n  minReadySeconds: 5\n{WEB_SPEC}"),
    );
    let (code, v) = api.apply(&path, "alice", false, &alice).await;
    assert_eq!(code, 201, "{v}");

    // Another manager changing a field alice owns conflicts.
    let (code, err) = api
        .apply(&path, "bob", false, &deployment("web", "  replicas: 2\n"))
        .await;
    assert_eq!(code, 409, "{err}");
    assert_eq!(err["kind"], "Status");
    assert_eq!(err["reason"], "Conflict");
    assert_eq!(
        err["message"],
        "Apply failed with 1 conflict: conflict with \"alice\": .spec.replicas"
    );
    assert_eq!(
        err["details"]["causes"],
        json!([{"reason": "FieldManagerConflict", "message": "conflict with \"alice\"", "field": ".spec.replicas"}])
    );
    let (code, err) = api
        .apply(
            &path,
            "bob",
            false,
            &deployment("web", "  replicas: 2\n  minReadySeconds: 1\n  template:\n    spec:\n      containers:\n      - {name: web, image: httpd}\n"),
        )
        .await;
    assert_eq!(code, 409, "{err}");
    assert_eq!(
        err["message"],
        "Apply failed with 3 conflicts: conflicts with \"alice\":\n- .spec.minReadySeconds\n- .spec.replicas\n- .spec.template.spec.containers[name=\"web\"].image"
    );
    assert_eq!(err["details"]["causes"].as_array().unwrap().len(), 3);
    assert_eq!(
        api.ok(&path).await["spec"]["replicas"],
        1,
        "a refused apply changes nothing"
    );

    // The same value is shared, without conflict.
    let (code, v) = api
        .apply(&path, "bob", false, &deployment("web", "  replicas: 1\n"))
        .await;
    assert_eq!(code, 200, "{v}");
    for who in ["alice", "bob"] {
        let e = entry(&v, who, "Apply").unwrap();
        assert_eq!(
            e["fieldsV1"]["f:spec"]["f:replicas"],
            json!({}),
            "{who}: {v}"
        );
    }
    // A shared field stays while one owner remains.
    let (code, v) = api
        .apply(
            &path,
            "alice",
            false,
            &deployment("web", &format!("  minReadySeconds: 5\n{WEB_SPEC}")),
        )
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["spec"]["replicas"], 1);
    assert!(
        entry(&v, "alice", "Apply").unwrap()["fieldsV1"]["f:spec"]
            .get("f:replicas")
            .is_none()
    );

    // force takes ownership.
    let (code, v) = api
        .apply(
            &path,
            "carol",
            true,
            &deployment("web", "  replicas: 4\n  minReadySeconds: 9\n"),
        )
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["spec"]["replicas"], 4);
    assert_eq!(v["spec"]["minReadySeconds"], 9);
    assert!(
        entry(&v, "bob", "Apply").is_none(),
        "bob owned nothing else: {v}"
    );
    let alice = entry(&v, "alice", "Apply").unwrap();
    assert!(
        alice["fieldsV1"]["f:spec"]
            .get("f:minReadySeconds")
            .is_none()
    );
    assert_eq!(
        entry(&v, "carol", "Apply").unwrap()["fieldsV1"],
        json!({"f:spec": {"f:minReadySeconds": {}, "f:replicas": {}}})
    );
    // ... and the previous owner now conflicts with the new one.
    let (code, err) = api.apply(&path, "alice", false, &alice_spec()).await;
    assert_eq!(code, 409, "{err}");
    assert_eq!(
        err["message"],
        "Apply failed with 1 conflict: conflict with \"carol\": .spec.minReadySeconds"
    );
}

fn alice_spec() -> String {
    deployment("web", &format!("  minReadySeconds: 5\n{WEB_SPEC}"))
}

#[tokio::test]
async fn other_writes_are_recorded_as_updates() {
    let s = server().await;
    let api = Api::new(&s);
    // A create names its manager with fieldManager ...
    let (code, v) = api
        .send(
            reqwest::Method::POST,
            &format!("{CM}?fieldManager=kubectl-create"),
            None,
            Some(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"key": "one"}}).to_string()),
            Some("kubectl/v1.33.0 (linux/amd64) kubernetes/abc"),
        )
        .await;
    assert_eq!(code, 201, "{v}");
    let e = entry(&v, "kubectl-create", "Update").unwrap();
    assert_eq!(e["apiVersion"], "v1");
    assert_eq!(e["fieldsV1"], json!({"f:data": {".": {}, "f:key": {}}}));
    // ... or else with its user agent.
    let mut body = v.clone();
    body["data"]["other"] = json!("two");
    let (code, v) = api
        .send(
            reqwest::Method::PUT,
            &format!("{CM}/cm"),
            None,
            Some(body.to_string()),
            Some("my-tool/0.1"),
        )
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        entry(&v, "my-tool", "Update").unwrap()["fieldsV1"],
        json!({"f:data": {"f:other": {}}})
    );

    // Applying a different value conflicts with the updater.
    let cfg = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {key: three}\n";
    let (code, err) = api.apply(&format!("{CM}/cm"), "kubectl", false, cfg).await;
    assert_eq!(code, 409, "{err}");
    assert_eq!(
        err["message"],
        "Apply failed with 1 conflict: conflict with \"kubectl-create\" using v1: .data.key"
    );
    assert_eq!(
        err["details"]["causes"][0]["message"],
        "conflict with \"kubectl-create\" using v1"
    );
    let (code, v) = api.apply(&format!("{CM}/cm"), "kubectl", true, cfg).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["data"], json!({"key": "three", "other": "two"}));
    assert_eq!(
        entry(&v, "kubectl-create", "Update").unwrap()["fieldsV1"],
        json!({"f:data": {}}),
        "the creator keeps the map it created, not the value: {v}"
    );
    // Managers are listed appliers first.
    let ops: Vec<&str> = v["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["operation"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["Apply", "Update", "Update"]);

    // A write that changes nothing keeps the object as it is.
    let (code, same) = api
        .send(
            reqwest::Method::PATCH,
            &format!("{CM}/cm?fieldManager=noop"),
            Some("application/merge-patch+json"),
            Some(r#"{"data":{"key":"three"}}"#.into()),
            None,
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(same, v);

    // Resetting managedFields stops tracking until the next apply.
    let (code, v) = api
        .send(
            reqwest::Method::PATCH,
            &format!("{CM}/cm"),
            Some("application/merge-patch+json"),
            Some(r#"{"metadata":{"managedFields":[{}]}}"#.into()),
            None,
        )
        .await;
    assert_eq!(code, 200, "{v}");
    assert!(v["metadata"].get("managedFields").is_none(), "{v}");
    let (code, v) = api
        .apply(
            &format!("{CM}/cm"),
            "fresh",
            false,
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {new: x}\n",
        )
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        entry(&v, "before-first-apply", "Update").unwrap()["fieldsV1"]["f:data"],
        json!({".": {}, "f:key": {}, "f:other": {}})
    );
}

#[tokio::test]
async fn dry_run_changes_nothing() {
    let s = server().await;
    let api = Api::new(&s);
    let path = format!("{CM}/dry");
    let cfg = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: dry}\ndata: {a: '1'}\n";
    let (code, v) = api
        .apply(&format!("{path}?dryRun=All"), "alice", false, cfg)
        .await;
    assert_eq!(code, 201, "{v}");
    assert_eq!(v["data"]["a"], "1");
    assert!(entry(&v, "alice", "Apply").is_some());
    assert_eq!(api.get(&path).await.0, 404);

    let (code, stored) = api.apply(&path, "alice", false, cfg).await;
    assert_eq!(code, 201);
    let (code, v) = api
        .apply(
            &format!("{path}?dryRun=All"),
            "bob",
            true,
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: dry}\ndata: {a: '2'}\n",
        )
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["data"]["a"], "2");
    assert_eq!(api.ok(&path).await, stored);
    let (code, _) = api
        .apply(&format!("{path}?dryRun=Some"), "bob", true, cfg)
        .await;
    assert_eq!(code, 400);
}

#[tokio::test]
async fn bad_requests() {
    let s = server().await;
    let api = Api::new(&s);
    let cfg = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {a: '1'}\n";
    let (code, err) = api
        .send(
            reqwest::Method::PATCH,
            &format!("{CM}/cm"),
            Some(APPLY),
            Some(cfg.into()),
            None,
        )
        .await;
    assert_eq!(code, 422, "{err}");
    assert_eq!(err["reason"], "Invalid");
    assert_eq!(
        err["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );
    assert_eq!(err["details"]["causes"][0]["field"], "fieldManager");

    let cases = [
        (
            "apiVersion: apps/v1\nkind: ConfigMap\nmetadata: {name: cm}\n",
            "invalid object type: apps/v1, Kind=ConfigMap",
        ),
        (
            "apiVersion: v1\nkind: Secret\nmetadata: {name: cm}\n",
            "invalid object type: /v1, Kind=Secret",
        ),
        ("metadata: {name: cm}\n", "invalid object type: /, Kind="),
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm, managedFields: []}\n",
            "metadata.managedFields must be nil",
        ),
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other}\n",
            "the name of the object (other) does not match the name on the URL (cm)",
        ),
    ];
    for (body, message) in cases {
        let (code, err) = api.apply(&format!("{CM}/cm"), "a", false, body).await;
        assert_eq!(code, 400, "{body}: {err}");
        assert_eq!(err["message"], message, "{body}");
    }
    for body in ["[1, 2]", "a: [", "\"text\""] {
        let (code, err) = api.apply(&format!("{CM}/cm"), "a", false, body).await;
        assert_eq!(code, 400, "{body}: {err}");
        assert!(
            err["message"]
                .as_str()
                .unwrap()
                .starts_with("error decoding YAML"),
            "{err}"
        );
    }
    let (code, err) = api
        .send(
            reqwest::Method::PATCH,
            &format!("{CM}/cm?fieldManager=a&force=maybe"),
            Some(APPLY),
            Some(cfg.into()),
            None,
        )
        .await;
    assert_eq!(code, 400, "{err}");
    let (code, err) = api
        .apply(
            &format!("{DEPLOY}/web"),
            "a",
            false,
            &deployment(
                "web",
                "  template:\n    spec:\n      containers:\n      - {name: a}\n      - {name: a}\n",
            ),
        )
        .await;
    assert_eq!(code, 500, "{err}");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .ends_with(".spec.template.spec.containers: duplicate entries for key [name=\"a\"]"),
        "{err}"
    );
    assert_eq!(
        api.get(&format!("{CM}/cm")).await.0,
        404,
        "nothing was created"
    );
}

const GADGET_CRD: &str = r#"{
  "apiVersion": "apiextensions.k8s.io/v1",
  "kind": "CustomResourceDefinition",
  "metadata": {"name": "gadgets.example.com"},
  "spec": {
    "group": "example.com",
    "scope": "Namespaced",
    "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
    "versions": [{
      "name": "v1", "served": true, "storage": true,
      "subresources": {"status": {}},
      "schema": {"openAPIV3Schema": {
        "type": "object",
        "properties": {
          "spec": {
            "type": "object",
            "properties": {
              "size": {"type": "integer"},
              "ports": {
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
                "items": {"type": "object", "required": ["name"], "properties": {
                  "name": {"type": "string"}, "port": {"type": "integer"}
                }}
              },
              "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
              "args": {"type": "array", "items": {"type": "string"}},
              "selector": {"type": "object", "x-kubernetes-map-type": "atomic", "additionalProperties": {"type": "string"}}
            }
          },
          "status": {"type": "object", "properties": {"phase": {"type": "string"}, "ready": {"type": "integer"}}}
        }
      }}
    }]
  }
}"#;

const GADGETS: &str = "/apis/example.com/v1/namespaces/default/gadgets";

async fn gadget_crd(api: &Api) {
    let (code, v) = api
        .send(
            reqwest::Method::POST,
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            None,
            Some(GADGET_CRD.into()),
            None,
        )
        .await;
    assert_eq!(code, 201, "{v}");
    for _ in 0..200 {
        if api.get(GADGETS).await.0 == 200 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("gadgets are not served");
}

#[tokio::test]
async fn custom_resources_follow_their_schema() {
    let s = server().await;
    let api = Api::new(&s);
    gadget_crd(&api).await;
    let path = format!("{GADGETS}/g");
    let body = "apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: g}\nspec:\n  size: 1\n  ports: [{name: http, port: 80}, {name: https, port: 443}]\n  tags: [a, b]\n  args: [x]\n  selector: {app: g}\nstatus: {phase: Ignored}\n";
    let (code, v) = api.apply(&path, "alice", false, body).await;
    assert_eq!(code, 201, "{v}");
    assert!(
        v.get("status").is_none(),
        "status is not applied with the object: {v}"
    );
    assert_eq!(
        entry(&v, "alice", "Apply").unwrap()["fieldsV1"],
        json!({"f:spec": {
            "f:args": {},
            "f:ports": {
                "k:{\"name\":\"http\"}": {".": {}, "f:name": {}, "f:port": {}},
                "k:{\"name\":\"https\"}": {".": {}, "f:name": {}, "f:port": {}}
            },
            "f:selector": {},
            "f:size": {},
            "f:tags": {"v:\"a\"": {}, "v:\"b\"": {}}
        }})
    );
    // Keyed list items and set items merge with another manager's.
    let (code, v) = api
        .apply(
            &path,
            "bob",
            false,
            "apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: g}\nspec:\n  ports: [{name: admin, port: 9000}]\n  tags: [c]\n",
        )
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        v["spec"]["ports"],
        json!([{"name": "http", "port": 80}, {"name": "https", "port": 443}, {"name": "admin", "port": 9000}])
    );
    assert_eq!(v["spec"]["tags"], json!(["a", "b", "c"]));
    // ... while atomic lists conflict as a whole.
    let (code, err) = api
        .apply(
            &path,
            "bob",
            false,
            "apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: g}\nspec:\n  args: [y]\n  ports: [{name: http, port: 8080}]\n",
        )
        .await;
    assert_eq!(code, 409, "{err}");
    assert_eq!(
        err["message"],
        "Apply failed with 2 conflicts: conflicts with \"alice\":\n- .spec.args\n- .spec.ports[name=\"http\"].port"
    );

    // The status subresource applies status only, as its own manager.
    let (code, v) = api
        .apply(
            &format!("{path}/status"),
            "controller",
            false,
            "apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: g}\nspec: {size: 100}\nstatus: {phase: Ready, ready: 3}\n",
        )
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"], json!({"phase": "Ready", "ready": 3}));
    assert_eq!(v["spec"]["size"], 1);
    let e = entry(&v, "controller", "Apply").unwrap();
    assert_eq!(e["subresource"], "status");
    assert_eq!(
        e["fieldsV1"],
        json!({"f:status": {"f:phase": {}, "f:ready": {}}})
    );
    // Dropping a status field removes it.
    let (code, v) = api
        .apply(
            &format!("{path}/status"),
            "controller",
            false,
            "apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: g}\nstatus: {phase: Ready}\n",
        )
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"], json!({"phase": "Ready"}));
    // A status conflict names the subresource.
    let (code, err) = api
        .apply(
            &format!("{path}/status"),
            "other",
            false,
            "apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: g}\nstatus: {phase: Failed}\n",
        )
        .await;
    assert_eq!(code, 409, "{err}");
    assert_eq!(
        err["message"],
        "Apply failed with 1 conflict: conflict with \"controller\" with subresource \"status\": .status.phase"
    );
    let (code, _) = api
        .apply(
            &format!("{GADGETS}/missing/status"),
            "controller",
            false,
            "apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: missing}\nstatus: {phase: Ready}\n",
        )
        .await;
    assert_eq!(code, 404);
}

// ---------------------------------------------------------------------------
// kubectl
// ---------------------------------------------------------------------------

/// The kubectl binaries to test with: `MC_KUBECTL`, else those listed in
/// `MC_KUBECTLS` (separated by ':'), else `kubectl` on PATH.
fn kubectls() -> Vec<PathBuf> {
    if let Some(k) = std::env::var_os("MC_KUBECTL").filter(|k| !k.is_empty()) {
        return vec![PathBuf::from(k)];
    }
    if let Ok(list) = std::env::var("MC_KUBECTLS") {
        let v: Vec<PathBuf> = list
            .split(':')
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect();
        if !v.is_empty() {
            return v;
        }
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("kubectl"))
            .find(|p| p.is_file())
    });
    match found {
        Some(p) => vec![p],
        None => {
            assert!(
                std::env::var("MC_REQUIRE_KUBECTL").is_err(),
                "no kubectl found but MC_REQUIRE_KUBECTL is set"
            );
            eprintln!("kubectl not found: skipping");
            vec![]
        }
    }
}

struct Kubectl {
    bin: PathBuf,
    kubeconfig: PathBuf,
    home: PathBuf,
}

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Kubectl {
    fn new(bin: &Path, server: &ApiServer, dir: &Path) -> Self {
        let kubeconfig = dir.join("kubeconfig");
        server.write_kubeconfig(&kubeconfig).unwrap();
        let home = dir.join("home");
        std::fs::create_dir_all(&home).unwrap();
        Kubectl {
            bin: bin.to_path_buf(),
            kubeconfig,
            home,
        }
    }

    fn run(&self, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Out {
        use std::io::Write;
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.home.join("cache"))
            .env("HOME", &self.home)
            .env_remove("KUBECONFIG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("kubectl runs");
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
        drop(input);
        let out = child.wait_with_output().unwrap();
        Out {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    #[track_caller]
    fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let o = self.run(args, stdin, &[]);
        assert!(
            o.ok,
            "{} {args:?} failed:\nstdout: {}\nstderr: {}",
            self.bin.display(),
            o.stdout,
            o.stderr
        );
        o.stdout
    }

    #[track_caller]
    fn fails(&self, args: &[&str], stdin: Option<&str>) -> String {
        let o = self.run(args, stdin, &[]);
        assert!(
            !o.ok,
            "{} {args:?} should fail:\nstdout: {}",
            self.bin.display(),
            o.stdout
        );
        o.stderr
    }

    #[track_caller]
    fn get(&self, what: &[&str]) -> Value {
        let mut args = vec!["get"];
        args.extend(what);
        args.extend(["-o", "json", "--show-managed-fields"]);
        serde_json::from_str(&self.ok(&args, None)).expect("kubectl prints JSON")
    }
}

fn configmap(name: &str, data: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: default\ndata:\n{data}"
    )
}

const KUBECTL_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: routes.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: routes, singular: route, kind: Route}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              backends:
                type: array
                x-kubernetes-list-type: map
                x-kubernetes-list-map-keys: [name]
                items:
                  type: object
                  required: [name]
                  properties:
                    name: {type: string}
                    weight: {type: integer}
"#;

fn route(backends: &str) -> String {
    format!(
        "apiVersion: example.com/v1\nkind: Route\nmetadata: {{name: r, namespace: default}}\nspec:\n  backends:\n{backends}"
    )
}

fn kubectl_script(k: &Kubectl) {
    let ssa = ["apply", "--server-side", "-f", "-"];

    // Create and update with server-side apply.
    let out = k.ok(&ssa, Some(&configmap("one", "  a: '1'\n  b: '2'\n")));
    assert!(out.contains("configmap/one serverside-applied"), "{out}");
    let cm = k.get(&["configmap", "one"]);
    let e = entry(&cm, "kubectl", "Apply").unwrap_or_else(|| panic!("{cm}"));
    assert_eq!(e["fieldsV1"], json!({"f:data": {"f:a": {}, "f:b": {}}}));
    k.ok(&ssa, Some(&configmap("one", "  a: '10'\n")));
    let cm = k.get(&["configmap", "one"]);
    assert_eq!(cm["data"], json!({"a": "10"}), "b is no longer applied");

    // Another field manager conflicts, then forces.
    let other = ["apply", "--server-side", "--field-manager=other", "-f", "-"];
    let err = k.fails(&other, Some(&configmap("one", "  a: '20'\n")));
    assert!(
        err.contains("Apply failed with 1 conflict: conflict with \"kubectl\": .data.a"),
        "{err}"
    );
    let forced = [
        "apply",
        "--server-side",
        "--field-manager=other",
        "--force-conflicts",
        "-f",
        "-",
    ];
    k.ok(&forced, Some(&configmap("one", "  a: '20'\n")));
    let cm = k.get(&["configmap", "one"]);
    assert_eq!(cm["data"]["a"], "20");
    assert!(entry(&cm, "kubectl", "Apply").is_none(), "{cm}");

    // After kubectl create, a different value conflicts with the creator.
    k.ok(
        &["create", "-f", "-"],
        Some(&configmap("two", "  key: one\n")),
    );
    let err = k.fails(&ssa, Some(&configmap("two", "  key: two\n")));
    assert!(
        err.contains("conflict with \"kubectl-create\" using v1: .data.key"),
        "{err}"
    );
    k.ok(
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        Some(&configmap("two", "  key: two\n")),
    );
    assert_eq!(k.get(&["configmap", "two"])["data"]["key"], "two");

    // After kubectl edit, the editor owns what it changed.
    let edit = k.run(
        &["edit", "configmap", "two"],
        None,
        &[("KUBE_EDITOR", "sed -i 's/key: two/key: three/'")],
    );
    assert!(
        edit.ok,
        "kubectl edit failed: {}{}",
        edit.stdout, edit.stderr
    );
    let cm = k.get(&["configmap", "two"]);
    assert_eq!(cm["data"]["key"], "three", "{cm}");
    assert!(entry(&cm, "kubectl-edit", "Update").is_some(), "{cm}");
    let err = k.fails(&ssa, Some(&configmap("two", "  key: four\n")));
    assert!(
        err.contains("conflict with \"kubectl-edit\" using v1: .data.key"),
        "{err}"
    );

    // Client-side apply, then server-side apply of a changed manifest:
    // kubectl takes over the fields it applied before.
    k.ok(
        &["apply", "-f", "-"],
        Some(&configmap("three", "  x: '1'\n")),
    );
    let cm = k.get(&["configmap", "three"]);
    assert!(
        entry(&cm, "kubectl-client-side-apply", "Update").is_some(),
        "{cm}"
    );
    k.ok(&ssa, Some(&configmap("three", "  x: '2'\n")));
    let cm = k.get(&["configmap", "three"]);
    assert_eq!(cm["data"]["x"], "2");
    let last = cm["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
        .as_str()
        .unwrap();
    assert!(last.contains("\"x\":\"2\""), "{last}");

    // Dry run.
    k.ok(
        &["apply", "--server-side", "--dry-run=server", "-f", "-"],
        Some(&configmap("four", "  a: '1'\n")),
    );
    assert!(!k.run(&["get", "configmap", "four"], None, &[]).ok);

    // A custom resource with a keyed list.
    k.ok(&["apply", "--server-side", "-f", "-"], Some(KUBECTL_CRD));
    let mut applied = false;
    for _ in 0..50 {
        let o = k.run(
            &ssa,
            Some(&route(
                "  - {name: a, weight: 1}\n  - {name: b, weight: 2}\n",
            )),
            &[],
        );
        if o.ok {
            applied = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(applied, "routes never became usable");
    k.ok(&other, Some(&route("  - {name: c, weight: 3}\n")));
    let r = k.get(&["route", "r"]);
    assert_eq!(
        r["spec"]["backends"],
        json!([{"name": "a", "weight": 1}, {"name": "b", "weight": 2}, {"name": "c", "weight": 3}]),
        "{r}"
    );
    assert_eq!(
        entry(&r, "kubectl", "Apply").unwrap()["fieldsV1"]["f:spec"]["f:backends"],
        json!({
            "k:{\"name\":\"a\"}": {".": {}, "f:name": {}, "f:weight": {}},
            "k:{\"name\":\"b\"}": {".": {}, "f:name": {}, "f:weight": {}}
        })
    );
    let err = k.fails(
        &other,
        Some(&route(
            "  - {name: a, weight: 9}\n  - {name: c, weight: 3}\n",
        )),
    );
    assert!(
        err.contains("conflict with \"kubectl\": .spec.backends[name=\"a\"].weight"),
        "{err}"
    );
    // kubectl drops the item it no longer applies; the other one stays.
    k.ok(&ssa, Some(&route("  - {name: a, weight: 1}\n")));
    let r = k.get(&["route", "r"]);
    assert_eq!(
        r["spec"]["backends"],
        json!([{"name": "a", "weight": 1}, {"name": "c", "weight": 3}]),
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_server_side_apply() {
    for bin in kubectls() {
        let s = server().await;
        let dir = tempfile::tempdir().unwrap();
        let k = Kubectl::new(&bin, &s, dir.path());
        eprintln!("testing with {}", bin.display());
        // kubectl calls back into the server, which runs on this runtime.
        tokio::task::spawn_blocking(move || kubectl_script(&k))
            .await
            .unwrap();
        drop(s);
    }
}
