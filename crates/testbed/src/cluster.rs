//! One real control plane on loopback: etcd, kube-apiserver and
//! kube-controller-manager, each a supervised child process.
//!
//! [`RealCluster::start`] generates the certificates, starts etcd (data in
//! the cluster's folder, no fsync: the data dies with the cluster), then
//! kube-apiserver with client-certificate authentication and
//! `--authorization-mode=RBAC`, waits for its `/readyz`, then
//! kube-controller-manager, and waits until the controller manager has done
//! work (the `default` ServiceAccount exists). Dropping the cluster, or
//! [`RealCluster::stop`], ends the three processes; so does the death of this
//! process (see [`crate::process`]). [`RealCluster::restart_apiserver`]
//! stops kube-apiserver and starts it again with the same flags and port,
//! as a control-plane upgrade or a crash would, while etcd keeps the data.
//!
//! The controller manager runs the controllers a CompositeController's world
//! depends on without nodes: the garbage collector, namespace lifecycle,
//! service accounts, and ClusterRole aggregation (so that roles labelled
//! `aggregate-to-view` and the like reach the built-in roles). Workload controllers (Deployments, StatefulSets, Jobs)
//! are off, as there is no kubelet or scheduler for their Pods.
//!
//! Flags follow the components' reference pages
//! (<https://kubernetes.io/docs/reference/command-line-tools-reference/kube-apiserver/>,
//! `.../kube-controller-manager/`) and etcd's `--help`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::Error;
use crate::binaries::Binaries;
use crate::pki::Pki;
use crate::process::Supervised;

/// How long the components get to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(180);

/// The controllers kube-controller-manager runs.
pub const CONTROLLERS: &str = "garbage-collector-controller,namespace-controller,serviceaccount-controller,clusterrole-aggregation-controller";

/// Options of [`RealCluster::start_with`].
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Keep the cluster's files here (created if missing) instead of a
    /// temporary folder that is removed at stop (unless `MC_TESTBED_KEEP`
    /// is set).
    pub dir: Option<PathBuf>,
    /// Extra kube-apiserver flags (`--name=value`).
    pub apiserver_flags: Vec<String>,
}

/// A running control plane.
pub struct RealCluster {
    url: String,
    ca_pem: String,
    kubeconfig: String,
    kubeconfig_path: PathBuf,
    dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    // Stopped in reverse order of start: controller manager, API server, etcd.
    processes: Vec<Supervised>,
    apiserver: ApiServerCommand,
}

/// How kube-apiserver was started, to start it again.
struct ApiServerCommand {
    program: PathBuf,
    args: Vec<String>,
    port: u16,
    log: PathBuf,
}

/// Where kube-apiserver is in `processes`.
const APISERVER: usize = 1;

fn free_port() -> Result<u16, Error> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| Error::Start(format!("port: {e}")))?;
    Ok(l.local_addr()
        .map_err(|e| Error::Start(format!("port: {e}")))?
        .port())
}

fn write(path: &Path, content: &str) -> Result<(), Error> {
    std::fs::write(path, content).map_err(|e| Error::io(path, e))
}

/// A kubeconfig for `url` trusting `ca_pem`, whose user `user`
/// authenticates with `credentials` (the lines under `user:`, indented by
/// four spaces). Everything is inline, so the file can be copied anywhere.
fn kubeconfig_with(url: &str, ca_pem: &str, user: &str, credentials: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: testbed\n  cluster:\n    server: {url}\n    certificate-authority-data: {}\ncontexts:\n- name: testbed\n  context:\n    cluster: testbed\n    namespace: default\n    user: {user}\ncurrent-context: testbed\npreferences: {{}}\nusers:\n- name: {user}\n  user:\n{credentials}",
        b64(ca_pem),
    )
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A kubeconfig authenticating `user` with a client certificate.
pub fn kubeconfig(url: &str, ca_pem: &str, cert_pem: &str, key_pem: &str, user: &str) -> String {
    let credentials = format!(
        "    client-certificate-data: {}\n    client-key-data: {}\n",
        b64(cert_pem),
        b64(key_pem)
    );
    kubeconfig_with(url, ca_pem, user, &credentials)
}

/// A kubeconfig authenticating `user` with a bearer token (for example a
/// ServiceAccount's, from the TokenRequest API).
pub fn token_kubeconfig(url: &str, ca_pem: &str, user: &str, token: &str) -> String {
    kubeconfig_with(url, ca_pem, user, &format!("    token: {token}\n"))
}

impl RealCluster {
    /// Builds the binaries if needed and starts a fresh control plane.
    pub async fn start() -> Result<RealCluster, Error> {
        Self::start_with(Options::default()).await
    }

    /// Starts a control plane with these options.
    pub async fn start_with(options: Options) -> Result<RealCluster, Error> {
        let bins = tokio::task::spawn_blocking(|| crate::binaries::ensure(None))
            .await
            .map_err(|e| Error::Start(e.to_string()))??;
        // A port picked free can be taken before the component binds it;
        // try again with new ports.
        let mut last = None;
        for _ in 0..3 {
            match Self::start_once(&bins, &options).await {
                Ok(c) => return Ok(c),
                Err(e @ Error::PortTaken(_)) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Start("no attempt made".into())))
    }

    async fn start_once(bins: &Binaries, options: &Options) -> Result<RealCluster, Error> {
        let (temp, dir) = match &options.dir {
            Some(d) => {
                std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
                (None, d.clone())
            }
            None => {
                let t = tempfile::Builder::new()
                    .prefix("mc-testbed-")
                    .tempdir()
                    .map_err(|e| Error::io(std::env::temp_dir(), e))?;
                let p = t.path().to_owned();
                if std::env::var_os("MC_TESTBED_KEEP").is_some() {
                    // Kept for a look at the logs after a failure.
                    eprintln!("control plane files kept in {}", p.display());
                    let _ = t.keep();
                    (None, p)
                } else {
                    (Some(t), p)
                }
            }
        };
        let pki = Pki::generate()?;
        let file = |name: &str| dir.join(name);
        write(&file("ca.crt"), &pki.ca.cert_pem)?;
        write(&file("apiserver.crt"), &pki.serving.cert_pem)?;
        write(&file("apiserver.key"), &pki.serving.key_pem)?;
        write(&file("sa.key"), &pki.service_account_key_pem)?;
        write(&file("sa.pub"), &pki.service_account_pub_pem)?;

        let mut processes = Vec::new();

        // etcd
        let etcd_port = free_port()?;
        let peer_port = free_port()?;
        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let etcd_args = vec![
            "--name=testbed".to_string(),
            format!("--data-dir={}", file("etcd").display()),
            format!("--listen-client-urls={etcd_url}"),
            format!("--advertise-client-urls={etcd_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster=testbed={peer_url}"),
            "--unsafe-no-fsync".into(),
            "--log-level=warn".into(),
            // Kubernetes compacts through the API server every 5 minutes;
            // keep etcd's own backend small for long benchmark runs.
            "--quota-backend-bytes=8589934592".into(),
        ];
        let mut etcd = Supervised::spawn(
            "etcd",
            &bins.etcd(),
            &etcd_args,
            &file("etcd.log"),
            Duration::from_secs(5),
        )?;
        wait_tcp(&mut etcd, etcd_port).await?;
        processes.push(etcd);

        // kube-apiserver
        let api_port = free_port()?;
        let url = format!("https://127.0.0.1:{api_port}");
        let mut api_args = vec![
            format!("--etcd-servers={etcd_url}"),
            "--bind-address=127.0.0.1".into(),
            format!("--secure-port={api_port}"),
            // Not loopback: the Service IP reconcilers refuse loopback
            // endpoints. Nothing is reachable there; nothing needs to be.
            "--advertise-address=192.0.2.1".into(),
            "--endpoint-reconciler-type=none".into(),
            format!("--cert-dir={}", file("certs").display()),
            format!("--tls-cert-file={}", file("apiserver.crt").display()),
            format!("--tls-private-key-file={}", file("apiserver.key").display()),
            format!("--client-ca-file={}", file("ca.crt").display()),
            format!("--service-account-key-file={}", file("sa.pub").display()),
            format!(
                "--service-account-signing-key-file={}",
                file("sa.key").display()
            ),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
            "--api-audiences=https://kubernetes.default.svc.cluster.local".into(),
            "--service-cluster-ip-range=10.0.0.0/24".into(),
            "--authorization-mode=RBAC".into(),
            "--allow-privileged=true".into(),
            "--profiling=false".into(),
            "--shutdown-delay-duration=0s".into(),
            "--shutdown-send-retry-after=false".into(),
            "--v=1".into(),
        ];
        api_args.extend(options.apiserver_flags.iter().cloned());
        let apiserver_command = ApiServerCommand {
            program: bins.kube_apiserver(),
            args: api_args,
            port: api_port,
            log: file("kube-apiserver.log"),
        };
        processes.push(apiserver_command.spawn()?);

        let admin_kubeconfig = kubeconfig(
            &url,
            &pki.ca.cert_pem,
            &pki.admin.cert_pem,
            &pki.admin.key_pem,
            crate::pki::ADMIN_USER,
        );
        let kubeconfig_path = file("kubeconfig");
        write(&kubeconfig_path, &admin_kubeconfig)?;
        wait_tcp(processes.last_mut().expect("apiserver"), api_port).await?;
        let client = client_for(&admin_kubeconfig).await?;
        wait_ready(&client, processes.last_mut().expect("apiserver")).await?;

        // kube-controller-manager
        let kcm_kubeconfig = file("controller-manager.kubeconfig");
        write(
            &kcm_kubeconfig,
            &kubeconfig(
                &url,
                &pki.ca.cert_pem,
                &pki.controller_manager.cert_pem,
                &pki.controller_manager.key_pem,
                "system:kube-controller-manager",
            ),
        )?;
        let kcm_args = vec![
            format!("--kubeconfig={}", kcm_kubeconfig.display()),
            format!("--authentication-kubeconfig={}", kcm_kubeconfig.display()),
            format!("--authorization-kubeconfig={}", kcm_kubeconfig.display()),
            "--bind-address=127.0.0.1".into(),
            "--secure-port=0".into(),
            format!("--cert-dir={}", file("certs").display()),
            format!("--controllers={CONTROLLERS}"),
            "--leader-elect=false".into(),
            // Each controller acts as its own ServiceAccount with its bootstrap
            // role (system:controller:<name>), as kubeadm clusters run it.
            "--use-service-account-credentials=true".into(),
            // Fast enough for tests that create many objects at once.
            "--kube-api-qps=500".into(),
            "--kube-api-burst=1000".into(),
            "--concurrent-gc-syncs=20".into(),
            "--v=1".into(),
        ];
        let kcm = Supervised::spawn(
            "kube-controller-manager",
            &bins.kube_controller_manager(),
            &kcm_args,
            &file("kube-controller-manager.log"),
            Duration::from_secs(5),
        )?;
        processes.push(kcm);
        wait_controller_manager(&client, processes.last_mut().expect("kcm")).await?;

        Ok(RealCluster {
            url,
            ca_pem: pki.ca.cert_pem,
            kubeconfig: admin_kubeconfig,
            kubeconfig_path,
            dir,
            _temp: temp,
            processes,
            apiserver: apiserver_command,
        })
    }

    /// The API server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The CA certificate (PEM) the API server's certificate chains to.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A kubeconfig for this cluster authenticating `user` with `token`.
    pub fn token_kubeconfig(&self, user: &str, token: &str) -> String {
        token_kubeconfig(&self.url, &self.ca_pem, user, token)
    }

    /// An admin kubeconfig (group `system:masters`), certificates inline.
    pub fn kubeconfig(&self) -> &str {
        &self.kubeconfig
    }

    /// The admin kubeconfig's file.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    /// The cluster's folder: certificates, etcd data, one log per component.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// An admin client.
    pub async fn client(&self) -> Result<kube::Client, Error> {
        client_for(&self.kubeconfig).await
    }

    /// The names of components that have exited, with their log tails.
    pub fn dead_components(&mut self) -> Vec<(String, String)> {
        self.processes
            .iter_mut()
            .filter_map(|p| p.exited().map(|_| (p.name().to_owned(), p.log_tail(20))))
            .collect()
    }

    /// Stops kube-apiserver (SIGTERM, SIGKILL after its grace period) and
    /// waits for it to exit; clients get connection errors until
    /// [`RealCluster::start_apiserver`].
    pub fn stop_apiserver(&mut self) {
        if let Some(p) = self.processes.get_mut(APISERVER) {
            p.stop();
        }
    }

    /// Starts kube-apiserver again with the same flags and port, and waits
    /// until its `/readyz` answers `ok`. The log is appended to.
    pub async fn start_apiserver(&mut self) -> Result<(), Error> {
        if self.processes.len() <= APISERVER {
            return Err(Error::Start("the cluster is stopped".into()));
        }
        if self.processes[APISERVER].exited().is_none() {
            return Err(Error::Start("kube-apiserver is running".into()));
        }
        self.processes[APISERVER] = self.apiserver.spawn()?;
        let client = self.client().await?;
        let p = &mut self.processes[APISERVER];
        wait_tcp(p, self.apiserver.port).await?;
        wait_ready(&client, p).await
    }

    /// Stops kube-apiserver and starts it again (see
    /// [`RealCluster::stop_apiserver`]).
    pub async fn restart_apiserver(&mut self) -> Result<(), Error> {
        self.stop_apiserver();
        self.start_apiserver().await
    }

    /// Stops every component, newest first, and waits for them.
    pub fn stop(&mut self) {
        while let Some(mut p) = self.processes.pop() {
            p.stop();
        }
    }
}

impl Drop for RealCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

impl ApiServerCommand {
    fn spawn(&self) -> Result<Supervised, Error> {
        Supervised::spawn(
            "kube-apiserver",
            &self.program,
            &self.args,
            &self.log,
            Duration::from_secs(10),
        )
    }
}

/// A kube-rs client for a kubeconfig's text.
pub async fn client_for(kubeconfig_yaml: &str) -> Result<kube::Client, Error> {
    let kc = kube::config::Kubeconfig::from_yaml(kubeconfig_yaml)
        .map_err(|e| Error::Start(format!("kubeconfig: {e}")))?;
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .map_err(|e| Error::Start(format!("kubeconfig: {e}")))?;
    kube::Client::try_from(config).map_err(|e| Error::Start(format!("client: {e}")))
}

fn port_taken(log: &str) -> bool {
    log.contains("address already in use")
}

fn died(p: &mut Supervised) -> Option<Error> {
    p.exited()?;
    let tail = p.log_tail(30);
    Some(if port_taken(&tail) {
        Error::PortTaken(p.name().to_owned())
    } else {
        Error::Died {
            component: p.name().to_owned(),
            log_tail: tail,
        }
    })
}

/// Polls `ready` until it holds; fails early when the component exits, and
/// after [`READY_TIMEOUT`] with the tail of its log.
async fn wait_until<F, Fut>(p: &mut Supervised, every: Duration, mut ready: F) -> Result<(), Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if ready().await {
            return Ok(());
        }
        if let Some(e) = died(p) {
            return Err(e);
        }
        if Instant::now() > deadline {
            return Err(Error::NotReady {
                component: p.name().to_owned(),
                log_tail: p.log_tail(30),
            });
        }
        tokio::time::sleep(every).await;
    }
}

/// The component accepts connections on `port`.
async fn wait_tcp(p: &mut Supervised, port: u16) -> Result<(), Error> {
    wait_until(p, Duration::from_millis(50), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    })
    .await
}

/// `GET path` succeeds (and, with `body`, answers exactly that).
async fn get_ok(client: &kube::Client, path: &str, body: Option<&str>) -> bool {
    let Ok(req) = http::Request::get(path).body(Vec::new()) else {
        return false;
    };
    match client.request_text(req).await {
        Ok(text) => body.is_none_or(|want| text.trim() == want),
        Err(_) => false,
    }
}

/// kube-apiserver's `/readyz` answers `ok`.
async fn wait_ready(client: &kube::Client, p: &mut Supervised) -> Result<(), Error> {
    wait_until(p, Duration::from_millis(100), || {
        get_ok(client, "/readyz", Some("ok"))
    })
    .await
}

/// The controller manager is working once the ServiceAccount controller has
/// made `default/default` (its informers have synced and it can write).
async fn wait_controller_manager(client: &kube::Client, p: &mut Supervised) -> Result<(), Error> {
    wait_until(p, Duration::from_millis(100), || {
        get_ok(
            client,
            "/api/v1/namespaces/default/serviceaccounts/default",
            None,
        )
    })
    .await
}
