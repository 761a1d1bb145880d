//! Admin: create, change, publish, unpublish and delete events.

use axum::{extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use pipeline::states::EventStatus;
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
    catalog::{self, Audience, EventDetail, EventSummary},
    error::{ApiError, ErrorBody},
    http::extract::{ApiJson, ApiPath, ApiQuery, AuthUser},
    http::page::Page,
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_event, list_events))
        .routes(routes!(get_event, update_event, delete_event))
        .routes(routes!(publish_event))
        .routes(routes!(unpublish_event))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEvent {
    #[schema(schema_with = fields::text_schema::<1, 200, false, false>)]
    pub name: String,
    #[schema(schema_with = fields::text_schema::<1, 200, false, false>)]
    pub venue: String,
    #[schema(example = "2027-03-06T11:00:00Z")]
    pub starts_at: DateTime<Utc>,
    #[schema(example = "2027-03-06T16:00:00Z")]
    pub ends_at: Option<DateTime<Utc>>,
    #[schema(example = "2027-02-01T03:00:00Z")]
    pub sale_opens_at: Option<DateTime<Utc>>,
    #[schema(example = "2027-03-06T09:00:00Z")]
    pub sale_closes_at: Option<DateTime<Utc>>,
    #[serde(default)]
    #[schema(schema_with = fields::text_schema::<0, 5000, true, false>)]
    pub description: String,
    /// Default 6.
    #[schema(minimum = 1, maximum = 100)]
    pub max_tickets_per_buyer: Option<i32>,
}

/// Every field optional; `null` clears an optional field.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateEvent {
    #[schema(schema_with = fields::text_schema::<1, 200, false, true>)]
    pub name: Option<String>,
    #[schema(schema_with = fields::text_schema::<1, 200, false, true>)]
    pub venue: Option<String>,
    #[schema(example = "2027-03-06T11:00:00Z")]
    pub starts_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "fields::nullable")]
    #[schema(value_type = Option<DateTime<Utc>>, example = "2027-03-06T16:00:00Z")]
    pub ends_at: Option<Option<DateTime<Utc>>>,
    #[serde(default, deserialize_with = "fields::nullable")]
    #[schema(value_type = Option<DateTime<Utc>>, example = "2027-02-01T03:00:00Z")]
    pub sale_opens_at: Option<Option<DateTime<Utc>>>,
    #[serde(default, deserialize_with = "fields::nullable")]
    #[schema(value_type = Option<DateTime<Utc>>, example = "2027-03-06T09:00:00Z")]
    pub sale_closes_at: Option<Option<DateTime<Utc>>>,
    #[schema(schema_with = fields::text_schema::<0, 5000, true, true>)]
    pub description: Option<String>,
    #[schema(minimum = 1, maximum = 100)]
    pub max_tickets_per_buyer: Option<i32>,
}

/// The editable state of an event, validated as a whole.
struct EventFields {
    name: String,
    venue: String,
    description: String,
    starts_at: DateTime<Utc>,
    ends_at: Option<DateTime<Utc>>,
    sale_opens_at: Option<DateTime<Utc>>,
    sale_closes_at: Option<DateTime<Utc>>,
    max_tickets_per_buyer: i32,
}

impl EventFields {
    fn validated(self) -> Result<Self, ApiError> {
        fields::ordered("the event", Some(self.starts_at), self.ends_at)?;
        fields::ordered("the sale window", self.sale_opens_at, self.sale_closes_at)?;
        if !(1..=100).contains(&self.max_tickets_per_buyer) {
            return Err(ApiError::validation("max_tickets_per_buyer must be between 1 and 100"));
        }
        Ok(EventFields {
            name: fields::text("name", &self.name, 1, 200, false)?,
            venue: fields::text("venue", &self.venue, 1, 200, false)?,
            description: fields::text("description", &self.description, 0, 5000, true)?,
            ..self
        })
    }

    fn audit(&self) -> serde_json::Value {
        json!({
            "name": self.name, "venue": self.venue, "starts_at": self.starts_at, "ends_at": self.ends_at,
            "sale_opens_at": self.sale_opens_at, "sale_closes_at": self.sale_closes_at,
            "max_tickets_per_buyer": self.max_tickets_per_buyer,
        })
    }
}

/// Create a draft event (with default waiting-room settings).
#[utoipa::path(post, path = "/api/admin/events", tag = "admin", security(("bearer" = [])),
    request_body = CreateEvent,
    responses((status = 201, body = EventDetail)))]
async fn create_event(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<CreateEvent>,
) -> Result<(StatusCode, axum::Json<EventDetail>), ApiError> {
    user.require(Permission::ManageCatalog)?;
    let f = EventFields {
        name: req.name,
        venue: req.venue,
        description: req.description,
        starts_at: req.starts_at,
        ends_at: req.ends_at,
        sale_opens_at: req.sale_opens_at,
        sale_closes_at: req.sale_closes_at,
        max_tickets_per_buyer: req.max_tickets_per_buyer.unwrap_or(6),
    }
    .validated()?;
    let detail =
        catalog_change(&state, user, Permission::ManageCatalog, async move |tx: &mut PgConnection| {
            let id = Uuid::now_v7();
            sqlx::query!(
                r#"insert into events (id, name, venue, description, starts_at, ends_at, sale_opens_at,
                                   sale_closes_at, max_tickets_per_buyer)
               values ($1, $2, $3, $4, $5, $6, $7, $8, $9)"#,
                id,
                f.name,
                f.venue,
                f.description,
                f.starts_at,
                f.ends_at,
                f.sale_opens_at,
                f.sale_closes_at,
                f.max_tickets_per_buyer
            )
            .execute(&mut *tx)
            .await?;
            waiting_room::settings::insert_defaults(tx, id).await?;
            Ok((detail(tx, id).await?, Audited::new("event.create", "event", id, f.audit())))
        })
        .await?;
    Ok((StatusCode::CREATED, axum::Json(detail)))
}

/// Every event, drafts included.
#[utoipa::path(get, operation_id = "admin_list_events", path = "/api/admin/events", tag = "admin", security(("bearer" = [])),
    params(Page),
    responses((status = 200, body = Vec<EventSummary>)))]
async fn list_events(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<axum::Json<Vec<EventSummary>>, ApiError> {
    user.require(Permission::ManageCatalog)?;
    let (limit, offset) = page.bounds()?;
    let mut conn = state.db.acquire().await?;
    Ok(axum::Json(catalog::list_events(&mut conn, Audience::Admin, limit, offset).await?))
}

/// One event with sold and held counts.
#[utoipa::path(get, operation_id = "admin_get_event", path = "/api/admin/events/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = EventDetail)))]
async fn get_event(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<EventDetail>, ApiError> {
    user.require(Permission::ManageCatalog)?;
    let mut conn = state.db.acquire().await?;
    Ok(axum::Json(detail(&mut conn, id).await?))
}

/// Change an event's fields.
#[utoipa::path(patch, path = "/api/admin/events/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = UpdateEvent,
    responses((status = 200, body = EventDetail),
        (status = 409, description = "the change puts a time window out of order with a stored end (`window_conflict`): send both ends", body = ErrorBody)))]
async fn update_event(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<UpdateEvent>,
) -> Result<axum::Json<EventDetail>, ApiError> {
    catalog_change(&state, user, Permission::ManageCatalog, async move |tx: &mut PgConnection| {
        let cur = sqlx::query_as!(
            EventFields,
            r#"select name, venue, description, starts_at, ends_at, sale_opens_at, sale_closes_at,
                      max_tickets_per_buyer
               from events where id = $1 for update"#,
            id
        )
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(ApiError::NotFound("event"))?;
        let f = EventFields {
            name: req.name.unwrap_or(cur.name),
            venue: req.venue.unwrap_or(cur.venue),
            description: req.description.unwrap_or(cur.description),
            starts_at: req.starts_at.unwrap_or(cur.starts_at),
            ends_at: req.ends_at.unwrap_or(cur.ends_at),
            sale_opens_at: req.sale_opens_at.unwrap_or(cur.sale_opens_at),
            sale_closes_at: req.sale_closes_at.unwrap_or(cur.sale_closes_at),
            max_tickets_per_buyer: req.max_tickets_per_buyer.unwrap_or(cur.max_tickets_per_buyer),
        };
        fields::window_after_change(
            "the event",
            (req.starts_at, req.ends_at.flatten()),
            (Some(f.starts_at), f.ends_at),
        )?;
        let sale_sent = (req.sale_opens_at.flatten(), req.sale_closes_at.flatten());
        fields::window_after_change("the sale window", sale_sent, (f.sale_opens_at, f.sale_closes_at))?;
        let f = f.validated()?;
        sqlx::query!(
            r#"update events set name = $2, venue = $3, description = $4, starts_at = $5, ends_at = $6,
                      sale_opens_at = $7, sale_closes_at = $8, max_tickets_per_buyer = $9, updated_at = now()
               where id = $1"#,
            id,
            f.name,
            f.venue,
            f.description,
            f.starts_at,
            f.ends_at,
            f.sale_opens_at,
            f.sale_closes_at,
            f.max_tickets_per_buyer
        )
        .execute(&mut *tx)
        .await?;
        Ok((axum::Json(detail(tx, id).await?), Audited::new("event.update", "event", id, f.audit())))
    })
    .await
}

/// Make an event public.
#[utoipa::path(post, path = "/api/admin/events/{id}/publish", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = EventDetail),
        (status = 409, body = ErrorBody)))]
async fn publish_event(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<EventDetail>, ApiError> {
    set_status(&state, user, id, EventStatus::Published).await.map(axum::Json)
}

/// Take an event back to draft (only while it has no orders).
#[utoipa::path(post, path = "/api/admin/events/{id}/unpublish", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = EventDetail),
        (status = 409, body = ErrorBody)))]
async fn unpublish_event(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<EventDetail>, ApiError> {
    set_status(&state, user, id, EventStatus::Draft).await.map(axum::Json)
}

async fn set_status(
    state: &AppState,
    user: AuthUser,
    id: Uuid,
    to: EventStatus,
) -> Result<EventDetail, ApiError> {
    catalog_change(state, user, Permission::ManageCatalog, async move |tx: &mut PgConnection| {
        let from = lock_status(tx, id).await?;
        if from == EventStatus::Cancelled {
            return Err(ApiError::conflict("event_cancelled", "a cancelled event cannot change status"));
        }
        if to == EventStatus::Draft && has_orders(tx, id).await? {
            return Err(ApiError::conflict(
                "event_has_orders",
                "an event with orders cannot go back to draft",
            ));
        }
        if from == to {
            return Ok((detail(tx, id).await?, None));
        }
        sqlx::query!(
            r#"update events set status = $2, updated_at = now(),
                      published_at = case when $3 then coalesce(published_at, now()) else published_at end
               where id = $1"#,
            id,
            to as _,
            to == EventStatus::Published
        )
        .execute(&mut *tx)
        .await?;
        let action = if to == EventStatus::Published { "event.publish" } else { "event.unpublish" };
        Ok((
            detail(tx, id).await?,
            Some(Audited::new(action, "event", id, json!({ "from": from, "to": to }))),
        ))
    })
    .await
}

async fn lock_status(conn: &mut PgConnection, id: Uuid) -> Result<EventStatus, ApiError> {
    sqlx::query_scalar!(r#"select status as "status: EventStatus" from events where id = $1 for update"#, id)
        .fetch_optional(conn)
        .await?
        .ok_or(ApiError::NotFound("event"))
}

/// Delete an event and everything on sale for it (only while it has no orders and no checkout requests).
#[utoipa::path(delete, path = "/api/admin/events/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 204), (status = 409, body = ErrorBody)))]
async fn delete_event(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    catalog_change(&state, user, Permission::ManageCatalog, async move |tx: &mut PgConnection| {
        let name = sqlx::query_scalar!("select name from events where id = $1 for update", id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(ApiError::NotFound("event"))?;
        if has_orders(tx, id).await? {
            return Err(ApiError::conflict(
                "event_has_orders",
                "an event with orders or checkout requests cannot be deleted; unpublish or cancel it",
            ));
        }
        sqlx::query!("delete from events where id = $1", id).execute(&mut *tx).await?;
        Ok((StatusCode::NO_CONTENT, Audited::new("event.delete", "event", id, json!({ "name": name }))))
    })
    .await
}

/// Whether buyers have anything for the event: orders, or checkout requests (still queued, or refused,
/// whose ids buyers hold and may ask about).
async fn has_orders(conn: &mut PgConnection, event: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select exists(select 1 from orders where event_id = $1)
                  or exists(select 1 from order_requests where event_id = $1) as "e!""#,
        event
    )
    .fetch_one(conn)
    .await
}

pub async fn detail(conn: &mut PgConnection, id: Uuid) -> Result<EventDetail, ApiError> {
    catalog::event_detail(conn, id, Audience::Admin).await?.ok_or(ApiError::NotFound("event"))
}
