//! The payment state machine: what one notification's outcome does, given the payment's and the order's
//! states. Every (outcome, payment state) pair is named in the match below, so a new state does not
//! compile until someone decides what each outcome does to it. The rows are locked by the caller.

use chrono::{DateTime, Utc};
use midtrans::{Notification, Outcome};
use pipeline::states::{OrderStatus, PaymentStatus};
use sqlx::PgConnection;

use super::{Effect, OrderRow, PaymentRow, settle};
use crate::{
    expiry::{self, Ended},
    payments::tickets,
    stock::{self, Move},
};

/// Moves the payment (and its order) as `n` says, or answers [`Effect::Stale`] where `n` cannot follow the
/// payment's state.
pub(super) async fn apply(
    conn: &mut PgConnection,
    order: &OrderRow,
    payment: &PaymentRow,
    n: &Notification,
    now: DateTime<Utc>,
) -> Result<Effect, sqlx::Error> {
    use PaymentStatus as P;
    let outcome = n.outcome();
    match (outcome, payment.status) {
        (
            Outcome::Paid,
            P::Pending | P::Challenge | P::Failed | P::Expired | P::Cancelled | P::NeedsReview,
        ) => paid(conn, order, payment, n).await,
        (Outcome::Paid, P::Paid | P::PartiallyRefunded | P::Refunded | P::RefundPending | P::Reversed) => {
            Ok(Effect::Stale)
        }

        (Outcome::Challenge, P::Pending) => challenge(conn, order, payment, n).await,
        (Outcome::Pending, P::Pending) => {
            set_payment(conn, payment, P::Pending, n).await?;
            Ok(Effect::Noted)
        }
        (
            Outcome::Challenge | Outcome::Pending,
            P::Challenge
            | P::Paid
            | P::Failed
            | P::Expired
            | P::Cancelled
            | P::RefundPending
            | P::Refunded
            | P::PartiallyRefunded
            | P::Reversed
            | P::NeedsReview,
        ) => Ok(Effect::Stale),

        (
            Outcome::Denied | Outcome::Cancelled | Outcome::Failed | Outcome::Expired,
            P::Pending | P::Challenge,
        ) => not_paid(conn, order, payment, n, outcome, now).await,
        (Outcome::Denied | Outcome::Cancelled, P::Paid) if reverses_the_payment(payment, n, outcome) => {
            reversed(conn, order, payment, n).await
        }
        (
            Outcome::Denied | Outcome::Cancelled | Outcome::Failed | Outcome::Expired,
            P::Paid
            | P::Failed
            | P::Expired
            | P::Cancelled
            | P::RefundPending
            | P::Refunded
            | P::PartiallyRefunded
            | P::Reversed
            | P::NeedsReview,
        ) => Ok(Effect::Stale),

        (Outcome::Refunded { .. } | Outcome::PartiallyRefunded { .. }, _) if !n.refund_confirmed() => {
            Ok(Effect::RefundUnconfirmed)
        }
        (Outcome::Refunded { .. }, P::Pending | P::Challenge) => {
            refunded_before_paid(conn, order, payment, n).await
        }
        (
            Outcome::Refunded { amount } | Outcome::PartiallyRefunded { amount },
            P::Paid | P::PartiallyRefunded | P::RefundPending | P::Refunded,
        ) => {
            let full = matches!(outcome, Outcome::Refunded { .. });
            refunded(conn, order, payment, n, full, amount).await
        }
        (Outcome::PartiallyRefunded { .. }, P::Pending | P::Challenge)
        | (
            Outcome::Refunded { .. } | Outcome::PartiallyRefunded { .. },
            P::Failed | P::Expired | P::Cancelled | P::Reversed | P::NeedsReview,
        ) => Ok(Effect::Stale),

        (Outcome::Unknown, _) => Ok(Effect::Ignored),
    }
}

/// Money in for a payment that has not counted yet. The order takes it while its hold stands, or comes
/// back to life if it can; otherwise (items gone, buyer limit, already paid) the payment is refunded.
async fn paid(
    conn: &mut PgConnection,
    order: &OrderRow,
    payment: &PaymentRow,
    n: &Notification,
) -> Result<Effect, sqlx::Error> {
    set_payment(conn, payment, PaymentStatus::Paid, n).await?;
    sqlx::query!(
        "update payments set paid_at = coalesce(paid_at, now()), paid_transaction_id = $2 where id = $1",
        payment.id,
        n.transaction_id
    )
    .execute(&mut *conn)
    .await?;
    let (reason, notice) = match order.status {
        OrderStatus::PendingPayment | OrderStatus::PaymentReview => {
            settle::pay_held(conn, order.id).await?;
            return Ok(Effect::Paid);
        }
        OrderStatus::Expired | OrderStatus::Cancelled => {
            let notice = "Your payment arrived after the hold ended; the items were still available, so the order is paid.";
            match settle::pay_late(conn, order.id, notice).await? {
                Ok(()) => return Ok(Effect::PaidLate),
                Err(settle::Unrevivable::BuyerLimit) => (
                    "per_buyer_limit_after_hold",
                    "Your payment arrived after the hold ended, and you already hold as many tickets for this event as one buyer may; the full amount is being refunded.",
                ),
                Err(settle::Unrevivable::SoldOut) => (
                    "sold_out_after_hold",
                    "Your payment arrived after the hold ended and the items had sold out; the full amount is being refunded.",
                ),
            }
        }
        OrderStatus::Paid | OrderStatus::PartiallyRefunded | OrderStatus::Refunded => {
            ("order_already_paid", "This order was paid twice; the second payment is being refunded in full.")
        }
    };
    settle::require_refund(conn, order.id, payment.id, reason, notice).await?;
    Ok(Effect::RefundRequired)
}

/// A card payment held by fraud detection: the order waits for review, keeping its hold.
async fn challenge(
    conn: &mut PgConnection,
    order: &OrderRow,
    payment: &PaymentRow,
    n: &Notification,
) -> Result<Effect, sqlx::Error> {
    set_payment(conn, payment, PaymentStatus::Challenge, n).await?;
    sqlx::query!(
        "update orders set status = $2, updated_at = now() where id = $1 and status = 'pending_payment'",
        order.id,
        OrderStatus::PaymentReview as _
    )
    .execute(&mut *conn)
    .await?;
    Ok(Effect::Review)
}

/// An open payment ends unpaid; an order still holding for it gives its units back.
async fn not_paid(
    conn: &mut PgConnection,
    order: &OrderRow,
    payment: &PaymentRow,
    n: &Notification,
    outcome: Outcome,
    now: DateTime<Utc>,
) -> Result<Effect, sqlx::Error> {
    let status = match outcome {
        Outcome::Expired => PaymentStatus::Expired,
        Outcome::Cancelled => PaymentStatus::Cancelled,
        _ => PaymentStatus::Failed,
    };
    set_payment(conn, payment, status, n).await?;
    if !order.status.is_holding() {
        return Ok(Effect::Noted);
    }
    let ended = if outcome == Outcome::Expired || order.expires_at <= now {
        Ended::Expired
    } else {
        Ended::Cancelled
    };
    expiry::release(conn, &[order.id], ended).await?;
    Ok(Effect::Released)
}

/// A settled payment turned into `deny` (a reversal), or a captured card payment voided, for the very
/// transaction that paid.
fn reverses_the_payment(payment: &PaymentRow, n: &Notification, outcome: Outcome) -> bool {
    let voids = outcome == Outcome::Denied
        || (outcome == Outcome::Cancelled
            && Notification::was_card_capture(payment.midtrans_status.as_deref()));
    voids && same_transaction(payment.paid_transaction_id.as_deref(), n.transaction_id.as_deref())
}

/// The bank took a counted payment back: its order is cancelled, its tickets void, its units on sale.
async fn reversed(
    conn: &mut PgConnection,
    order: &OrderRow,
    payment: &PaymentRow,
    n: &Notification,
) -> Result<Effect, sqlx::Error> {
    set_payment(conn, payment, PaymentStatus::Reversed, n).await?;
    if order.status.is_paid() {
        undo_sale(conn, order).await?;
        sqlx::query!(
            r#"update orders set status = $2, cancelled_at = now(), updated_at = now(),
                      notice = 'The bank reversed your payment, so the order and its tickets were cancelled.'
               where id = $1"#,
            order.id,
            OrderStatus::Cancelled as _
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(Effect::Reversed)
}

/// Paid and fully refunded before we heard of the payment (its settlement was lost or is late): nothing
/// is owed either way, so the order ends like an unpaid one.
async fn refunded_before_paid(
    conn: &mut PgConnection,
    order: &OrderRow,
    payment: &PaymentRow,
    n: &Notification,
) -> Result<Effect, sqlx::Error> {
    set_payment(conn, payment, PaymentStatus::Refunded, n).await?;
    sqlx::query!("update payments set refunded_amount = gross_amount where id = $1", payment.id)
        .execute(&mut *conn)
        .await?;
    if order.status.is_holding() {
        expiry::release(conn, &[order.id], Ended::Cancelled).await?;
    }
    Ok(Effect::Refunded)
}

/// A confirmed refund of a counted (or to-be-refunded) payment, in full or in part; `amount` is the
/// cumulative refunded amount Midtrans reports.
async fn refunded(
    conn: &mut PgConnection,
    order: &OrderRow,
    payment: &PaymentRow,
    n: &Notification,
    full: bool,
    amount: Option<i64>,
) -> Result<Effect, sqlx::Error> {
    let gross = payment.gross_amount;
    let reported = amount.unwrap_or(if full { gross } else { 0 }).clamp(0, gross);
    let total_refunded = reported.max(payment.refunded_amount);
    let fully = full || total_refunded >= gross;
    let status = if fully { PaymentStatus::Refunded } else { PaymentStatus::PartiallyRefunded };
    set_payment(conn, payment, status, n).await?;
    sqlx::query!(
        "update payments set refunded_amount = $2 where id = $1",
        payment.id,
        if fully { gross } else { total_refunded }
    )
    .execute(&mut *conn)
    .await?;
    if payment.status.is_paid() && order.status.is_paid() {
        refund_order(conn, order, fully, total_refunded).await?;
    } else if payment.status == PaymentStatus::RefundPending && fully {
        sqlx::query!(
            "update orders set notice = notice || ' Refund completed.', updated_at = now() where id = $1 and notice is not null",
            order.id
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(if fully { Effect::Refunded } else { Effect::PartiallyRefunded })
}

/// A paid order refunded: in full it is undone (tickets void, units back on sale); in part it stays paid
/// with the refunded amount recorded.
async fn refund_order(
    conn: &mut PgConnection,
    order: &OrderRow,
    fully: bool,
    total_refunded: i64,
) -> Result<(), sqlx::Error> {
    let (status, refunded) = if fully {
        (OrderStatus::Refunded, order.total)
    } else {
        (OrderStatus::PartiallyRefunded, total_refunded.min(order.total))
    };
    if fully {
        undo_sale(conn, order).await?;
    }
    sqlx::query!(
        "update orders set status = $2, refunded_amount = least($3, total), updated_at = now() where id = $1",
        order.id,
        status as _,
        refunded
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A paid order's units go back on sale and its tickets become void.
async fn undo_sale(conn: &mut PgConnection, order: &OrderRow) -> Result<(), sqlx::Error> {
    stock::lock_products(conn, &[order.id]).await?;
    stock::shift(conn, &[order.id], Move::ReleaseSold).await?;
    tickets::void(conn, order.id).await
}

/// A failure report is about the paying transaction when both ids are known and equal (or when either
/// is missing, as in status answers of old transactions).
fn same_transaction(paid: Option<&str>, reported: Option<&str>) -> bool {
    match (paid, reported) {
        (Some(p), Some(r)) => p == r,
        _ => true,
    }
}

/// Records the payment's new state and what Midtrans last said of it.
async fn set_payment(
    conn: &mut PgConnection,
    payment: &PaymentRow,
    status: PaymentStatus,
    n: &Notification,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"update payments set status = $2, midtrans_status = $3,
                  transaction_id = coalesce($4, transaction_id), updated_at = now()
           where id = $1"#,
        payment.id,
        status as _,
        n.transaction_status,
        n.transaction_id
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}
