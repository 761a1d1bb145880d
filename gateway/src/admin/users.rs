//! Admin: list users and change roles (how staff accounts for the gate are made).

use axum::extract::State;
use serde::Deserialize;
use serde_json::json;
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::change::{Audited, audited};
use crate::{
    accounts::{Permission, Role, routes::User, store},
    error::{ApiError, ErrorBody},
    http::extract::{ApiJson, ApiPath, ApiQuery, AuthUser},
    http::page::Page,
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_users)).routes(routes!(set_role))
}

/// Users, oldest first.
#[utoipa::path(get, path = "/api/admin/users", tag = "admin", security(("bearer" = [])), params(Page),
    responses((status = 200, body = Vec<User>)))]
async fn list_users(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<axum::Json<Vec<User>>, ApiError> {
    user.require(Permission::ManageUsers)?;
    let (limit, offset) = page.bounds()?;
    let mut conn = state.db.acquire().await?;
    let rows = store::list(&mut conn, limit, offset).await?;
    Ok(axum::Json(rows.into_iter().map(User::from).collect()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRole {
    pub role: Role,
}

/// Give a user the buyer, staff or admin role. A change ends the user's sessions at once: they sign in
/// again and get the new role.
#[utoipa::path(put, path = "/api/admin/users/{id}/role", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = SetRole,
    responses((status = 200, body = User), (status = 409, body = ErrorBody)))]
async fn set_role(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<SetRole>,
) -> Result<axum::Json<User>, ApiError> {
    let admin = user.require(Permission::ManageUsers)?;
    if id == admin.id && req.role != Role::Admin {
        return Err(ApiError::conflict("self_demotion", "an admin cannot remove their own admin role"));
    }
    let row = audited(&state, admin, async move |tx: &mut PgConnection| {
        let row = store::set_role(tx, id, req.role).await?.ok_or(ApiError::NotFound("user"))?;
        Ok((row, Audited::new("user.set_role", "user", id, json!({ "role": req.role }))))
    })
    .await?;
    state.sessions.forget(id);
    Ok(axum::Json(row.into()))
}
