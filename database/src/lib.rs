//! The PostgreSQL pool every process opens (gateway, admission controller, checkout worker): bounded, with
//! an acquire timeout, and with the same server-side limits on every connection, so that no process's
//! query can hold row locks for long and no stuck transaction lives for ever (seed MR-3).

use std::{str::FromStr, time::Duration};

use anyhow::Context;
use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};

/// How a process's pool is bounded.
#[derive(Clone, Debug)]
pub struct PoolSettings {
    /// Shown in `pg_stat_activity`, so an operator sees which process holds a connection.
    pub application_name: &'static str,
    pub max_connections: u32,
    /// A caller that cannot get a connection within this time gets an error (a 503 at the HTTP edge)
    /// instead of queueing for ever.
    pub acquire_timeout: Duration,
    /// Server-side cap on any statement, so no query holds row locks for long.
    pub statement_timeout: Duration,
    /// Server-side cap on waiting for a lock (the workers': a batch waits briefly, then is retried).
    pub lock_timeout: Option<Duration>,
}

/// A transaction left open by a stuck client is ended rather than holding locks for ever.
const IDLE_IN_TRANSACTION: Duration = Duration::from_secs(15);

pub async fn connect(url: &str, s: &PoolSettings) -> anyhow::Result<PgPool> {
    let mut settings = vec![
        ("statement_timeout", s.statement_timeout.as_millis().to_string()),
        ("idle_in_transaction_session_timeout", IDLE_IN_TRANSACTION.as_millis().to_string()),
    ];
    if let Some(lock) = s.lock_timeout {
        settings.push(("lock_timeout", lock.as_millis().to_string()));
    }
    let options = PgConnectOptions::from_str(url)
        .context("DATABASE_URL is not a valid PostgreSQL URL")?
        .application_name(s.application_name)
        .options(settings);
    PgPoolOptions::new()
        .max_connections(s.max_connections)
        .min_connections(1.min(s.max_connections))
        .acquire_timeout(s.acquire_timeout)
        .connect_with(options)
        .await
        .with_context(|| "cannot connect to PostgreSQL (DATABASE_URL); is it running and reachable?")
}
