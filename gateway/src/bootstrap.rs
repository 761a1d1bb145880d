//! The first admin: created from `BOOTSTRAP_ADMIN_EMAIL`/`BOOTSTRAP_ADMIN_PASSWORD` at start, or with the
//! `gateway create-admin` command. Never through an open endpoint.

use anyhow::Context;
use sqlx::PgPool;

use crate::accounts::{Email, NewPassword, password, store};

/// Ensures `email` is an admin. A new account gets `password`; an existing one keeps its own.
pub async fn ensure_admin(db: &PgPool, email: &str, password_plain: &str) -> anyhow::Result<()> {
    let email = Email::parse(email).map_err(|e| anyhow::anyhow!("BOOTSTRAP_ADMIN_EMAIL: {e}"))?;
    let pw = NewPassword::parse(password_plain, &email)
        .map_err(|e| anyhow::anyhow!("BOOTSTRAP_ADMIN_PASSWORD: {e}"))?;
    let pw = pw.expose().to_owned();
    let hash = tokio::task::spawn_blocking(move || password::hash_now(&pw)).await??;
    let mut conn = db.acquire().await?;
    let (user, created) = store::ensure_admin(&mut conn, &email, "Administrator", &hash)
        .await
        .context("ensuring the bootstrap admin")?;
    if created {
        tracing::info!(user_id = %user.id, "bootstrap admin created");
    } else {
        tracing::info!(user_id = %user.id, "bootstrap admin present");
    }
    Ok(())
}
