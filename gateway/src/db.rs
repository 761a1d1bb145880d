//! PostgreSQL: the bounded pool every request shares, and the embedded migrations.

use std::{str::FromStr, time::Duration};

use anyhow::Context;
use sqlx::{
    PgPool,
    migrate::{MigrateDatabase, Migrator},
    postgres::{PgConnectOptions, PgPoolOptions},
};

/// The schema, embedded in the binary (`migrations/` at the repository root).
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

pub struct PoolSettings {
    pub max_connections: u32,
    /// A request that cannot get a connection within this time gets a 503 instead of queueing forever.
    pub acquire_timeout: Duration,
    /// Server-side cap on any statement, so no query holds row locks for long (MR-3).
    pub statement_timeout: Duration,
}

pub async fn connect(url: &str, s: &PoolSettings) -> anyhow::Result<PgPool> {
    let options = PgConnectOptions::from_str(url)
        .context("DATABASE_URL is not a valid PostgreSQL URL")?
        .application_name("queue-checkout")
        .options([
            ("statement_timeout", s.statement_timeout.as_millis().to_string()),
            // A transaction left open by a stuck client is ended rather than holding locks forever.
            ("idle_in_transaction_session_timeout", "15000".to_owned()),
        ]);
    PgPoolOptions::new()
        .max_connections(s.max_connections)
        .min_connections(1.min(s.max_connections))
        .acquire_timeout(s.acquire_timeout)
        .connect_with(options)
        .await
        .with_context(|| "cannot connect to PostgreSQL (DATABASE_URL); is it running and reachable?")
}

/// Creates the database named in `url` if it does not exist yet (local and first-deploy convenience).
pub async fn ensure_database(url: &str) -> anyhow::Result<()> {
    let exists = sqlx::Postgres::database_exists(url)
        .await
        .with_context(|| "cannot reach PostgreSQL (DATABASE_URL) to check the database exists")?;
    if !exists {
        tracing::info!("creating the database named in DATABASE_URL");
        sqlx::Postgres::create_database(url).await.context("creating the database named in DATABASE_URL")?;
    }
    Ok(())
}

pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR.run(pool).await.context("applying database migrations")?;
    Ok(())
}
