//! The first admin: created from `BOOTSTRAP_ADMIN_EMAIL`/`BOOTSTRAP_ADMIN_PASSWORD` at start, or with the
//! `gateway create-admin` command. Never through an open endpoint.

use anyhow::Context;
use sqlx::PgPool;

use crate::accounts::{Email, NewPassword, password, store};

/// Ensures `email` is an admin with `password_plain`, unless it is an admin already (then it keeps its
/// own password). An existing buyer or staff account with that email is taken over, never promoted as it
/// is: whoever registered the address first (registration does not prove it) loses the account, its
/// password and its sessions. Returns what was found.
pub async fn ensure_admin(db: &PgPool, email: &str, password_plain: &str) -> anyhow::Result<store::Ensured> {
    let email = Email::parse(email).map_err(|e| anyhow::anyhow!("BOOTSTRAP_ADMIN_EMAIL: {e}"))?;
    let pw = NewPassword::parse(password_plain, &email)
        .map_err(|e| anyhow::anyhow!("BOOTSTRAP_ADMIN_PASSWORD: {e}"))?;
    let pw = pw.expose().to_owned();
    let hash = tokio::task::spawn_blocking(move || password::hash_now(&pw)).await??;
    let mut conn = db.acquire().await?;
    let (user_id, found) = store::ensure_admin(&mut conn, &email, "Administrator", &hash)
        .await
        .context("ensuring the bootstrap admin")?;
    match found {
        store::Ensured::Created => tracing::info!(%user_id, "bootstrap admin created"),
        store::Ensured::Present => tracing::info!(%user_id, "bootstrap admin present"),
        store::Ensured::TakenOver => tracing::warn!(
            %user_id,
            "a non-admin account had the bootstrap admin email: it is now the admin, with the configured \
             password; its earlier password and sessions no longer work"
        ),
    }
    Ok(found)
}
