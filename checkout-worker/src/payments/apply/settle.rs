//! Settling an order for money in: paid while its hold stands, paid late (brought back to life if it
//! can be), or owed a refund; and free orders, which need no payment.

use pipeline::states::{OrderStatus, PaymentStatus};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{
    payments::tickets,
    stock::{self, Move},
};

/// Pays an order whose hold stands: paid, tickets issued, held units sold. The product rows are locked
/// last, so a hot category's row lock is held only until the commit.
pub(crate) async fn pay_held(conn: &mut PgConnection, order: Uuid) -> Result<(), sqlx::Error> {
    mark_paid(conn, order, None).await?;
    tickets::issue(conn, order).await?;
    stock::lock_products(conn, &[order]).await?;
    stock::shift(conn, &[order], Move::HeldToSold).await
}

/// Why an order whose hold ended cannot come back to life for a late payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unrevivable {
    /// Its buyer would pass the event's per-buyer limit.
    BuyerLimit,
    /// Its items (each product's lines added up) are no longer free.
    SoldOut,
}

/// Pays an order whose hold ended (expired or cancelled) if it can come back to life: within its buyer's
/// limit and with its items still free. Locks as the allocator does: the buyer's advisory lock, then the
/// product rows. On success the order is paid with `notice`, its units sold and its tickets issued.
pub(crate) async fn pay_late(
    conn: &mut PgConnection,
    order: Uuid,
    notice: &str,
) -> Result<Result<(), Unrevivable>, sqlx::Error> {
    let within_limit = crate::allocation::revival_within_buyer_limit(conn, order).await?;
    stock::lock_products(conn, &[order]).await?;
    if !within_limit {
        return Ok(Err(Unrevivable::BuyerLimit));
    }
    if !stock::available(conn, order).await? {
        return Ok(Err(Unrevivable::SoldOut));
    }
    stock::shift(conn, &[order], Move::ClaimSold).await?;
    mark_paid(conn, order, Some(notice)).await?;
    tickets::issue(conn, order).await?;
    Ok(Ok(()))
}

async fn mark_paid(conn: &mut PgConnection, order: Uuid, notice: Option<&str>) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"update orders set status = $3, paid_at = now(), cancelled_at = null, updated_at = now(),
                  notice = coalesce($2, notice)
           where id = $1"#,
        order,
        notice,
        OrderStatus::Paid as _
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(crate) async fn require_refund(
    conn: &mut PgConnection,
    order: Uuid,
    payment: Uuid,
    reason: &str,
    notice: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"update payments set status = $3, refund_reason = $2, checked_at = null,
                  refund_key = coalesce(refund_key, 'rf-' || replace(id::text, '-', '')), updated_at = now()
           where id = $1"#,
        payment,
        reason,
        PaymentStatus::RefundPending as _
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!("update orders set notice = $2, updated_at = now() where id = $1", order, notice)
        .execute(&mut *conn)
        .await?;
    tracing::warn!(%order, %payment, reason, "payment cannot be honoured; refund scheduled");
    Ok(())
}

/// Confirms free orders (total 0: nothing to pay at Midtrans, which refuses zero amounts): paid, tickets
/// issued, held units sold. At most `batch` per call, skipping orders another worker holds. Returns how
/// many were confirmed.
pub async fn settle_free_orders(db: &PgPool, batch: i64) -> Result<usize, sqlx::Error> {
    let mut tx = db.begin().await?;
    let free: Vec<Uuid> = sqlx::query_scalar!(
        r#"select id from orders where status = 'pending_payment' and total = 0 and expires_at > now()
           order by created_at limit $1 for update skip locked"#,
        batch
    )
    .fetch_all(&mut *tx)
    .await?;
    for order in &free {
        mark_paid(&mut tx, *order, None).await?;
        tickets::issue(&mut tx, *order).await?;
    }
    if !free.is_empty() {
        stock::lock_products(&mut tx, &free).await?;
        stock::shift(&mut tx, &free, Move::HeldToSold).await?;
    }
    tx.commit().await?;
    Ok(free.len())
}
