//! The audit log: every admin change, with who did it and what changed. Written in the same transaction
//! as the change itself, so the log can never miss a change or record one that was rolled back.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    accounts::Permission,
    error::ApiError,
    http::extract::{ApiQuery, AuthUser},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

pub async fn record(
    conn: &mut PgConnection,
    actor: Uuid,
    action: &str,
    entity: &str,
    entity_id: Option<Uuid>,
    details: serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into audit_log (actor_id, action, entity, entity_id, details) values ($1, $2, $3, $4, $5)",
        actor,
        action,
        entity,
        entity_id,
        details
    )
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Serialize, ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub actor_id: Option<Uuid>,
    /// The actor's email at the time of reading (null if the account is gone).
    pub actor_email: Option<String>,
    pub action: String,
    pub entity: String,
    pub entity_id: Option<Uuid>,
    pub details: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditFilter {
    /// e.g. `event`, `ticket_category`, `merchandise`, `user`.
    #[param(pattern = "^[a-z_]{1,64}$")]
    pub entity: Option<String>,
    pub entity_id: Option<Uuid>,
    /// Entries with an id below this (for paging backwards).
    pub before: Option<i64>,
    /// 1–500, default 100.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// Newest admin actions first.
#[utoipa::path(get, operation_id = "list_audit_log", path = "/api/admin/audit-log", tag = "admin", security(("bearer" = [])),
    params(AuditFilter),
    responses((status = 200, body = Vec<AuditEntry>)))]
async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(f): ApiQuery<AuditFilter>,
) -> Result<axum::Json<Vec<AuditEntry>>, ApiError> {
    user.require(Permission::ReadAudit)?;
    if f.entity.as_ref().is_some_and(|e| {
        e.is_empty() || e.len() > 64 || !e.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
    }) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "entity must be 1-64 lower-case letters and underscores",
        ));
    }
    let limit = f.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("invalid_query", "limit must be between 1 and 500"));
    }
    let mut conn = state.db.acquire().await?;
    let rows = sqlx::query_as!(
        AuditEntry,
        r#"select a.id, a.actor_id, u.email as "actor_email?", a.action, a.entity, a.entity_id, a.details,
                  a.created_at
           from audit_log a left join users u on u.id = a.actor_id
           where ($1::text is null or a.entity = $1)
             and ($2::uuid is null or a.entity_id = $2)
             and ($3::bigint is null or a.id < $3)
           order by a.id desc limit $4"#,
        f.entity,
        f.entity_id,
        f.before,
        limit
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(axum::Json(rows))
}
