//! Admin: an event's schedules (days or sessions).

use axum::{extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{
    change::{Audited, catalog_change},
    fields,
};
use crate::{
    accounts::Permission,
    catalog::Schedule,
    error::{ApiError, ErrorBody},
    http::extract::{ApiJson, ApiPath, AuthUser},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_schedule)).routes(routes!(update_schedule, delete_schedule))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSchedule {
    #[schema(example = "2027-03-06T11:00:00Z")]
    pub starts_at: DateTime<Utc>,
    #[schema(example = "2027-03-06T16:00:00Z")]
    pub ends_at: DateTime<Utc>,
    #[serde(default)]
    #[schema(schema_with = fields::text_schema::<0, 100, false, false>)]
    pub label: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSchedule {
    #[schema(example = "2027-03-06T11:00:00Z")]
    pub starts_at: Option<DateTime<Utc>>,
    #[schema(example = "2027-03-06T16:00:00Z")]
    pub ends_at: Option<DateTime<Utc>>,
    #[schema(schema_with = fields::text_schema::<0, 100, false, true>)]
    pub label: Option<String>,
}

fn validated(label: &str, starts_at: DateTime<Utc>, ends_at: DateTime<Utc>) -> Result<String, ApiError> {
    fields::ordered("the schedule", Some(starts_at), Some(ends_at))?;
    fields::text("label", label, 0, 100, false)
}

/// Add a schedule to an event.
#[utoipa::path(post, path = "/api/admin/events/{id}/schedules", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "event id")), request_body = CreateSchedule,
    responses((status = 201, body = Schedule)))]
async fn create_schedule(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(event): ApiPath<Uuid>,
    ApiJson(req): ApiJson<CreateSchedule>,
) -> Result<(StatusCode, axum::Json<Schedule>), ApiError> {
    let schedule = catalog_change(&state, user, Permission::ManageCatalog, async move |tx: &mut PgConnection| {
        let label = validated(&req.label, req.starts_at, req.ends_at)?;
        let schedule = sqlx::query_as!(
            Schedule,
            r#"insert into schedules (id, event_id, label, starts_at, ends_at)
               select $1, id, $3, $4, $5 from events where id = $2
               returning id, event_id, label, starts_at, ends_at"#,
            Uuid::now_v7(),
            event,
            label,
            req.starts_at,
            req.ends_at
        )
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(ApiError::NotFound("event"))?;
        let details = json!({
            "event_id": event, "label": schedule.label, "starts_at": schedule.starts_at, "ends_at": schedule.ends_at,
        });
        let id = schedule.id;
        Ok((schedule, Audited::new("schedule.create", "schedule", id, details)))
    })
    .await?;
    Ok((StatusCode::CREATED, axum::Json(schedule)))
}

/// Change a schedule.
#[utoipa::path(patch, path = "/api/admin/schedules/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = UpdateSchedule,
    responses((status = 200, body = Schedule),
        (status = 409, description = "the change puts a time window out of order with a stored end (`window_conflict`): send both ends", body = ErrorBody)))]
async fn update_schedule(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<UpdateSchedule>,
) -> Result<axum::Json<Schedule>, ApiError> {
    catalog_change(&state, user, Permission::ManageCatalog, async move |tx: &mut PgConnection| {
        let cur = sqlx::query_as!(
            Schedule,
            "select id, event_id, label, starts_at, ends_at from schedules where id = $1 for update",
            id
        )
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(ApiError::NotFound("schedule"))?;
        let starts_at = req.starts_at.unwrap_or(cur.starts_at);
        let ends_at = req.ends_at.unwrap_or(cur.ends_at);
        fields::window_after_change(
            "the schedule",
            (req.starts_at, req.ends_at),
            (Some(starts_at), Some(ends_at)),
        )?;
        let label = validated(req.label.as_deref().unwrap_or(&cur.label), starts_at, ends_at)?;
        let schedule = sqlx::query_as!(
            Schedule,
            r#"update schedules set label = $2, starts_at = $3, ends_at = $4, updated_at = now() where id = $1
               returning id, event_id, label, starts_at, ends_at"#,
            id,
            label,
            starts_at,
            ends_at
        )
        .fetch_one(&mut *tx)
        .await?;
        let details = json!({ "label": schedule.label, "starts_at": starts_at, "ends_at": ends_at });
        Ok((axum::Json(schedule), Audited::new("schedule.update", "schedule", id, details)))
    })
    .await
}

/// Remove a schedule (categories tied to it stay, untied).
#[utoipa::path(delete, path = "/api/admin/schedules/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 204)))]
async fn delete_schedule(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    catalog_change(&state, user, Permission::ManageCatalog, async move |tx: &mut PgConnection| {
        let event = sqlx::query_scalar!("delete from schedules where id = $1 returning event_id", id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(ApiError::NotFound("schedule"))?;
        Ok((
            StatusCode::NO_CONTENT,
            Audited::new("schedule.delete", "schedule", id, json!({ "event_id": event })),
        ))
    })
    .await
}
