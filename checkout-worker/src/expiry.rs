//! Hold expiry (seed MR-2, no seat squatting): unpaid orders past their `expires_at` become `expired` and
//! their units go back on sale.
//!
//! Each sweep takes a bounded batch of due orders with `FOR UPDATE SKIP LOCKED`, so several sweepers (one
//! per worker replica) share the work without waiting on each other and no order is expired twice. Product
//! rows are locked in id order, the same order the checkout allocator uses, so the two never deadlock.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use pipeline::states::OrderStatus;

use crate::stock;

/// What one sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    /// Orders moved to `expired`.
    pub orders: Vec<Uuid>,
    /// Events whose stock changed (their live counts must be republished).
    pub events: Vec<Uuid>,
}

/// Expires at most `batch` orders whose hold ended at or before `now`, in one transaction.
pub async fn sweep_once(db: &PgPool, now: DateTime<Utc>, batch: i64) -> Result<Swept, sqlx::Error> {
    let mut tx = db.begin().await?;
    let due = sqlx::query!(
        r#"select id, event_id from orders
           where status = 'pending_payment' and expires_at <= $1
             -- An order with a live Midtrans transaction is settled by the payment reconciler, which asks
             -- Midtrans first: the buyer may have paid a moment ago.
             and not exists (select 1 from payments p
                             where p.order_id = orders.id and p.status in ('pending', 'challenge'))
           order by expires_at, id
           limit $2
           for update skip locked"#,
        now,
        batch
    )
    .fetch_all(&mut *tx)
    .await?;
    if due.is_empty() {
        return Ok(Swept::default());
    }
    let orders: Vec<Uuid> = due.iter().map(|r| r.id).collect();
    let mut events: Vec<Uuid> = due.iter().map(|r| r.event_id).collect();
    events.sort();
    events.dedup();
    release(&mut tx, &orders, Ended::Expired).await?;
    tx.commit().await?;
    Ok(Swept { orders, events })
}

/// How an unpaid order ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Its hold ran out.
    Expired,
    /// The buyer, the bank or an operator called it off.
    Cancelled,
}

/// Gives the held units of `orders` back to their products and moves the orders to `expired` or
/// `cancelled`. The caller has locked the order rows and checked they are unpaid.
pub async fn release(
    conn: &mut sqlx::PgConnection,
    orders: &[Uuid],
    ended: Ended,
) -> Result<(), sqlx::Error> {
    let (status, cancelled) = match ended {
        Ended::Expired => (OrderStatus::Expired, false),
        Ended::Cancelled => (OrderStatus::Cancelled, true),
    };
    // Product rows in id order before changing them (deadlock-free with allocation).
    stock::lock_products(conn, orders).await?;
    stock::shift(conn, orders, stock::Move::ReleaseHeld).await?;
    sqlx::query!(
        r#"update orders set status = $2, updated_at = now(),
                  cancelled_at = case when $3 then now() else cancelled_at end
           where id = any($1)"#,
        orders,
        status as _,
        cancelled
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}
