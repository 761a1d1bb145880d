//! Checkout workers: everything that changes orders and stock after a request was accepted.
//!
//! # Layout
//!
//! - [`allocation`]: batched allocation of checkout requests into orders under row locks.
//! - [`audit`]: the consistency audit an operator runs (`checkout-worker audit`): reads, never writes.
//! - [`expiry`]: the hold sweeper that expires unpaid orders and returns their stock.
//! - [`stream`]: the order stream's consumer loop, reclaiming and re-queueing (the stream's entries and
//!   appending them are the processes' contract, in the `pipeline` crate).
//! - [`stock`]: moving an order's units between held and sold under ordered row locks.
//! - [`payments`]: Midtrans notifications applied once, the webhook stream, e-tickets, reconciliation.
//! - [`config`]: the worker process's settings.
//! - [`run`]: the worker process: its long-lived tasks until shutdown.

pub mod allocation;
pub mod audit;
pub mod config;
pub mod expiry;
pub mod payments;
pub mod stock;
pub mod stream;

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// `checkout-worker audit`: the audit on the deployment `config` names, on two connections of its own with
/// a minute per statement (it reads whole tables).
pub async fn audit_command(config: &config::Config) -> anyhow::Result<audit::Report> {
    let db = database::connect(
        config.process.database_url.expose(),
        &database::PoolSettings {
            application_name: "checkout-worker audit",
            max_connections: 2,
            acquire_timeout: Duration::from_secs(10),
            statement_timeout: Duration::from_secs(60),
            lock_timeout: None,
        },
    )
    .await?;
    let redis = keyspace::connect(config.process.redis_url.expose(), 1).await?;
    let keys = keyspace::Keyspace::new(config.process.redis_key_prefix.clone());
    audit::run(&db, &redis, &keys, &audit::Tolerances::default()).await
}

/// Runs the worker's tasks until `shutdown` is cancelled; each task finishes its current batch first.
pub async fn run(config: config::Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let db = database::connect(
        config.process.database_url.expose(),
        &database::PoolSettings {
            application_name: "checkout-worker",
            max_connections: config.db_max_connections,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_millis(config.statement_timeout_ms),
            lock_timeout: Some(Duration::from_millis(config.lock_timeout_ms)),
        },
    )
    .await?;
    let redis = keyspace::connect(config.process.redis_url.expose(), 2).await?;
    let keys = keyspace::Keyspace::new(config.process.redis_key_prefix.clone());
    tracing::info!("checkout worker started");
    let consumer = stream::run_consumer(
        db.clone(),
        config.process.redis_url.expose().to_owned(),
        keys.clone(),
        stream::ConsumerSettings::new(
            config.order_batch_size,
            chrono::Duration::seconds(config.order_hold_secs),
        )
        .reclaiming_after(Duration::from_millis(config.order_reclaim_idle_ms)),
        shutdown.clone(),
    );
    let sweeper = run_sweeper(
        db.clone(),
        Sweep {
            interval: Duration::from_millis(config.hold_sweep_interval_ms),
            batch: config.hold_sweep_batch,
            review_deadline: chrono::Duration::seconds(config.review_deadline_secs),
        },
        shutdown.clone(),
    );
    // One Midtrans client (and connection pool) for the processor's status reads and the reconciler.
    let midtrans = config.midtrans.client()?;
    let webhooks = payments::processor::run_processor(
        db.clone(),
        config.process.redis_url.expose().to_owned(),
        redis.clone(),
        keys.clone(),
        payments::processor::ProcessorSettings {
            max_attempts: config.webhook_max_attempts,
            concurrency: config.webhook_concurrency,
            base_backoff: Duration::from_millis(config.webhook_retry_base_ms),
            ..Default::default()
        },
        midtrans.clone(),
        shutdown.clone(),
    );
    let reconciler = {
        let (db, shutdown) = (db.clone(), shutdown.clone());
        let interval = Duration::from_millis(config.payment_reconcile_interval_ms);
        async move {
            match midtrans {
                Some(client) => payments::reconcile::run_reconciler(db, client, interval, shutdown).await,
                None => tracing::warn!("MIDTRANS_SERVER_KEY not set: payment reconciliation is off"),
            }
        }
    };
    let orphans =
        run_orphans(db, redis, keys, Duration::from_millis(config.order_orphan_age_ms), shutdown.clone());
    let (consumed, processed, _, _, _) = tokio::join!(consumer, webhooks, sweeper, orphans, reconciler);
    processed?;
    tracing::info!("checkout worker stopped");
    consumed
}

/// Every quarter of `age` (at most every 15 s), re-queues accepted requests that have waited `age` for a
/// decision.
async fn run_orphans(
    db: PgPool,
    redis: fred::clients::Pool,
    keys: keyspace::Keyspace,
    age: Duration,
    shutdown: CancellationToken,
) {
    let every = (age / 4).min(Duration::from_secs(15));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        match stream::requeue_orphans(&db, &redis, &keys, age).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(requests = n, "re-queued requests without a decision"),
            Err(e) => tracing::warn!(error = %e, "re-queueing orphaned requests failed"),
        }
    }
}

/// How the sweeper paces itself.
#[derive(Clone, Copy, Debug)]
pub struct Sweep {
    pub interval: Duration,
    pub batch: i64,
    /// A payment review left unresolved this long is refunded and its hold ends.
    pub review_deadline: chrono::Duration,
}

/// Sweeps expired holds every `interval`, draining due orders in batches of `batch` before sleeping; also
/// confirms free orders (nothing to pay) and refunds payment reviews past their deadline.
pub async fn run_sweeper(db: PgPool, sweep: Sweep, shutdown: CancellationToken) {
    let Sweep { interval, batch, review_deadline } = sweep;
    loop {
        if let Err(e) =
            payments::review::refund_overdue(&db, chrono::Utc::now(), review_deadline, batch).await
        {
            tracing::warn!(error = %e, "refunding overdue payment reviews failed; retrying next tick");
        }
        match payments::apply::settle_free_orders(&db, batch).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(orders = n, "free orders confirmed"),
            Err(e) => tracing::warn!(error = %e, "confirming free orders failed; retrying next tick"),
        }
        // Drain everything due in bounded batches; a full batch means more may be waiting.
        loop {
            match expiry::sweep_once(&db, chrono::Utc::now(), batch).await {
                Ok(swept) if !swept.orders.is_empty() => {
                    tracing::info!(orders = swept.orders.len(), "expired unpaid orders, stock returned");
                    metrics::counter!("orders_expired_total").increment(swept.orders.len() as u64);
                    if (swept.orders.len() as i64) < batch || shutdown.is_cancelled() {
                        break;
                    }
                }
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "hold sweep failed; retrying next tick");
                    break;
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}
