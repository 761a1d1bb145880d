//! One admin change, made the way every admin write is made: the caller's permission first, then one
//! transaction holding the change and its audit record (so the log can never miss a change or record one
//! that was rolled back), the commit, and for catalog changes the caches dropped so the change shows at
//! once.

use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use super::audit;
use crate::{accounts::Permission, error::ApiError, http::extract::AuthUser, state::AppState};

/// What a change writes to the audit log.
pub struct Audited {
    pub action: &'static str,
    pub entity: &'static str,
    pub id: Uuid,
    pub details: Value,
}

impl Audited {
    pub fn new(action: &'static str, entity: &'static str, id: Uuid, details: Value) -> Self {
        Self { action, entity, id, details }
    }
}

/// Runs `change` for an `admin` (whose permission the caller checked) in one transaction with its audit
/// record (none when the change found nothing to change); returns what the change returned.
pub async fn audited<T, A: Into<Option<Audited>>>(
    state: &AppState,
    admin: AuthUser,
    change: impl AsyncFnOnce(&mut PgConnection) -> Result<(T, A), ApiError>,
) -> Result<T, ApiError> {
    let mut tx = state.db.begin().await?;
    let (value, audited) = change(&mut tx).await?;
    if let Some(a) = audited.into() {
        audit::record(&mut tx, admin.id, a.action, a.entity, Some(a.id), a.details).await?;
    }
    tx.commit().await?;
    Ok(value)
}

/// A change under `permission` that the public catalog (or the waiting room's public view) shows:
/// [`audited`], then every cached view of the catalog is dropped.
pub async fn catalog_change<T, A: Into<Option<Audited>>>(
    state: &AppState,
    user: AuthUser,
    permission: Permission,
    change: impl AsyncFnOnce(&mut PgConnection) -> Result<(T, A), ApiError>,
) -> Result<T, ApiError> {
    let admin = user.require(permission)?;
    let value = audited(state, admin, change).await?;
    state.catalog_changed();
    Ok(value)
}
