//! Payments under review: a notification's amount differed from what was charged, so the payment was
//! neither honoured nor released and its order kept its hold. People resolve it: **accept** (the order is
//! paid and ticketed, as the settlement would have done; after its hold ended, only while the items and
//! the buyer's limit allow) or **refund** (the hold ends, the money is owed back and the reconciler asks
//! Midtrans for it). A review left unresolved past its deadline is refunded by the workers, so no review
//! can keep stock out of the sale for ever.
//!
//! Locks as in [`super::apply`]: the order row, then the payment row, then product rows in id order.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use pipeline::states::{OrderStatus, PaymentStatus};

use super::apply;
use crate::expiry::{self, Ended};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Accept,
    Refund,
}

/// What resolving did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolved {
    /// The order is paid and its tickets issued.
    Paid,
    /// The hold had ended and the items were still free: paid, tickets issued.
    PaidLate,
    /// The hold ended (the order is cancelled) and the payment is owed back.
    RefundOwed,
}

impl Resolved {
    pub fn as_str(self) -> &'static str {
        match self {
            Resolved::Paid => "paid",
            Resolved::PaidLate => "paid_late",
            Resolved::RefundOwed => "refund_owed",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("no such payment")]
    NotFound,
    #[error("the payment is not under review (it is {0})")]
    NotUnderReview(PaymentStatus),
    #[error("the order's hold ended and its items are no longer available (or the buyer's limit is reached)")]
    ItemsGone,
    #[error("the order is already {0}; refund this payment instead")]
    OrderClosed(OrderStatus),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Resolves the review of `payment` by `decision` inside the caller's transaction (which the caller
/// commits, with its audit record); `reason` is recorded with a refund.
pub async fn resolve(
    tx: &mut PgConnection,
    payment: Uuid,
    decision: Decision,
    reason: &str,
) -> Result<Resolved, ReviewError> {
    let order = sqlx::query_scalar!("select order_id from payments where id = $1", payment)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(ReviewError::NotFound)?;
    let order_status = sqlx::query_scalar!(
        r#"select status as "status: OrderStatus" from orders where id = $1 for update"#,
        order
    )
    .fetch_one(&mut *tx)
    .await?;
    let status = sqlx::query_scalar!(
        r#"select status as "status: PaymentStatus" from payments where id = $1 for update"#,
        payment
    )
    .fetch_one(&mut *tx)
    .await?;
    if status != PaymentStatus::NeedsReview {
        return Err(ReviewError::NotUnderReview(status));
    }
    let resolved = match decision {
        Decision::Accept => {
            let resolved = match order_status {
                OrderStatus::PendingPayment | OrderStatus::PaymentReview => {
                    apply::pay_held(tx, order).await?;
                    Resolved::Paid
                }
                OrderStatus::Expired | OrderStatus::Cancelled => {
                    let notice = "Your payment was checked by our team after the hold ended; the items were still available, so the order is paid.";
                    apply::pay_late(tx, order, notice).await?.map_err(|_| ReviewError::ItemsGone)?;
                    Resolved::PaidLate
                }
                closed @ (OrderStatus::Paid | OrderStatus::PartiallyRefunded | OrderStatus::Refunded) => {
                    return Err(ReviewError::OrderClosed(closed));
                }
            };
            sqlx::query!(
                r#"update payments set status = $2, paid_at = coalesce(paid_at, now()),
                          paid_transaction_id = coalesce(paid_transaction_id, transaction_id), updated_at = now()
                   where id = $1"#,
                payment,
                PaymentStatus::Paid as _
            )
            .execute(&mut *tx)
            .await?;
            resolved
        }
        Decision::Refund => {
            let notice = "Your payment could not be matched to this order, so the order was cancelled and the payment is being refunded.";
            apply::require_refund(tx, order, payment, reason, notice).await?;
            if order_status.is_holding() {
                expiry::release(tx, &[order], Ended::Cancelled).await?;
            }
            Resolved::RefundOwed
        }
    };
    tracing::info!(%payment, %order, outcome = resolved.as_str(), "payment review resolved");
    Ok(resolved)
}

/// Refunds every review started at or before `now - deadline` (at most `batch`); returns how many.
pub async fn refund_overdue(
    db: &PgPool,
    now: DateTime<Utc>,
    deadline: chrono::Duration,
    batch: i64,
) -> Result<usize, sqlx::Error> {
    let due = sqlx::query_scalar!(
        r#"select id from payments where status = 'needs_review' and review_started_at <= $1
           order by review_started_at limit $2"#,
        now - deadline,
        batch
    )
    .fetch_all(db)
    .await?;
    let mut refunded = 0;
    for payment in due {
        let mut tx = db.begin().await?;
        match resolve(&mut tx, payment, Decision::Refund, "review_deadline").await {
            Ok(_) => {
                tx.commit().await?;
                refunded += 1;
            }
            // Resolved by someone meanwhile.
            Err(ReviewError::NotUnderReview(_) | ReviewError::NotFound) => {}
            Err(ReviewError::Db(e)) => return Err(e),
            Err(e) => tracing::warn!(error = %e, %payment, "overdue review not refunded"),
        }
    }
    if refunded > 0 {
        tracing::warn!(refunded, "payment reviews left unresolved past their deadline were refunded");
        metrics::counter!("payment_reviews_expired_total").increment(refunded as u64);
    }
    Ok(refunded)
}
