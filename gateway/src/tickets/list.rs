//! `GET /api/orders/{id}/tickets`: the owner's tickets and pickup codes for a paid order.

use axum::extract::State;
use chrono::{DateTime, Utc};
use pipeline::states::{OrderStatus, TicketStatus};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    error::{ApiError, ErrorBody},
    http::extract::{ApiPath, AuthUser},
    state::AppState,
};

#[derive(Serialize, ToSchema)]
pub struct Tickets {
    pub order_id: Uuid,
    pub event_name: String,
    /// The order's status.
    pub status: OrderStatus,
    pub tickets: Vec<Ticket>,
}

#[derive(Serialize, ToSchema)]
pub struct Ticket {
    pub id: Uuid,
    /// `ticket` (admits one person) or `merchandise_pickup` (one merchandise line).
    pub kind: String,
    /// What the gate scans: 128 random bits, 26 characters.
    pub code: String,
    pub status: TicketStatus,
    /// Ticket category or merchandise name.
    pub item_name: String,
    /// Units this code stands for (1 for a ticket; the line's quantity for a pickup code).
    pub quantity: i32,
    pub holder_name: String,
    pub checked_in_at: Option<DateTime<Utc>>,
    /// The code as an SVG QR image.
    pub qr_svg: Option<String>,
}

/// The tickets of one of the signed-in buyer's paid orders.
#[utoipa::path(get, operation_id = "list_order_tickets", path = "/api/orders/{id}/tickets", tag = "tickets", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Tickets),
        (status = 409, description = "the order is not paid", body = ErrorBody)))]
pub async fn tickets(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<Tickets>, ApiError> {
    let order = sqlx::query!(
        r#"select o.status as "status: OrderStatus", e.name as event_name, u.name as holder
           from orders o join events e on e.id = o.event_id join users u on u.id = o.user_id
           where o.id = $1 and o.user_id = $2"#,
        id,
        user.id
    )
    .fetch_optional(&state.db)
    .await?
    .ok_or(ApiError::NotFound("order"))?;
    // A refunded or cancelled order shows its void tickets; one never paid has none to show.
    if !matches!(
        order.status,
        OrderStatus::Paid | OrderStatus::PartiallyRefunded | OrderStatus::Refunded | OrderStatus::Cancelled
    ) {
        return Err(ApiError::conflict(
            "not_paid",
            format!("an order that is {} has no tickets", order.status),
        ));
    }
    let rows = sqlx::query!(
        r#"select t.id, t.kind, t.code, t.status as "status: TicketStatus", t.checked_in_at, i.name as item_name,
                  case when t.kind = 'ticket' then 1 else i.quantity end as "quantity!"
           from tickets t join order_items i on i.id = t.order_item_id
           where t.order_id = $1
           order by t.kind desc, i.name, t.seq"#,
        id
    )
    .fetch_all(&state.db)
    .await?;
    if rows.is_empty() && !order.status.is_paid() {
        return Err(ApiError::conflict(
            "not_paid",
            format!("an order that is {} has no tickets", order.status),
        ));
    }
    let tickets = rows
        .into_iter()
        .map(|r| Ticket {
            qr_svg: super::qr_svg(&r.code),
            id: r.id,
            kind: r.kind,
            code: r.code,
            status: r.status,
            item_name: r.item_name,
            quantity: r.quantity,
            holder_name: order.holder.clone(),
            checked_in_at: r.checked_in_at,
        })
        .collect();
    Ok(axum::Json(Tickets { order_id: id, event_name: order.event_name, status: order.status, tickets }))
}
