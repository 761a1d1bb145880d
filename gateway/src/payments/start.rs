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
use pipeline::states::{OrderStatus, PaymentStatus};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use super::charge;
use crate::{
    error::{ApiError, ErrorBody},
    http::extract::{ApiPath, AuthUser, IdempotencyKey},
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
    #[schema(value_type = Option<String>, pattern = "^(snap|qris)$")]
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
    pub status: PaymentStatus,
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
    pub status: PaymentStatus,
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
#[utoipa::path(post, operation_id = "start_payment", path = "/api/orders/{id}/payment", tag = "payments", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("Idempotency-Key" = String, Header, pattern = "^[!-~]{1,255}$", description = "one per payment attempt")),
    request_body(content = StartPayment, description = "optional; `{}` or no body means Snap"),
    responses((status = 200, body = Payment),
        (status = 409, description = "not payable (paid, expired, cancelled) or too little hold left", body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn start(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(order_id): ApiPath<Uuid>,
    IdempotencyKey(key): IdempotencyKey,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<Payment>, ApiError> {
    let client = state.midtrans.clone().ok_or(ApiError::Unavailable {
        message: "payments are not configured",
        retry_after: std::time::Duration::from_secs(60),
    })?;
    let method = method(&body)?;
    let attempt = Attempt { user: user.id, order_id, key: &key, method: &method };
    let (order, payment) = match reserve(&state, &attempt).await? {
        Reserved::Answered(p) => return Ok(axum::Json(p.into())),
        Reserved::ToCall { order, payment } => (order, payment),
    };
    let finish = format!("{}/order.html?id={order_id}", public_base(&state, &headers));
    let answer = charge::call(&state, &client, user.id, &order, &payment, finish).await;
    charge::save(&state, &order, &payment, answer).await.map(axum::Json)
}

/// One request to pay: who, for which order, with which key and method.
struct Attempt<'a> {
    user: Uuid,
    order_id: Uuid,
    key: &'a str,
    method: &'a str,
}

/// The order as the payment sees it (locked while the attempt is reserved).
pub(super) struct OrderToPay {
    pub id: Uuid,
    pub status: OrderStatus,
    pub total: i64,
    pub expires_at: DateTime<Utc>,
}

/// What reserving found: an answer already given, or a payment row to ask Midtrans about.
enum Reserved {
    Answered(PaymentRow),
    ToCall { order: OrderToPay, payment: PaymentRow },
}

/// Step 1, under the order's row lock: answers a live payment (or this key's earlier answer) again, or
/// takes the payment row whose Midtrans call is to be made: one created earlier whose answer was lost, or
/// a new one. Another request calling Midtrans for the same row meanwhile makes this one wait.
async fn reserve(state: &AppState, a: &Attempt<'_>) -> Result<Reserved, ApiError> {
    let window = state.config.request_timeout_ms as f64 / 1000.0 + CREATING_MARGIN_SECS;
    let mut tx = state.db.begin().await?;
    let order = sqlx::query_as!(
        OrderToPay,
        r#"select id, status as "status: OrderStatus", total, expires_at from orders
           where id = $1 and user_id = $2 for update"#,
        a.order_id,
        a.user
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(ApiError::NotFound("order"))?;
    let payment = match existing(&mut tx, a).await? {
        // A live payment, or this key's earlier answer: the same answer again.
        Some(p) if p.started() || !p.status.is_open() => {
            tx.commit().await?;
            return Ok(Reserved::Answered(p));
        }
        Some(p) if p.creating_until.is_some_and(|t| t > Utc::now()) => {
            return Err(ApiError::Unavailable {
                message: "this payment is being created; retry in a moment",
                retry_after: std::time::Duration::from_secs(1),
            });
        }
        // Created earlier but Midtrans' answer was lost: ask again with the same ids.
        Some(p) => resume(&mut tx, p, &order, window).await,
        None => {
            // Only new attempts count against the buyer's limit; repeats of a live one are answered freely.
            state.limits.check(state.rules.payment_user, &a.user.to_string()).await?;
            new_attempt(&mut tx, a, &order, window).await
        }
    };
    // An order that ended while Midtrans' answer was in doubt has had that payment cancelled.
    tx.commit().await?;
    Ok(Reserved::ToCall { payment: payment?, order })
}

/// The order's live payment, or the one this key was answered with.
async fn existing(conn: &mut PgConnection, a: &Attempt<'_>) -> Result<Option<PaymentRow>, sqlx::Error> {
    sqlx::query_as!(
        PaymentRow,
        r#"select id, order_id, midtrans_order_id, method, status as "status: PaymentStatus", gross_amount,
                  snap_token, redirect_url, qr_string, expires_at, creating_until
           from payments
           where order_id = $1
             and (status in ('pending', 'challenge')
                  or (idempotency_key = $2 and (snap_token is not null or qr_string is not null)))
           order by (status in ('pending', 'challenge')) desc, created_at desc limit 1"#,
        a.order_id,
        a.key
    )
    .fetch_optional(&mut *conn)
    .await
}

fn not_payable(status: OrderStatus) -> ApiError {
    ApiError::conflict("not_payable", format!("an order that is {status} cannot be paid"))
}

/// A payment created earlier whose Midtrans answer was lost: called again, unless its order ended
/// meanwhile (then the payment is cancelled and the answer is 409).
async fn resume(
    conn: &mut PgConnection,
    p: PaymentRow,
    order: &OrderToPay,
    window: f64,
) -> Result<PaymentRow, ApiError> {
    if !order.status.is_holding() {
        sqlx::query!(
            "update payments set status = $2, updated_at = now() where id = $1",
            p.id,
            PaymentStatus::Cancelled as _
        )
        .execute(&mut *conn)
        .await?;
        return Err(not_payable(order.status));
    }
    sqlx::query!(
        "update payments set creating_until = now() + make_interval(secs => $2) where id = $1",
        p.id,
        window
    )
    .execute(&mut *conn)
    .await?;
    Ok(p)
}

/// A new attempt for an order that can take one: a new payment row, numbered after the order's earlier
/// attempts, marked as being created for `window` seconds.
async fn new_attempt(
    conn: &mut PgConnection,
    a: &Attempt<'_>,
    order: &OrderToPay,
    window: f64,
) -> Result<PaymentRow, ApiError> {
    if order.total == 0 {
        return Err(ApiError::conflict(
            "free_order",
            "this order costs nothing: it is confirmed without a payment in a moment",
        ));
    }
    if order.status != OrderStatus::PendingPayment {
        return Err(not_payable(order.status));
    }
    if order.expires_at - Utc::now() < Duration::seconds(MIN_HOLD_LEFT_SECS) {
        return Err(ApiError::conflict(
            "hold_ending",
            "this order's hold ends in less than a minute; order again",
        ));
    }
    let attempt =
        sqlx::query_scalar!(r#"select count(*) as "n!" from payments where order_id = $1"#, order.id)
            .fetch_one(&mut *conn)
            .await?;
    // 3 + 32 + 1 + digits: well within Midtrans' 50 characters, only `-` as a symbol.
    let midtrans_order_id = format!("QC-{}-{}", order.id.simple(), attempt + 1);
    Ok(sqlx::query_as!(
        PaymentRow,
        r#"insert into payments (id, order_id, midtrans_order_id, method, status, gross_amount,
                                 idempotency_key, expires_at, creating_until)
           values ($1, $2, $3, $4, $9, $5, $6, $7, now() + make_interval(secs => $8))
           returning id, order_id, midtrans_order_id, method, status as "status: PaymentStatus", gross_amount,
                     snap_token, redirect_url, qr_string, expires_at, creating_until"#,
        Uuid::now_v7(),
        order.id,
        midtrans_order_id,
        a.method,
        order.total,
        a.key,
        order.expires_at,
        window,
        PaymentStatus::Pending as _
    )
    .fetch_one(&mut *conn)
    .await?)
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

/// The storefront's address for Midtrans' "finish" redirect: configured, or (development) this request's
/// host.
fn public_base(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(base) = &state.config.public_base_url {
        return base.trim_end_matches('/').to_owned();
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1:8080");
    format!("http://{host}")
}
