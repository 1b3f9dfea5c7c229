//! The controller comparison harness behind the `controller-bench` binary.
//!
//! Every contender implements the same composite logic against the same
//! API server: the embedded one, started in the harness process, or a real
//! control plane ([`server`]):
//!
//! * a parent custom resource `Bench` (`bench.example.com/v1`, namespaced,
//!   with the `status` subresource) whose `spec.replicas` asks for that many
//!   ConfigMap children named `<parent>-<i>`, each with a controller owner
//!   reference to the parent and the label `bench.example.com/parent`;
//! * the parent's status `{ready: n}` once its children exist.
//!
//! The contenders ([`process::Contender`]):
//!
//! * `ours-defaults` / `ours-tuned`: `metacontroller run` as a subprocess with
//!   a CompositeController whose sync hook implements the logic
//!   ([`hook`]), with Metacontroller's defaults (5 workers, QPS 5, burst 10)
//!   or tuned (16 workers and no client rate limit, `--client-go-qps 0`,
//!   as the kube-rs baseline and the floor have none);
//! * `kopf`: the Python framework running `bench/kopf/handler.py`, which
//!   creates, deletes and repairs the children itself;
//! * `kube-rs`: the `kube-rs-baseline` binary of this crate, a hand-written
//!   `kube::runtime::Controller`;
//! * `floor`: no controller: the harness writes the same objects itself
//!   (M children and the status per parent), with as many requests in
//!   flight as the server can use ([`floor`]: a knee search picks it).
//!
//! [`observe`] follows parents and children through watches to time
//! convergence, [`run`] drives the workloads of one run, [`report`] takes
//! medians over repeats and checks the targets, [`cost`] gathers the cost
//! curve's points and [`plot`] draws the PNGs.

pub mod api;
pub mod audit;
pub mod cost;
pub mod floor;
pub mod hook;
pub mod objects;
pub mod observe;
pub mod plot;
pub mod process;
pub mod report;
pub mod run;
pub mod server;

/// API group of the parent resource.
pub const GROUP: &str = "bench.example.com";
/// API version of the parent resource.
pub const VERSION: &str = "v1";
/// Plural resource name of the parent.
pub const PLURAL: &str = "benches";
/// Kind of the parent.
pub const KIND: &str = "Bench";
/// Namespace holding every parent and child.
pub const NAMESPACE: &str = "bench";
/// Namespace holding the unrelated ConfigMaps of W9.
pub const UNRELATED_NAMESPACE: &str = "unrelated";
/// Label on every child: the parent's name.
pub const PARENT_LABEL: &str = "bench.example.com/parent";
/// Children per parent (M).
pub const CHILDREN: i64 = 5;

/// Counter key of the parent resource on the API server.
pub fn parent_resource() -> String {
    format!("{PLURAL}.{GROUP}")
}

/// Name of child `i` of `parent`.
pub fn child_name(parent: &str, i: i64) -> String {
    format!("{parent}-{i}")
}

/// Name of parent `i`.
pub fn parent_name(i: usize) -> String {
    format!("bench-{i:05}")
}
