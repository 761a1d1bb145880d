//! Admin: ticket categories and merchandise, the two things a buyer can put in a cart.
//!
//! Quota and stock can be lowered only down to what is already sold or held: the check happens under the
//! row lock, and the table's `*_no_oversell` constraint backs it up.

use axum::{extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use sqlx::PgConnection;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{audit, fields};
use crate::{
    accounts::Permission,
    catalog::{self, Audience, Merchandise, TicketCategory},
    error::{ApiError, ErrorBody, on_constraint},
    http::extract::{ApiJson, ApiPath, ApiQuery, AuthUser},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_category))
        .routes(routes!(update_category, delete_category))
        .routes(routes!(create_merchandise, list_merchandise))
        .routes(routes!(get_merchandise, update_merchandise, delete_merchandise))
}

/// A quota or stock below what is sold or held, caught by the database as the last line of defence.
fn oversell_constraint(name: &str) -> Option<ApiError> {
    matches!(name, "ticket_categories_no_oversell" | "merchandise_no_oversell")
        .then(|| ApiError::validation("quota or stock cannot go below the units already sold or held"))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCategory {
    pub name: String,
    /// Rupiah, integer, ≥ 0.
    pub price: i64,
    pub quota: i32,
    pub max_per_order: i32,
    #[serde(default)]
    pub description: String,
    pub schedule_id: Option<Uuid>,
    pub sale_starts_at: Option<DateTime<Utc>>,
    pub sale_ends_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub sort_order: i32,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCategory {
    pub name: Option<String>,
    pub price: Option<i64>,
    pub quota: Option<i32>,
    pub max_per_order: Option<i32>,
    pub description: Option<String>,
    #[serde(default, deserialize_with = "fields::nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub schedule_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "fields::nullable")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub sale_starts_at: Option<Option<DateTime<Utc>>>,
    #[serde(default, deserialize_with = "fields::nullable")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub sale_ends_at: Option<Option<DateTime<Utc>>>,
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
                return Err(ApiError::validation("schedule_id must be a schedule of the same event"));
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
    responses((status = 201, body = TicketCategory), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn create_category(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(event): ApiPath<Uuid>,
    ApiJson(req): ApiJson<CreateCategory>,
) -> Result<(StatusCode, axum::Json<TicketCategory>), ApiError> {
    let admin = user.require(Permission::ManageCatalog)?;
    let mut tx = state.db.begin().await?;
    lock_event(&mut tx, event).await?;
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
    .validated(&mut tx, event)
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
    audit::record(&mut tx, admin.id, "ticket_category.create", "ticket_category", Some(id), details).await?;
    let category = catalog::category(&mut tx, id).await?.ok_or(ApiError::NotFound("ticket category"))?;
    tx.commit().await?;
    state.catalog_changed();
    Ok((StatusCode::CREATED, axum::Json(category)))
}

/// Change a ticket category; the quota cannot drop below sold + held.
#[utoipa::path(patch, path = "/api/admin/ticket-categories/{id}", tag = "admin",
    security(("bearer" = [])), params(("id" = Uuid, Path)), request_body = UpdateCategory,
    responses((status = 200, body = TicketCategory), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn update_category(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<UpdateCategory>,
) -> Result<axum::Json<TicketCategory>, ApiError> {
    let admin = user.require(Permission::ManageCatalog)?;
    let mut tx = state.db.begin().await?;
    let cur = sqlx::query!(
        r#"select event_id, name, description, price, quota, sold, held, max_per_order, schedule_id,
                  sale_starts_at, sale_ends_at, sort_order
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
    }
    .validated(&mut tx, cur.event_id)
    .await?;
    if f.quota < cur.sold + cur.held {
        return Err(ApiError::validation(format!(
            "quota cannot go below the {} units already sold or held",
            cur.sold + cur.held
        )));
    }
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
    .map_err(|e| on_constraint(e, oversell_constraint))?;
    audit::record(&mut tx, admin.id, "ticket_category.update", "ticket_category", Some(id), f.audit())
        .await?;
    let category = catalog::category(&mut tx, id).await?.ok_or(ApiError::NotFound("ticket category"))?;
    tx.commit().await?;
    state.catalog_changed();
    Ok(axum::Json(category))
}

/// Remove a ticket category that nobody has ordered.
#[utoipa::path(delete, path = "/api/admin/ticket-categories/{id}", tag = "admin",
    security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_category(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    let admin = user.require(Permission::ManageCatalog)?;
    let mut tx = state.db.begin().await?;
    let ordered = sqlx::query_scalar!(
        r#"select exists(select 1 from order_items where ticket_category_id = $1) as "e!""#,
        id
    )
    .fetch_one(&mut *tx)
    .await?;
    if ordered {
        return Err(ApiError::conflict("has_orders", "this category has orders; set its quota instead"));
    }
    let name = sqlx::query_scalar!("delete from ticket_categories where id = $1 returning name", id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(ApiError::NotFound("ticket category"))?;
    audit::record(
        &mut tx,
        admin.id,
        "ticket_category.delete",
        "ticket_category",
        Some(id),
        json!({ "name": name }),
    )
    .await?;
    tx.commit().await?;
    state.catalog_changed();
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMerchandise {
    /// The event it is sold with; absent for standalone merchandise.
    pub event_id: Option<Uuid>,
    pub name: String,
    pub price: i64,
    pub stock: i32,
    /// Default 5.
    pub max_per_order: Option<i32>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub sort_order: i32,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMerchandise {
    pub name: Option<String>,
    pub price: Option<i64>,
    pub stock: Option<i32>,
    pub max_per_order: Option<i32>,
    pub description: Option<String>,
    pub sort_order: Option<i32>,
}

struct MerchandiseFields {
    name: String,
    description: String,
    price: i64,
    stock: i32,
    max_per_order: i32,
    sort_order: i32,
}

impl MerchandiseFields {
    fn validated(self) -> Result<Self, ApiError> {
        Ok(MerchandiseFields {
            name: fields::text("name", &self.name, 1, 100, false)?,
            description: fields::text("description", &self.description, 0, 2000, true)?,
            price: fields::price(self.price)?,
            stock: fields::quantity("stock", self.stock)?,
            max_per_order: fields::max_per_order(self.max_per_order)?,
            sort_order: fields::sort_order(self.sort_order)?,
        })
    }

    fn audit(&self) -> serde_json::Value {
        json!({ "name": self.name, "price": self.price, "stock": self.stock, "max_per_order": self.max_per_order })
    }
}

/// Add a merchandise item.
#[utoipa::path(post, path = "/api/admin/merchandise", tag = "admin", security(("bearer" = [])),
    request_body = CreateMerchandise,
    responses((status = 201, body = Merchandise), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn create_merchandise(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<CreateMerchandise>,
) -> Result<(StatusCode, axum::Json<Merchandise>), ApiError> {
    let admin = user.require(Permission::ManageCatalog)?;
    let f = MerchandiseFields {
        name: req.name,
        description: req.description,
        price: req.price,
        stock: req.stock,
        max_per_order: req.max_per_order.unwrap_or(5),
        sort_order: req.sort_order,
    }
    .validated()?;
    let mut tx = state.db.begin().await?;
    if let Some(event) = req.event_id {
        lock_event(&mut tx, event).await?;
    }
    let id = Uuid::now_v7();
    sqlx::query!(
        r#"insert into merchandise (id, event_id, name, description, price, stock, max_per_order, sort_order)
           values ($1, $2, $3, $4, $5, $6, $7, $8)"#,
        id,
        req.event_id,
        f.name,
        f.description,
        f.price,
        f.stock,
        f.max_per_order,
        f.sort_order
    )
    .execute(&mut *tx)
    .await?;
    let mut details = f.audit();
    details["event_id"] = json!(req.event_id);
    audit::record(&mut tx, admin.id, "merchandise.create", "merchandise", Some(id), details).await?;
    let item =
        catalog::merchandise(&mut tx, id, Audience::Admin).await?.ok_or(ApiError::NotFound("merchandise"))?;
    tx.commit().await?;
    state.catalog_changed();
    Ok((StatusCode::CREATED, axum::Json(item)))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AdminMerchandiseFilter {
    pub event_id: Option<Uuid>,
}

/// All merchandise, including items of draft events, with sold and held counts.
#[utoipa::path(get, path = "/api/admin/merchandise", tag = "admin", security(("bearer" = [])),
    params(AdminMerchandiseFilter),
    responses((status = 200, body = Vec<Merchandise>), (status = 403, body = ErrorBody)))]
async fn list_merchandise(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(filter): ApiQuery<AdminMerchandiseFilter>,
) -> Result<axum::Json<Vec<Merchandise>>, ApiError> {
    user.require(Permission::ManageCatalog)?;
    let mut conn = state.db.acquire().await?;
    Ok(axum::Json(catalog::list_merchandise(&mut conn, filter.event_id, Audience::Admin).await?))
}

/// One merchandise item with sold and held counts.
#[utoipa::path(get, path = "/api/admin/merchandise/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Merchandise), (status = 404, body = ErrorBody)))]
async fn get_merchandise(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<Merchandise>, ApiError> {
    user.require(Permission::ManageCatalog)?;
    let mut conn = state.db.acquire().await?;
    catalog::merchandise(&mut conn, id, Audience::Admin)
        .await?
        .map(axum::Json)
        .ok_or(ApiError::NotFound("merchandise"))
}

/// Change a merchandise item; stock cannot drop below sold + held.
#[utoipa::path(patch, path = "/api/admin/merchandise/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = UpdateMerchandise,
    responses((status = 200, body = Merchandise), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn update_merchandise(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<UpdateMerchandise>,
) -> Result<axum::Json<Merchandise>, ApiError> {
    let admin = user.require(Permission::ManageCatalog)?;
    let mut tx = state.db.begin().await?;
    let cur = sqlx::query!(
        r#"select name, description, price, stock, sold, held, max_per_order, sort_order
           from merchandise where id = $1 for update"#,
        id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(ApiError::NotFound("merchandise"))?;
    let f = MerchandiseFields {
        name: req.name.unwrap_or(cur.name),
        description: req.description.unwrap_or(cur.description),
        price: req.price.unwrap_or(cur.price),
        stock: req.stock.unwrap_or(cur.stock),
        max_per_order: req.max_per_order.unwrap_or(cur.max_per_order),
        sort_order: req.sort_order.unwrap_or(cur.sort_order),
    }
    .validated()?;
    if f.stock < cur.sold + cur.held {
        return Err(ApiError::validation(format!(
            "stock cannot go below the {} units already sold or held",
            cur.sold + cur.held
        )));
    }
    sqlx::query!(
        r#"update merchandise set name = $2, description = $3, price = $4, stock = $5, max_per_order = $6,
                  sort_order = $7, updated_at = now()
           where id = $1"#,
        id,
        f.name,
        f.description,
        f.price,
        f.stock,
        f.max_per_order,
        f.sort_order
    )
    .execute(&mut *tx)
    .await
    .map_err(|e| on_constraint(e, oversell_constraint))?;
    audit::record(&mut tx, admin.id, "merchandise.update", "merchandise", Some(id), f.audit()).await?;
    let item =
        catalog::merchandise(&mut tx, id, Audience::Admin).await?.ok_or(ApiError::NotFound("merchandise"))?;
    tx.commit().await?;
    state.catalog_changed();
    Ok(axum::Json(item))
}

/// Remove a merchandise item that nobody has ordered.
#[utoipa::path(delete, path = "/api/admin/merchandise/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_merchandise(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    let admin = user.require(Permission::ManageCatalog)?;
    let mut tx = state.db.begin().await?;
    let ordered = sqlx::query_scalar!(
        r#"select exists(select 1 from order_items where merchandise_id = $1) as "e!""#,
        id
    )
    .fetch_one(&mut *tx)
    .await?;
    if ordered {
        return Err(ApiError::conflict("has_orders", "this item has orders; set its stock instead"));
    }
    let name = sqlx::query_scalar!("delete from merchandise where id = $1 returning name", id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(ApiError::NotFound("merchandise"))?;
    audit::record(&mut tx, admin.id, "merchandise.delete", "merchandise", Some(id), json!({ "name": name }))
        .await?;
    tx.commit().await?;
    state.catalog_changed();
    Ok(StatusCode::NO_CONTENT)
}

/// Locks the event row so its products are not added to while it is deleted; 404 if it does not exist.
async fn lock_event(conn: &mut PgConnection, event: Uuid) -> Result<(), ApiError> {
    sqlx::query_scalar!("select id from events where id = $1 for share", event)
        .fetch_optional(conn)
        .await?
        .map(|_| ())
        .ok_or(ApiError::NotFound("event"))
}
