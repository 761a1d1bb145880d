//! Admin: ticket categories, an event's tickets (price, quota, per-order limit, sale window).
//!
//! The quota can be lowered only down to what is already sold or held: the check happens under the row
//! lock, and the table's `ticket_categories_no_oversell` constraint backs it up.

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
    products::{self, Family},
};
use crate::{
    accounts::Permission,
    catalog::{self, TicketCategory},
    error::{ApiError, ErrorBody, on_constraint},
    http::extract::{ApiJson, ApiPath, AuthUser},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_category)).routes(routes!(update_category, delete_category))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCategory {
    #[schema(schema_with = fields::text_schema::<1, 100, false, false>)]
    pub name: String,
    /// Rupiah, integer, ≥ 0.
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub price: i64,
    #[schema(minimum = 0, maximum = 10_000_000)]
    pub quota: i32,
    #[schema(minimum = 1, maximum = 100)]
    pub max_per_order: i32,
    #[serde(default)]
    #[schema(schema_with = fields::text_schema::<0, 2000, true, false>)]
    pub description: String,
    pub schedule_id: Option<Uuid>,
    #[schema(example = "2027-02-01T03:00:00Z")]
    pub sale_starts_at: Option<DateTime<Utc>>,
    #[schema(example = "2027-03-05T17:00:00Z")]
    pub sale_ends_at: Option<DateTime<Utc>>,
    #[serde(default)]
    #[schema(minimum = -10_000, maximum = 10_000)]
    pub sort_order: i32,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCategory {
    #[schema(schema_with = fields::text_schema::<1, 100, false, true>)]
    pub name: Option<String>,
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub price: Option<i64>,
    #[schema(minimum = 0, maximum = 10_000_000)]
    pub quota: Option<i32>,
    #[schema(minimum = 1, maximum = 100)]
    pub max_per_order: Option<i32>,
    #[schema(schema_with = fields::text_schema::<0, 2000, true, true>)]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "fields::nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub schedule_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "fields::nullable")]
    #[schema(value_type = Option<DateTime<Utc>>, example = "2027-02-01T03:00:00Z")]
    pub sale_starts_at: Option<Option<DateTime<Utc>>>,
    #[serde(default, deserialize_with = "fields::nullable")]
    #[schema(value_type = Option<DateTime<Utc>>, example = "2027-03-05T17:00:00Z")]
    pub sale_ends_at: Option<Option<DateTime<Utc>>>,
    #[schema(minimum = -10_000, maximum = 10_000)]
    pub sort_order: Option<i32>,
}

struct CategoryFields {
    name: String,
    description: String,
    price: i64,
    quota: i32,
    max_per_order: i32,
    schedule_id: Option<Uuid>,
    sale_starts_at: Option<DateTime<Utc>>,
    sale_ends_at: Option<DateTime<Utc>>,
    sort_order: i32,
}

impl CategoryFields {
    async fn validated(self, conn: &mut PgConnection, event: Uuid) -> Result<Self, ApiError> {
        fields::ordered("the sale window", self.sale_starts_at, self.sale_ends_at)?;
        if let Some(s) = self.schedule_id {
            let same_event = sqlx::query_scalar!(
                r#"select exists(select 1 from schedules where id = $1 and event_id = $2) as "e!""#,
                s,
                event
            )
            .fetch_one(conn)
            .await?;
            if !same_event {
                // A well-formed id that names no schedule of this event: the body is fine, the reference
                // conflicts with what exists.
                return Err(ApiError::conflict(
                    "unknown_schedule",
                    "schedule_id must be a schedule of the same event",
                ));
            }
        }
        Ok(CategoryFields {
            name: fields::text("name", &self.name, 1, 100, false)?,
            description: fields::text("description", &self.description, 0, 2000, true)?,
            price: fields::price(self.price)?,
            quota: fields::quantity("quota", self.quota)?,
            max_per_order: fields::max_per_order(self.max_per_order)?,
            sort_order: fields::sort_order(self.sort_order)?,
            ..self
        })
    }

    fn audit(&self) -> serde_json::Value {
        json!({
            "name": self.name, "price": self.price, "quota": self.quota, "max_per_order": self.max_per_order,
            "schedule_id": self.schedule_id, "sale_starts_at": self.sale_starts_at,
            "sale_ends_at": self.sale_ends_at,
        })
    }
}

/// Add a ticket category to an event.
#[utoipa::path(post, path = "/api/admin/events/{id}/ticket-categories", tag = "admin",
    security(("bearer" = [])), params(("id" = Uuid, Path, description = "event id")),
    request_body = CreateCategory,
    responses((status = 201, body = TicketCategory),
        (status = 409, description = "a `schedule_id` of no schedule of this event (`unknown_schedule`)", body = ErrorBody)))]
async fn create_category(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(event): ApiPath<Uuid>,
    ApiJson(req): ApiJson<CreateCategory>,
) -> Result<(StatusCode, axum::Json<TicketCategory>), ApiError> {
    let category =
        catalog_change(&state, user, Permission::ManageCatalog, async move |tx: &mut PgConnection| {
            products::lock_event(tx, event).await?;
            let f = CategoryFields {
                name: req.name,
                description: req.description,
                price: req.price,
                quota: req.quota,
                max_per_order: req.max_per_order,
                schedule_id: req.schedule_id,
                sale_starts_at: req.sale_starts_at,
                sale_ends_at: req.sale_ends_at,
                sort_order: req.sort_order,
            }
            .validated(tx, event)
            .await?;
            let id = Uuid::now_v7();
            sqlx::query!(
                r#"insert into ticket_categories (id, event_id, schedule_id, name, description, price, quota,
                                              max_per_order, sale_starts_at, sale_ends_at, sort_order)
               values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"#,
                id,
                event,
                f.schedule_id,
                f.name,
                f.description,
                f.price,
                f.quota,
                f.max_per_order,
                f.sale_starts_at,
                f.sale_ends_at,
                f.sort_order
            )
            .execute(&mut *tx)
            .await?;
            let mut details = f.audit();
            details["event_id"] = json!(event);
            let category = catalog::category(tx, id).await?.ok_or(ApiError::NotFound("ticket category"))?;
            Ok((category, Audited::new("ticket_category.create", "ticket_category", id, details)))
        })
        .await?;
    Ok((StatusCode::CREATED, axum::Json(category)))
}

/// Change a ticket category; the quota cannot drop below sold + held.
#[utoipa::path(patch, path = "/api/admin/ticket-categories/{id}", tag = "admin",
    security(("bearer" = [])), params(("id" = Uuid, Path)), request_body = UpdateCategory,
    responses((status = 200, body = TicketCategory),
        (status = 409, description = "a time window out of order with a stored end (`window_conflict`: send both ends), or a `schedule_id` of no schedule of this event (`unknown_schedule`)", body = ErrorBody)))]
async fn update_category(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<UpdateCategory>,
) -> Result<axum::Json<TicketCategory>, ApiError> {
    catalog_change(&state, user, Permission::ManageCatalog, async move |tx: &mut PgConnection| {
        let cur = sqlx::query!(
            r#"select event_id, name, description, price, quota, sold + held as "committed!", max_per_order,
                      schedule_id, sale_starts_at, sale_ends_at, sort_order
               from ticket_categories where id = $1 for update"#,
            id
        )
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(ApiError::NotFound("ticket category"))?;
        let f = CategoryFields {
            name: req.name.unwrap_or(cur.name),
            description: req.description.unwrap_or(cur.description),
            price: req.price.unwrap_or(cur.price),
            quota: req.quota.unwrap_or(cur.quota),
            max_per_order: req.max_per_order.unwrap_or(cur.max_per_order),
            schedule_id: req.schedule_id.unwrap_or(cur.schedule_id),
            sale_starts_at: req.sale_starts_at.unwrap_or(cur.sale_starts_at),
            sale_ends_at: req.sale_ends_at.unwrap_or(cur.sale_ends_at),
            sort_order: req.sort_order.unwrap_or(cur.sort_order),
        };
        let sent = (req.sale_starts_at.flatten(), req.sale_ends_at.flatten());
        fields::window_after_change("the sale window", sent, (f.sale_starts_at, f.sale_ends_at))?;
        let f = f.validated(tx, cur.event_id).await?;
        products::not_below_committed("quota", f.quota, cur.committed)?;
        sqlx::query!(
            r#"update ticket_categories set name = $2, description = $3, price = $4, quota = $5,
                      max_per_order = $6, schedule_id = $7, sale_starts_at = $8, sale_ends_at = $9,
                      sort_order = $10, updated_at = now()
               where id = $1"#,
            id,
            f.name,
            f.description,
            f.price,
            f.quota,
            f.max_per_order,
            f.schedule_id,
            f.sale_starts_at,
            f.sale_ends_at,
            f.sort_order
        )
        .execute(&mut *tx)
        .await
        .map_err(|e| on_constraint(e, products::oversell_constraint))?;
        let category = catalog::category(tx, id).await?.ok_or(ApiError::NotFound("ticket category"))?;
        Ok((axum::Json(category), Audited::new("ticket_category.update", "ticket_category", id, f.audit())))
    })
    .await
}

/// Remove a ticket category that nobody has ordered.
#[utoipa::path(delete, path = "/api/admin/ticket-categories/{id}", tag = "admin",
    security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 204), (status = 409, body = ErrorBody)))]
async fn delete_category(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    products::delete_unordered(&state, user, id, Family::Category).await
}
