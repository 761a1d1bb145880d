//! End-to-end test harness: real PostgreSQL, real Redis, the real gateway on a real socket.
//!
//! # Layout
//!
//! - [`spawn_app`] starts a gateway on port 0 with a fresh database (created and migrated for this test
//!   alone) and its own Redis key prefix, so tests run in parallel without seeing each other.
//! - [`TestApp`] holds the address, an HTTP client, a direct database pool for arranging and asserting,
//!   and helpers to make users of each role.
//! - [`checkout`]: admitted visitors, submissions, a worker, waiting for decisions.
//! - [`payments`]: orders awaiting payment, Snap payments, waits, the settled-payments invariant.
//! - [`private_redis`]: a Redis server of one test's own, to kill, restart or pause.
//! - [`private_postgres`]: a PostgreSQL server of one test's own, to restart or stop.
//! - [`pgbouncer`]: a PgBouncer of one test's own.
//! - [`redis_cluster`]: a Redis Cluster of one test's own (three primaries).
//! - [`topology`]: the real binaries as separate processes (gateways, controllers, workers) on one sale.
//!
//! `TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432`) and `TEST_REDIS_URL` (default
//! `redis://127.0.0.1:6379`) say where the services are.

pub mod checkout;
pub mod load;
pub mod payments;
pub mod pgbouncer;
pub mod private_postgres;
pub mod private_redis;
pub mod redis_cluster;
pub mod reliability;
pub mod topology;

use std::{net::SocketAddr, time::Duration};

use gateway::{Application, config::Config};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::oneshot;
use uuid::Uuid;

pub fn pg_base_url() -> String {
    std::env::var("TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub const ADMIN_EMAIL: &str = "admin@tests.example.id";
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

pub struct TestApp {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    /// Direct access to this test's own database, for arranging and asserting.
    pub db: PgPool,
    pub db_name: String,
    pub redis_prefix: String,
    /// The gateway's shared state (queue, signer, hub) for arranging and asserting.
    pub state: gateway::state::AppState,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// Options for [`spawn_app_with`].
pub struct Options {
    /// Another Redis than the shared one (e.g. a private server a test stops).
    pub redis_url: Option<String>,
    /// Point the gateway's Midtrans client at this (fake) Midtrans.
    pub midtrans: Option<MidtransTarget>,
    pub catalog_cache_ttl_ms: u64,
    /// Login attempts per (account, address) a minute.
    pub login_per_account_address_per_min: u32,
    pub demo_data: bool,
    pub configure: fn(&mut Config),
}

impl Default for Options {
    fn default() -> Self {
        Options {
            redis_url: None,
            midtrans: None,
            catalog_cache_ttl_ms: 1000,
            login_per_account_address_per_min: 10,
            demo_data: false,
            configure: |_| {},
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

/// A gateway of the test's own and the bootstrap admin's access token: how most tests begin.
pub async fn spawn_with_admin() -> (TestApp, String) {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    (app, admin)
}

/// The configuration a test gateway gets: its own database and Redis prefix, port 0.
pub fn test_config(db_name: &str, redis_prefix: &str, opts: &Options) -> Config {
    let mut config = Config::from_env().expect("config from env");
    config.process.app_env = gateway::config::AppEnv::Development;
    config.process.database_url = format!("{}/{db_name}", pg_base_url()).parse().expect("infallible");
    config.process.redis_url = opts.redis_url.clone().unwrap_or_else(redis_url).parse().expect("infallible");
    config.process.redis_key_prefix = redis_prefix.to_owned();
    config.http_addr = "127.0.0.1:0".parse().expect("addr");
    config.jwt_secret = Some(format!("test-secret-{}", Uuid::new_v4().simple()).parse().expect("infallible"));
    config.cors_origins = "http://127.0.0.1".into();
    config.bootstrap_admin_email = Some(ADMIN_EMAIL.into());
    config.bootstrap_admin_password = Some(ADMIN_PASSWORD.parse().expect("infallible"));
    config.migrate_on_start = true;
    config.demo_data = opts.demo_data;
    config.catalog_cache_ttl_ms = opts.catalog_cache_ttl_ms;
    config.login_per_account_address_per_min = opts.login_per_account_address_per_min;
    config.web_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../web-widget").into();
    if let Some(m) = &opts.midtrans {
        config.midtrans.midtrans_server_key = Some(m.server_key.clone());
        config.midtrans.midtrans_api_base_url = m.api_base_url.clone();
        config.midtrans.midtrans_snap_base_url = m.snap_base_url.clone();
        config.midtrans.midtrans_timeout_ms = 3_000;
    }
    (opts.configure)(&mut config);
    config
}

/// Where a test gateway finds Midtrans.
#[derive(Clone, Debug)]
pub struct MidtransTarget {
    pub server_key: String,
    pub api_base_url: String,
    pub snap_base_url: String,
}

/// The server key the fake Midtrans and the gateway share in tests.
pub const MIDTRANS_KEY: &str = "SB-Mid-server-tests-0123456789abcdef";

/// A gateway wired to its own fake Midtrans over real HTTP, which sends its notifications to the gateway.
pub struct PayApp {
    pub app: TestApp,
    pub midtrans: fake_midtrans::FakeMidtrans,
    /// Our Midtrans client, configured like the workers' (for reconciliation).
    pub client: midtrans::Client,
}

pub async fn spawn_app_with_midtrans() -> PayApp {
    spawn_app_with_midtrans_and(|_| {}).await
}

/// [`spawn_app_with_midtrans`] with a change to the gateway's configuration.
pub async fn spawn_app_with_midtrans_and(configure: fn(&mut Config)) -> PayApp {
    let fake = fake_midtrans::FakeMidtrans::start(
        "127.0.0.1:0".parse().expect("addr"),
        fake_midtrans::Config::new(MIDTRANS_KEY).fast_retries(),
    )
    .await
    .expect("fake midtrans starts");
    let target = MidtransTarget {
        server_key: MIDTRANS_KEY.into(),
        api_base_url: fake.url(),
        snap_base_url: fake.snap_base_url(),
    };
    let app =
        spawn_app_with(Options { midtrans: Some(target.clone()), configure, ..Default::default() }).await;
    fake.set_notification_url(app.url("/api/webhooks/midtrans"));
    let client = midtrans::Client::new(midtrans::ClientConfig {
        server_key: target.server_key,
        api_base_url: target.api_base_url,
        snap_base_url: target.snap_base_url,
        timeout: Duration::from_secs(3),
        attempts: 2,
    })
    .expect("client");
    PayApp { app, midtrans: fake, client }
}

/// Webhook processor settings for tests: quick retries and reclaiming.
pub fn fast_processor() -> checkout_worker::payments::processor::ProcessorSettings {
    checkout_worker::payments::processor::ProcessorSettings {
        batch: 50,
        concurrency: 8,
        max_attempts: 3,
        base_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        reclaim_idle: Duration::from_millis(300),
        reclaim_every: Duration::from_millis(200),
    }
}

pub async fn spawn_app_with(opts: Options) -> TestApp {
    midtrans::install_crypto_provider();
    let db_name = format!("qc_test_{}", Uuid::new_v4().simple());
    let redis_prefix = format!("t:{}:", Uuid::new_v4().simple());
    let config = test_config(&db_name, &redis_prefix, &opts);
    let app = Application::build(config).await.expect("the gateway builds");
    let addr = app.local_addr();
    let db = app.state().db.clone();
    let state = app.state().clone();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = rx.await;
    }));
    TestApp {
        addr,
        http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client"),
        db,
        db_name,
        redis_prefix,
        state,
        shutdown: Some(tx),
        server: Some(server),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(self.url(path))
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(self.url(path))
    }

    pub fn put(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.put(self.url(path))
    }

    pub fn patch(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.patch(self.url(path))
    }

    pub fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.delete(self.url(path))
    }

    /// Registers a buyer; returns (access token, user id).
    pub async fn register(&self, email: &str) -> (String, Uuid) {
        let resp = self
            .post("/api/auth/register")
            .json(&json!({ "email": email, "password": "a good password", "name": "Test Buyer" }))
            .send()
            .await
            .expect("register");
        assert_eq!(resp.status(), 201, "register {email}");
        let body: Value = resp.json().await.expect("json");
        (
            body["access_token"].as_str().expect("token").to_owned(),
            body["user"]["id"].as_str().expect("id").parse().expect("uuid"),
        )
    }

    pub async fn buyer_token(&self) -> String {
        self.register(&format!("buyer-{}@tests.example.id", Uuid::new_v4().simple())).await.0
    }

    pub async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.post("/api/auth/login")
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .expect("login")
    }

    /// The bootstrap admin's access token.
    pub async fn admin_token(&self) -> String {
        let resp = self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.expect("json");
        body["access_token"].as_str().expect("token").to_owned()
    }

    /// A staff member's access token (registered, then promoted by the admin).
    pub async fn staff_token(&self, admin: &str) -> String {
        let email = format!("staff-{}@tests.example.id", Uuid::new_v4().simple());
        let (_, id) = self.register(&email).await;
        let resp = self
            .put(&format!("/api/admin/users/{id}/role"))
            .bearer_auth(admin)
            .json(&json!({ "role": "staff" }))
            .send()
            .await
            .expect("set role");
        assert_eq!(resp.status(), 200);
        let resp = self.login(&email, "a good password").await;
        let body: Value = resp.json().await.expect("json");
        body["access_token"].as_str().expect("token").to_owned()
    }

    /// One value from PostgreSQL: `sql` with one parameter.
    pub async fn scalar<T, B>(&self, sql: &'static str, bind: B) -> T
    where
        T: Send + Unpin,
        (T,): for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
        B: 'static + sqlx::Encode<'static, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send,
    {
        sqlx::query_scalar(sql).bind(bind).fetch_one(&self.db).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Sends a JSON request as `token`, asserts the answer's status and returns its body.
    pub async fn expect(
        &self,
        status: u16,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Value {
        let (got, answer) = self.call(method, path, token, body).await;
        assert_eq!(got, status, "{method} {path}: {answer}");
        answer
    }

    /// Sends a JSON request as `token` and returns (status, body).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.api().call(method, path, token, body).await
    }

    /// This gateway's API, as a client sees it.
    pub fn api(&self) -> Api<'_> {
        Api { http: &self.http, addr: self.addr }
    }

    /// Calls the API as the holder of the access `token`: `app.by(&admin).patch(path, body)`.
    pub fn by<'a>(&'a self, token: &'a str) -> Caller<'a> {
        self.api().by(token)
    }

    /// Calls the API with no credentials.
    pub fn anon(&self) -> Caller<'_> {
        self.api().anon()
    }

    /// Creates a published event with one ticket category and one merchandise item through the admin API.
    /// Returns (event id, category id, merchandise id).
    pub async fn published_event(&self, admin: &str, quota: i32, stock: i32) -> (Uuid, Uuid, Uuid) {
        self.api().published_event(admin, quota, stock).await
    }

    /// Starts a webhook processor on this test's database and Redis prefix; cancel the token to stop it.
    pub async fn webhook_processor(
        &self,
        settings: checkout_worker::payments::processor::ProcessorSettings,
    ) -> tokio_util::sync::CancellationToken {
        let stop = tokio_util::sync::CancellationToken::new();
        tokio::spawn(checkout_worker::payments::processor::run_processor(
            self.db.clone(),
            redis_url(),
            self.state.redis.clone(),
            keyspace::Keyspace::new(self.redis_prefix.clone()),
            settings,
            self.state.midtrans.clone(),
            stop.clone(),
        ));
        stop
    }

    /// A buyer inserted directly (no password hashing): (id, access token).
    pub async fn quick_buyer(&self) -> (Uuid, String) {
        insert_buyer(&self.db, &self.state.tokens).await
    }

    /// Records an accepted request, as the gateway's intake does, and returns it.
    pub async fn record_request(
        &self,
        user: Uuid,
        event: Uuid,
        items: Vec<pipeline::orders::CartLine>,
    ) -> pipeline::orders::CheckoutRequest {
        let id = Uuid::now_v7();
        sqlx::query(
            "insert into order_requests (id, user_id, event_id, idempotency_key, body_hash) values ($1, $2, $3, $4, 'h')",
        )
        .bind(id)
        .bind(user)
        .bind(event)
        .bind(id.to_string())
        .execute(&self.db)
        .await
        .expect("request row");
        pipeline::orders::CheckoutRequest { request_id: id, user_id: user, event_id: event, items }
    }

    /// An order awaiting payment, made by the real allocator from an accepted request.
    pub async fn pending_order(
        &self,
        user: Uuid,
        event: Uuid,
        items: Vec<pipeline::orders::CartLine>,
    ) -> Uuid {
        use checkout_worker::allocation::{Outcome, allocate};
        let request = self.record_request(user, event, items).await;
        let decisions = allocate(&self.db, &[request], chrono::Utc::now(), chrono::Duration::minutes(15))
            .await
            .expect("allocate");
        match &decisions[0].outcome {
            Outcome::Confirmed { order_id } => *order_id,
            Outcome::Rejected { reason } => panic!("order rejected: {reason}"),
        }
    }

    /// Stops the server and waits for it to finish in-flight requests.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // Best effort: remove this test's database (CI also sweeps leftovers before a run).
        let _ = std::process::Command::new("psql")
            .arg(format!("{}/postgres", pg_base_url()))
            .arg("-qc")
            .arg(format!("drop database if exists {} with (force)", self.db_name))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Asserts an error answer has the contract's shape and the given code; returns the message.
pub fn assert_error(body: &Value, code: &str) -> String {
    assert_eq!(body["error"]["code"], code, "unexpected error body: {body}");
    body["error"]["message"].as_str().expect("message").to_owned()
}

/// A buyer inserted into `db` directly (no password hashing), with an access token from `tokens`.
pub async fn insert_buyer(db: &PgPool, tokens: &gateway::accounts::token::TokenKeys) -> (Uuid, String) {
    let id = Uuid::now_v7();
    sqlx::query("insert into users (id, email, password_hash, name) values ($1, $2, 'x', 'Budi Santoso')")
        .bind(id)
        .bind(format!("{}@buyers.example.id", id.simple()))
        .execute(db)
        .await
        .expect("insert buyer");
    (id, tokens.issue_access(id, gateway::accounts::Role::Buyer, 0).expect("token"))
}

/// A gateway's API over HTTP: JSON calls with or without an access token.
#[derive(Clone, Copy)]
pub struct Api<'a> {
    pub http: &'a reqwest::Client,
    pub addr: SocketAddr,
}

impl<'a> Api<'a> {
    /// Calls as the holder of the access `token`.
    pub fn by(self, token: &'a str) -> Caller<'a> {
        Caller { api: self, token: Some(token) }
    }

    /// Calls with no credentials.
    pub fn anon(self) -> Caller<'a> {
        Caller { api: self, token: None }
    }

    /// Sends a JSON request as `token` and returns (status, body), the body `null` when empty.
    pub async fn call(
        self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = format!("http://{}{path}", self.addr);
        let mut req = self.http.request(method.parse().expect("method"), url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    /// Creates a published event with one ticket category and one merchandise item through the admin API.
    /// Returns (event id, category id, merchandise id).
    pub async fn published_event(self, admin: &str, quota: i32, stock: i32) -> (Uuid, Uuid, Uuid) {
        let (s, event) = self
            .by(admin)
            .post(
                "/api/admin/events",
                json!({
                    "name": "Konser Test", "venue": "Aula", "starts_at": "2030-01-10T12:00:00Z",
                    "sale_opens_at": "2020-01-01T00:00:00Z"
                }),
            )
            .await;
        assert_eq!(s, 201, "{event}");
        let id = event["id"].as_str().expect("id").to_owned();
        let (s, cat) = self
            .by(admin)
            .post(
                &format!("/api/admin/events/{id}/ticket-categories"),
                json!({
                    "name": "Festival", "price": 150000, "quota": quota, "max_per_order": 4
                }),
            )
            .await;
        assert_eq!(s, 201, "{cat}");
        let (s, merch) = self
            .by(admin)
            .post(
                "/api/admin/merchandise",
                json!({
                    "event_id": id, "name": "Kaos", "price": 100000, "stock": stock
                }),
            )
            .await;
        assert_eq!(s, 201, "{merch}");
        let (s, _) = self.by(admin).post_empty(&format!("/api/admin/events/{id}/publish")).await;
        assert_eq!(s, 200);
        (
            id.parse().expect("uuid"),
            cat["id"].as_str().expect("id").parse().expect("uuid"),
            merch["id"].as_str().expect("id").parse().expect("uuid"),
        )
    }
}

/// JSON calls to the API as one caller (see [`TestApp::by`] and [`TestApp::anon`]); each answers
/// (status, body), the body `null` when empty.
pub struct Caller<'a> {
    api: Api<'a>,
    token: Option<&'a str>,
}

impl Caller<'_> {
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.api.call("GET", path, self.token, None).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.api.call("DELETE", path, self.token, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.api.call("POST", path, self.token, Some(body)).await
    }

    /// A POST with no body.
    pub async fn post_empty(&self, path: &str) -> (u16, Value) {
        self.api.call("POST", path, self.token, None).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.api.call("PUT", path, self.token, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        self.api.call("PATCH", path, self.token, Some(body)).await
    }
}
