//! The gateway: the HTTP API that buyers, admins, staff and Midtrans talk to.
//!
//! # Layout
//!
//! - [`config`]: every environment variable, typed and validated once.
//! - [`http`]: the router, middleware stack and request extractors; each domain module owns its routes.
//! - [`serve`]: accepting connections (HTTP/1.1 and HTTP/2, a header deadline, graceful stop).
//! - [`catalog`]: public events and merchandise, with a one-second in-process cache.
//! - [`accounts`]: registration, sign-in, JWT access tokens, roles and permissions.
//! - [`admin`]: catalog CRUD, users, waiting-room settings and stats, audit log.
//! - [`orders`]: checkout intake (`POST /api/orders`), request status, the buyer's orders, cancel.
//! - [`queue`]: the waiting room's join, status, WebSocket and SSE push (with the per-gateway push hub).
//! - [`ratelimit`]: GCRA limits shared through Redis, with a local fallback.
//! - [`health`], [`openapi`]: operations (logging, metrics and shutdown come from the `telemetry` crate).
//! - [`db`]: the PostgreSQL pool and migrations; [`bootstrap`], [`demo`]: start-up data.
//!
//! [`Application::build`] wires everything; tests and the binary start the gateway the same way.

pub mod accounts;
pub mod admin;
pub mod batch;
pub mod bootstrap;
pub mod catalog;
pub mod config;
pub mod db;
pub mod demo;
pub mod error;
pub mod health;
pub mod http;
pub mod openapi;
pub mod orders;
pub mod payments;
pub mod queue;
pub mod ratelimit;
pub mod serve;
pub mod state;
pub mod tickets;

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use keyspace::Keyspace;
use tokio::net::TcpListener;

use crate::{
    accounts::{password::PasswordHasherPool, token::TokenKeys},
    catalog::cache::CatalogCache,
    config::Config,
    ratelimit::RateLimiter,
    state::{AppState, Rules},
};

/// A gateway that is connected, migrated and bound to its port, ready to serve.
pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    /// Validates `config`, connects to PostgreSQL and Redis, migrates, ensures the bootstrap admin and the
    /// demo data (when configured), and binds `HTTP_ADDR` (port 0 picks a free port).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        let state = build_state(config).await?;
        let listener = TcpListener::bind(state.config.http_addr)
            .await
            .with_context(|| format!("cannot listen on HTTP_ADDR {}", state.config.http_addr))?;
        Ok(Self { listener, state })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener has an address")
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        run(self.state, self.listener, shutdown).await
    }
}

/// Connects and prepares everything a request handler needs.
pub async fn build_state(config: Config) -> anyhow::Result<AppState> {
    let db_url = config.process.database_url.expose().to_owned();
    if config.migrate_on_start {
        db::ensure_database(&db_url).await?;
    }
    let db = db::connect(
        &db_url,
        &db::PoolSettings {
            application_name: "gateway",
            max_connections: config.db_max_connections,
            acquire_timeout: Duration::from_millis(config.db_acquire_timeout_ms),
            statement_timeout: Duration::from_millis(config.db_statement_timeout_ms),
            lock_timeout: None,
        },
    )
    .await?;
    if config.migrate_on_start {
        db::migrate(&db).await?;
    }
    let redis = keyspace::connect(config.process.redis_url.expose(), 4).await?;
    if let (Some(email), Some(password)) = (&config.bootstrap_admin_email, &config.bootstrap_admin_password) {
        bootstrap::ensure_admin(&db, email, password.expose()).await?;
    }
    if config.demo_data
        && let Some(id) = demo::load_if_empty(&db).await?
    {
        tracing::info!(event_id = %id, "demo event loaded");
    }
    let keys = Keyspace::new(config.process.redis_key_prefix.clone());
    let rules = Rules::from_config(&config);
    let hashers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let signer = signing::Signer::new(config.jwt_secret().as_bytes());
    let limits = RateLimiter::new(redis.clone(), keys.clone(), &rules.all());
    let recorder = orders::record::Recorder::start(
        config.order_intake,
        orders::record::Writer {
            db: db.clone(),
            redis: redis.clone(),
            keys: keys.clone(),
            limits: limits.clone(),
            order_user: rules.order_user,
        },
    );
    Ok(AppState {
        recorder,
        queue: waiting_room::queue::Queue::new(redis.clone(), keys.clone()),
        hub: queue::hub::Hub::new(
            signer.clone(),
            queue::hub::PushLimits {
                per_visitor: config.push_per_visitor,
                per_address: config.push_per_address,
                total: config.max_push_connections,
            },
        ),
        signer,
        shutdown: tokio_util::sync::CancellationToken::new(),
        midtrans: gateway_midtrans(&config)?,
        order_backlog: Arc::new(std::sync::atomic::AtomicI64::new(0)),
        sale_rules: catalog::sale_rules::SaleRulesCache::new(Duration::from_millis(
            config.catalog_cache_ttl_ms,
        )),
        limits,
        rules,
        tokens: TokenKeys::new(config.jwt_secret().as_bytes(), config.access_token_ttl_secs),
        // A buyer token's session state is trusted for a few seconds per gateway; staff and admin tokens
        // are checked on every request.
        sessions: accounts::sessions::Sessions::new(db.clone(), Duration::from_secs(5)),
        passwords: PasswordHasherPool::new(hashers)?,
        catalog_cache: CatalogCache::new(Duration::from_millis(config.catalog_cache_ttl_ms)),
        db,
        redis,
        keys,
        config: Arc::new(config),
    })
}

/// The gateway's Midtrans client: one attempt per call, within the request's own deadline, so a
/// payment start always learns how its call ended (a retry is the buyer's next request, with the same ids).
fn gateway_midtrans(config: &Config) -> anyhow::Result<Option<midtrans::Client>> {
    let mut args = config.midtrans.clone();
    args.midtrans_attempts = 1;
    args.midtrans_timeout_ms =
        args.midtrans_timeout_ms.min(config.request_timeout_ms.saturating_sub(1_000).max(1_000));
    Ok(args.client()?)
}

/// Serves the API on `listener` until `shutdown` completes (graceful: in-flight requests finish).
pub async fn run(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let _ = telemetry::metrics_handle();
    let housekeeping = tokio::spawn(housekeeping(state.clone()));
    let backlog = tokio::spawn(watch_backlog(state.clone()));
    let hub = tokio::spawn(queue::hub::run(
        state.hub.clone(),
        state.queue.clone(),
        state.config.process.redis_url.expose().to_owned(),
        state.shutdown.clone(),
    ));
    let token = state.shutdown.clone();
    let shutdown = async move {
        shutdown.await;
        // Tell push connections to close so the graceful shutdown can complete.
        token.cancel();
    };
    let header_timeout_ms = state.config.header_read_timeout_ms;
    let app = http::router(state).context("cannot assemble the storefront pages (WEB_DIR)")?;
    tracing::info!(addr = %listener.local_addr()?, "gateway listening");
    serve::serve(listener, app, Duration::from_millis(header_timeout_ms), shutdown).await;
    housekeeping.abort();
    backlog.abort();
    match hub.await {
        Ok(Err(e)) => tracing::warn!(error = %e, "push hub ended with an error"),
        Err(e) => tracing::warn!(error = %e, "push hub task failed"),
        Ok(Ok(())) => {}
    }
    Ok(())
}

/// Keeps `order_backlog` current so the intake can refuse new submissions before anything piles up.
async fn watch_backlog(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        match pipeline::orders::backlog(&state.redis, &state.keys).await {
            Ok(n) => state.order_backlog.store(n, std::sync::atomic::Ordering::Relaxed),
            Err(e) => tracing::warn!(error = %e, "order backlog unknown"),
        }
    }
}

/// Periodic upkeep: histogram buckets for /metrics and idle local rate-limit state.
async fn housekeeping(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    loop {
        tick.tick().await;
        telemetry::metrics_handle().run_upkeep();
        state.limits.forget_idle();
    }
}

pub use telemetry::shutdown_signal;
