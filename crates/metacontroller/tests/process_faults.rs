//! Processes killed under load: the fault suite's figures (see
//! `common::fault_world`) when, during a burst of parents, a process dies
//! and comes back, several times:
//!
//! * the controller (`metacontroller run`) is SIGKILLed at random points and
//!   started again, on the server `MC_TEST_CLUSTER` names;
//! * the embedded API server (`metacontroller dev --data-dir`, hosting no
//!   controller itself) is SIGKILLed and started again on the same data
//!   directory and port, while a separate controller reconnects (embedded
//!   only);
//! * kube-apiserver is stopped and started again with the same flags and
//!   port (real control plane only).
//!
//! Each round starts a burst of parents, kills the process at a random
//! point of it (a seeded generator: `MC_FAULT_SEED`, default 1), grows some
//! parents (one more child), and brings the process back. Each scenario
//! prints its row of the README's table and fails unless every count is
//! zero. `MC_FAULT_SOAK=1` runs more parents and rounds.
#![cfg(unix)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::fault_world::{Figures, World};
use common::instance::Instance;
use metacontroller_testbed::{ClusterKind, RealCluster, TestCluster};

/// The controller's flags: no client rate limit (the burst is the load),
/// no listeners.
const CONTROLLER_ARGS: &[&str] = &[
    "--metrics-address=0",
    "--health-probe-bind-address=0",
    "--client-go-qps=0",
];

/// How big a run is.
struct Plan {
    parents: usize,
    rounds: usize,
    /// How long the parents get to converge after the last restart.
    converge: Duration,
}

impl Plan {
    fn new(parents: usize, rounds: usize, converge: Duration) -> Plan {
        if soak() {
            Plan {
                parents: parents * 4,
                rounds: rounds * 3,
                converge: converge * 3,
            }
        } else {
            Plan {
                parents,
                rounds,
                converge,
            }
        }
    }
}

/// `MC_FAULT_SOAK` set to anything but `0` or empty.
fn soak() -> bool {
    std::env::var("MC_FAULT_SOAK").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// SplitMix64, seeded from `MC_FAULT_SEED` (default 1): the kill points.
struct Rng(u64);

impl Rng {
    fn from_env() -> Rng {
        let seed = std::env::var("MC_FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1);
        eprintln!("kill points from MC_FAULT_SEED={seed}");
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.next() % (to - from))
    }
}

/// A process the scenario kills and starts again.
trait Victim {
    /// Whether the API server is down while the victim is.
    fn is_server(&self) -> bool;
    async fn kill(&mut self);
    async fn start(&mut self);
}

/// Runs the rounds and returns the figures.
async fn chaos(world: &mut World, victim: &mut impl Victim, plan: &Plan) -> Figures {
    let mut rng = Rng::from_env();
    let per_round = plan.parents / plan.rounds;
    let mut restarted = Instant::now();
    for round in 0..plan.rounds {
        let burst = world.burst(round * per_round..(round + 1) * per_round);
        tokio::time::sleep(rng.millis(100, 1500)).await;
        world.record().await;
        victim.kill().await;
        if !victim.is_server() {
            // The world changes while the controller is away.
            world.grow(5, |n| rng.below(n)).await;
        }
        tokio::time::sleep(rng.millis(200, 1000)).await;
        victim.start().await;
        restarted = Instant::now();
        world.created(burst.await.expect("burst"));
        world.record().await;
        world.grow(5, |n| rng.below(n)).await;
    }
    world.figures(restarted, plan.converge).await
}

/// The controller process.
struct Controller {
    kubeconfig: PathBuf,
    instance: Option<Instance>,
    kills: usize,
}

impl Controller {
    fn start(kubeconfig: &Path) -> Controller {
        Controller {
            kubeconfig: kubeconfig.to_owned(),
            instance: Some(Instance::start("controller", kubeconfig, CONTROLLER_ARGS)),
            kills: 0,
        }
    }
}

impl Victim for Controller {
    fn is_server(&self) -> bool {
        false
    }

    async fn kill(&mut self) {
        let mut instance = self.instance.take().expect("running");
        instance.signal("KILL");
        let deadline = Instant::now() + Duration::from_secs(10);
        while instance.try_wait().is_none() {
            assert!(Instant::now() < deadline, "the controller survived SIGKILL");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.kills += 1;
    }

    async fn start(&mut self) {
        self.instance = Some(Instance::start(
            "controller",
            &self.kubeconfig,
            CONTROLLER_ARGS,
        ));
    }
}

/// `metacontroller dev --data-dir` as the API server only: its own engine
/// hosts no controller (`--target-label-selector` matches none).
struct DevServer {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
    starts: usize,
}

impl DevServer {
    async fn start(dir: &Path) -> DevServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = DevServer {
            dir: dir.to_owned(),
            port,
            child: None,
            starts: 0,
        };
        server.start().await;
        server
    }

    /// The kubeconfig the first start wrote.
    fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig-0")
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Victim for DevServer {
    fn is_server(&self) -> bool {
        true
    }

    async fn kill(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().expect("SIGKILL"); // std's kill is SIGKILL
        child.wait().expect("wait");
    }

    async fn start(&mut self) {
        let log = std::fs::File::create(self.dir.join(format!("dev-{}.log", self.starts))).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_metacontroller"))
            .arg("dev")
            .arg(format!("--port={}", self.port))
            .arg("--data-dir")
            .arg(self.dir.join("data"))
            .arg("--kubeconfig-out")
            .arg(self.dir.join(format!("kubeconfig-{}", self.starts)))
            .args([
                "--metrics-address=0",
                "--health-probe-bind-address=0",
                "--target-label-selector=process-faults=dev-hosts-none",
            ])
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start metacontroller dev");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        self.child = Some(child);
        self.starts += 1;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match rx.try_recv() {
                Ok(line) if line.starts_with("export KUBECONFIG=") => return,
                Ok(_) => {}
                Err(mpsc::TryRecvError::Empty) => {
                    assert!(Instant::now() < deadline, "dev did not become ready");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(mpsc::TryRecvError::Disconnected) => panic!(
                    "dev exited: {}",
                    std::fs::read_to_string(self.dir.join(format!("dev-{}.log", self.starts - 1)))
                        .unwrap_or_default()
                ),
            }
        }
    }
}

/// kube-apiserver of a real control plane.
struct RealApiServer(RealCluster);

impl Victim for RealApiServer {
    fn is_server(&self) -> bool {
        true
    }

    async fn kill(&mut self) {
        let cluster = &mut self.0;
        tokio::task::block_in_place(|| cluster.stop_apiserver());
    }

    async fn start(&mut self) {
        self.0
            .start_apiserver()
            .await
            .expect("kube-apiserver again");
    }
}

fn report(name: &str, figures: &Figures) {
    eprintln!("{}", figures.row(name));
    figures.assert_clean(name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_killed_under_load() {
    let kind = ClusterKind::from_env().expect("MC_TEST_CLUSTER");
    let cluster = TestCluster::start().await.expect("start cluster");
    let client = cluster.client().await.expect("client");
    install_metacontroller_crds(&client).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, cluster.kubeconfig()).unwrap();
    let mut world = World::install(client, "controller-killed").await;
    let mut controller = Controller::start(&kubeconfig);
    let plan = match kind {
        ClusterKind::Embedded => Plan::new(150, 3, Duration::from_secs(60)),
        ClusterKind::Real => Plan::new(100, 3, Duration::from_secs(90)),
    };
    let figures = chaos(&mut world, &mut controller, &plan).await;
    report(
        &format!(
            "controller SIGKILLed {} times ({})",
            controller.kills,
            kind.name()
        ),
        &figures,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_server_killed_under_load() {
    if ClusterKind::from_env().ok() == Some(ClusterKind::Real) {
        eprintln!("skipped: the embedded server's data directory is not on a real control plane");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut server = DevServer::start(dir.path()).await;
    let kubeconfig = server.kubeconfig();
    let client = client_for(&kubeconfig).await;
    let mut world = World::install(client, "server-killed").await;
    let _controller = Instance::start("controller", &kubeconfig, CONTROLLER_ARGS);
    let plan = Plan::new(150, 3, Duration::from_secs(60));
    let figures = chaos(&mut world, &mut server, &plan).await;
    report(
        &format!(
            "embedded server (`dev --data-dir`) SIGKILLed {} times",
            server.starts - 1
        ),
        &figures,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_apiserver_restarted_under_load() {
    if ClusterKind::from_env().ok() != Some(ClusterKind::Real) {
        eprintln!("skipped: set MC_TEST_CLUSTER=real to restart a real kube-apiserver");
        return;
    }
    let cluster = RealCluster::start().await.expect("start control plane");
    let client = cluster.client().await.expect("client");
    install_metacontroller_crds(&client).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, cluster.kubeconfig()).unwrap();
    let mut world = World::install(client, "apiserver-restarted").await;
    let _controller = Instance::start("controller", &kubeconfig, CONTROLLER_ARGS);
    let plan = Plan::new(100, 3, Duration::from_secs(90));
    let mut apiserver = RealApiServer(cluster);
    let figures = chaos(&mut world, &mut apiserver, &plan).await;
    report(
        &format!("kube-apiserver restarted {} times (real)", plan.rounds),
        &figures,
    );
}

async fn client_for(kubeconfig: &Path) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

async fn install_metacontroller_crds(client: &kube::Client) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let crds: kube::Api<CustomResourceDefinition> = kube::Api::all(client.clone());
    for crd in metacontroller_api::crds() {
        crds.create(&Default::default(), &crd)
            .await
            .expect("create CRD");
    }
}
