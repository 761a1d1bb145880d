//! Admin: merchandise, sold with an event or on its own.
//!
//! Stock can be lowered only down to what is already sold or held: the check happens under the row lock,
//! and the table's `merchandise_no_oversell` constraint backs it up.

use axum::{extract::State, http::StatusCode};
use serde::Deserialize;
use serde_json::json;
use sqlx::PgConnection;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{
    change::{Audited, catalog_change},
    fields,
    products::{self, Family},
};
use crate::{
    accounts::Permission,
    catalog::{self, Audience, Merchandise},
    error::{ApiError, ErrorBody, on_constraint},
    http::extract::{ApiJson, ApiPath, ApiQuery, AuthUser},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_merchandise, list_merchandise)).routes(routes!(
        get_merchandise,
        update_merchandise,
        delete_merchandise
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMerchandise {
    /// The event it is sold with; absent for standalone merchandise.
    pub event_id: Option<Uuid>,
    #[schema(schema_with = fields::text_schema::<1, 100, false, false>)]
    pub name: String,
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub price: i64,
    #[schema(minimum = 0, maximum = 10_000_000)]
    pub stock: i32,
    /// Default 5.
    #[schema(minimum = 1, maximum = 100)]
    pub max_per_order: Option<i32>,
    #[serde(default)]
    #[schema(schema_with = fields::text_schema::<0, 2000, true, false>)]
    pub description: String,
    #[serde(default)]
    #[schema(minimum = -10_000, maximum = 10_000)]
    pub sort_order: i32,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMerchandise {
    #[schema(schema_with = fields::text_schema::<1, 100, false, true>)]
    pub name: Option<String>,
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub price: Option<i64>,
    #[schema(minimum = 0, maximum = 10_000_000)]
    pub stock: Option<i32>,
    #[schema(minimum = 1, maximum = 100)]
    pub max_per_order: Option<i32>,
    #[schema(schema_with = fields::text_schema::<0, 2000, true, true>)]
    pub description: Option<String>,
    #[schema(minimum = -10_000, maximum = 10_000)]
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
    responses((status = 201, body = Merchandise), (status = 404, body = ErrorBody)))]
async fn create_merchandise(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<CreateMerchandise>,
) -> Result<(StatusCode, axum::Json<Merchandise>), ApiError> {
    let f = MerchandiseFields {
        name: req.name,
        description: req.description,
        price: req.price,
        stock: req.stock,
        max_per_order: req.max_per_order.unwrap_or(5),
        sort_order: req.sort_order,
    };
    let event = req.event_id;
    let item = catalog_change(&state, user, Permission::ManageCatalog, async move |tx: &mut PgConnection| {
        let f = f.validated()?;
        if let Some(event) = event {
            products::lock_event(tx, event).await?;
        }
        let id = Uuid::now_v7();
        sqlx::query!(
            r#"insert into merchandise (id, event_id, name, description, price, stock, max_per_order, sort_order)
               values ($1, $2, $3, $4, $5, $6, $7, $8)"#,
            id,
            event,
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
        details["event_id"] = json!(event);
        let item = item(tx, id).await?;
        Ok((item, Audited::new("merchandise.create", "merchandise", id, details)))
    })
    .await?;
    Ok((StatusCode::CREATED, axum::Json(item)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AdminMerchandiseFilter {
    pub event_id: Option<Uuid>,
}

/// All merchandise, including items of draft events, with sold and held counts.
#[utoipa::path(get, operation_id = "admin_list_merchandise", path = "/api/admin/merchandise", tag = "admin", security(("bearer" = [])),
    params(AdminMerchandiseFilter),
    responses((status = 200, body = Vec<Merchandise>)))]
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
#[utoipa::path(get, operation_id = "admin_get_merchandise", path = "/api/admin/merchandise/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Merchandise)))]
async fn get_merchandise(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<Merchandise>, ApiError> {
    user.require(Permission::ManageCatalog)?;
    let mut conn = state.db.acquire().await?;
    item(&mut conn, id).await.map(axum::Json)
}

/// Change a merchandise item; stock cannot drop below sold + held.
#[utoipa::path(patch, path = "/api/admin/merchandise/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = UpdateMerchandise,
    responses((status = 200, body = Merchandise)))]
async fn update_merchandise(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<UpdateMerchandise>,
) -> Result<axum::Json<Merchandise>, ApiError> {
    catalog_change(&state, user, Permission::ManageCatalog, async move |tx: &mut PgConnection| {
        let cur = sqlx::query!(
            r#"select name, description, price, stock, sold + held as "committed!", max_per_order, sort_order
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
        products::not_below_committed("stock", f.stock, cur.committed)?;
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
        .map_err(|e| on_constraint(e, products::oversell_constraint))?;
        let item = item(tx, id).await?;
        Ok((axum::Json(item), Audited::new("merchandise.update", "merchandise", id, f.audit())))
    })
    .await
}

/// Remove a merchandise item that nobody has ordered.
#[utoipa::path(delete, path = "/api/admin/merchandise/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 204), (status = 409, body = ErrorBody)))]
async fn delete_merchandise(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    products::delete_unordered(&state, user, id, Family::Merchandise).await
}

/// One item as admins see it (with sold and held counts); 404 if there is none.
async fn item(conn: &mut PgConnection, id: Uuid) -> Result<Merchandise, ApiError> {
    catalog::merchandise(conn, id, Audience::Admin).await?.ok_or(ApiError::NotFound("merchandise"))
}
