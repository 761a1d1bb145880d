//! Applying one Midtrans notification (or a status answer, which has the same shape) to a payment and its
//! order, in one PostgreSQL transaction: wholly or not at all.
//!
//! - **Exactly once.** The notification is recorded in `payment_events` under a dedupe key (order, transaction,
//!   status, fraud status, status code, refund amount); the same notification again, a redelivery after a
//!   crash or a status check that saw the same state, finds the key taken and changes nothing.
//! - **Never backwards.** Each outcome moves the payment only from the states it can follow; a stale or
//!   out-of-order notification (a `pending` after `settlement`, an `expire` after payment) is recorded as
//!   `stale` and ignored.
//! - **Money in is never ignored.** A settlement for an order that expired meanwhile takes its units again
//!   if they are still free (under the same row locks as allocation); otherwise, and for a second payment
//!   of an already paid order, the payment is marked `refund_pending` and the reconciler refunds it.
//! - **Locks**: the order row, then the payment row, then product rows in id order (see [`crate::stock`]).

use chrono::{DateTime, Utc};
use midtrans::{Notification, Outcome};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use pipeline::states::{OrderStatus, PaymentStatus};

mod settle;
mod transition;

pub use settle::settle_free_orders;
pub(crate) use settle::{pay_held, pay_late, require_refund};

/// What applying a notification did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Seen before: nothing changed.
    Duplicate,
    /// No payment of ours has this `order_id`.
    UnknownOrder,
    /// The amount differs from what was charged: recorded, nothing changed.
    AmountMismatch,
    /// Older than what was already applied: recorded, nothing changed.
    Stale,
    /// Recorded; the payment's state did not change (e.g. `pending`).
    Noted,
    /// The order is paid; tickets were issued.
    Paid,
    /// Paid after the hold ended, and the units were still free: paid, tickets issued.
    PaidLate,
    /// Paid, but the order cannot take it (units gone, or already paid): the payment will be refunded.
    RefundRequired,
    /// Card payment held by fraud detection: the order waits for review.
    Review,
    /// Not paid (denied, cancelled, expired, failed): the held units went back on sale.
    Released,
    /// A payment already counted was reversed: tickets void, units back on sale.
    Reversed,
    Refunded,
    PartiallyRefunded,
    /// The first of Midtrans' two refund notifications (no bank confirmation yet): recorded only.
    RefundUnconfirmed,
    /// A status this system does not act on.
    Ignored,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Duplicate => "duplicate",
            Effect::UnknownOrder => "unknown_order",
            Effect::AmountMismatch => "amount_mismatch",
            Effect::Stale => "stale",
            Effect::Noted => "noted",
            Effect::Paid => "paid",
            Effect::PaidLate => "paid_late",
            Effect::RefundRequired => "refund_required",
            Effect::Review => "review",
            Effect::Released => "released",
            Effect::Reversed => "reversed",
            Effect::Refunded => "refunded",
            Effect::PartiallyRefunded => "partially_refunded",
            Effect::RefundUnconfirmed => "refund_unconfirmed",
            Effect::Ignored => "ignored",
        }
    }
}

struct OrderRow {
    id: Uuid,
    status: OrderStatus,
    total: i64,
    expires_at: DateTime<Utc>,
}

struct PaymentRow {
    id: Uuid,
    status: PaymentStatus,
    gross_amount: i64,
    midtrans_status: Option<String>,
    refunded_amount: i64,
    paid_transaction_id: Option<String>,
}

/// The dedupe key of a notification: what makes two deliveries "the same".
pub fn dedupe_key(n: &Notification) -> String {
    let refund_keys: Vec<&str> =
        n.refunds.iter().flatten().map(|r| r.refund_key.as_deref().unwrap_or("")).collect();
    let refund_keys = refund_keys.join(",");
    let parts = [
        n.order_id.as_str(),
        n.transaction_id.as_deref().unwrap_or(""),
        n.transaction_status.as_str(),
        n.fraud_status.as_deref().unwrap_or(""),
        n.status_code.as_str(),
        n.refund_amount.as_deref().unwrap_or(""),
        refund_keys.as_str(),
        if n.refund_confirmed() { "confirmed" } else { "unconfirmed" },
    ];
    hex::encode(Sha256::digest(parts.join("|").as_bytes()))
}

/// Applies `n` (already verified by the caller: a signed webhook, or our own status call) in one
/// transaction. `raw` is kept as received.
pub async fn apply(
    db: &PgPool,
    n: &Notification,
    raw: &serde_json::Value,
    now: DateTime<Utc>,
) -> Result<Effect, sqlx::Error> {
    let mut tx = db.begin().await?;
    let dedupe = dedupe_key(n);
    let target = sqlx::query!("select id, order_id from payments where midtrans_order_id = $1", n.order_id)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(target) = target else {
        let recorded = record(&mut tx, None, n, &dedupe, raw, Some(Effect::UnknownOrder)).await?;
        tx.commit().await?;
        let effect = if recorded.is_some() { Effect::UnknownOrder } else { Effect::Duplicate };
        return Ok(effect);
    };
    let (order, payment) = lock_rows(&mut tx, target.order_id, target.id).await?;
    let event = record(&mut tx, Some(payment.id), n, &dedupe, raw, None).await?;
    let Some(event) = event else {
        tx.rollback().await?;
        return Ok(Effect::Duplicate);
    };

    let effect = decide(&mut tx, &order, &payment, n, now).await?;
    sqlx::query!(
        "update payment_events set outcome = $2, applied_at = now() where id = $1",
        event,
        effect.as_str()
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    metrics::counter!("payment_notifications_applied_total", "effect" => effect.as_str()).increment(1);
    Ok(effect)
}

/// The order row, then the payment row, locked.
async fn lock_rows(
    conn: &mut PgConnection,
    order: Uuid,
    payment: Uuid,
) -> Result<(OrderRow, PaymentRow), sqlx::Error> {
    let order = sqlx::query_as!(
        OrderRow,
        r#"select id, status as "status: OrderStatus", total, expires_at from orders where id = $1 for update"#,
        order
    )
    .fetch_one(&mut *conn)
    .await?;
    let payment = sqlx::query_as!(
        PaymentRow,
        r#"select id, status as "status: PaymentStatus", gross_amount, midtrans_status, refunded_amount,
                  paid_transaction_id
           from payments where id = $1 for update"#,
        payment
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok((order, payment))
}

/// What `n` does to the locked rows: a wrong amount holds the payment for review, money in for a
/// transaction already closed is stale, anything else goes through the state machine.
async fn decide(
    conn: &mut PgConnection,
    order: &OrderRow,
    payment: &PaymentRow,
    n: &Notification,
    now: DateTime<Utc>,
) -> Result<Effect, sqlx::Error> {
    Ok(if n.charged_amount() != Some(payment.gross_amount) {
        tracing::error!(
            midtrans_order_id = %n.order_id,
            expected = payment.gross_amount,
            got = %n.gross_amount,
            "notification amount differs from the payment; payment put under review"
        );
        // Money may have moved, in an amount we did not ask for: neither paid nor released. The order
        // keeps its hold (the sweeper leaves orders under review alone) until someone looks at it.
        if payment.status.is_open() {
            hold_for_review(conn, order.id, payment.id).await?;
        }
        Effect::AmountMismatch
    } else if settles_a_closed_transaction(conn, payment.id, n).await? {
        // This very transaction was already reported denied, cancelled, expired or refunded: money in
        // for it is an old message arriving late (a reversal applied before its settlement).
        Effect::Stale
    } else {
        transition::apply(conn, order, payment, n, now).await?
    })
}

/// Records the notification under its dedupe key, with its outcome if already known; the new row's id,
/// or `None` when the same notification was recorded before.
async fn record(
    conn: &mut PgConnection,
    payment: Option<Uuid>,
    n: &Notification,
    dedupe: &str,
    raw: &serde_json::Value,
    effect: Option<Effect>,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"insert into payment_events (payment_id, midtrans_order_id, transaction_id, transaction_status,
                                       status_code, fraud_status, gross_amount, dedupe_key, raw, outcome,
                                       applied_at)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, case when $10::text is null then null else now() end)
           on conflict (dedupe_key) do nothing
           returning id"#,
        payment,
        n.order_id,
        n.transaction_id,
        n.transaction_status,
        n.status_code,
        n.fraud_status,
        n.gross_amount,
        dedupe,
        raw,
        effect.map(Effect::as_str)
    )
    .fetch_optional(&mut *conn)
    .await
}

/// Whether `n` reports money in for a transaction that an applied notification already closed.
async fn settles_a_closed_transaction(
    conn: &mut PgConnection,
    payment: Uuid,
    n: &Notification,
) -> Result<bool, sqlx::Error> {
    let (Outcome::Paid | Outcome::Challenge, Some(transaction)) = (n.outcome(), n.transaction_id.as_deref())
    else {
        return Ok(false);
    };
    sqlx::query_scalar!(
        r#"select exists(select 1 from payment_events
                         where payment_id = $1 and transaction_id = $2 and applied_at is not null
                           and transaction_status in ('deny', 'cancel', 'expire', 'failure', 'refund',
                                                      'partial_refund', 'chargeback', 'partial_chargeback'))
           as "closed!""#,
        payment,
        transaction
    )
    .fetch_one(&mut *conn)
    .await
}

/// Puts a payment reported with an amount we did not charge under review; its order keeps its hold.
async fn hold_for_review(conn: &mut PgConnection, order: Uuid, payment: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update payments set status = $2, review_started_at = now(), updated_at = now() where id = $1",
        payment,
        PaymentStatus::NeedsReview as _
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        r#"update orders set status = $2, updated_at = now(),
                  notice = 'Your payment is being checked by our team; the order keeps its items meanwhile.'
           where id = $1 and status = 'pending_payment'"#,
        order,
        OrderStatus::PaymentReview as _
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}
