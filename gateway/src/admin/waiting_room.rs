//! Admin: the waiting-room settings of an event (`PUT /api/admin/events/{id}/waiting-room`).

use axum::extract::State;
use serde::Serialize;
use serde_json::json;
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;
use waiting_room::{
    queue::QueueStats,
    settings::{self, Settings, SettingsError, SettingsPatch},
};

use super::{
    change::{Audited, catalog_change},
    preview::{Now, Preview, Proposed, forecast},
};
use crate::{
    accounts::Permission,
    error::{ApiError, ErrorBody},
    http::extract::{ApiJson, ApiPath, ApiQuery, AuthUser},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_settings, put_settings))
        .routes(routes!(stats))
        .routes(routes!(preview))
}

impl From<SettingsError> for ApiError {
    fn from(e: SettingsError) -> Self {
        match e {
            SettingsError::Invalid(m) => ApiError::Validation(m),
            SettingsError::UnknownEvent => ApiError::NotFound("event"),
            e @ SettingsError::AfterSaleCloses => ApiError::conflict("window_conflict", e.to_string()),
            SettingsError::Db(e) => e.into(),
        }
    }
}

/// The waiting-room settings in force for an event.
#[utoipa::path(get, path = "/api/admin/events/{id}/waiting-room", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Settings)))]
async fn get_settings(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<Settings>, ApiError> {
    user.require(Permission::ControlWaitingRoom)?;
    let mut conn = state.db.acquire().await?;
    settings::load(&mut conn, id).await?.map(axum::Json).ok_or(ApiError::NotFound("event"))
}

/// Change the admission rate, max active buyers, pause, token lifetime, presence grace or sale opening.
#[utoipa::path(put, path = "/api/admin/events/{id}/waiting-room", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = SettingsPatch,
    responses((status = 200, body = Settings),
        (status = 409, description = "the new opening is not before the event's sale closing (`window_conflict`)", body = ErrorBody)))]
async fn put_settings(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(patch): ApiJson<SettingsPatch>,
) -> Result<axum::Json<Settings>, ApiError> {
    // The opening time is part of the public event page: a catalog change.
    catalog_change(&state, user, Permission::ControlWaitingRoom, async move |tx: &mut PgConnection| {
        let now = settings::update(tx, id, &patch).await?;
        let details = json!({
            "admission_rate_per_sec": now.admission_rate_per_sec, "max_active": now.max_active,
            "paused": now.paused, "token_ttl_secs": now.token_ttl_secs,
            "presence_grace_secs": now.presence_grace_secs, "sale_opens_at": now.sale_opens_at,
        });
        Ok((axum::Json(now), Audited::new("waiting_room.update", "event", id, details)))
    })
    .await
}

#[derive(Serialize, ToSchema)]
pub struct WaitingRoomStats {
    #[serde(flatten)]
    pub queue: QueueStats,
    pub admission_rate_per_sec: i32,
    pub max_active: i32,
    pub paused: bool,
    /// Seconds until everyone waiting now is admitted at the current rate.
    pub estimated_drain_secs: i64,
    /// Push connections held by this gateway (all events).
    pub push_connections_here: usize,
}

/// Live queue figures: waiting, pre-queue, admitted and active, leavers, rate, time to drain.
#[utoipa::path(get, path = "/api/admin/events/{id}/waiting-room/stats", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = WaitingRoomStats)))]
async fn stats(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<WaitingRoomStats>, ApiError> {
    let (s, queue) = measured(&state, user, id).await?;
    let rate = i64::from(s.admission_rate_per_sec.max(1));
    Ok(axum::Json(WaitingRoomStats {
        estimated_drain_secs: (queue.waiting + queue.prequeue + rate - 1) / rate,
        queue,
        admission_rate_per_sec: s.admission_rate_per_sec,
        max_active: s.max_active,
        paused: s.paused,
        push_connections_here: state.hub.connections(),
    }))
}

/// What a rate or cap change will do, before it is applied (the console shows it beside the form).
#[utoipa::path(get, path = "/api/admin/events/{id}/waiting-room/preview", tag = "admin",
    security(("bearer" = [])), params(("id" = Uuid, Path), Proposed),
    responses((status = 200, body = Preview)))]
async fn preview(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(proposed): ApiQuery<Proposed>,
) -> Result<axum::Json<Preview>, ApiError> {
    let (rate, cap) = (proposed.admission_rate_per_sec, proposed.max_active);
    SettingsPatch { admission_rate_per_sec: rate, max_active: cap, ..Default::default() }.validate()?;
    let (s, queue) = measured(&state, user, id).await?;
    let mut conn = state.db.acquire().await?;
    let (tickets_remaining, orders, tickets_per_order): (i64, i64, Option<f64>) = sqlx::query_as(
        "select (select coalesce(sum(quota - sold - held), 0)::bigint from ticket_categories where event_id = $1),
                (select count(*) from orders where event_id = $1),
                (select avg(units)::float8 from (
                   select sum(i.quantity) as units from orders o
                   join order_items i on i.order_id = o.id and i.ticket_category_id is not null
                   where o.event_id = $1 group by o.id) per_order)",
    )
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    let orders_per_admission = if orders == 0 || queue.admitted_total == 0 {
        1.0
    } else {
        (orders as f64 / queue.admitted_total as f64).min(1.0)
    };
    let now = Now {
        waiting: queue.waiting + queue.prequeue,
        tickets_remaining,
        tickets_per_order: tickets_per_order.filter(|t| *t > 0.0).unwrap_or(1.0),
        orders_per_admission,
        backlog: state.order_backlog.load(std::sync::atomic::Ordering::Relaxed),
        backlog_limit: state.config.process.order_backlog_limit,
        token_ttl_secs: s.token_ttl_secs,
        paused: s.paused,
    };
    Ok(axum::Json(forecast(now, rate.unwrap_or(s.admission_rate_per_sec), cap.unwrap_or(s.max_active))))
}

/// The settings in force and the live queue of an event, for someone allowed to control its room.
async fn measured(state: &AppState, user: AuthUser, id: Uuid) -> Result<(Settings, QueueStats), ApiError> {
    user.require(Permission::ControlWaitingRoom)?;
    let mut conn = state.db.acquire().await?;
    let s = settings::load(&mut conn, id).await?.ok_or(ApiError::NotFound("event"))?;
    drop(conn);
    let queue = state
        .queue
        .stats(id, chrono::Utc::now().timestamp_millis())
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok((s, queue))
}
