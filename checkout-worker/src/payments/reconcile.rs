//! Payment reconciliation: what notifications alone cannot guarantee.
//!
//! - **Holds ending with a live transaction.** The hold sweeper skips orders with a pending Midtrans
//!   transaction; here we ask Midtrans first. Paid meanwhile: applied as paid. Still pending: cancelled at
//!   Midtrans (so it cannot be paid later) and the order expires. Unknown to Midtrans (a Snap page where
//!   no method was chosen): the order expires; a payment that still arrives later is honoured or refunded.
//! - **Overdue notifications.** Open payments not heard of for a minute are checked by GET status.
//! - **Refunds owed** (`refund_pending`): the refund is requested with the payment's `refund_key`, which
//!   makes repeating it safe, then the status is read back and applied.
//!
//! Every Midtrans answer goes through the same [`super::apply`] as notifications, so a status check and
//! the notification that reports the same state are applied once.

use chrono::{DateTime, Utc};
use midtrans::{Client, Notification, format_amount};
use sqlx::PgPool;
use uuid::Uuid;

use super::apply::apply;

/// An open payment is checked when its order's hold ended or it was last checked this long ago.
const CHECK_EVERY_SECS: f64 = 60.0;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reconciled {
    pub checked: usize,
    /// Midtrans answers applied (each like a notification).
    pub applied: usize,
    pub refunds_requested: usize,
}

/// One pass over at most `batch` open payments and `batch` refunds owed.
pub async fn reconcile_once(
    db: &PgPool,
    client: &Client,
    now: DateTime<Utc>,
    batch: i64,
) -> anyhow::Result<Reconciled> {
    let mut done = Reconciled::default();
    let open = sqlx::query!(
        r#"update payments p set checked_at = $1
           from orders o
           where o.id = p.order_id and p.id in (
               select p2.id from payments p2 join orders o2 on o2.id = p2.order_id
               where p2.status in ('pending', 'challenge')
                 and ((o2.expires_at <= $1
                       and (p2.checked_at is null or p2.checked_at <= $1 - make_interval(secs => $2::float8 / 6)))
                      or coalesce(p2.checked_at, p2.created_at) <= $1 - make_interval(secs => $2))
               order by p2.checked_at nulls first
               limit $3
               for update of p2 skip locked)
           returning p.id, p.midtrans_order_id, p.gross_amount, p.status, o.expires_at"#,
        now,
        CHECK_EVERY_SECS,
        batch
    )
    .fetch_all(db)
    .await?;
    for p in open {
        done.checked += 1;
        done.applied += check_open(
            db,
            client,
            &OpenPayment {
                id: p.id,
                midtrans_order_id: p.midtrans_order_id,
                gross_amount: p.gross_amount,
                hold_over: p.expires_at <= now,
            },
            now,
        )
        .await?;
    }
    // Refunds owed, each asked for at most once a minute (the bank's confirmation can take a while;
    // repeating with the same refund_key is safe but pointless in between).
    let owed = sqlx::query!(
        r#"update payments set checked_at = $1::timestamptz
           where id in (select id from payments
                        where status = 'refund_pending' and refund_key is not null
                          and (checked_at is null or checked_at <= $1::timestamptz - make_interval(secs => $2))
                        order by updated_at limit $3 for update skip locked)
           returning id, midtrans_order_id, gross_amount, refunded_amount, refund_key as "refund_key!",
                     coalesce(refund_reason, 'refund') as "reason!""#,
        now,
        CHECK_EVERY_SECS,
        batch
    )
    .fetch_all(db)
    .await?;
    for r in owed {
        let amount = r.gross_amount - r.refunded_amount;
        let (requested, applied) =
            ask_refund(db, client, &r.midtrans_order_id, &r.refund_key, amount, &r.reason, now).await?;
        if requested {
            tracing::info!(payment = %r.id, amount, "refund requested");
        }
        done.refunds_requested += usize::from(requested);
        done.applied += applied;
    }
    Ok(done)
}

/// An open payment as the reconciler checks it.
struct OpenPayment {
    id: Uuid,
    midtrans_order_id: String,
    gross_amount: i64,
    /// Its order's hold has ended.
    hold_over: bool,
}

/// Asks Midtrans where an open payment stands and applies the answer; a payment still open when its hold
/// is over is cancelled at Midtrans (or, never seen there, expired here). Returns the answers applied.
async fn check_open(
    db: &PgPool,
    client: &Client,
    p: &OpenPayment,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    let hold_over = p.hold_over;
    let mut applied = 0;
    match client.status(&p.midtrans_order_id).await {
        Ok(Some(status)) => {
            apply_answer(db, &status, now).await?;
            applied += 1;
            let still_open = matches!(status.outcome(), midtrans::Outcome::Pending);
            if hold_over && still_open {
                // Nobody paid within the hold: stop the transaction, then expire the order with it.
                match client.cancel(&p.midtrans_order_id, &format!("cx-{}", p.id.simple())).await {
                    Ok(answer) => {
                        apply_answer(db, &answer, now).await?;
                        applied += 1;
                    }
                    // 412: it changed meanwhile (perhaps paid); the next pass reads it again.
                    Err(e) => {
                        tracing::warn!(error = %e, payment = %p.id, "cancelling at Midtrans failed")
                    }
                }
            }
        }
        Ok(None) if hold_over => {
            // Midtrans never saw a payment method chosen: the transaction cannot be paid as things
            // stand, so the hold ends like any other.
            let local = Notification {
                order_id: p.midtrans_order_id.clone(),
                status_code: "202".into(),
                gross_amount: format_amount(p.gross_amount),
                transaction_status: "expire".into(),
                status_message: Some("hold ended before a payment method was chosen".into()),
                ..Default::default()
            };
            apply_answer(db, &local, now).await?;
            applied += 1;
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, payment = %p.id, "Midtrans status check failed"),
    }
    Ok(applied)
}

/// Asks Midtrans for a refund owed (the same `refund_key` every time, so a repeat refunds once) and applies
/// the status that follows. Returns whether it was requested, and the answers applied.
async fn ask_refund(
    db: &PgPool,
    client: &Client,
    midtrans_order_id: &str,
    refund_key: &str,
    amount: i64,
    reason: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<(bool, usize)> {
    match client.refund(midtrans_order_id, refund_key, amount, reason).await {
        Ok(_) => {
            let mut applied = 0;
            if let Ok(Some(status)) = client.status(midtrans_order_id).await {
                apply_answer(db, &status, now).await?;
                applied = 1;
            }
            Ok((true, applied))
        }
        Err(e) if e.is_transient() => {
            tracing::warn!(error = %e, midtrans_order_id, "refund request failed; will retry");
            Ok((false, 0))
        }
        Err(e) => {
            // Refused (e.g. a method Midtrans cannot refund through the API): people must act. It is
            // asked again each minute, so a fix on Midtrans' side is picked up.
            metrics::counter!("payment_refunds_refused_total").increment(1);
            tracing::error!(error = %e, midtrans_order_id, amount, "Midtrans refused a refund we owe");
            Ok((false, 0))
        }
    }
}

async fn apply_answer(db: &PgPool, n: &Notification, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    let raw = serde_json::to_value(n).expect("serialises");
    apply(db, n, &raw, now).await.map(|_| ())
}

/// Runs [`reconcile_once`] every `interval` until `shutdown`.
pub async fn run_reconciler(
    db: PgPool,
    client: Client,
    interval: std::time::Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    loop {
        match reconcile_once(&db, &client, Utc::now(), 100).await {
            Ok(r) if r.checked > 0 || r.refunds_requested > 0 => {
                tracing::info!(checked = r.checked, refunds = r.refunds_requested, "payments reconciled")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "payment reconciliation failed"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}
