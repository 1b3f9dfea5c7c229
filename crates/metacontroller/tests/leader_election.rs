//! Leader election between `metacontroller` processes, on the server
//! `MC_TEST_CLUSTER` names (the embedded one serves Leases too).
//!
//! Each process reaches the API server through its own counting proxy, so the
//! test sees every write each one makes. In order:
//!
//! 1. Two instances start; exactly one logs `successfully acquired lease`,
//!    and a CompositeController's parent gets its child and status. The
//!    standby writes nothing but Lease attempts (at most a create that lost
//!    the race; a held Lease it only reads), the leader writes the child and
//!    the status.
//! 2. SIGKILL of the leader: the standby takes over within the lease
//!    duration (15 s) plus one retry period, and syncs a new parent.
//! 3. A third instance starts as standby; SIGTERM of the leader releases the
//!    Lease, the leader exits 0, and the third takes over within a retry
//!    period (2 s, plus jitter) instead of the lease duration.
//! 4. The Lease is taken from the leader behind its back: it exits non-zero
//!    at its next renewal.
#![cfg(unix)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::instance::Instance;
use common::proxy::{Proxy, Write};
use common::things::{create_parent, start_world, wait_synced};
use common::wait_for;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, PostParams};

const LEASE: &str = "metacontroller";
const NAMESPACE: &str = "default";
const ACQUIRED: &str = "successfully acquired lease default/metacontroller";

fn write_kubeconfig(dir: &Path, name: &str, proxy: &Proxy) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.kubeconfig"));
    std::fs::write(&path, proxy.kubeconfig()).unwrap();
    path
}

const ARGS: &[&str] = &[
    "--leader-election",
    "--leader-election-namespace=default",
    "--metrics-address=0",
    "--health-probe-bind-address=0",
    "--discovery-interval=2s",
    "--client-go-qps=0",
];

fn non_lease(writes: &[Write]) -> Vec<&Write> {
    writes.iter().filter(|w| !w.is_lease()).collect()
}

/// Waits until one of `candidates` logs the acquisition; returns its index.
async fn wait_leader(candidates: &[&Instance], timeout: Duration) -> usize {
    wait_for("a leader", timeout, || {
        let found = candidates.iter().position(|i| i.logged(ACQUIRED));
        async move { found }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_syncs_and_hands_over() {
    let (_cluster, client, hook) = start_world().await;
    let dir = tempfile::tempdir().unwrap();
    let proxies = [
        Proxy::start(client.clone()).await,
        Proxy::start(client.clone()).await,
        Proxy::start(client.clone()).await,
    ];
    let kubeconfigs: Vec<_> = ["a", "b", "c"]
        .iter()
        .zip(&proxies)
        .map(|(n, p)| write_kubeconfig(dir.path(), n, p))
        .collect();

    // 1. Two candidates, one leader.
    let mut a = Instance::start("a", &kubeconfigs[0], ARGS);
    let mut b = Instance::start("b", &kubeconfigs[1], ARGS);
    let first = wait_leader(&[&a, &b], Duration::from_secs(30)).await;
    create_parent(&client, NAMESPACE, "one").await;
    wait_synced(&client, NAMESPACE, "one", Duration::from_secs(60)).await;
    // Give the standby every chance to misbehave before counting.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (leader, standby) = if first == 0 {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    let (leader_proxy, standby_proxy) = if first == 0 {
        (&proxies[0], &proxies[1])
    } else {
        (&proxies[1], &proxies[0])
    };
    assert!(
        !standby.logged(ACQUIRED),
        "both acquired:\n{}\n{}",
        leader.log(),
        standby.log()
    );
    assert!(
        standby.logged("attempting to acquire leader lease default/metacontroller..."),
        "{}",
        standby.log()
    );
    // Its only possible write is a create of the Lease that lost the race.
    let standby_writes = standby_proxy.writes();
    assert!(
        non_lease(&standby_writes).is_empty(),
        "the standby wrote: {standby_writes:?}"
    );
    let leader_writes = leader_proxy.writes();
    let synced: Vec<_> = non_lease(&leader_writes);
    assert!(
        synced.iter().any(|w| w.path.contains("/configmaps")),
        "the leader did not write the child: {leader_writes:?}"
    );
    eprintln!(
        "leader {}: {} writes ({} to the Lease); standby {}: {} writes, all to the Lease",
        leader.name,
        leader_writes.len(),
        leader_writes.len() - synced.len(),
        standby.name,
        standby_writes.len()
    );

    // 2. SIGKILL: takeover within the lease duration (plus a retry period).
    let killed = Instant::now();
    leader.signal("KILL");
    create_parent(&client, NAMESPACE, "two").await;
    wait_for("takeover after SIGKILL", Duration::from_secs(30), || {
        let done = standby.logged(ACQUIRED);
        async move { done.then_some(()) }
    })
    .await;
    let takeover = killed.elapsed();
    eprintln!("takeover after SIGKILL: {takeover:?}");
    assert!(
        takeover <= Duration::from_millis(15_000 + 2_400 + 1_500),
        "takeover took {takeover:?}"
    );
    wait_synced(&client, NAMESPACE, "two", Duration::from_secs(60)).await;
    let standby_before = standby_proxy
        .writes()
        .into_iter()
        .take_while(|w| !(w.is_lease() && w.status < 300))
        .collect::<Vec<_>>();
    assert!(
        standby_before.iter().all(Write::is_lease),
        "the standby wrote before it led: {standby_before:?}"
    );

    // 3. SIGTERM releases the Lease: the next standby takes over at once.
    let current = standby;
    let mut c = Instance::start("c", &kubeconfigs[2], ARGS);
    wait_for("c is a candidate", Duration::from_secs(30), || {
        let started = c.logged("attempting to acquire leader lease");
        async move { started.then_some(()) }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!c.logged(ACQUIRED), "c acquired a held lease:\n{}", c.log());
    // A held Lease is only read.
    assert!(proxies[2].writes().is_empty(), "{:?}", proxies[2].writes());
    let terminated = Instant::now();
    current.signal("TERM");
    wait_for("takeover after SIGTERM", Duration::from_secs(15), || {
        let done = c.logged(ACQUIRED);
        async move { done.then_some(()) }
    })
    .await;
    let handover = terminated.elapsed();
    eprintln!("takeover after SIGTERM: {handover:?}");
    assert!(
        handover <= Duration::from_millis(2_400 + 2_000),
        "takeover after release took {handover:?}:\n{}",
        current.log()
    );
    let status = wait_for("the old leader to exit", Duration::from_secs(15), || {
        let status = current.try_wait();
        async move { status }
    })
    .await;
    assert!(
        status.success(),
        "SIGTERM exit: {status:?}\n{}",
        current.log()
    );
    assert!(current.logged("released lease default/metacontroller"));
    create_parent(&client, NAMESPACE, "three").await;
    wait_synced(&client, NAMESPACE, "three", Duration::from_secs(60)).await;

    // 4. The Lease taken away: the leader stops with a non-zero status.
    let leases: Api<Lease> = Api::namespaced(client.clone(), NAMESPACE);
    let mut lease = leases.get(LEASE).await.unwrap();
    let spec = lease.spec.as_mut().unwrap();
    spec.holder_identity = Some("someone-else".into());
    spec.renew_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
        k8s_openapi::jiff::Timestamp::now(),
    ));
    leases
        .replace(LEASE, &PostParams::default(), &lease)
        .await
        .unwrap();
    let taken = Instant::now();
    let status = wait_for("c to stop", Duration::from_secs(15), || {
        let status = c.try_wait();
        async move { status }
    })
    .await;
    eprintln!("stopped {:?} after losing the lease", taken.elapsed());
    assert!(!status.success(), "{status:?}\n{}", c.log());
    assert!(c.logged("leader election lost"), "{}", c.log());
    assert!(hook.calls() >= 3);
}
