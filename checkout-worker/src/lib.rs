//! Checkout workers: everything that changes orders and stock after a request was accepted.
//!
//! # Layout
//!
//! - [`allocation`]: batched allocation of checkout requests into orders under row locks.
//! - [`expiry`]: the hold sweeper that expires unpaid orders and returns their stock.
//! - [`config`]: the worker process's settings.
//! - [`run`]: the worker process: its long-lived tasks until shutdown.

pub mod allocation;
pub mod config;
pub mod expiry;

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// Runs the worker's tasks until `shutdown` is cancelled; each task finishes its current batch first.
pub async fn run(config: config::Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let db = sqlx::postgres::PgPoolOptions::new()
        .max_connections(config.db_max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect(config.database_url.as_str())
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL (DATABASE_URL): {e}"))?;
    tracing::info!("checkout worker started");
    run_sweeper(db, Duration::from_millis(config.hold_sweep_interval_ms), config.hold_sweep_batch, shutdown)
        .await;
    tracing::info!("checkout worker stopped");
    Ok(())
}

/// Sweeps expired holds every `interval`, draining due orders in batches of `batch` before sleeping.
pub async fn run_sweeper(db: PgPool, interval: Duration, batch: i64, shutdown: CancellationToken) {
    loop {
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
