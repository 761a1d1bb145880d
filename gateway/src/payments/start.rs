//! `POST /api/orders/{id}/payment`: starts (or resumes) paying for the buyer's own unpaid order.
//!
//! One order never has two live Midtrans transactions: the payment row is written, under the order's row
//! lock and a unique index on live payments, *before* Midtrans is called. A repeat (same key or not) while
//! that payment is live answers the same token or QR. If the call to Midtrans ended without an answer
//! (timeout), the row stays and the next request calls again with the same `order_id` and
//! `Idempotency-Key`, which Midtrans answers with the stored result.

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, header},
};
use chrono::{DateTime, Duration, Utc};
use midtrans::client::{
    Callbacks, CustomExpiry, CustomerDetails, ItemDetail, QrisRequest, SnapExpiry, SnapRequest,
    TransactionDetails, item_name,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    error::{ApiError, ErrorBody},
    http::extract::{ApiPath, AuthUser},
    state::AppState,
};

/// A payment may not start with less hold left than this (Midtrans' shortest expiry is a minute here).
const MIN_HOLD_LEFT_SECS: i64 = 60;
/// How long past the request deadline a request creating a payment at Midtrans keeps others from calling
/// Midtrans for it too; the window is cleared as soon as Midtrans answered or failed to.
const CREATING_MARGIN_SECS: f64 = 5.0;

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct StartPayment {
    /// `snap` (Midtrans' payment page: cards, e-wallets, QRIS, VA; the default) or `qris` (a QR code
    /// shown on our page).
    pub method: Option<String>,
}

#[derive(Serialize, ToSchema, Clone, Debug)]
pub struct Payment {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    /// The `order_id` Midtrans knows this payment by (and sends back in notifications).
    pub midtrans_order_id: String,
    /// `snap` or `qris`.
    pub method: String,
    /// `pending`, `challenge`, `paid`, `failed`, `expired`, `cancelled`, `refund_pending`, `refunded`,
    /// `partially_refunded`, `reversed`.
    pub status: String,
    pub gross_amount: i64,
    /// Snap token (for Snap's browser script).
    pub token: Option<String>,
    /// Snap payment page.
    pub redirect_url: Option<String>,
    /// QRIS payload.
    pub qr_string: Option<String>,
    /// The QRIS payload drawn as an SVG QR code.
    pub qr_svg: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

pub(crate) struct PaymentRow {
    pub id: Uuid,
    pub order_id: Uuid,
    pub midtrans_order_id: String,
    pub method: String,
    pub status: String,
    pub gross_amount: i64,
    pub snap_token: Option<String>,
    pub redirect_url: Option<String>,
    pub qr_string: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub creating_until: Option<DateTime<Utc>>,
}

impl From<PaymentRow> for Payment {
    fn from(p: PaymentRow) -> Self {
        Payment {
            qr_svg: p.qr_string.as_deref().and_then(crate::tickets::qr_svg),
            payment_id: p.id,
            order_id: p.order_id,
            midtrans_order_id: p.midtrans_order_id,
            method: p.method,
            status: p.status,
            gross_amount: p.gross_amount,
            token: p.snap_token,
            redirect_url: p.redirect_url,
            qr_string: p.qr_string,
            expires_at: p.expires_at,
        }
    }
}

impl PaymentRow {
    fn started(&self) -> bool {
        self.snap_token.is_some() || self.qr_string.is_some()
    }
}

/// Start paying for an unpaid order (Snap page or QRIS code). Idempotent per order.
#[utoipa::path(post, path = "/api/orders/{id}/payment", tag = "payments", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("Idempotency-Key" = String, Header, description = "one per payment attempt")),
    request_body(content = StartPayment, description = "optional; `{}` or no body means Snap"),
    responses((status = 200, body = Payment), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "not payable (paid, expired, cancelled) or too little hold left", body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn start(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(order_id): ApiPath<Uuid>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<Payment>, ApiError> {
    let client = state.midtrans.clone().ok_or(ApiError::Unavailable {
        message: "payments are not configured",
        retry_after: std::time::Duration::from_secs(60),
    })?;
    let key = crate::orders::intake::idempotency_key(&headers)?;
    let method = method(&body)?;

    let window = state.config.request_timeout_ms as f64 / 1000.0 + CREATING_MARGIN_SECS;
    let mut tx = state.db.begin().await?;
    let order = sqlx::query!(
        "select status, total, expires_at from orders where id = $1 and user_id = $2 for update",
        order_id,
        user.id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(ApiError::NotFound("order"))?;
    let existing = sqlx::query_as!(
        PaymentRow,
        r#"select id, order_id, midtrans_order_id, method, status, gross_amount, snap_token,
                  redirect_url, qr_string, expires_at, creating_until
           from payments
           where order_id = $1
             and (status in ('pending', 'challenge')
                  or (idempotency_key = $2 and (snap_token is not null or qr_string is not null)))
           order by (status in ('pending', 'challenge')) desc, created_at desc limit 1"#,
        order_id,
        key
    )
    .fetch_optional(&mut *tx)
    .await?;
    let payment = match existing {
        // A live payment, or this key's earlier answer: the same answer again.
        Some(p) if p.started() || !matches!(p.status.as_str(), "pending" | "challenge") => {
            tx.commit().await?;
            return Ok(axum::Json(p.into()));
        }
        Some(p) if p.creating_until.is_some_and(|t| t > Utc::now()) => {
            return Err(ApiError::Unavailable {
                message: "this payment is being created; retry in a moment",
                retry_after: std::time::Duration::from_secs(1),
            });
        }
        // Created earlier but Midtrans' answer was lost: ask again with the same ids.
        Some(p) => {
            if order.status != "pending_payment" && order.status != "payment_review" {
                // The order ended (cancelled, expired) while Midtrans' answer was in doubt.
                sqlx::query!(
                    "update payments set status = 'cancelled', updated_at = now() where id = $1",
                    p.id
                )
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                return Err(ApiError::conflict(
                    "not_payable",
                    format!("an order that is {} cannot be paid", order.status),
                ));
            }
            sqlx::query!(
                "update payments set creating_until = now() + make_interval(secs => $2) where id = $1",
                p.id,
                window
            )
            .execute(&mut *tx)
            .await?;
            p
        }
        None => {
            // Only new attempts count against the buyer's limit; repeats of a live one are answered freely.
            state.limits.check(state.rules.payment_user, &user.id.to_string()).await?;
            if order.total == 0 {
                return Err(ApiError::conflict(
                    "free_order",
                    "this order costs nothing: it is confirmed without a payment in a moment",
                ));
            }
            if order.status != "pending_payment" {
                return Err(ApiError::conflict(
                    "not_payable",
                    format!("an order that is {} cannot be paid", order.status),
                ));
            }
            if order.expires_at - Utc::now() < Duration::seconds(MIN_HOLD_LEFT_SECS) {
                return Err(ApiError::conflict(
                    "hold_ending",
                    "this order's hold ends in less than a minute; order again",
                ));
            }
            let attempt =
                sqlx::query_scalar!(r#"select count(*) as "n!" from payments where order_id = $1"#, order_id)
                    .fetch_one(&mut *tx)
                    .await?;
            // 3 + 32 + 1 + digits: well within Midtrans' 50 characters, only `-` as a symbol.
            let midtrans_order_id = format!("QC-{}-{}", order_id.simple(), attempt + 1);
            sqlx::query_as!(
                PaymentRow,
                r#"insert into payments (id, order_id, midtrans_order_id, method, status, gross_amount,
                                         idempotency_key, expires_at, creating_until)
                   values ($1, $2, $3, $4, 'pending', $5, $6, $7, now() + make_interval(secs => $8))
                   returning id, order_id, midtrans_order_id, method, status, gross_amount,
                             snap_token, redirect_url, qr_string, expires_at, creating_until"#,
                Uuid::now_v7(),
                order_id,
                midtrans_order_id,
                method,
                order.total,
                key,
                order.expires_at,
                window
            )
            .fetch_one(&mut *tx)
            .await?
        }
    };
    tx.commit().await?;

    let hold_left = (order.expires_at - Utc::now()).num_minutes().max(1);
    let lines = lines(&state, order_id).await?;
    let sum: i64 = lines.iter().map(|l| l.price * l.quantity).sum();
    if sum != payment.gross_amount {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "order {order_id}: items sum to {sum}, payment is {}",
            payment.gross_amount
        )));
    }
    let customer =
        sqlx::query!("select name, email from users where id = $1", user.id).fetch_one(&state.db).await?;
    let customer = CustomerDetails { first_name: item_name(&customer.name), email: customer.email };
    let details = TransactionDetails {
        order_id: payment.midtrans_order_id.clone(),
        gross_amount: payment.gross_amount,
    };
    // The Midtrans Idempotency-Key is the payment's own id: the same for every repeat of this attempt.
    let midtrans_key = payment.id.simple().to_string();
    let answer = if payment.method == "qris" {
        let request = QrisRequest {
            transaction_details: details,
            item_details: lines,
            customer_details: customer,
            custom_expiry: CustomExpiry {
                order_time: midtrans::time::request_time(Utc::now()),
                expiry_duration: hold_left,
                unit: "minute",
            },
            custom_field1: order_id.to_string(),
        };
        client.qris_charge(&request, &midtrans_key).await.map(|r| {
            let expires = r
                .expiry_time
                .as_deref()
                .and_then(midtrans::time::parse_plain_time)
                .unwrap_or_else(|| Utc::now() + Duration::minutes(hold_left));
            (None, None, Some(r.qr_string), r.transaction_id, expires)
        })
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
            callbacks: Some(Callbacks {
                finish: format!("{}/order.html?id={order_id}", public_base(&state, &headers)),
            }),
            custom_field1: order_id.to_string(),
        };
        client.snap_create(&request, &midtrans_key).await.map(|r| {
            (Some(r.token), Some(r.redirect_url), None, None, Utc::now() + Duration::minutes(hold_left))
        })
    };
    match answer {
        Ok((token, redirect_url, qr_string, transaction_id, expires_at)) => {
            let saved = sqlx::query_as!(
                PaymentRow,
                r#"update payments set snap_token = $2, redirect_url = $3, qr_string = $4,
                          transaction_id = coalesce($5, transaction_id), expires_at = $6, creating_until = null,
                          updated_at = now()
                   where id = $1 and status in ('pending', 'challenge')
                   returning id, order_id, midtrans_order_id, method, status, gross_amount,
                             snap_token, redirect_url, qr_string, expires_at, creating_until"#,
                payment.id,
                token,
                redirect_url,
                qr_string,
                transaction_id,
                expires_at.min(order.expires_at)
            )
            .fetch_optional(&state.db)
            .await?
            // Cancelled (with its order) while Midtrans was answering; should it be paid anyway, the late
            // payment is honoured or refunded like any other.
            .ok_or_else(|| ApiError::conflict("not_payable", "this order was cancelled meanwhile"))?;
            metrics::counter!("payments_started_total", "method" => saved.method.clone()).increment(1);
            Ok(axum::Json(saved.into()))
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
            // A definite refusal: this attempt is over, so a new one may start.
            tracing::error!(error = %e, payment = %payment.id, "Midtrans refused the payment");
            sqlx::query!(
                "update payments set status = 'failed', creating_until = null, updated_at = now() where id = $1 and status = 'pending'",
                payment.id
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

fn method(body: &Bytes) -> Result<String, ApiError> {
    let request: StartPayment = if body.iter().all(u8::is_ascii_whitespace) {
        StartPayment::default()
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request("invalid_json", format!("invalid JSON body: {e}")))?
    };
    match request.method.as_deref().unwrap_or("snap") {
        m @ ("snap" | "qris") => Ok(m.to_owned()),
        _ => Err(ApiError::validation("method must be `snap` or `qris`")),
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

/// The storefront's address for Midtrans' "finish" redirect: configured, or (development) this request's
/// host.
fn public_base(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(base) = &state.config.public_base_url {
        return base.trim_end_matches('/').to_owned();
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1:8080");
    format!("http://{host}")
}
