//! Many processes, one sale: the real binaries (gateways, admission controllers, checkout workers) started
//! as separate processes on one database and one Redis key prefix, the way production runs them.
//!
//! Every process writes its log (JSON lines) to a file of its own under the system temp dir; the tail is
//! shown when a process fails to start or a test asks for it. Every process is killed when the
//! [`Topology`] is dropped. The binaries are the workspace's own, built (if they are not up to date) by
//! the first topology a test process starts.

use std::{
    fs::File,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::OnceLock,
    time::Duration,
};

use gateway::accounts::token::TokenKeys;
use sqlx::PgPool;
use uuid::Uuid;

use crate::{ADMIN_EMAIL, ADMIN_PASSWORD, Api, pg_base_url, redis_url};

/// How many processes of each kind.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub gateways: usize,
    pub controllers: usize,
    pub workers: usize,
}

/// One running binary.
pub struct Process {
    pub name: String,
    /// Where a gateway listens.
    pub addr: Option<SocketAddr>,
    child: Option<Child>,
    log: PathBuf,
}

impl Process {
    /// Kills the process at once (SIGKILL: no shutdown, as a crash or an OOM kill would).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Not killed, and not exited.
    pub fn is_running(&mut self) -> bool {
        self.child.is_some() && self.exited().is_none()
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    /// Waits until `ready` (given the log file) holds, or panics with the log when the process exits or
    /// 30 s pass.
    async fn wait_until(&mut self, mut ready: impl AsyncFnMut(&Path) -> bool) {
        for _ in 0..600 {
            if ready(&self.log).await {
                return;
            }
            if let Some(status) = self.exited() {
                panic!("{} exited ({status}) before it was ready:\n{}", self.name, self.log_tail(40));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{} not ready after 30 s:\n{}", self.name, self.log_tail(40));
    }

    /// Waits until its log shows `marker` (a line it writes once it serves).
    async fn wait_for_log(&mut self, marker: &str) {
        self.wait_until(async |log| std::fs::read_to_string(log).unwrap_or_default().contains(marker)).await;
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Gateways, controllers and workers of one sale, with the test's own database and Redis prefix.
pub struct Topology {
    pub gateways: Vec<Process>,
    pub controllers: Vec<Process>,
    pub workers: Vec<Process>,
    /// Direct access to the sale's database, for arranging and asserting.
    pub db: PgPool,
    pub db_name: String,
    pub redis_prefix: String,
    /// The Redis every process uses.
    pub redis_url: String,
    /// Signs access tokens with the processes' secret (for buyers inserted directly).
    pub tokens: TokenKeys,
    /// Checks the visitor and admission tokens the processes sign.
    pub signer: signing::Signer,
    pub http: reqwest::Client,
    env: Vec<(&'static str, String)>,
    logs: PathBuf,
}

/// Where a topology's processes find PostgreSQL and Redis, and what else they are told.
#[derive(Clone, Debug)]
pub struct Backends {
    /// The server the test's own pool connects to directly (`postgres://user@host:port`).
    pub pg_base: String,
    /// The server the processes connect to: the same, or a PgBouncer in front of it.
    pub process_pg_base: String,
    /// The Redis every process uses (a single server or a cluster).
    pub redis_url: String,
    /// Settings given to every process, over the topology's defaults.
    pub extra: Vec<(&'static str, String)>,
}

impl Default for Backends {
    /// The shared PostgreSQL and Redis, connected directly.
    fn default() -> Self {
        Backends {
            pg_base: pg_base_url(),
            process_pg_base: pg_base_url(),
            redis_url: redis_url(),
            extra: Vec::new(),
        }
    }
}

impl Backends {
    /// One more setting for every process.
    pub fn with(mut self, key: &'static str, value: &str) -> Self {
        self.extra.push((key, value.to_owned()));
        self
    }
}

impl Topology {
    /// Starts `shape` on the shared PostgreSQL and Redis: the first gateway (which creates and migrates
    /// the database), then every other process, and waits until each one serves.
    pub async fn start(shape: Shape) -> Topology {
        Self::start_with(shape, Backends::default()).await
    }

    /// [`Topology::start`] on `backends` (PgBouncer, a Redis Cluster, private servers, other settings).
    pub async fn start_with(shape: Shape, backends: Backends) -> Topology {
        let Backends { pg_base, process_pg_base, redis_url, extra } = backends;
        midtrans::install_crypto_provider();
        ensure_binaries();
        let db_name = format!("qc_test_{}", Uuid::new_v4().simple());
        let redis_prefix = format!("t:{}:", Uuid::new_v4().simple());
        let secret = format!("topology-secret-{}", Uuid::new_v4().simple());
        let logs = std::env::temp_dir().join(format!("qc-topology-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&logs).expect("log dir");
        let env = vec![
            ("APP_ENV", "development".to_owned()),
            ("DATABASE_URL", format!("{process_pg_base}/{db_name}")),
            ("REDIS_URL", redis_url.clone()),
            ("REDIS_KEY_PREFIX", redis_prefix.clone()),
            ("JWT_SECRET", secret.clone()),
            ("LOG_FORMAT", "json".to_owned()),
            ("RUST_LOG", "info".to_owned()),
            ("BOOTSTRAP_ADMIN_EMAIL", ADMIN_EMAIL.to_owned()),
            ("BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD.to_owned()),
            ("WEB_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/../web-widget").to_owned()),
            ("ADMISSION_TICK_MS", "100".to_owned()),
            ("HOLD_SWEEP_INTERVAL_MS", "200".to_owned()),
        ];
        let mut env = env;
        env.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
        env.extend(extra);
        let mut t = Topology {
            gateways: Vec::new(),
            controllers: Vec::new(),
            workers: Vec::new(),
            db: PgPool::connect_lazy(&format!("{pg_base}/{db_name}")).expect("pool"),
            db_name,
            redis_prefix,
            redis_url,
            tokens: TokenKeys::new(secret.as_bytes(), 8 * 3600),
            signer: signing::Signer::new(secret.as_bytes()),
            http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client"),
            env,
            logs,
        };
        t.add_gateway().await;
        for _ in 1..shape.gateways {
            t.add_gateway().await;
        }
        for _ in 0..shape.controllers {
            t.add_controller().await;
        }
        for _ in 0..shape.workers {
            t.add_worker().await;
        }
        t
    }

    /// The API of gateway `i`.
    pub fn gateway(&self, i: usize) -> Api<'_> {
        Api { http: &self.http, addr: self.gateways[i].addr.expect("a gateway listens") }
    }

    /// Starts one more gateway and waits until it answers `/readyz`.
    pub async fn add_gateway(&mut self) -> &mut Process {
        let addr = free_addr();
        let name = format!("gateway-{}", self.gateways.len());
        let mut p = self.spawn(&name, "gateway", &[("HTTP_ADDR", addr.to_string())]);
        p.addr = Some(addr);
        let (http, url) = (&self.http, format!("http://{addr}/readyz"));
        p.wait_until(async |_| http.get(&url).send().await.is_ok_and(|r| r.status() == 200)).await;
        self.gateways.push(p);
        self.gateways.last_mut().expect("pushed")
    }

    /// Starts one more admission controller.
    pub async fn add_controller(&mut self) -> &mut Process {
        let p = self
            .started(
                format!("waiting-room-{}", self.controllers.len()),
                "waiting-room",
                "admission controller started",
            )
            .await;
        self.controllers.push(p);
        self.controllers.last_mut().expect("pushed")
    }

    /// Starts one more checkout worker.
    pub async fn add_worker(&mut self) -> &mut Process {
        let p = self
            .started(
                format!("checkout-worker-{}", self.workers.len()),
                "checkout-worker",
                "order consumer started",
            )
            .await;
        self.workers.push(p);
        self.workers.last_mut().expect("pushed")
    }

    /// A background process (no port), once its log shows `marker`.
    async fn started(&self, name: String, binary: &str, marker: &str) -> Process {
        let mut p = self.spawn(&name, binary, &[]);
        p.wait_for_log(marker).await;
        p
    }

    fn spawn(&self, name: &str, binary: &str, extra: &[(&str, String)]) -> Process {
        let log = self.logs.join(format!("{name}.log"));
        let out = File::create(&log).expect("log file");
        let child = Command::new(bin_dir().join(binary))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("{binary}: {e}"));
        Process { name: name.to_owned(), addr: None, child: Some(child), log }
    }

    /// The bootstrap admin's access token, signed in through gateway 0.
    pub async fn admin_token(&self) -> String {
        let (s, body) = self
            .gateway(0)
            .anon()
            .post("/api/auth/login", serde_json::json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD }))
            .await;
        assert_eq!(s, 200, "{body}");
        body["access_token"].as_str().expect("token").to_owned()
    }

    /// A buyer inserted directly (no password hashing): (id, access token).
    pub async fn quick_buyer(&self) -> (Uuid, String) {
        crate::insert_buyer(&self.db, &self.tokens).await
    }

    /// `n` buyers inserted directly: (id, access token) each.
    pub async fn quick_buyers(&self, n: usize) -> Vec<(Uuid, String)> {
        let mut buyers = Vec::with_capacity(n);
        for _ in 0..n {
            buyers.push(self.quick_buyer().await);
        }
        buyers
    }

    /// Waits until no recorded request is still queued (a failing query, e.g. PostgreSQL restarting,
    /// counts as not yet); panics with the logs after `within`.
    pub async fn wait_until_all_decided(&self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let queued: Result<i64, _> =
                sqlx::query_scalar("select count(*) from order_requests where status = 'queued'")
                    .fetch_one(&self.db)
                    .await;
            if queued.as_ref().is_ok_and(|q| *q == 0) {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "undecided: {queued:?}\n{}", self.logs(30));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// (requests recorded, requests confirmed, orders).
    pub async fn request_counts(&self) -> (i64, i64, i64) {
        sqlx::query_as(
            "select (select count(*) from order_requests),
                    (select count(*) from order_requests where status = 'confirmed'),
                    (select count(*) from orders)",
        )
        .fetch_one(&self.db)
        .await
        .expect("counts")
    }

    /// Runs the operator's audit on this topology's database and Redis and fails the test on a finding.
    pub async fn assert_consistent(&self) {
        let redis = keyspace::connect(&self.redis_url, 1).await.expect("redis");
        let keys = keyspace::Keyspace::new(self.redis_prefix.clone());
        let report =
            checkout_worker::audit::run(&self.db, &redis, &keys, &Default::default()).await.expect("audit");
        assert!(report.is_consistent(), "{report}");
    }

    /// Fails the test if any process that was not killed has exited.
    pub fn assert_all_running(&mut self) {
        for p in self.gateways.iter_mut().chain(self.controllers.iter_mut()).chain(self.workers.iter_mut()) {
            assert!(p.is_running(), "{} exited:\n{}", p.name, p.log_tail(30));
        }
    }

    /// Every process's log tail, for a failure message.
    pub fn logs(&self, lines: usize) -> String {
        let all = self.gateways.iter().chain(&self.controllers).chain(&self.workers);
        all.map(|p| format!("--- {} ---\n{}", p.name, p.log_tail(lines))).collect::<Vec<_>>().join("\n")
    }
}

/// Where the workspace's binaries are: beside the test binary's `deps/` folder.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let deps = exe.parent().expect("deps dir");
    if deps.ends_with("deps") { deps.parent().expect("profile dir").to_owned() } else { deps.to_owned() }
}

/// Builds the binaries once per test process: a no-op when they are up to date, as `./dev test` builds
/// them before the tests run. The whole workspace, as `./dev test` builds it: a subset would unify
/// features differently and rebuild what the other build made.
pub fn ensure_binaries() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.current_dir(root).args(["build", "--quiet", "--workspace", "--bins"]);
        if bin_dir().ends_with("release") {
            cmd.arg("--release");
        }
        // Not the variables cargo set for this test (package name, manifest dir, …): a build script that
        // watches one would see it change and rebuild.
        for (key, _) in std::env::vars_os() {
            if key
                .to_str()
                .is_some_and(|k| k.starts_with("CARGO_") && k != "CARGO_HOME" && k != "CARGO_TARGET_DIR")
            {
                cmd.env_remove(key);
            }
        }
        let status = cmd.status().expect("cargo build");
        assert!(status.success(), "building the binaries failed");
    });
}

/// The last `lines` lines of the text file at `path` (empty when it cannot be read).
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr")
}
