//! Decoding request bodies as kubectl and client-go encode them.

use serde_json::{Value, json};

use super::wire::{LEN, Writer};
use super::*;

/// A protobuf message under construction, field by field.
#[derive(Clone, Default)]
struct Msg(Writer);

impl Msg {
    fn new() -> Self {
        Self::default()
    }

    fn key(mut self, number: u32, wire: u8) -> Self {
        self.0.key(number, wire);
        self
    }

    fn raw(mut self, bytes: &[u8]) -> Self {
        self.0.raw(bytes);
        self
    }

    fn int(mut self, number: u32, v: i64) -> Self {
        self.0.uint(number, v as u64);
        self
    }

    fn bytes(mut self, number: u32, b: &[u8]) -> Self {
        self.0.bytes(number, b);
        self
    }

    fn str(self, number: u32, s: &str) -> Self {
        self.bytes(number, s.as_bytes())
    }

    fn msg(mut self, number: u32, m: Msg) -> Self {
        self.0.message(number, m.0);
        self
    }

    fn entry(self, number: u32, k: &str, v: &str) -> Self {
        self.msg(number, Msg::new().str(1, k).str(2, v))
    }
}

fn envelope(api_version: &str, kind: &str, raw: Msg) -> Vec<u8> {
    let unknown = Msg::new()
        .msg(1, Msg::new().str(1, api_version).str(2, kind))
        .msg(2, raw)
        .str(3, "")
        .str(4, "");
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(unknown.0.as_bytes());
    out
}

/// `ObjectMeta` as gogo-protobuf writes it: every value field, zero or
/// not, and the zero `creationTimestamp` as an empty message.
fn meta(name: &str, namespace: &str, labels: &[(&str, &str)]) -> Msg {
    let mut m = Msg::new()
        .str(1, name)
        .str(2, "")
        .str(3, namespace)
        .str(4, "")
        .str(5, "")
        .str(6, "")
        .int(7, 0)
        .msg(8, Msg::new());
    for (k, v) in labels {
        m = m.entry(11, k, v);
    }
    m
}

fn decode(api_version: &str, kind: &str, raw: Msg) -> Value {
    decode_request(&envelope(api_version, kind, raw)).expect("decodes")
}

/// `kubectl create deployment d1 --image=nginx:1.25 --replicas=3
/// --port=80` as kubectl 1.33 encodes it, and the JSON kubectl 1.31
/// sends for the same command.
#[test]
fn deployment_matches_the_json_kubectl_sends() {
    let container = Msg::new()
        .str(1, "nginx")
        .str(2, "nginx:1.25")
        .str(5, "")
        .msg(
            6,
            Msg::new()
                .str(1, "")
                .int(2, 0)
                .int(3, 80)
                .str(4, "")
                .str(5, ""),
        )
        .msg(8, Msg::new())
        .str(13, "")
        .str(14, "")
        .int(16, 0)
        .int(17, 0)
        .int(18, 0)
        .str(20, "");
    let pod_spec = Msg::new()
        .msg(2, container)
        .str(3, "")
        .str(6, "")
        .str(8, "")
        .str(9, "")
        .str(10, "")
        .int(11, 0)
        .int(12, 0)
        .int(13, 0)
        .str(16, "")
        .str(17, "")
        .str(19, "")
        .str(24, "");
    let spec = Msg::new()
        .int(1, 3)
        .msg(2, Msg::new().entry(1, "app", "d1"))
        .msg(
            3,
            Msg::new()
                .msg(1, meta("", "", &[("app", "d1")]))
                .msg(2, pod_spec),
        )
        .msg(4, Msg::new().str(1, ""))
        .int(5, 0)
        .int(7, 0);
    let status = Msg::new()
        .int(1, 0)
        .int(2, 0)
        .int(3, 0)
        .int(4, 0)
        .int(5, 0)
        .int(7, 0);
    let raw = Msg::new()
        .msg(1, meta("d1", "ns1", &[("app", "d1")]))
        .msg(2, spec)
        .msg(3, status);
    let sent_as_json: Value = serde_json::from_str(
        r#"{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"d1","namespace":"ns1","creationTimestamp":null,"labels":{"app":"d1"}},"spec":{"replicas":3,"selector":{"matchLabels":{"app":"d1"}},"template":{"metadata":{"creationTimestamp":null,"labels":{"app":"d1"}},"spec":{"containers":[{"name":"nginx","image":"nginx:1.25","ports":[{"containerPort":80}],"resources":{}}]}},"strategy":{}},"status":{}}"#,
    )
    .unwrap();
    assert_eq!(decode("apps/v1", "Deployment", raw), sent_as_json);
}

#[test]
fn configmap_and_secret_data() {
    let cm = Msg::new()
        .msg(1, meta("cm1", "ns1", &[]))
        .entry(2, "a", "b")
        .entry(2, "text.txt", "hello\nworld\n")
        .msg(3, Msg::new().str(1, "bin").bytes(2, &[0, 1, 2, 0xff]));
    assert_eq!(
        decode("v1", "ConfigMap", cm),
        json!({"kind": "ConfigMap", "apiVersion": "v1",
            "metadata": {"name": "cm1", "namespace": "ns1", "creationTimestamp": null},
            "data": {"a": "b", "text.txt": "hello\nworld\n"},
            "binaryData": {"bin": "AAEC/w=="}})
    );
    let secret = Msg::new()
        .msg(1, meta("s1", "ns1", &[]))
        .msg(2, Msg::new().str(1, "user").bytes(2, b"admin"))
        .str(3, "Opaque")
        .int(5, 1);
    assert_eq!(
        decode("v1", "Secret", secret),
        json!({"kind": "Secret", "apiVersion": "v1",
            "metadata": {"name": "s1", "namespace": "ns1", "creationTimestamp": null},
            "data": {"user": "YWRtaW4="}, "type": "Opaque", "immutable": true})
    );
    // An entry without a value is the zero value.
    let empty = Msg::new()
        .msg(1, meta("s2", "", &[]))
        .msg(2, Msg::new().str(1, "k"))
        .str(3, "");
    assert_eq!(decode("v1", "Secret", empty)["data"], json!({"k": ""}));
}

#[test]
fn nil_lists_pointers_and_zero_times_without_omitempty_are_null() {
    // `kubectl create clusterrole --aggregation-rule=...`: no rules.
    let role = Msg::new()
        .msg(1, meta("agg", "", &[]))
        .msg(3, Msg::new().msg(1, Msg::new().entry(1, "foo", "bar")));
    assert_eq!(
        decode("rbac.authorization.k8s.io/v1", "ClusterRole", role),
        json!({"kind": "ClusterRole", "apiVersion": "rbac.authorization.k8s.io/v1",
            "metadata": {"name": "agg", "creationTimestamp": null}, "rules": null,
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"foo": "bar"}}]}})
    );
    // `kubectl create token sa1`.
    let token = Msg::new()
        .msg(1, meta("", "", &[]))
        .msg(2, Msg::new())
        .msg(3, Msg::new().str(1, "").msg(2, Msg::new()));
    assert_eq!(
        decode("authentication.k8s.io/v1", "TokenRequest", token),
        json!({"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": null},
            "spec": {"audiences": null, "expirationSeconds": null, "boundObjectRef": null},
            "status": {"token": "", "expirationTimestamp": null}})
    );
}

#[test]
fn rbac_bindings_and_rules() {
    let subject = |kind: &str, group: &str, name: &str, ns: &str| {
        Msg::new()
            .str(1, kind)
            .str(2, group)
            .str(3, name)
            .str(4, ns)
    };
    let binding = Msg::new()
        .msg(1, meta("rb1", "ns1", &[]))
        .msg(2, subject("User", "rbac.authorization.k8s.io", "alice", ""))
        .msg(2, subject("ServiceAccount", "", "sa1", "ns1"))
        .msg(
            3,
            Msg::new()
                .str(1, "rbac.authorization.k8s.io")
                .str(2, "Role")
                .str(3, "r1"),
        );
    assert_eq!(
        decode("rbac.authorization.k8s.io/v1", "RoleBinding", binding),
        json!({"kind": "RoleBinding", "apiVersion": "rbac.authorization.k8s.io/v1",
            "metadata": {"name": "rb1", "namespace": "ns1", "creationTimestamp": null},
            "subjects": [
                {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"},
                {"kind": "ServiceAccount", "name": "sa1", "namespace": "ns1"}],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r1"}})
    );
    let role = Msg::new().msg(1, meta("r1", "ns1", &[])).msg(
        2,
        Msg::new()
            .str(1, "get")
            .str(1, "list")
            .str(2, "")
            .str(3, "pods")
            .str(4, "x"),
    );
    assert_eq!(
        decode("rbac.authorization.k8s.io/v1", "Role", role)["rules"],
        json!([{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"],
            "resourceNames": ["x"]}])
    );
}

#[test]
fn int_or_string_quantities_and_status_zeros() {
    let port = |name: &str, port: i64, target: Msg, node_port: i64| {
        Msg::new()
            .str(1, name)
            .str(2, "TCP")
            .int(3, port)
            .msg(4, target)
            .int(5, node_port)
    };
    let service = Msg::new()
        .msg(1, meta("svc1", "ns1", &[("app", "svc1")]))
        .msg(
            2,
            Msg::new()
                .msg(
                    1,
                    port(
                        "80-8080",
                        80,
                        Msg::new().int(1, 0).int(2, 8080).str(3, ""),
                        30080,
                    ),
                )
                .msg(
                    1,
                    port("web", 81, Msg::new().int(1, 1).int(2, 0).str(3, "http"), 0),
                )
                .entry(2, "app", "svc1")
                .str(3, "None")
                .str(4, "NodePort"),
        )
        .msg(3, Msg::new().msg(1, Msg::new()));
    assert_eq!(
        decode("v1", "Service", service),
        json!({"kind": "Service", "apiVersion": "v1",
            "metadata": {"name": "svc1", "namespace": "ns1", "creationTimestamp": null,
                "labels": {"app": "svc1"}},
            "spec": {"ports": [
                {"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080,
                    "nodePort": 30080},
                {"name": "web", "protocol": "TCP", "port": 81, "targetPort": "http"}],
                "selector": {"app": "svc1"}, "clusterIP": "None", "type": "NodePort"},
            "status": {"loadBalancer": {}}})
    );

    let pdb = Msg::new()
        .msg(1, meta("pdb", "ns1", &[]))
        .msg(
            2,
            Msg::new()
                .msg(2, Msg::new().entry(1, "app", "x"))
                .msg(3, Msg::new().int(1, 1).int(2, 0).str(3, "50%")),
        )
        .msg(
            3,
            Msg::new().int(1, 0).int(3, 0).int(4, 0).int(5, 0).int(6, 0),
        );
    assert_eq!(
        decode("policy/v1", "PodDisruptionBudget", pdb),
        json!({"kind": "PodDisruptionBudget", "apiVersion": "policy/v1",
            "metadata": {"name": "pdb", "namespace": "ns1", "creationTimestamp": null},
            "spec": {"selector": {"matchLabels": {"app": "x"}}, "maxUnavailable": "50%"},
            "status": {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0,
                "expectedPods": 0}})
    );

    let quota = Msg::new().msg(1, meta("q", "ns1", &[])).msg(
        2,
        Msg::new()
            .msg(1, Msg::new().str(1, "cpu").msg(2, Msg::new().str(1, "1")))
            .msg(
                1,
                Msg::new().str(1, "memory").msg(2, Msg::new().str(1, "1G")),
            )
            .msg(1, Msg::new().str(1, "pods").msg(2, Msg::new()))
            .str(2, "BestEffort"),
    );
    assert_eq!(
        decode("v1", "ResourceQuota", quota)["spec"],
        json!({"hard": {"cpu": "1", "memory": "1G", "pods": "0"}, "scopes": ["BestEffort"]})
    );
}

#[test]
fn times_negative_numbers_and_packed_lists() {
    let object_meta = meta("pc", "", &[])
        .msg(8, Msg::new().int(1, 1_700_000_000).int(2, 5))
        .msg(9, Msg::new().int(1, 0))
        .int(10, 30);
    let pc = Msg::new()
        .msg(1, object_meta)
        .int(2, -5)
        .int(3, 0)
        .str(4, "desc")
        .str(5, "Never");
    assert_eq!(
        decode("scheduling.k8s.io/v1", "PriorityClass", pc),
        json!({"kind": "PriorityClass", "apiVersion": "scheduling.k8s.io/v1",
            "metadata": {"name": "pc", "creationTimestamp": "2023-11-14T22:13:20Z",
                "deletionTimestamp": "1970-01-01T00:00:00Z", "deletionGracePeriodSeconds": 30},
            "value": -5, "description": "desc", "preemptionPolicy": "Never"})
    );

    // supplementalGroups: one unpacked and two packed int64s.
    let mut packed = Writer::new();
    packed.varint(2000);
    packed.varint(3000);
    let pod = Msg::new().msg(1, meta("p", "", &[])).msg(
        2,
        Msg::new().msg(2, Msg::new().str(1, "c")).msg(
            14,
            Msg::new()
                .int(4, 1000)
                .bytes(4, packed.as_bytes())
                .int(2, 0),
        ),
    );
    let spec = &decode("v1", "Pod", pod)["spec"];
    assert_eq!(
        spec["securityContext"],
        json!({"supplementalGroups": [1000, 2000, 3000], "runAsUser": 0})
    );
    assert_eq!(spec["containers"], json!([{"name": "c", "resources": {}}]));
}

#[test]
fn inline_structs_are_merged() {
    let container = Msg::new()
        .str(1, "app")
        .msg(
            7,
            Msg::new().str(1, "A").str(2, "").msg(
                3,
                Msg::new().msg(
                    3,
                    Msg::new()
                        .msg(1, Msg::new().str(1, "cm"))
                        .str(2, "key")
                        .int(3, 1),
                ),
            ),
        )
        .msg(
            10,
            Msg::new()
                .msg(
                    1,
                    Msg::new().msg(
                        2,
                        Msg::new()
                            .str(1, "/healthz")
                            .msg(2, Msg::new().int(2, 8080)),
                    ),
                )
                .int(2, 3),
        );
    let pod = Msg::new().msg(1, meta("p", "", &[])).msg(
        2,
        Msg::new()
            .msg(
                1,
                Msg::new()
                    .str(1, "host-root")
                    .msg(2, Msg::new().msg(1, Msg::new().str(1, "/"))),
            )
            .msg(2, container)
            .msg(22, Msg::new().str(2, "Exists")),
    );
    let spec = &decode("v1", "Pod", pod)["spec"];
    assert_eq!(
        spec["volumes"],
        json!([{"name": "host-root", "hostPath": {"path": "/"}}])
    );
    assert_eq!(
        spec["containers"][0]["env"],
        json!([{"name": "A", "valueFrom": {"configMapKeyRef":
            {"name": "cm", "key": "key", "optional": true}}}])
    );
    assert_eq!(
        spec["containers"][0]["livenessProbe"],
        json!({"httpGet": {"path": "/healthz", "port": 8080}, "initialDelaySeconds": 3})
    );
    assert_eq!(spec["tolerations"], json!([{"operator": "Exists"}]));
}

#[test]
fn managed_fields_user_extras_and_merged_occurrences() {
    let object_meta = meta("x", "", &[]).msg(
        17,
        Msg::new()
            .str(1, "kubectl")
            .str(2, "Update")
            .msg(7, Msg::new().bytes(1, br#"{"f:data":{}}"#)),
    );
    // Two occurrences of `status`, merged as protobuf requires.
    let review = Msg::new()
        .msg(1, object_meta)
        .msg(2, Msg::new().msg(1, Msg::new().str(1, "alice")))
        .msg(
            2,
            Msg::new().msg(
                1,
                Msg::new().msg(
                    4,
                    Msg::new()
                        .str(1, "scopes")
                        .msg(2, Msg::new().str(1, "a").str(1, "b")),
                ),
            ),
        );
    let decoded = decode("authentication.k8s.io/v1", "SelfSubjectReview", review);
    assert_eq!(
        decoded["metadata"]["managedFields"],
        json!([{"manager": "kubectl", "operation": "Update", "fieldsV1": {"f:data": {}}}])
    );
    assert_eq!(
        decoded["status"],
        json!({"userInfo": {"username": "alice", "extra": {"scopes": ["a", "b"]}}})
    );
}

#[test]
fn unknown_fields_are_skipped() {
    let raw = Msg::new()
        .msg(1, meta("ns1", "", &[]).int(999, 7).str(1000, "future"))
        .msg(2, Msg::new().str(1, "kubernetes").int(77, 1))
        .key(50, 1)
        .raw(&[1, 2, 3, 4, 5, 6, 7, 8])
        .key(51, 5)
        .raw(&[1, 2, 3, 4]);
    assert_eq!(
        decode("v1", "Namespace", raw),
        json!({"kind": "Namespace", "apiVersion": "v1",
            "metadata": {"name": "ns1", "creationTimestamp": null},
            "spec": {"finalizers": ["kubernetes"]}, "status": {}})
    );
}

#[test]
fn undecodable_bodies_are_errors_naming_the_type() {
    assert_eq!(
        decode_request(b"{\"kind\":\"Pod\"}"),
        Err(ProtobufError::MissingMagic)
    );

    let err = decode_request(&envelope("apps/v1", "StatefulSet", Msg::new())).unwrap_err();
    assert!(matches!(err, ProtobufError::UnknownKind { .. }));
    assert!(err.to_string().contains("StatefulSet"), "{err}");
    assert!(err.to_string().contains("apps/v1"), "{err}");

    let err = decode_request(&envelope("", "", Msg::new())).unwrap_err();
    assert!(matches!(err, ProtobufError::Envelope(_)), "{err}");

    // The envelope cut short.
    let full = envelope("v1", "ConfigMap", Msg::new().msg(1, meta("cm", "", &[])));
    let err = decode_request(&full[..full.len() / 2]).unwrap_err();
    assert!(matches!(err, ProtobufError::Envelope(_)), "{err}");

    // A string where a number belongs, deep inside.
    let bad = Msg::new().msg(1, meta("d", "", &[])).msg(
        2,
        Msg::new().msg(
            3,
            Msg::new().msg(2, Msg::new().msg(2, Msg::new().str(1, "c").str(16, "yes"))),
        ),
    );
    let err = decode_request(&envelope("apps/v1", "Deployment", bad)).unwrap_err();
    let ProtobufError::Malformed { kind, path, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(kind, "Deployment");
    assert_eq!(path, "spec.template.spec.containers[0].stdin");
    assert!(
        err.to_string().contains("apps/v1, Kind=Deployment"),
        "{err}"
    );

    // A truncated nested message.
    let mut truncated = Writer::new();
    truncated.key(1, LEN);
    truncated.varint(50);
    truncated.raw(b"short");
    let raw = Msg::new().raw(truncated.as_bytes());
    let err = decode_request(&envelope("v1", "Secret", Msg::new().msg(2, raw))).unwrap_err();
    assert!(matches!(err, ProtobufError::Malformed { .. }), "{err}");

    // Group encoding, invalid wire types, overlong varints.
    for body in [
        vec![0x0b],
        vec![0x0e],
        vec![
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
        ],
    ] {
        let raw = Msg::new().bytes(1, &body);
        let err = decode_request(&envelope("v1", "Namespace", raw)).unwrap_err();
        assert!(matches!(err, ProtobufError::Malformed { .. }), "{err}");
    }

    let encoded = {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(
            &Msg::new()
                .msg(1, Msg::new().str(1, "v1").str(2, "Namespace"))
                .str(3, "gzip")
                .0
                .into_bytes(),
        );
        out
    };
    assert!(matches!(
        decode_request(&encoded),
        Err(ProtobufError::Envelope(_))
    ));
}
