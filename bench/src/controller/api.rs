//! A small REST client that counts its own requests the way the embedded
//! API server does (verb and `resource[.group][/sub]`), so that the
//! harness's requests can be subtracted from the server's counters.
//!
//! It speaks plain HTTP/1.1 to the embedded server, and goes through a
//! `kube::Client` (TLS, client certificate or bearer token, from a
//! kubeconfig) to a real kube-apiserver.

use std::collections::BTreeMap;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use parking_lot::Mutex;
use serde_json::Value;

/// Requests by `(verb, resource)`, as the API server counts them.
pub type Counts = BTreeMap<(String, String), u64>;

/// The verbs that write (the API server's list).
pub use metacontroller_apiserver::WRITE_VERBS;

/// Sum of the write verbs in `counts`.
pub fn writes(counts: &Counts) -> u64 {
    counts
        .iter()
        .filter(|((verb, _), _)| WRITE_VERBS.contains(&verb.as_str()))
        .map(|(_, n)| *n)
        .sum()
}

/// Requests summed by verb.
pub fn by_verb(counts: &Counts) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for ((verb, _), n) in counts {
        *out.entry(verb.clone()).or_default() += n;
    }
    out
}

/// `after - before`, key by key (missing keys count as zero; zeros are
/// dropped).
pub fn delta(after: &Counts, before: &Counts) -> Counts {
    after
        .iter()
        .filter_map(|(k, v)| {
            let d = v.saturating_sub(before.get(k).copied().unwrap_or(0));
            (d > 0).then(|| (k.clone(), d))
        })
        .collect()
}

/// The counter key of a request path: `configmaps`,
/// `benches.bench.example.com/status`, ...
pub fn resource_key(path: &str) -> String {
    let path = path.split('?').next().unwrap_or_default();
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest) = match parts.as_slice() {
        ["api", _version, rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => return String::new(),
    };
    let rest = match rest {
        ["namespaces", _ns, rest @ ..] if !rest.is_empty() => rest,
        other => other,
    };
    let (resource, sub) = match rest {
        [resource] => (*resource, None),
        [resource, _name] => (*resource, None),
        [resource, _name, sub, ..] => (*resource, Some(*sub)),
        _ => ("", None),
    };
    let mut key = if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    };
    if let Some(sub) = sub {
        key.push('/');
        key.push_str(sub);
    }
    key
}

/// Whether a path (without query) names a collection rather than an object.
fn is_collection(path: &str) -> bool {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let rest: &[&str] = match parts.as_slice() {
        ["api", _, rest @ ..] => rest,
        ["apis", _, _, rest @ ..] => rest,
        _ => return false,
    };
    match rest {
        ["namespaces", _, rest @ ..] if !rest.is_empty() => rest.len() == 1,
        other => other.len() == 1,
    }
}

/// Path of a namespaced collection (`/api/v1/...` for the core group).
pub fn collection(group: &str, version: &str, namespace: &str, plural: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}/namespaces/{namespace}/{plural}")
    } else {
        format!("/apis/{group}/{version}/namespaces/{namespace}/{plural}")
    }
}

/// A response body being streamed (a watch).
pub type Stream = UnsyncBoxBody<Bytes, anyhow::Error>;

enum Transport {
    /// Plain HTTP/1.1 to `base`.
    Plain {
        client: Client<HttpConnector, Full<Bytes>>,
        base: String,
    },
    /// Whatever the kubeconfig the client was made from says.
    Kube(kube::Client),
}

/// A pooled client bound to one server.
pub struct Rest {
    transport: Transport,
    counts: Mutex<Counts>,
}

impl Rest {
    /// A plain HTTP client for `base` (`http://127.0.0.1:<port>`).
    pub fn new(base: &str) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Rest {
            transport: Transport::Plain {
                client: Client::builder(TokioExecutor::new())
                    .pool_max_idle_per_host(256)
                    .build(connector),
                base: base.trim_end_matches('/').to_string(),
            },
            counts: Mutex::new(Counts::new()),
        }
    }

    /// A client sending through `client` (its server, TLS and credentials).
    pub fn with_kube(client: kube::Client) -> Self {
        Rest {
            transport: Transport::Kube(client),
            counts: Mutex::new(Counts::new()),
        }
    }

    /// Requests this client made so far.
    pub fn counts(&self) -> Counts {
        self.counts.lock().clone()
    }

    /// Counts a request made outside this client (a watch opened directly).
    pub fn note(&self, verb: &str, path: &str) {
        *self
            .counts
            .lock()
            .entry((verb.to_string(), resource_key(path)))
            .or_default() += 1;
    }

    /// Sends one request; returns the status code and the body.
    pub async fn send(
        &self,
        method: http::Method,
        path: &str,
        body: Option<&Value>,
        content_type: &str,
    ) -> Result<(u16, Bytes)> {
        let verb = match method {
            http::Method::POST => "create",
            http::Method::PUT => "update",
            http::Method::PATCH => "patch",
            http::Method::DELETE => "delete",
            _ if path.contains("watch=") => "watch",
            _ if path.split('?').next().is_some_and(is_collection) => "list",
            _ => "get",
        };
        self.note(verb, path);
        let mut builder = http::Request::builder().method(method);
        if body.is_some() {
            builder = builder.header(http::header::CONTENT_TYPE, content_type);
        }
        let body = match body {
            Some(v) => Bytes::from(serde_json::to_vec(v)?),
            None => Bytes::new(),
        };
        match &self.transport {
            Transport::Plain { client, base } => {
                let req = builder.uri(format!("{base}{path}")).body(Full::new(body))?;
                let resp = client
                    .request(req)
                    .await
                    .with_context(|| format!("request to {path}"))?;
                let status = resp.status().as_u16();
                let bytes = resp.into_body().collect().await?.to_bytes();
                Ok((status, bytes))
            }
            Transport::Kube(client) => {
                let req = builder.uri(path).body(kube::client::Body::from(body))?;
                let resp = client
                    .send(req)
                    .await
                    .with_context(|| format!("request to {path}"))?;
                let status = resp.status().as_u16();
                let bytes = resp.into_body().collect().await?.to_bytes();
                Ok((status, bytes))
            }
        }
    }

    /// Opens a watch (`path` with `watch=true`) and waits for its response
    /// head; the body is the event stream. On plain HTTP the watch gets a
    /// connection of its own.
    pub async fn watch(&self, path: &str) -> Result<Stream> {
        self.note("watch", path);
        match &self.transport {
            Transport::Plain { base, .. } => {
                let addr = base
                    .trim_start_matches("http://")
                    .parse()
                    .with_context(|| format!("{base} is not http://<ip>:<port>"))?;
                let body = crate::throughput::open_watch(addr, path.to_owned()).await?;
                Ok(body.map_err(|e| anyhow!(e)).boxed_unsync())
            }
            Transport::Kube(client) => {
                let req = http::Request::get(path).body(kube::client::Body::empty())?;
                let resp = client
                    .send(req)
                    .await
                    .with_context(|| format!("watch {path}"))?;
                if resp.status() != http::StatusCode::OK {
                    let status = resp.status();
                    let bytes = resp.into_body().collect().await?.to_bytes();
                    bail!(
                        "watch {path}: HTTP {status}: {}",
                        String::from_utf8_lossy(&bytes)
                    );
                }
                Ok(resp.into_body().map_err(|e| anyhow!(e)).boxed_unsync())
            }
        }
    }

    async fn expect(
        &self,
        method: http::Method,
        path: &str,
        body: Option<&Value>,
        content_type: &str,
        ok: &[u16],
    ) -> Result<Value> {
        let (status, bytes) = self.send(method.clone(), path, body, content_type).await?;
        if !ok.contains(&status) {
            bail!(
                "{method} {path}: HTTP {status}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// POST, expecting 201 (or 200).
    pub async fn create(&self, path: &str, obj: &Value) -> Result<Value> {
        self.expect(
            http::Method::POST,
            path,
            Some(obj),
            "application/json",
            &[200, 201],
        )
        .await
    }

    /// PUT.
    pub async fn update(&self, path: &str, obj: &Value) -> Result<Value> {
        self.expect(
            http::Method::PUT,
            path,
            Some(obj),
            "application/json",
            &[200],
        )
        .await
    }

    /// JSON merge patch.
    pub async fn merge_patch(&self, path: &str, patch: &Value) -> Result<Value> {
        self.expect(
            http::Method::PATCH,
            path,
            Some(patch),
            "application/merge-patch+json",
            &[200],
        )
        .await
    }

    /// GET of a single object; `None` when it does not exist.
    pub async fn get(&self, path: &str) -> Result<Option<Value>> {
        let (status, bytes) = self
            .send(http::Method::GET, path, None, "application/json")
            .await?;
        match status {
            200 => Ok(Some(serde_json::from_slice(&bytes)?)),
            404 => Ok(None),
            _ => bail!(
                "GET {path}: HTTP {status}: {}",
                String::from_utf8_lossy(&bytes)
            ),
        }
    }

    /// GET of a collection.
    pub async fn list(&self, path: &str) -> Result<Value> {
        self.expect(http::Method::GET, path, None, "application/json", &[200])
            .await
    }

    /// DELETE; `false` when the object was already gone.
    pub async fn delete(&self, path: &str) -> Result<bool> {
        let (status, bytes) = self
            .send(http::Method::DELETE, path, None, "application/json")
            .await?;
        match status {
            200 | 202 => Ok(true),
            404 => Ok(false),
            _ => bail!(
                "DELETE {path}: HTTP {status}: {}",
                String::from_utf8_lossy(&bytes)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_keys_match_the_server() {
        assert_eq!(
            resource_key("/api/v1/namespaces/bench/configmaps"),
            "configmaps"
        );
        assert_eq!(
            resource_key("/api/v1/namespaces/bench/configmaps/x-1?foo=1"),
            "configmaps"
        );
        assert_eq!(
            resource_key("/apis/bench.example.com/v1/namespaces/bench/benches/b/status"),
            "benches.bench.example.com/status"
        );
        assert_eq!(resource_key("/api/v1/namespaces"), "namespaces");
        assert_eq!(resource_key("/api/v1/namespaces/bench"), "namespaces");
        assert!(is_collection("/api/v1/namespaces/bench/configmaps"));
        assert!(!is_collection("/api/v1/namespaces/bench/configmaps/a"));
        assert!(is_collection("/api/v1/namespaces"));
        let mut a = Counts::new();
        a.insert(("create".into(), "configmaps".into()), 5);
        a.insert(("get".into(), "configmaps".into()), 2);
        let mut b = Counts::new();
        b.insert(("create".into(), "configmaps".into()), 2);
        let d = delta(&a, &b);
        assert_eq!(writes(&d), 3);
        assert_eq!(by_verb(&d)["get"], 2);
    }
}
