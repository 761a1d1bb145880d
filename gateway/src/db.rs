//! PostgreSQL: the bounded pool every request shares (built as every process builds it, `database`), and
//! the embedded migrations.

use anyhow::Context;
use sqlx::{
    PgPool,
    migrate::{MigrateDatabase, Migrator},
};

/// The schema, embedded in the binary (`migrations/` at the repository root).
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

pub use database::{PoolSettings, connect};

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
