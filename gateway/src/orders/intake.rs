//! `POST /api/orders`: checks a cart and an admission, records the request durably in PostgreSQL, puts it
//! on the order stream and answers 202 at once. Workers decide it (see `checkout_worker::allocation`).
//!
//! Order of checks, so that nothing is written for a bad request and a retry gets the same answer:
//! sign-in and Idempotency-Key → cart shape → the per-address limit (in the same Redis round trip as the
//! read of the cart's stock counters) and the order backlog → admission and visitor tokens → event and
//! items on sale ([`crate::catalog::sale_rules`]) → early sold-out from those stock counters (which may
//! only ever say no) →
//! record and spend the admission (one insert: the admission's `jti` is stored with the request under a
//! unique constraint, so recording the request and spending its admission are one fact in PostgreSQL; an
//! existing request with this key answers instead: same cart, same answer; other cart, 422; a refusal
//! above also falls back to the recorded answer; an admission already recorded with another request is
//! refused) → the per-buyer limit, on new requests only (a refused one is recorded as rejected,
//! `rate_limited`, and gives its admission back) → append to the stream. From the insert on, the request
//! is never removed: a 202 once given (to a double click racing this call) always names a request that
//! gets a definitive answer, and a request whose append failed is queued again by the workers.
//!
//! The last three steps (record, per-buyer limit, append) are [`crate::orders::record`]'s, which writes
//! requests arriving together as one batch (one insert and commit for many buyers).

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
};
use fred::{interfaces::HashesInterface, types::Value};
use pipeline::{
    orders::{CartLine, CheckoutRequest},
    states::{Reason, RequestStatus},
    submission::{self, SubmitOrder},
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use signing::TokenError;
use utoipa::ToSchema;
use uuid::Uuid;
use waiting_room::tokens::RoomTokens;

use crate::{
    catalog::sale_rules,
    error::{ApiError, ErrorBody},
    http::extract::{ApiJson, AuthUser, ClientIp, IdempotencyKey},
    orders::record::{Job, Outcome},
    state::AppState,
};

#[derive(Serialize, ToSchema)]
pub struct Accepted {
    pub request_id: Uuid,
    /// `queued`, then `confirmed` or `rejected`.
    pub status: RequestStatus,
    pub order_id: Option<Uuid>,
    pub reason: Option<Reason>,
}

struct Existing {
    id: Uuid,
    body_hash: String,
    status: RequestStatus,
    order_id: Option<Uuid>,
    reason: Option<Reason>,
}

/// Submit a cart (tickets and merchandise) for an admitted, signed-in buyer.
#[utoipa::path(post, operation_id = "submit_order", path = "/api/orders", tag = "orders", security(("bearer" = [])),
    request_body = SubmitOrder,
    params(
        ("Idempotency-Key" = String, Header, pattern = "^[!-~]{1,255}$", description = "one per purchase attempt; a retry sends the same"),
        ("Admission-Token" = String, Header, description = "from the waiting room's `admitted` message"),
        ("Visitor-Token" = String, Header, description = "the waiting-room visitor credential the admission was given to"),
    ),
    responses(
        (status = 202, body = Accepted),
        (status = 403, body = ErrorBody), (status = 409, description = "sold out, not on sale, admission already used", body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn submit(
    State(state): State<AppState>,
    user: AuthUser,
    IdempotencyKey(key): IdempotencyKey,
    ip: ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SubmitOrder>,
) -> Result<(StatusCode, axum::Json<Accepted>), ApiError> {
    let lines = cart(&body)?;
    let stock = ip_limit_and_stock(&state, &ip.group(), body.event_id, &lines).await?;
    refuse_when_backlogged(&state)?;
    let body_hash =
        hex::encode(Sha256::digest(serde_json::to_vec(&(body.event_id, &lines)).expect("carts serialise")));
    let event = body.event_id;

    // Everything that can refuse a new request without writing. A retry of a request already recorded
    // gets the recorded answer instead, even if its admission expired or the item sold out meanwhile.
    let (visitor, admission) = match precheck(&state, &headers, event, &lines, stock).await {
        Ok(checked) => checked,
        Err(e) => {
            return match find(&state, user.id, &key).await? {
                Some(existing) => same_answer(existing, &body_hash),
                None => Err(e),
            };
        }
    };

    let request =
        CheckoutRequest { request_id: Uuid::now_v7(), user_id: user.id, event_id: event, items: lines };
    let request_id = request.request_id;
    let job = Job {
        request,
        key: key.clone(),
        body_hash: body_hash.clone(),
        visitor,
        admission_jti: admission.jti,
    };
    match state.recorder.queue(job).await {
        Outcome::Queued => {}
        Outcome::Conflict => {
            return match find(&state, user.id, &key).await? {
                Some(existing) => same_answer(existing, &body_hash),
                None => {
                    metrics::counter!("orders_admission_reused_total").increment(1);
                    Err(admission_used())
                }
            };
        }
        Outcome::Refused(e) | Outcome::Failed(e) => return Err(e),
    }
    let accepted = Accepted { request_id, status: RequestStatus::Queued, order_id: None, reason: None };
    Ok((StatusCode::ACCEPTED, axum::Json(accepted)))
}

/// 503 while the workers are behind by more than the configured backlog.
fn refuse_when_backlogged(state: &AppState) -> Result<(), ApiError> {
    if state.order_backlog.load(std::sync::atomic::Ordering::Relaxed)
        < state.config.process.order_backlog_limit
    {
        return Ok(());
    }
    metrics::counter!("orders_refused_backlog_total").increment(1);
    Err(ApiError::Unavailable {
        message: "checkout is at capacity, retry in a moment",
        retry_after: std::time::Duration::from_secs(2),
    })
}

/// Tokens, catalog rules and the early sold-out check: (visitor, admission) when a new request may go on.
async fn precheck(
    state: &AppState,
    headers: &HeaderMap,
    event: Uuid,
    lines: &[CartLine],
    stock: Option<Vec<Option<i64>>>,
) -> Result<(Uuid, waiting_room::tokens::AdmissionClaims), ApiError> {
    let visitor_token =
        header(headers, "visitor-token").ok_or(ApiError::Unauthorized("missing Visitor-Token"))?;
    let visitor = state
        .signer
        .verify_visitor(visitor_token, event)
        .map_err(|_| ApiError::Unauthorized("invalid Visitor-Token for this event"))?;
    let admission_token =
        header(headers, "admission-token").ok_or(ApiError::Unauthorized("missing Admission-Token"))?;
    let admission = state.signer.verify_admission(admission_token, event, visitor).map_err(|e| match e {
        TokenError::Expired => ApiError::Unauthorized("admission expired; join the queue again"),
        TokenError::WrongHolder => ApiError::Forbidden,
        TokenError::Invalid => ApiError::Unauthorized("invalid Admission-Token"),
    })?;
    sale_rules::check_cart(&state.db, &state.sale_rules, event, lines).await?;
    early_sold_out(lines, stock)?;
    Ok((visitor, admission))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

/// The cart's shape: 1–20 lines, each naming exactly one product, quantities 1–100. Lines naming the
/// same product are merged into one (in the place of the first), so every later check, the order and a
/// late payment's availability check all see one quantity per product.
/// The body's cart under the submission rules (`pipeline::submission`), or a 422.
fn cart(body: &SubmitOrder) -> Result<Vec<CartLine>, ApiError> {
    submission::cart(body).map_err(|e| ApiError::validation(e.0))
}

async fn find(state: &AppState, user: Uuid, key: &str) -> Result<Option<Existing>, ApiError> {
    Ok(sqlx::query_as!(
        Existing,
        r#"select id, body_hash, status as "status: RequestStatus", order_id, reason as "reason: Reason"
           from order_requests where user_id = $1 and idempotency_key = $2"#,
        user,
        key
    )
    .fetch_optional(&state.db)
    .await?)
}

fn same_answer(existing: Existing, body_hash: &str) -> Result<(StatusCode, axum::Json<Accepted>), ApiError> {
    if existing.body_hash != body_hash {
        return Err(ApiError::Validation(
            "this Idempotency-Key was already used for a different cart; use a new key".into(),
        ));
    }
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(Accepted {
            request_id: existing.id,
            status: existing.status,
            order_id: existing.order_id,
            reason: existing.reason,
        }),
    ))
}

fn admission_used() -> ApiError {
    ApiError::conflict("admission_used", "this admission was already used for an order; join the queue again")
}

/// One Redis round trip for the per-address limit (answered at once) and the live stock counters of the
/// cart's items (read later by [`early_sold_out`]; `None` when Redis did not answer them).
async fn ip_limit_and_stock(
    state: &AppState,
    address: &str,
    event: Uuid,
    lines: &[CartLine],
) -> Result<Option<Vec<Option<i64>>>, ApiError> {
    let fields: Vec<String> = lines
        .iter()
        .map(|l| l.ticket_category_id.or(l.merchandise_id).expect("checked").to_string())
        .collect();
    let pipe = state.redis.next().pipeline();
    state.limits.queue_check(&pipe, state.rules.order_ip, address).await;
    let _: Result<(), _> = pipe.hmget(state.keys.event_stock(event), fields).await;
    let mut replies = pipe.try_all::<Value>().await.into_iter();
    let limit = replies.next().unwrap_or_else(|| Err(fred::error::Error::new_canceled()));
    state.limits.answer(state.rules.order_ip, address, limit).await?;
    match replies.next().map(|r| r.and_then(|v| v.convert::<Vec<Option<i64>>>())) {
        Some(Ok(stock)) => Ok(Some(stock)),
        Some(Err(e)) => {
            tracing::warn!(error = %e, "stock counters unavailable; the worker decides");
            Ok(None)
        }
        None => Ok(None),
    }
}

/// Says "sold out" without touching the stream when the live counters show an item cannot be had. The
/// counters are refreshed from PostgreSQL every controller tick, so a drifted counter corrects itself; a
/// missing counter never refuses, and PostgreSQL decides every sale.
fn early_sold_out(lines: &[CartLine], remaining: Option<Vec<Option<i64>>>) -> Result<(), ApiError> {
    for (line, left) in lines.iter().zip(remaining.unwrap_or_default()) {
        if left.is_some_and(|left| left < i64::from(line.quantity)) {
            metrics::counter!("orders_sold_out_early_total").increment(1);
            return Err(ApiError::conflict("sold_out", "sold out"));
        }
    }
    Ok(())
}
