//! Steps 2 and 3 of starting a payment (see [`super::start`]): asking Midtrans for a Snap page or a
//! QRIS code for the reserved payment row, and saving its answer, or what its refusal means for the row.

use chrono::{DateTime, Duration, Utc};
use midtrans::client::{
    Callbacks, CustomExpiry, CustomerDetails, ItemDetail, QrisRequest, SnapExpiry, SnapRequest,
    TransactionDetails, item_name,
};
use pipeline::states::PaymentStatus;
use uuid::Uuid;

use super::start::{OrderToPay, Payment, PaymentRow};
use crate::{error::ApiError, state::AppState};

/// What Midtrans gave for a payment: a Snap token and page, or a QR payload, and when it expires.
pub(super) struct Answer {
    token: Option<String>,
    redirect_url: Option<String>,
    qr_string: Option<String>,
    transaction_id: Option<String>,
    expires_at: DateTime<Utc>,
}

/// Asks Midtrans for `payment` (Snap, or a QRIS charge), expiring with the order's hold. The Midtrans
/// Idempotency-Key is the payment's own id: the same for every repeat of this attempt.
pub(super) async fn call(
    state: &AppState,
    client: &midtrans::Client,
    user: Uuid,
    order: &OrderToPay,
    payment: &PaymentRow,
    finish: String,
) -> Result<Result<Answer, midtrans::Error>, ApiError> {
    let hold_left = (order.expires_at - Utc::now()).num_minutes().max(1);
    let lines = lines(state, order.id).await?;
    let sum: i64 = lines.iter().map(|l| l.price * l.quantity).sum();
    if sum != payment.gross_amount {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "order {}: items sum to {sum}, payment is {}",
            order.id,
            payment.gross_amount
        )));
    }
    let customer =
        sqlx::query!("select name, email from users where id = $1", user).fetch_one(&state.db).await?;
    let customer = CustomerDetails { first_name: item_name(&customer.name), email: customer.email };
    let details = TransactionDetails {
        order_id: payment.midtrans_order_id.clone(),
        gross_amount: payment.gross_amount,
    };
    let key = payment.id.simple().to_string();
    if payment.method == "qris" {
        let request = QrisRequest {
            transaction_details: details,
            item_details: lines,
            customer_details: customer,
            custom_expiry: CustomExpiry {
                order_time: midtrans::time::request_time(Utc::now()),
                expiry_duration: hold_left,
                unit: "minute",
            },
            custom_field1: order.id.to_string(),
        };
        Ok(client.qris_charge(&request, &key).await.map(|r| Answer {
            expires_at: r
                .expiry_time
                .as_deref()
                .and_then(midtrans::time::parse_plain_time)
                .unwrap_or_else(|| Utc::now() + Duration::minutes(hold_left)),
            token: None,
            redirect_url: None,
            qr_string: Some(r.qr_string),
            transaction_id: r.transaction_id,
        }))
    } else {
        let request = SnapRequest {
            transaction_details: details,
            item_details: lines,
            customer_details: customer,
            expiry: SnapExpiry {
                start_time: midtrans::time::request_time(Utc::now()),
                unit: "minute",
                duration: hold_left,
            },
            callbacks: Some(Callbacks { finish }),
            custom_field1: order.id.to_string(),
        };
        Ok(client.snap_create(&request, &key).await.map(|r| Answer {
            token: Some(r.token),
            redirect_url: Some(r.redirect_url),
            qr_string: None,
            transaction_id: None,
            expires_at: Utc::now() + Duration::minutes(hold_left),
        }))
    }
}

/// Saves Midtrans' answer on the payment row. No answer (a timeout) keeps the row for the next request
/// to ask again with the same ids; a definite refusal ends the attempt, so a new one may start.
pub(super) async fn save(
    state: &AppState,
    order: &OrderToPay,
    payment: &PaymentRow,
    answer: Result<Result<Answer, midtrans::Error>, ApiError>,
) -> Result<Payment, ApiError> {
    match answer? {
        Ok(a) => {
            let saved = sqlx::query_as!(
                PaymentRow,
                r#"update payments set snap_token = $2, redirect_url = $3, qr_string = $4,
                          transaction_id = coalesce($5, transaction_id), expires_at = $6, creating_until = null,
                          updated_at = now()
                   where id = $1 and status in ('pending', 'challenge')
                   returning id, order_id, midtrans_order_id, method, status as "status: PaymentStatus",
                             gross_amount, snap_token, redirect_url, qr_string, expires_at, creating_until"#,
                payment.id,
                a.token,
                a.redirect_url,
                a.qr_string,
                a.transaction_id,
                a.expires_at.min(order.expires_at)
            )
            .fetch_optional(&state.db)
            .await?
            // Cancelled (with its order) while Midtrans was answering; should it be paid anyway, the late
            // payment is honoured or refunded like any other.
            .ok_or_else(|| ApiError::conflict("not_payable", "this order was cancelled meanwhile"))?;
            metrics::counter!("payments_started_total", "method" => saved.method.clone()).increment(1);
            Ok(saved.into())
        }
        Err(e) if e.is_transient() => {
            // Outcome unknown: keep the row; the next request asks again with the same ids, at once.
            tracing::warn!(error = %e, payment = %payment.id, "Midtrans did not answer; payment left to retry");
            sqlx::query!("update payments set creating_until = null where id = $1", payment.id)
                .execute(&state.db)
                .await?;
            Err(ApiError::Unavailable {
                message: "the payment provider is not answering; retry with the same Idempotency-Key",
                retry_after: std::time::Duration::from_secs(2),
            })
        }
        Err(e) => {
            tracing::error!(error = %e, payment = %payment.id, "Midtrans refused the payment");
            sqlx::query!(
                r#"update payments set status = $2, creating_until = null, updated_at = now()
                   where id = $1 and status = 'pending'"#,
                payment.id,
                PaymentStatus::Failed as _
            )
            .execute(&state.db)
            .await?;
            Err(ApiError::BadGateway {
                code: "payment_provider_error",
                message: "the payment provider refused this payment; try again".into(),
            })
        }
    }
}

/// The order's lines as Midtrans items: ids and names within Midtrans' 50 characters.
async fn lines(state: &AppState, order: Uuid) -> Result<Vec<ItemDetail>, ApiError> {
    Ok(sqlx::query!(
        "select id, name, quantity, unit_price from order_items where order_id = $1 order by id",
        order
    )
    .fetch_all(&state.db)
    .await?
    .into_iter()
    .map(|i| ItemDetail {
        id: i.id.to_string(),
        price: i.unit_price,
        quantity: i64::from(i.quantity),
        name: item_name(&i.name),
    })
    .collect())
}
