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

use super::tickets;
use crate::stock::{self, Move};

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
    status: String,
    total: i64,
    expires_at: DateTime<Utc>,
}

struct PaymentRow {
    id: Uuid,
    status: String,
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
    let order = sqlx::query_as!(
        OrderRow,
        "select id, status, total, expires_at from orders where id = $1 for update",
        target.order_id
    )
    .fetch_one(&mut *tx)
    .await?;
    let payment = sqlx::query_as!(
        PaymentRow,
        "select id, status, gross_amount, midtrans_status, refunded_amount, paid_transaction_id from payments where id = $1 for update",
        target.id
    )
    .fetch_one(&mut *tx)
    .await?;

    let event = record(&mut tx, Some(payment.id), n, &dedupe, raw, None).await?;
    let Some(event) = event else {
        tx.rollback().await?;
        return Ok(Effect::Duplicate);
    };

    let effect = if n.charged_amount() != Some(payment.gross_amount) {
        tracing::error!(
            midtrans_order_id = %n.order_id,
            expected = payment.gross_amount,
            got = %n.gross_amount,
            "notification amount differs from the payment; payment put under review"
        );
        // Money may have moved, in an amount we did not ask for: neither paid nor released. The order
        // keeps its hold (the sweeper leaves orders under review alone) until someone looks at it.
        if matches!(payment.status.as_str(), "pending" | "challenge") {
            sqlx::query!(
                "update payments set status = 'needs_review', review_started_at = now(), updated_at = now() where id = $1",
                payment.id
            )
            .execute(&mut *tx)
            .await?;
            sqlx::query!(
                r#"update orders set status = 'payment_review', updated_at = now(),
                          notice = 'Your payment is being checked by our team; the order keeps its items meanwhile.'
                   where id = $1 and status = 'pending_payment'"#,
                order.id
            )
            .execute(&mut *tx)
            .await?;
        }
        Effect::AmountMismatch
    } else if settles_a_closed_transaction(&mut tx, payment.id, n).await? {
        // This very transaction was already reported denied, cancelled, expired or refunded: money in
        // for it is an old message arriving late (a reversal applied before its settlement).
        Effect::Stale
    } else {
        transition(&mut tx, &order, &payment, n, now).await?
    };
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

/// The state machine. The order and payment rows are locked by the caller.
async fn transition(
    conn: &mut PgConnection,
    order: &OrderRow,
    payment: &PaymentRow,
    n: &Notification,
    now: DateTime<Utc>,
) -> Result<Effect, sqlx::Error> {
    let status = n.transaction_status.as_str();
    let paid_here = matches!(payment.status.as_str(), "paid" | "partially_refunded");
    let order_paid = matches!(order.status.as_str(), "paid" | "partially_refunded");
    match n.outcome() {
        Outcome::Paid => {
            if matches!(
                payment.status.as_str(),
                "paid" | "partially_refunded" | "refunded" | "refund_pending" | "reversed"
            ) {
                return Ok(Effect::Stale);
            }
            set_payment(conn, payment.id, "paid", n).await?;
            sqlx::query!(
                "update payments set paid_at = coalesce(paid_at, now()), paid_transaction_id = $2 where id = $1",
                payment.id,
                n.transaction_id
            )
            .execute(&mut *conn)
            .await?;
            match order.status.as_str() {
                "pending_payment" | "payment_review" => {
                    pay_held(conn, order.id).await?;
                    Ok(Effect::Paid)
                }
                "expired" | "cancelled" => {
                    let notice = "Your payment arrived after the hold ended; the items were still available, so the order is paid.";
                    match pay_late(conn, order.id, notice).await? {
                        Ok(()) => Ok(Effect::PaidLate),
                        Err(Unrevivable::BuyerLimit) => {
                            let notice = "Your payment arrived after the hold ended, and you already hold as many tickets for this event as one buyer may; the full amount is being refunded.";
                            require_refund(conn, order.id, payment.id, "per_buyer_limit_after_hold", notice)
                                .await?;
                            Ok(Effect::RefundRequired)
                        }
                        Err(Unrevivable::SoldOut) => {
                            let notice = "Your payment arrived after the hold ended and the items had sold out; the full amount is being refunded.";
                            require_refund(conn, order.id, payment.id, "sold_out_after_hold", notice).await?;
                            Ok(Effect::RefundRequired)
                        }
                    }
                }
                _ => {
                    let notice = "This order was paid twice; the second payment is being refunded in full.";
                    require_refund(conn, order.id, payment.id, "order_already_paid", notice).await?;
                    Ok(Effect::RefundRequired)
                }
            }
        }
        Outcome::Challenge => {
            if payment.status != "pending" {
                return Ok(Effect::Stale);
            }
            set_payment(conn, payment.id, "challenge", n).await?;
            sqlx::query!(
                "update orders set status = 'payment_review', updated_at = now() where id = $1 and status = 'pending_payment'",
                order.id
            )
            .execute(&mut *conn)
            .await?;
            Ok(Effect::Review)
        }
        Outcome::Pending => {
            if payment.status != "pending" {
                return Ok(Effect::Stale);
            }
            set_payment(conn, payment.id, "pending", n).await?;
            Ok(Effect::Noted)
        }
        Outcome::Failed | Outcome::Expired => match payment.status.as_str() {
            "pending" | "challenge" => {
                let new_status = match status {
                    "expire" => "expired",
                    "cancel" => "cancelled",
                    _ => "failed",
                };
                set_payment(conn, payment.id, new_status, n).await?;
                if matches!(order.status.as_str(), "pending_payment" | "payment_review") {
                    let ended =
                        if status == "expire" || order.expires_at <= now { "expired" } else { "cancelled" };
                    crate::expiry::release(conn, &[order.id], ended).await?;
                    Ok(Effect::Released)
                } else {
                    Ok(Effect::Noted)
                }
            }
            // Settlement turned into deny (a reversal), or a captured card payment voided.
            "paid"
                if (status == "deny"
                    || (status == "cancel" && payment.midtrans_status.as_deref() == Some("capture")))
                    && same_transaction(
                        payment.paid_transaction_id.as_deref(),
                        n.transaction_id.as_deref(),
                    ) =>
            {
                set_payment(conn, payment.id, "reversed", n).await?;
                if order_paid {
                    stock::lock_products(conn, &[order.id]).await?;
                    stock::shift(conn, &[order.id], Move::ReleaseSold).await?;
                    tickets::void(conn, order.id).await?;
                    sqlx::query!(
                        r#"update orders set status = 'cancelled', cancelled_at = now(), updated_at = now(),
                                  notice = 'The bank reversed your payment, so the order and its tickets were cancelled.'
                           where id = $1"#,
                        order.id
                    )
                    .execute(&mut *conn)
                    .await?;
                }
                Ok(Effect::Reversed)
            }
            _ => Ok(Effect::Stale),
        },
        outcome @ (Outcome::Refunded { amount } | Outcome::PartiallyRefunded { amount }) => {
            if !n.refund_confirmed() {
                return Ok(Effect::RefundUnconfirmed);
            }
            if matches!(outcome, Outcome::Refunded { .. })
                && matches!(payment.status.as_str(), "pending" | "challenge")
            {
                // Paid and fully refunded before we heard of the payment (its settlement was lost or is
                // late): nothing is owed either way, so the order ends like an unpaid one.
                set_payment(conn, payment.id, "refunded", n).await?;
                sqlx::query!("update payments set refunded_amount = gross_amount where id = $1", payment.id)
                    .execute(&mut *conn)
                    .await?;
                if matches!(order.status.as_str(), "pending_payment" | "payment_review") {
                    crate::expiry::release(conn, &[order.id], "cancelled").await?;
                }
                return Ok(Effect::Refunded);
            }
            if !matches!(
                payment.status.as_str(),
                "paid" | "partially_refunded" | "refund_pending" | "refunded"
            ) {
                return Ok(Effect::Stale);
            }
            let full = matches!(outcome, Outcome::Refunded { .. });
            let gross = payment.gross_amount;
            let reported = amount.unwrap_or(if full { gross } else { 0 }).clamp(0, gross);
            let total_refunded = reported.max(payment.refunded_amount);
            let fully = full || total_refunded >= gross;
            let new_status = if fully { "refunded" } else { "partially_refunded" };
            set_payment(conn, payment.id, new_status, n).await?;
            sqlx::query!(
                "update payments set refunded_amount = $2 where id = $1",
                payment.id,
                if fully { gross } else { total_refunded }
            )
            .execute(&mut *conn)
            .await?;
            if paid_here && order_paid {
                if fully {
                    stock::lock_products(conn, &[order.id]).await?;
                    stock::shift(conn, &[order.id], Move::ReleaseSold).await?;
                    tickets::void(conn, order.id).await?;
                    sqlx::query!(
                        "update orders set status = 'refunded', refunded_amount = total, updated_at = now() where id = $1",
                        order.id
                    )
                    .execute(&mut *conn)
                    .await?;
                } else {
                    sqlx::query!(
                        r#"update orders set status = 'partially_refunded', refunded_amount = least($2, total),
                                  updated_at = now() where id = $1"#,
                        order.id,
                        total_refunded.min(order.total)
                    )
                    .execute(&mut *conn)
                    .await?;
                }
            } else if payment.status == "refund_pending" && fully {
                sqlx::query!(
                    "update orders set notice = notice || ' Refund completed.', updated_at = now() where id = $1 and notice is not null",
                    order.id
                )
                .execute(&mut *conn)
                .await?;
            }
            Ok(if fully { Effect::Refunded } else { Effect::PartiallyRefunded })
        }
        Outcome::Unknown => Ok(Effect::Ignored),
    }
}

/// A failure report is about the paying transaction when both ids are known and equal (or when either
/// is missing, as in status answers of old transactions).
fn same_transaction(paid: Option<&str>, reported: Option<&str>) -> bool {
    match (paid, reported) {
        (Some(p), Some(r)) => p == r,
        _ => true,
    }
}

async fn set_payment(
    conn: &mut PgConnection,
    id: Uuid,
    status: &str,
    n: &Notification,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"update payments set status = $2, midtrans_status = $3,
                  transaction_id = coalesce($4, transaction_id), updated_at = now()
           where id = $1"#,
        id,
        status,
        n.transaction_status,
        n.transaction_id
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

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
        r#"update orders set status = 'paid', paid_at = now(), cancelled_at = null, updated_at = now(),
                  notice = coalesce($2, notice)
           where id = $1"#,
        order,
        notice
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
        r#"update payments set status = 'refund_pending', refund_reason = $2, checked_at = null,
                  refund_key = coalesce(refund_key, 'rf-' || replace(id::text, '-', '')), updated_at = now()
           where id = $1"#,
        payment,
        reason
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
