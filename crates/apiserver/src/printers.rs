//! `kubectl get` columns of built-in kinds, as kube-apiserver's printers
//! compute them (column names, order and priorities, and how each cell is
//! derived, follow `pkg/printers/internalversion/printers.go` in
//! kubernetes/kubernetes; priority 1 columns show with `-o wide`). The
//! Age column here is a `date` column the table code renders; every other
//! cell is computed from the object.

use serde_json::{Value, json};

use crate::table::human_duration;

/// One column: its name, type, priority and how to compute its cell.
pub struct Column {
    pub name: &'static str,
    pub kind: &'static str,
    pub priority: i64,
    pub cell: Cell,
}

/// How a cell is computed.
pub enum Cell {
    /// The object's name.
    Name,
    /// The age since `metadata.creationTimestamp`.
    Age,
    /// A function of the object.
    Computed(fn(&Value) -> Value),
}

const fn col(name: &'static str, kind: &'static str, priority: i64, cell: Cell) -> Column {
    Column {
        name,
        kind,
        priority,
        cell,
    }
}

/// The columns of `group`/`kind`, when kube-apiserver has a printer for it.
pub fn columns(group: &str, kind: &str) -> Option<Vec<Column>> {
    use Cell::{Age, Computed, Name};
    let columns = match (group, kind) {
        ("", "Pod") => vec![
            col("Name", "string", 0, Name),
            col("Ready", "string", 0, Computed(pod_ready)),
            col("Status", "string", 0, Computed(pod_status)),
            col("Restarts", "string", 0, Computed(pod_restarts)),
            col("Age", "string", 0, Age),
            col(
                "IP",
                "string",
                1,
                Computed(|o| none_if_empty(&o["status"]["podIP"])),
            ),
            col(
                "Node",
                "string",
                1,
                Computed(|o| none_if_empty(&o["spec"]["nodeName"])),
            ),
            col(
                "Nominated Node",
                "string",
                1,
                Computed(|o| none_if_empty(&o["status"]["nominatedNodeName"])),
            ),
            col(
                "Readiness Gates",
                "string",
                1,
                Computed(pod_readiness_gates),
            ),
        ],
        ("", "Event") => vec![
            col("Last Seen", "string", 0, Computed(event_last_seen)),
            col("Type", "string", 0, Computed(|o| text(&o["type"]))),
            col("Reason", "string", 0, Computed(|o| text(&o["reason"]))),
            col("Object", "string", 0, Computed(event_object)),
            col(
                "Subobject",
                "string",
                1,
                Computed(|o| text(&o["involvedObject"]["fieldPath"])),
            ),
            col("Source", "string", 1, Computed(event_source)),
            col(
                "Message",
                "string",
                0,
                Computed(|o| json!(o["message"].as_str().unwrap_or("").trim())),
            ),
            col(
                "First Seen",
                "string",
                1,
                Computed(|o| since(&o["firstTimestamp"])),
            ),
            col("Count", "string", 1, Computed(event_count)),
            col(
                "Name",
                "string",
                1,
                Computed(|o| text(&o["metadata"]["name"])),
            ),
        ],
        ("", "Service") => vec![
            col("Name", "string", 0, Name),
            col("Type", "string", 0, Computed(|o| text(&o["spec"]["type"]))),
            col(
                "Cluster-IP",
                "string",
                0,
                Computed(|o| none_if_empty(&o["spec"]["clusterIP"])),
            ),
            col("External-IP", "string", 0, Computed(service_external_ip)),
            col("Port(s)", "string", 0, Computed(service_ports)),
            col("Age", "string", 0, Age),
            col(
                "Selector",
                "string",
                1,
                Computed(|o| selector_map(&o["spec"]["selector"])),
            ),
        ],
        ("", "ConfigMap") => vec![
            col("Name", "string", 0, Name),
            col(
                "Data",
                "integer",
                0,
                Computed(|o| json!(len(&o["data"]) + len(&o["binaryData"]))),
            ),
            col("Age", "string", 0, Age),
        ],
        ("", "Namespace") => vec![
            col("Name", "string", 0, Name),
            col(
                "Status",
                "string",
                0,
                Computed(|o| text(&o["status"]["phase"])),
            ),
            col("Age", "string", 0, Age),
        ],
        ("apps", "Deployment") => vec![
            col("Name", "string", 0, Name),
            col(
                "Ready",
                "string",
                0,
                Computed(|o| {
                    json!(format!(
                        "{}/{}",
                        int(&o["status"]["readyReplicas"]),
                        replicas(o)
                    ))
                }),
            ),
            col(
                "Up-to-date",
                "integer",
                0,
                Computed(|o| json!(int(&o["status"]["updatedReplicas"]))),
            ),
            col(
                "Available",
                "integer",
                0,
                Computed(|o| json!(int(&o["status"]["availableReplicas"]))),
            ),
            col("Age", "string", 0, Age),
            col("Containers", "string", 1, Computed(containers)),
            col("Images", "string", 1, Computed(images)),
            col(
                "Selector",
                "string",
                1,
                Computed(|o| label_selector(&o["spec"]["selector"])),
            ),
        ],
        ("apps", "ReplicaSet") => vec![
            col("Name", "string", 0, Name),
            col("Desired", "integer", 0, Computed(|o| json!(replicas(o)))),
            col(
                "Current",
                "integer",
                0,
                Computed(|o| json!(int(&o["status"]["replicas"]))),
            ),
            col(
                "Ready",
                "integer",
                0,
                Computed(|o| json!(int(&o["status"]["readyReplicas"]))),
            ),
            col("Age", "string", 0, Age),
            col("Containers", "string", 1, Computed(containers)),
            col("Images", "string", 1, Computed(images)),
            col(
                "Selector",
                "string",
                1,
                Computed(|o| label_selector(&o["spec"]["selector"])),
            ),
        ],
        ("apps", "StatefulSet") => vec![
            col("Name", "string", 0, Name),
            col(
                "Ready",
                "string",
                0,
                Computed(|o| {
                    json!(format!(
                        "{}/{}",
                        int(&o["status"]["readyReplicas"]),
                        replicas(o)
                    ))
                }),
            ),
            col("Age", "string", 0, Age),
            col("Containers", "string", 1, Computed(containers)),
            col("Images", "string", 1, Computed(images)),
        ],
        ("batch", "Job") => vec![
            col("Name", "string", 0, Name),
            col("Status", "string", 0, Computed(job_status)),
            col("Completions", "string", 0, Computed(job_completions)),
            col("Duration", "string", 0, Computed(job_duration)),
            col("Age", "string", 0, Age),
            col("Containers", "string", 1, Computed(containers)),
            col("Images", "string", 1, Computed(images)),
            col(
                "Selector",
                "string",
                1,
                Computed(|o| label_selector(&o["spec"]["selector"])),
            ),
        ],
        _ => return None,
    };
    Some(columns)
}

fn text(v: &Value) -> Value {
    json!(v.as_str().unwrap_or(""))
}

fn none_if_empty(v: &Value) -> Value {
    match v.as_str() {
        Some(s) if !s.is_empty() => json!(s),
        _ => json!("<none>"),
    }
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn len(v: &Value) -> usize {
    v.as_object().map_or(0, |m| m.len())
}

/// `spec.replicas`, 1 when unset (the API's default).
fn replicas(o: &Value) -> i64 {
    o["spec"]["replicas"].as_i64().unwrap_or(1)
}

fn seconds_since(v: &Value) -> Option<i64> {
    let t: jiff::Timestamp = v.as_str()?.parse().ok()?;
    Some(jiff::Timestamp::now().as_second() - t.as_second())
}

/// The age of a timestamp, `<unknown>` when unset.
fn since(v: &Value) -> Value {
    match seconds_since(v) {
        Some(secs) => json!(human_duration(secs)),
        None => json!("<unknown>"),
    }
}

fn pod_containers(o: &Value) -> &[Value] {
    o["spec"]["containers"]
        .as_array()
        .map_or(&[], Vec::as_slice)
}

fn pod_ready(o: &Value) -> Value {
    let statuses = o["status"]["containerStatuses"].as_array();
    let ready = statuses.map_or(0, |s| s.iter().filter(|c| c["ready"] == true).count());
    // Restartable init containers (sidecars) count too.
    let sidecars = o["spec"]["initContainers"].as_array().map_or(0, |c| {
        c.iter().filter(|c| c["restartPolicy"] == "Always").count()
    });
    json!(format!("{ready}/{}", pod_containers(o).len() + sidecars))
}

fn pod_status(o: &Value) -> Value {
    let status = &o["status"];
    let mut reason = status["phase"].as_str().unwrap_or("").to_owned();
    if let Some(r) = status["reason"].as_str().filter(|r| !r.is_empty()) {
        reason = r.to_owned();
    }
    let mut initializing = false;
    let init_total = o["spec"]["initContainers"].as_array().map_or(0, Vec::len);
    for (i, c) in status["initContainerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let state = &c["state"];
        if state["terminated"]["exitCode"] == 0 && state["terminated"].is_object() {
            continue;
        }
        if c["restartPolicy"] == "Always" && c["started"] == true {
            continue;
        }
        if let Some(t) = state["terminated"].as_object() {
            reason = match t
                .get("reason")
                .and_then(Value::as_str)
                .filter(|r| !r.is_empty())
            {
                Some(r) => format!("Init:{r}"),
                None => match t.get("signal").and_then(Value::as_i64).filter(|s| *s != 0) {
                    Some(s) => format!("Init:Signal:{s}"),
                    None => format!(
                        "Init:ExitCode:{}",
                        t.get("exitCode").and_then(Value::as_i64).unwrap_or(0)
                    ),
                },
            };
        } else if let Some(r) = state["waiting"]["reason"]
            .as_str()
            .filter(|r| !r.is_empty() && *r != "PodInitializing")
        {
            reason = format!("Init:{r}");
        } else {
            reason = format!("Init:{i}/{init_total}");
        }
        initializing = true;
        break;
    }
    if !initializing {
        let mut has_running = false;
        for c in status["containerStatuses"]
            .as_array()
            .into_iter()
            .flatten()
            .rev()
        {
            let state = &c["state"];
            if let Some(r) = state["waiting"]["reason"]
                .as_str()
                .filter(|r| !r.is_empty())
            {
                reason = r.to_owned();
            } else if let Some(t) = state["terminated"].as_object() {
                reason = match t
                    .get("reason")
                    .and_then(Value::as_str)
                    .filter(|r| !r.is_empty())
                {
                    Some(r) => r.to_owned(),
                    None => match t.get("signal").and_then(Value::as_i64).filter(|s| *s != 0) {
                        Some(s) => format!("Signal:{s}"),
                        None => format!(
                            "ExitCode:{}",
                            t.get("exitCode").and_then(Value::as_i64).unwrap_or(0)
                        ),
                    },
                };
            } else if c["ready"] == true && state["running"].is_object() {
                has_running = true;
            }
        }
        if reason == "Completed" && has_running {
            let ready = status["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            reason = if ready { "Running" } else { "NotReady" }.to_owned();
        }
    }
    if o["metadata"]["deletionTimestamp"].is_string() {
        reason = if status["reason"] == "NodeLost" {
            "Unknown"
        } else {
            "Terminating"
        }
        .to_owned();
    }
    json!(reason)
}

fn pod_restarts(o: &Value) -> Value {
    let total: i64 = ["initContainerStatuses", "containerStatuses"]
        .iter()
        .flat_map(|k| o["status"][k].as_array().into_iter().flatten())
        .map(|c| int(&c["restartCount"]))
        .sum();
    json!(total.to_string())
}

fn pod_readiness_gates(o: &Value) -> Value {
    let Some(gates) = o["spec"]["readinessGates"]
        .as_array()
        .filter(|g| !g.is_empty())
    else {
        return json!("<none>");
    };
    let conditions = o["status"]["conditions"].as_array();
    let met = gates
        .iter()
        .filter(|g| {
            conditions
                .into_iter()
                .flatten()
                .any(|c| c["type"] == g["conditionType"] && c["status"] == "True")
        })
        .count();
    json!(format!("{met}/{}", gates.len()))
}

fn event_last_seen(o: &Value) -> Value {
    if let Some(last) = o["series"]["lastObservedTime"].as_str() {
        return since(&json!(last));
    }
    if o["lastTimestamp"].is_string() {
        return since(&o["lastTimestamp"]);
    }
    since(&o["eventTime"])
}

fn event_object(o: &Value) -> Value {
    let involved = &o["involvedObject"];
    json!(format!(
        "{}/{}",
        involved["kind"].as_str().unwrap_or("").to_lowercase(),
        involved["name"].as_str().unwrap_or("")
    ))
}

fn event_source(o: &Value) -> Value {
    let component = o["source"]["component"]
        .as_str()
        .or_else(|| o["reportingComponent"].as_str())
        .unwrap_or("");
    match o["source"]["host"].as_str().filter(|h| !h.is_empty()) {
        Some(host) => json!(format!("{component}, {host}")),
        None => json!(component),
    }
}

fn event_count(o: &Value) -> Value {
    let count = o["series"]["count"]
        .as_i64()
        .unwrap_or_else(|| int(&o["count"]));
    json!(count.to_string())
}

fn service_external_ip(o: &Value) -> Value {
    let spec = &o["spec"];
    let external: Vec<&str> = spec["externalIPs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    match spec["type"].as_str().unwrap_or("") {
        "LoadBalancer" => {
            let mut ips: Vec<&str> = o["status"]["loadBalancer"]["ingress"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| i["ip"].as_str().or_else(|| i["hostname"].as_str()))
                .filter(|s| !s.is_empty())
                .collect();
            ips.extend(&external);
            if ips.is_empty() {
                json!("<pending>")
            } else {
                json!(ips.join(","))
            }
        }
        "ExternalName" => text(&spec["externalName"]),
        _ if external.is_empty() => json!("<none>"),
        _ => json!(external.join(",")),
    }
}

fn service_ports(o: &Value) -> Value {
    let ports: Vec<String> = o["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let protocol = p["protocol"].as_str().unwrap_or("TCP");
            match p["nodePort"].as_i64().filter(|n| *n != 0) {
                Some(node) => format!("{}:{node}/{protocol}", int(&p["port"])),
                None => format!("{}/{protocol}", int(&p["port"])),
            }
        })
        .collect();
    if ports.is_empty() {
        json!("<none>")
    } else {
        json!(ports.join(","))
    }
}

/// `k=v,...` sorted by key, `<none>` when empty.
fn selector_map(v: &Value) -> Value {
    let Some(map) = v.as_object().filter(|m| !m.is_empty()) else {
        return json!("<none>");
    };
    let mut pairs: Vec<String> = map
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    pairs.sort();
    json!(pairs.join(","))
}

/// A LabelSelector as text (`<none>` when empty).
fn label_selector(v: &Value) -> Value {
    let mut parts: Vec<String> = Vec::new();
    if let Some(labels) = v["matchLabels"].as_object() {
        let mut pairs: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect();
        pairs.sort();
        parts.extend(pairs);
    }
    for expr in v["matchExpressions"].as_array().into_iter().flatten() {
        let key = expr["key"].as_str().unwrap_or("");
        let values: Vec<&str> = expr["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        parts.push(match expr["operator"].as_str().unwrap_or("") {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_owned(),
            "DoesNotExist" => format!("!{key}"),
            other => format!("{key} {other}"),
        });
    }
    if parts.is_empty() {
        json!("<none>")
    } else {
        json!(parts.join(","))
    }
}

fn template_containers(o: &Value) -> &[Value] {
    o["spec"]["template"]["spec"]["containers"]
        .as_array()
        .map_or(&[], Vec::as_slice)
}

fn containers(o: &Value) -> Value {
    let names: Vec<&str> = template_containers(o)
        .iter()
        .map(|c| c["name"].as_str().unwrap_or(""))
        .collect();
    json!(names.join(","))
}

fn images(o: &Value) -> Value {
    let images: Vec<&str> = template_containers(o)
        .iter()
        .map(|c| c["image"].as_str().unwrap_or(""))
        .collect();
    json!(images.join(","))
}

fn has_condition(o: &Value, kind: &str) -> bool {
    o["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == kind && c["status"] == "True")
}

fn job_status(o: &Value) -> Value {
    let status = if has_condition(o, "Complete") {
        "Complete"
    } else if has_condition(o, "Failed") {
        "Failed"
    } else if o["metadata"]["deletionTimestamp"].is_string() {
        "Terminating"
    } else if has_condition(o, "Suspended") {
        "Suspended"
    } else if has_condition(o, "FailureTarget") {
        "FailureTarget"
    } else if has_condition(o, "SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    };
    json!(status)
}

fn job_completions(o: &Value) -> Value {
    let succeeded = int(&o["status"]["succeeded"]);
    let spec = &o["spec"];
    let text = match (spec["completions"].as_i64(), spec["parallelism"].as_i64()) {
        (Some(completions), _) => format!("{succeeded}/{completions}"),
        (None, Some(parallelism)) if parallelism > 1 => {
            format!("{succeeded}/1 of {parallelism}")
        }
        _ => format!("{succeeded}/1"),
    };
    json!(text)
}

fn job_duration(o: &Value) -> Value {
    let Some(start) = seconds_since(&o["status"]["startTime"]) else {
        return json!("");
    };
    let secs = match seconds_since(&o["status"]["completionTime"]) {
        Some(done) => start - done,
        None => start,
    };
    json!(human_duration(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(group: &str, kind: &str, o: &Value) -> Vec<Value> {
        columns(group, kind)
            .unwrap()
            .iter()
            .filter_map(|c| match c.cell {
                Cell::Computed(f) => Some(f(o)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn pods_and_services_read_like_kubectl() {
        let pod = json!({
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running", "podIP": "10.0.0.7", "containerStatuses": [
                {"ready": true, "restartCount": 2, "state": {"running": {}}},
                {"ready": false, "restartCount": 1, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
            ]}
        });
        assert_eq!(
            cells("", "Pod", &pod),
            [
                json!("1/2"),
                json!("CrashLoopBackOff"),
                json!("3"),
                json!("10.0.0.7"),
                json!("<none>"),
                json!("<none>"),
                json!("<none>")
            ]
        );
        assert_eq!(pod_status(&json!({"spec": {}})), json!(""));
        let service = json!({"spec": {"type": "NodePort", "clusterIP": "10.96.0.10", "selector": {"b": "2", "a": "1"},
            "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]}});
        assert_eq!(
            cells("", "Service", &service),
            [
                json!("NodePort"),
                json!("10.96.0.10"),
                json!("<none>"),
                json!("80:30080/TCP,53/UDP"),
                json!("a=1,b=2")
            ]
        );
    }

    #[test]
    fn workloads_read_like_kubectl() {
        let deployment = json!({"spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
            "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
        assert_eq!(
            cells("apps", "Deployment", &deployment),
            [
                json!("2/3"),
                json!(3),
                json!(2),
                json!("web"),
                json!("nginx:1.27"),
                json!("app=web")
            ]
        );
        let job = json!({"spec": {"parallelism": 2}, "status": {"succeeded": 1,
            "conditions": [{"type": "Complete", "status": "True"}]}});
        assert_eq!(job_status(&job), json!("Complete"));
        assert_eq!(job_completions(&job), json!("1/1 of 2"));
        assert_eq!(job_duration(&job), json!(""));
        assert!(columns("example.com", "Widget").is_none());
    }
}
