//! Admin: notifications that failed every attempt, and replaying one once its cause is fixed.

use axum::extract::State;
use pipeline::webhooks::{self, DeadLetter};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    accounts::Permission,
    admin::audit,
    error::ApiError,
    http::extract::{ApiPath, AuthUser},
    state::AppState,
};

#[derive(Serialize, ToSchema)]
pub struct Replayed {
    pub id: Uuid,
    /// `queued`: back on the webhook stream with a fresh attempt count.
    pub status: &'static str,
}

/// Notifications that failed every attempt, oldest first.
#[utoipa::path(get, operation_id = "list_dead_letters", path = "/api/admin/webhooks/dead-letters", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Vec<DeadLetter>)))]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<axum::Json<Vec<DeadLetter>>, ApiError> {
    user.require(Permission::ManagePayments)?;
    let letters = webhooks::dead_letters(&state.redis, &state.keys)
        .await
        .map_err(ApiError::redis_down(DEAD_LETTERS_DOWN))?;
    Ok(axum::Json(letters))
}

/// Put a dead-lettered notification back on the webhook stream (applied once, like any other).
#[utoipa::path(post, operation_id = "replay_dead_letter", path = "/api/admin/webhooks/dead-letters/{id}/replay", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Replayed)))]
pub async fn replay(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<Replayed>, ApiError> {
    let user = user.require(Permission::ManagePayments)?;
    if !webhooks::replay(&state.redis, &state.keys, id)
        .await
        .map_err(ApiError::redis_down(DEAD_LETTERS_DOWN))?
    {
        return Err(ApiError::NotFound("dead letter"));
    }
    let mut conn = state.db.acquire().await?;
    audit::record(
        &mut conn,
        user.id,
        "webhook.replay",
        "webhook_dead_letter",
        Some(id),
        serde_json::json!({}),
    )
    .await?;
    Ok(axum::Json(Replayed { id, status: "queued" }))
}

const DEAD_LETTERS_DOWN: &str = "dead letters are unavailable right now, retry shortly";
