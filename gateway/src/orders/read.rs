//! The buyer's own requests and orders, as the buyer sees them. Another buyer's ids are 404, so their
//! existence is not revealed.

use std::collections::HashMap;

use axum::extract::State;
use chrono::{DateTime, Utc};
use pipeline::states::{self, OrderStatus, PaymentStatus, Reason};
use serde::Serialize;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    error::ApiError,
    http::extract::{ApiPath, AuthUser},
    state::AppState,
};

#[derive(Serialize, ToSchema)]
pub struct RequestStatus {
    pub request_id: Uuid,
    pub status: states::RequestStatus,
    pub order_id: Option<Uuid>,
    /// Why a request was rejected.
    pub reason: Option<Reason>,
}

#[derive(Serialize, ToSchema)]
pub struct Order {
    pub id: Uuid,
    pub event_id: Uuid,
    pub status: OrderStatus,
    pub total: i64,
    pub currency: String,
    /// Until when an unpaid order holds its items.
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub items: Vec<OrderItem>,
    /// The latest payment attempt, if any.
    pub payment: Option<crate::payments::start::Payment>,
    /// Something the buyer should know (e.g. a late payment that was refunded).
    pub notice: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct OrderItem {
    pub id: Uuid,
    pub ticket_category_id: Option<Uuid>,
    pub merchandise_id: Option<Uuid>,
    pub name: String,
    pub quantity: i32,
    /// Price per unit when the order was made.
    pub unit_price: i64,
}

struct OrderRow {
    id: Uuid,
    event_id: Uuid,
    status: OrderStatus,
    total: i64,
    currency: String,
    expires_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
    notice: Option<String>,
}

struct ItemRow {
    order_id: Uuid,
    id: Uuid,
    ticket_category_id: Option<Uuid>,
    merchandise_id: Option<Uuid>,
    name: String,
    quantity: i32,
    unit_price: i64,
}

/// Where a submitted checkout request stands.
#[utoipa::path(get, operation_id = "get_order_request", path = "/api/orders/requests/{id}", tag = "orders", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "request id from POST /api/orders")),
    responses((status = 200, body = RequestStatus)))]
pub async fn request_status(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<RequestStatus>, ApiError> {
    sqlx::query_as!(
        RequestStatus,
        r#"select id as request_id, status as "status: states::RequestStatus", order_id, reason as "reason: Reason"
           from order_requests where id = $1 and user_id = $2"#,
        id,
        user.id
    )
    .fetch_optional(&state.db)
    .await?
    .map(axum::Json)
    .ok_or(ApiError::NotFound("request"))
}

/// The signed-in buyer's orders, newest first (at most 100).
#[utoipa::path(get, operation_id = "list_orders", path = "/api/orders", tag = "orders", security(("bearer" = [])),
    responses((status = 200, body = Vec<Order>)))]
pub async fn list(State(state): State<AppState>, user: AuthUser) -> Result<axum::Json<Vec<Order>>, ApiError> {
    let mut conn = state.db.acquire().await?;
    let rows = sqlx::query_as!(
        OrderRow,
        r#"select id, event_id, status as "status: OrderStatus", total, currency, expires_at, created_at, notice
           from orders where user_id = $1 order by created_at desc limit 100"#,
        user.id
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(axum::Json(with_items(&mut conn, rows).await?))
}

/// One of the signed-in buyer's orders.
#[utoipa::path(get, operation_id = "get_order", path = "/api/orders/{id}", tag = "orders", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Order)))]
pub async fn get(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<Order>, ApiError> {
    let mut conn = state.db.acquire().await?;
    one(&mut conn, user.id, id).await.map(axum::Json)
}

pub(super) async fn one(conn: &mut PgConnection, user: Uuid, id: Uuid) -> Result<Order, ApiError> {
    let row = sqlx::query_as!(
        OrderRow,
        r#"select id, event_id, status as "status: OrderStatus", total, currency, expires_at, created_at, notice
           from orders where id = $1 and user_id = $2"#,
        id,
        user
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(ApiError::NotFound("order"))?;
    Ok(with_items(conn, vec![row]).await?.remove(0))
}

/// Attaches the items of all `rows` with one query.
async fn with_items(conn: &mut PgConnection, rows: Vec<OrderRow>) -> Result<Vec<Order>, ApiError> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut items: HashMap<Uuid, Vec<OrderItem>> = HashMap::new();
    for i in sqlx::query_as!(
        ItemRow,
        r#"select order_id, id, ticket_category_id, merchandise_id, name, quantity, unit_price
           from order_items where order_id = any($1) order by id"#,
        &ids
    )
    .fetch_all(&mut *conn)
    .await?
    {
        items.entry(i.order_id).or_default().push(OrderItem {
            id: i.id,
            ticket_category_id: i.ticket_category_id,
            merchandise_id: i.merchandise_id,
            name: i.name,
            quantity: i.quantity,
            unit_price: i.unit_price,
        });
    }
    let mut payments: HashMap<Uuid, crate::payments::start::Payment> = sqlx::query_as!(
        crate::payments::start::PaymentRow,
        r#"select distinct on (order_id) id, order_id, midtrans_order_id, method,
                  status as "status: PaymentStatus", gross_amount,
                  snap_token, redirect_url, qr_string, expires_at, creating_until
           from payments where order_id = any($1) order by order_id, created_at desc"#,
        &ids
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|p| (p.order_id, p.into()))
    .collect();
    Ok(rows
        .into_iter()
        .map(|r| Order {
            items: items.remove(&r.id).unwrap_or_default(),
            payment: payments.remove(&r.id),
            notice: r.notice,
            id: r.id,
            event_id: r.event_id,
            status: r.status,
            total: r.total,
            currency: r.currency,
            expires_at: r.expires_at,
            created_at: r.created_at,
        })
        .collect())
}
