//! Cancelling an unpaid order: its live Midtrans transaction first (so the payment page cannot take
//! money for an order that no longer holds anything), then the order, whose items go back on sale at once.

use axum::extract::State;
use checkout_worker::expiry::{self, Ended};
use pipeline::states::{OrderStatus, PaymentStatus};
use uuid::Uuid;

use super::read::{self, Order};
use crate::{
    error::{ApiError, ErrorBody},
    http::extract::{ApiPath, AuthUser},
    state::AppState,
};

/// Cancel an unpaid order; its items go back on sale at once.
#[utoipa::path(post, operation_id = "cancel_order", path = "/api/orders/{id}/cancel", tag = "orders", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Order),
        (status = 409, description = "the order is not awaiting payment", body = ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<Order>, ApiError> {
    let cancelled_with_payment = cancel_live_payment(&state, user.id, id).await?;
    let mut tx = state.db.begin().await?;
    let status = sqlx::query_scalar!(
        r#"select status as "status: OrderStatus" from orders where id = $1 and user_id = $2 for update"#,
        id,
        user.id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(ApiError::NotFound("order"))?;
    if matches!(status, OrderStatus::Cancelled | OrderStatus::Expired) && cancelled_with_payment {
        // Cancelling the Midtrans transaction already released the order.
        return Ok(axum::Json(read::one(&mut tx, user.id, id).await?));
    }
    if status != OrderStatus::PendingPayment {
        return Err(ApiError::conflict(
            "not_cancellable",
            format!("an order that is {status} cannot be cancelled"),
        ));
    }
    // A payment Midtrans never knew (a Snap page where no method was chosen) ends with the order. (Payment
    // rows before product rows: the lock order every writer follows.)
    sqlx::query!(
        "update payments set status = $2, updated_at = now() where order_id = $1 and status = 'pending'",
        id,
        PaymentStatus::Cancelled as _
    )
    .execute(&mut *tx)
    .await?;
    expiry::release(&mut tx, &[id], Ended::Cancelled).await?;
    let order = read::one(&mut tx, user.id, id).await?;
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
