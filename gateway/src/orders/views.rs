//! The buyer's own requests and orders, and cancelling an unpaid order. Another buyer's ids are 404, so
//! their existence is not revealed.

use std::collections::HashMap;

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    error::{ApiError, ErrorBody},
    http::extract::{ApiPath, AuthUser},
    state::AppState,
};

#[derive(Serialize, ToSchema)]
pub struct RequestStatus {
    pub request_id: Uuid,
    /// `queued`, `confirmed` or `rejected`.
    pub status: String,
    pub order_id: Option<Uuid>,
    /// Why a request was rejected: `sold_out`, `per_order_limit`, `per_buyer_limit`, `not_on_sale`, ...
    pub reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Order {
    pub id: Uuid,
    pub event_id: Uuid,
    /// `pending_payment`, `payment_review`, `paid`, `expired`, `cancelled`, `refunded`, `partially_refunded`.
    pub status: String,
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
    status: String,
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
#[utoipa::path(get, path = "/api/orders/requests/{id}", tag = "orders", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "request id from POST /api/orders")),
    responses((status = 200, body = RequestStatus), (status = 404, body = ErrorBody)))]
pub async fn request_status(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<RequestStatus>, ApiError> {
    sqlx::query_as!(
        RequestStatus,
        r#"select id as request_id, status, order_id, reason from order_requests where id = $1 and user_id = $2"#,
        id,
        user.id
    )
    .fetch_optional(&state.db)
    .await?
    .map(axum::Json)
    .ok_or(ApiError::NotFound("request"))
}

/// The signed-in buyer's orders, newest first (at most 100).
#[utoipa::path(get, path = "/api/orders", tag = "orders", security(("bearer" = [])),
    responses((status = 200, body = Vec<Order>), (status = 401, body = ErrorBody)))]
pub async fn list(State(state): State<AppState>, user: AuthUser) -> Result<axum::Json<Vec<Order>>, ApiError> {
    let mut conn = state.db.acquire().await?;
    let rows = sqlx::query_as!(
        OrderRow,
        r#"select id, event_id, status, total, currency, expires_at, created_at, notice from orders
           where user_id = $1 order by created_at desc limit 100"#,
        user.id
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(axum::Json(with_items(&mut conn, rows).await?))
}

/// One of the signed-in buyer's orders.
#[utoipa::path(get, path = "/api/orders/{id}", tag = "orders", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Order), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<Order>, ApiError> {
    let mut conn = state.db.acquire().await?;
    one(&mut conn, user.id, id).await.map(axum::Json)
}

/// Cancel an unpaid order; its items go back on sale at once.
#[utoipa::path(post, path = "/api/orders/{id}/cancel", tag = "orders", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Order), (status = 404, body = ErrorBody),
        (status = 409, description = "the order is not awaiting payment", body = ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<Order>, ApiError> {
    let cancelled_with_payment = cancel_live_payment(&state, user.id, id).await?;
    let mut tx = state.db.begin().await?;
    let status = sqlx::query_scalar!(
        "select status from orders where id = $1 and user_id = $2 for update",
        id,
        user.id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(ApiError::NotFound("order"))?;
    if matches!(status.as_str(), "cancelled" | "expired") && cancelled_with_payment {
        // Cancelling the Midtrans transaction already released the order.
        return Ok(axum::Json(one(&mut tx, user.id, id).await?));
    }
    if status != "pending_payment" {
        return Err(ApiError::conflict(
            "not_cancellable",
            format!("an order that is {status} cannot be cancelled"),
        ));
    }
    // A payment Midtrans never knew (a Snap page where no method was chosen) ends with the order. (Payment
    // rows before product rows: the lock order every writer follows.)
    sqlx::query!(
        "update payments set status = 'cancelled', updated_at = now() where order_id = $1 and status = 'pending'",
        id
    )
    .execute(&mut *tx)
    .await?;
    checkout_worker::expiry::release(&mut tx, &[id], "cancelled").await?;
    let order = one(&mut tx, user.id, id).await?;
    tx.commit().await?;
    Ok(axum::Json(order))
}

/// Before an unpaid order is cancelled, its live Midtrans transaction is cancelled at Midtrans, so the
/// payment page cannot take money for an order that no longer holds anything. If Midtrans says the
/// transaction can no longer be cancelled (it was just paid), the order is not cancelled.
/// `true` when the transaction was cancelled at Midtrans (which releases the order too).
async fn cancel_live_payment(state: &AppState, user: Uuid, order: Uuid) -> Result<bool, ApiError> {
    let live = sqlx::query!(
        r#"select p.id, p.midtrans_order_id from payments p join orders o on o.id = p.order_id
           where p.order_id = $1 and o.user_id = $2 and p.status in ('pending', 'challenge')"#,
        order,
        user
    )
    .fetch_optional(&state.db)
    .await?;
    let (Some(live), Some(client)) = (live, &state.midtrans) else { return Ok(false) };
    match client.cancel(&live.midtrans_order_id, &format!("cx-{}", live.id.simple())).await {
        // The cancellation is applied like the notification that will report it (once).
        Ok(answer) => {
            let raw = serde_json::to_value(&answer).unwrap_or_default();
            // (The notification Midtrans sends for it may have been applied first: either way the order
            // was released by the cancellation.)
            checkout_worker::payments::apply::apply(&state.db, &answer, &raw, chrono::Utc::now()).await?;
            Ok(true)
        }
        // Unknown to Midtrans: no method was chosen on the Snap page, nothing can be paid.
        Err(e) if e.code() == Some("404") => Ok(false),
        Err(e) if e.is_transient() => Err(ApiError::Unavailable {
            message: "the payment provider is not answering; try cancelling again shortly",
            retry_after: std::time::Duration::from_secs(2),
        }),
        Err(e) => {
            tracing::warn!(error = %e, %order, "Midtrans refused to cancel the payment");
            Err(ApiError::conflict(
                "payment_in_progress",
                "the payment for this order can no longer be cancelled; it may have just been paid",
            ))
        }
    }
}

async fn one(conn: &mut PgConnection, user: Uuid, id: Uuid) -> Result<Order, ApiError> {
    let row = sqlx::query_as!(
        OrderRow,
        "select id, event_id, status, total, currency, expires_at, created_at, notice from orders where id = $1 and user_id = $2",
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
        r#"select distinct on (order_id) id, order_id, midtrans_order_id, method, status, gross_amount,
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
