//! The HTTP side: the router, the guard in front of every API call (call counting, injected
//! failures, Basic auth, `Idempotency-Key` replay) and the Snap / Core API handlers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::model::{Refund, Transaction, amount_string, midtrans_time, notification_status_code, qr_string};
use crate::state::{Outgoing, Shared, Stored, View, describe};
use crate::{control, page, validate};

const UNAUTHORIZED: &str = "Access denied due to unauthorized transaction, please check client or server key";
const NOT_FOUND: &str = "Transaction doesn't exist.";
const CANNOT_UPDATE: &str = "Transaction status cannot be updated";
/// How long an idempotent answer is replayed.
const IDEMPOTENCY_TTL: Duration = Duration::from_secs(5 * 60);
/// Longer keys are ignored, as Midtrans does.
const IDEMPOTENCY_KEY_MAX: usize = 46;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route("/snap/v1/transactions", post(snap_create))
        .route("/v2/charge", post(charge))
        .route("/v2/{id}/status", get(status))
        .route("/v2/{id}/cancel", post(cancel))
        .route("/v2/{id}/expire", post(expire))
        .route("/v2/{id}/refund", post(refund))
        .route_layer(from_fn_with_state(Arc::clone(&shared), guard));
    Router::new()
        .merge(api)
        .merge(page::routes())
        .merge(control::routes())
        .fallback(|| async {
            core_error(StatusCode::NOT_FOUND, "404", "The requested resource is not found")
        })
        .with_state(shared)
}

/// Marks an answer that may be stored for `Idempotency-Key` replay.
#[derive(Clone, Copy)]
struct Succeeded;

/// A JSON answer; `ok` answers are eligible for idempotent replay.
pub(crate) struct Reply {
    status: StatusCode,
    body: Value,
    ok: bool,
}

impl Reply {
    fn ok(status: StatusCode, body: Value) -> Reply {
        Reply { status, body, ok: true }
    }

    fn err(status: StatusCode, body: Value) -> Reply {
        Reply { status, body, ok: false }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body)).into_response();
        if self.ok {
            response.extensions_mut().insert(Succeeded);
        }
        response
    }
}

fn snap_error(status: StatusCode, messages: Vec<String>) -> Reply {
    Reply::err(status, json!({ "error_messages": messages }))
}

fn core_error(status: StatusCode, code: &str, message: &str) -> Reply {
    Reply::err(status, json!({ "status_code": code, "status_message": message }))
}

fn authorized(headers: &HeaderMap, server_key: &str) -> bool {
    let Some(value) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) else { return false };
    let Some((scheme, credentials)) = value.trim().split_once(' ') else { return false };
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    STANDARD.decode(credentials.trim()).is_ok_and(|decoded| decoded == format!("{server_key}:").as_bytes())
}

/// The error an injected failure answers with.
fn injected_failure(snap: bool, http_status: u16) -> Response {
    let status = StatusCode::from_u16(http_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let message = match http_status {
        429 => "Your request has been rate limited, please try again later",
        500 => "Sorry. Our system is recovering from unexpected issues. Please retry.",
        502..=504 => "Service is temporarily unavailable, please try again later",
        _ => status.canonical_reason().unwrap_or("Error"),
    };
    if snap {
        snap_error(status, vec![message.to_owned()]).into_response()
    } else {
        core_error(status, &http_status.to_string(), message).into_response()
    }
}

/// Removes an `Idempotency-Key`'s in-flight mark when dropped (a stored answer stays).
struct InFlight {
    shared: Arc<Shared>,
    key: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        if matches!(st.idempotency.get(&self.key), Some(Stored::InFlight)) {
            st.idempotency.remove(&self.key);
        }
    }
}

/// Runs in front of every API route.
async fn guard(State(s): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let snap = path.starts_with("/snap/");
    {
        let mut st = s.lock();
        *st.api_calls.entry(path.clone()).or_default() += 1;
        if let Some(rule) = st.failures.iter_mut().find(|r| r.remaining > 0 && path.starts_with(&r.prefix)) {
            rule.remaining -= 1;
            let http_status = rule.http_status;
            st.failures.retain(|r| r.remaining > 0);
            tracing::info!(path, http_status, "answering with an injected failure");
            return injected_failure(snap, http_status);
        }
    }
    if !authorized(request.headers(), &s.server_key) {
        tracing::info!(path, "rejected: bad or missing Authorization");
        let reply = if snap {
            snap_error(StatusCode::UNAUTHORIZED, vec![UNAUTHORIZED.to_owned()])
        } else {
            core_error(StatusCode::UNAUTHORIZED, "401", UNAUTHORIZED)
        };
        return reply.into_response();
    }
    let key = (request.method() == Method::POST)
        .then(|| request.headers().get("idempotency-key"))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= IDEMPOTENCY_KEY_MAX)
        .map(str::to_owned);
    let Some(key) = key else { return next.run(request).await };

    {
        let mut st = s.lock();
        let now = Instant::now();
        st.idempotency.retain(|_, stored| !matches!(stored, Stored::Done { until, .. } if *until <= now));
        match st.idempotency.get(&key) {
            Some(Stored::Done { status, content_type, body, .. }) => {
                let mut response =
                    (StatusCode::from_u16(*status).unwrap_or(StatusCode::OK), body.clone()).into_response();
                if let Some(ct) = content_type.as_deref().and_then(|ct| HeaderValue::from_str(ct).ok()) {
                    response.headers_mut().insert(CONTENT_TYPE, ct);
                }
                st.replays += 1;
                tracing::info!(path, key, "replaying an idempotent answer");
                return response;
            }
            Some(Stored::InFlight) => {
                let reply = if snap {
                    snap_error(
                        StatusCode::ACCEPTED,
                        vec!["The request with this Idempotency-Key is still being processed".into()],
                    )
                } else {
                    core_error(
                        StatusCode::ACCEPTED,
                        "202",
                        "The request with this Idempotency-Key is still being processed",
                    )
                };
                return reply.into_response();
            }
            None => {
                st.idempotency.insert(key.clone(), Stored::InFlight);
            }
        }
    }

    // Clears the in-flight mark however this ends, also if the client goes away mid-request.
    let _in_flight = InFlight { shared: Arc::clone(&s), key: key.clone() };
    let response = next.run(request).await;
    if response.extensions().get::<Succeeded>().is_none() || !response.status().is_success() {
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(e) => {
            return core_error(StatusCode::INTERNAL_SERVER_ERROR, "500", &format!("reading the answer: {e}"))
                .into_response();
        }
    };
    let content_type = parts.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    // Stored before `_in_flight` drops, which then leaves the stored answer alone.
    s.lock().idempotency.insert(
        key,
        Stored::Done {
            status: parts.status.as_u16(),
            content_type,
            body: bytes.to_vec(),
            until: Instant::now() + IDEMPOTENCY_TTL,
        },
    );
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// Up to 3 URLs from a comma-separated notification header.
fn header_urls(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(',').map(str::trim).filter(|u| !u.is_empty()).take(3).map(str::to_owned).collect())
        .unwrap_or_default()
}

fn parse_object(body: &[u8]) -> Option<Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Some(json!({}));
    }
    serde_json::from_slice::<Value>(body).ok().filter(Value::is_object)
}

fn custom_fields(body: &Value, errors: &mut Vec<String>) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    for name in ["custom_field1", "custom_field2", "custom_field3"] {
        match body.get(name) {
            None | Some(Value::Null) => {}
            Some(Value::String(v)) if v.chars().count() <= 255 => {
                fields.insert(name.to_owned(), v.clone());
            }
            Some(_) => errors.push(format!("{name} must be a string of at most 255 characters")),
        }
    }
    fields
}

#[allow(clippy::too_many_arguments)]
fn new_transaction(
    now: chrono::DateTime<Utc>,
    order: validate::Order,
    channel: &str,
    body: &Value,
    headers: &HeaderMap,
    custom_fields: BTreeMap<String, String>,
    expires_at: chrono::DateTime<Utc>,
    snap_token: Option<String>,
    finish_url: Option<String>,
) -> Transaction {
    Transaction {
        order_id: order.order_id,
        transaction_id: Uuid::new_v4().to_string(),
        channel: channel.to_owned(),
        status: None,
        fraud_status: None,
        payment_type: None,
        gross_amount: order.gross_amount,
        refunded: 0,
        refund_keys: Vec::new(),
        refunds: Vec::new(),
        items: order.items,
        customer: order.customer,
        enabled_payments: body.get("enabled_payments").cloned().unwrap_or(Value::Null),
        custom_fields,
        created_at: now,
        transaction_time: now,
        settlement_time: None,
        expires_at,
        snap_token,
        notification_urls: header_urls(headers, "x-override-notification"),
        append_notification_urls: header_urls(headers, "x-append-notification"),
        finish_url,
        history: Vec::new(),
    }
}

/// `POST /snap/v1/transactions`
async fn snap_create(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Reply {
    let Some(body) = parse_object(&body) else {
        return snap_error(
            StatusCode::BAD_REQUEST,
            vec!["The request body is not a valid JSON object".into()],
        );
    };
    let now = Utc::now();
    let mut errors = Vec::new();
    let order = validate::order(&body, &mut errors);
    let expires_at = validate::snap_expiry(&body, now, &mut errors);
    let fields = custom_fields(&body, &mut errors);
    let finish_url = match body.pointer("/callbacks/finish") {
        None | Some(Value::Null) => None,
        Some(Value::String(url)) => Some(url.clone()),
        Some(_) => {
            errors.push("callbacks.finish must be a string".into());
            None
        }
    };
    let Some(order) = order.filter(|_| errors.is_empty()) else {
        return snap_error(StatusCode::BAD_REQUEST, errors);
    };
    let mut st = s.lock();
    if st.txs.contains_key(&order.order_id) {
        return snap_error(
            StatusCode::BAD_REQUEST,
            vec!["transaction_details.order_id has already been taken".into()],
        );
    }
    let token = Uuid::new_v4().to_string();
    let tx = new_transaction(
        now,
        order,
        "snap",
        &body,
        &headers,
        fields,
        expires_at,
        Some(token.clone()),
        finish_url,
    );
    tracing::info!(order_id = tx.order_id, gross_amount = tx.gross_amount, "snap transaction created");
    st.insert(tx);
    let redirect_url = format!("{}/snap/v3/redirection/{token}", s.public_url);
    Reply::ok(StatusCode::CREATED, json!({ "token": token, "redirect_url": redirect_url }))
}

/// `POST /v2/charge` (QRIS only)
async fn charge(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Reply {
    let Some(body) = parse_object(&body) else {
        return core_error(StatusCode::BAD_REQUEST, "400", "The request body is not a valid JSON object");
    };
    let mut errors = Vec::new();
    match body.get("payment_type").and_then(Value::as_str) {
        Some("qris") => {}
        Some(_) => return core_error(StatusCode::OK, "402", "Payment channel is not activated"),
        None => errors.push("payment_type is required".to_owned()),
    }
    let now = Utc::now();
    let order = validate::order(&body, &mut errors);
    let expires_at = validate::custom_expiry(&body, now, &mut errors);
    let fields = custom_fields(&body, &mut errors);
    let Some(order) = order.filter(|_| errors.is_empty()) else {
        return Reply::err(
            StatusCode::BAD_REQUEST,
            json!({
                "status_code": "400",
                "status_message": "One or more parameters in the payload is invalid.",
                "validation_messages": errors,
            }),
        );
    };
    let mut st = s.lock();
    // A cancelled or expired order id may be charged again; anything else is a conflict.
    if st
        .txs
        .get(&order.order_id)
        .is_some_and(|tx| !matches!(tx.status.as_deref(), Some("cancel" | "expire")))
    {
        return core_error(
            StatusCode::OK,
            "406",
            "The request could not be completed due to a conflict with the current state of the target \
             resource, please try again",
        );
    }
    let mut tx = new_transaction(now, order, "core", &body, &headers, fields, expires_at, None, None);
    tx.status = Some("pending".into());
    tx.fraud_status = Some("accept".into());
    tx.payment_type = Some("qris".into());
    tx.history.push("pending".into());
    let order_id = tx.order_id.clone();
    let transaction_id = tx.transaction_id.clone();
    let view = View {
        status: "pending",
        fraud: "accept",
        status_code: "201",
        status_message: "midtrans payment notification",
        sign_with: Some(&s.server_key),
    };
    let notification = describe(&tx, &view);
    let answer = json!({
        "status_code": "201",
        "status_message": "QRIS transaction is created",
        "transaction_id": transaction_id,
        "order_id": order_id,
        "merchant_id": crate::model::MERCHANT_ID,
        "gross_amount": amount_string(tx.gross_amount),
        "currency": "IDR",
        "payment_type": "qris",
        "transaction_time": midtrans_time(tx.transaction_time),
        "transaction_status": "pending",
        "fraud_status": "accept",
        "actions": [
            {"name": "generate-qr-code", "method": "GET",
             "url": format!("{}/v2/qris/{transaction_id}/qr-code", s.public_url)},
            {"name": "generate-qr-code-v2", "method": "GET",
             "url": format!("{}/v4/qris/A1{}{}/qr-code", s.public_url,
                 tx.transaction_time.format("%Y%m%d%H%M%S"),
                 transaction_id.replace('-', "").get(..12).unwrap_or_default())},
        ],
        "qr_string": qr_string(&order_id, tx.gross_amount, &transaction_id),
        "acquirer": "gopay",
        "expiry_time": midtrans_time(tx.expires_at),
    });
    tracing::info!(order_id, gross_amount = tx.gross_amount, "qris charge created");
    st.insert(tx);
    s.dispatch(&mut st, Outgoing { order_id, transaction_status: "pending".into(), body: notification });
    Reply::ok(StatusCode::OK, answer)
}

/// `GET /v2/{id}/status`
async fn status(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Reply {
    let st = s.lock();
    let Some(tx) = st.find(&id).filter(|tx| tx.status.is_some()) else {
        return core_error(StatusCode::NOT_FOUND, "404", NOT_FOUND);
    };
    let status = tx.status.as_deref().unwrap_or_default();
    let fraud = tx.fraud_status.as_deref().unwrap_or("accept");
    let status_code = if status == "expire" { "407" } else { notification_status_code(status, Some(fraud)) };
    let view = View {
        status,
        fraud,
        status_code,
        status_message: "Success, transaction is found",
        sign_with: Some(&s.server_key),
    };
    Reply::err(StatusCode::OK, describe(tx, &view))
}

/// `POST /v2/{id}/cancel`
async fn cancel(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Reply {
    let mut st = s.lock();
    let Some(tx) = st.find(&id).filter(|tx| tx.status.is_some()) else {
        return core_error(StatusCode::NOT_FOUND, "404", NOT_FOUND);
    };
    if !matches!(tx.status.as_deref(), Some("pending" | "capture" | "authorize")) {
        return core_error(StatusCode::OK, "412", CANNOT_UPDATE);
    }
    let order_id = tx.order_id.clone();
    let fraud = match tx.fraud_status.as_deref() {
        Some("challenge") => "challenge",
        _ => "accept",
    };
    s.set_status(&mut st, &order_id, ("cancel", fraud, None));
    let view = View {
        status: "cancel",
        fraud,
        status_code: "200",
        status_message: "Success, transaction is canceled",
        sign_with: None,
    };
    Reply::ok(StatusCode::OK, describe(&st.txs[&order_id], &view))
}

/// `POST /v2/{id}/expire`
async fn expire(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Reply {
    let mut st = s.lock();
    let Some(tx) = st.find(&id).filter(|tx| tx.status.is_some()) else {
        return core_error(StatusCode::NOT_FOUND, "404", NOT_FOUND);
    };
    if tx.status.as_deref() != Some("pending") {
        return core_error(StatusCode::OK, "412", CANNOT_UPDATE);
    }
    let order_id = tx.order_id.clone();
    s.set_status(&mut st, &order_id, ("expire", "accept", None));
    let view = View {
        status: "expire",
        fraud: "accept",
        status_code: "407",
        status_message: "Success, transaction has expired",
        sign_with: None,
    };
    Reply::ok(StatusCode::OK, describe(&st.txs[&order_id], &view))
}

/// `POST /v2/{id}/refund`
async fn refund(State(s): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> Reply {
    let Some(body) = parse_object(&body) else {
        return core_error(StatusCode::BAD_REQUEST, "400", "The request body is not a valid JSON object");
    };
    let refund_key = match body.get("refund_key") {
        None | Some(Value::Null) => Uuid::new_v4().to_string(),
        Some(Value::String(k)) if !k.is_empty() && k.len() <= 100 => k.clone(),
        Some(_) => {
            return core_error(StatusCode::BAD_REQUEST, "400", "refund_key must be a non-empty string");
        }
    };
    let amount = match body.get("amount") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_i64().filter(|a| *a >= 1) {
            Some(a) => Some(a),
            None => return core_error(StatusCode::BAD_REQUEST, "400", "amount must be a positive integer"),
        },
    };
    let reason = body.get("reason").and_then(Value::as_str).map(str::to_owned);

    let mut st = s.lock();
    let Some(tx) = st.find(&id).filter(|tx| tx.status.is_some()) else {
        return core_error(StatusCode::NOT_FOUND, "404", NOT_FOUND);
    };
    let order_id = tx.order_id.clone();
    if let Some(answer) = st.refund_answers.get(&(order_id.clone(), refund_key.clone())) {
        tracing::info!(order_id, refund_key, "refund key seen before: same answer, no new refund");
        return Reply::ok(StatusCode::OK, answer.clone());
    }
    let refundable = match (tx.status.as_deref(), tx.fraud_status.as_deref()) {
        (Some("settlement" | "partial_refund"), _) => true,
        (Some("capture"), fraud) => fraud != Some("challenge"),
        _ => false,
    };
    if !refundable {
        return core_error(StatusCode::OK, "412", CANNOT_UPDATE);
    }
    let remaining = tx.gross_amount - tx.refunded;
    let amount = amount.unwrap_or(remaining);
    if amount > remaining || amount < 1 {
        return core_error(
            StatusCode::OK,
            "414",
            &format!(
                "Refund amount {} is more than the {} that can still be refunded",
                amount_string(amount),
                amount_string(remaining)
            ),
        );
    }

    st.last_chargeback_id += 1;
    let refund_chargeback_id = st.last_chargeback_id;
    let now = Utc::now();
    let server_key = s.server_key.clone();
    let (first, second, answer) = {
        let tx = st.txs.get_mut(&order_id).expect("found above");
        tx.refunded += amount;
        tx.refund_keys.push(refund_key.clone());
        tx.refunds.push(Refund {
            refund_key: refund_key.clone(),
            amount,
            reason,
            refund_chargeback_id,
            created_at: now,
            bank_confirmed_at: None,
        });
        let status = if tx.refunded == tx.gross_amount { "refund" } else { "partial_refund" };
        tx.status = Some(status.to_owned());
        tx.history.push(status.to_owned());
        let fraud = tx.fraud_status.clone().unwrap_or_else(|| "accept".into());
        let view = View {
            status,
            fraud: &fraud,
            status_code: "200",
            status_message: "midtrans payment notification",
            sign_with: Some(&server_key),
        };
        let first = describe(tx, &view);
        if let Some(last) = tx.refunds.last_mut() {
            last.bank_confirmed_at = Some(Utc::now());
        }
        let second = describe(tx, &view);
        let answer = json!({
            "status_code": "200",
            "status_message": "Success, refund request is approved",
            "transaction_id": tx.transaction_id,
            "order_id": tx.order_id,
            "gross_amount": amount_string(tx.gross_amount),
            "currency": "IDR",
            "payment_type": tx.payment_type.as_deref().unwrap_or("qris"),
            "transaction_time": midtrans_time(tx.transaction_time),
            "transaction_status": status,
            "refund_chargeback_id": refund_chargeback_id,
            "refund_amount": amount_string(tx.refunded),
            "refund_key": refund_key,
        });
        tracing::info!(order_id, amount, status, "refund approved");
        (
            Outgoing { order_id: order_id.clone(), transaction_status: status.into(), body: first },
            second,
            answer,
        )
    };
    let status = first.transaction_status.clone();
    s.dispatch(&mut st, first);
    s.dispatch(&mut st, Outgoing { order_id: order_id.clone(), transaction_status: status, body: second });
    st.refund_answers.insert((order_id, refund_key), answer.clone());
    Reply::ok(StatusCode::OK, answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_uses_key_and_empty_password() {
        let mut headers = HeaderMap::new();
        assert!(!authorized(&headers, "SB-Mid-server-abc123cde456"));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Basic U0ItTWlkLXNlcnZlci1hYmMxMjNjZGU0NTY6"));
        assert!(authorized(&headers, "SB-Mid-server-abc123cde456"));
        assert!(!authorized(&headers, "SB-Mid-server-other"));
        headers
            .insert(AUTHORIZATION, HeaderValue::from_static("Bearer U0ItTWlkLXNlcnZlci1hYmMxMjNjZGU0NTY6"));
        assert!(!authorized(&headers, "SB-Mid-server-abc123cde456"));
    }
}
