//! `POST /api/webhooks/midtrans`: Midtrans' HTTP notifications.
//!
//! Parsed leniently (unknown fields are fine), the signature checked in constant time over the
//! notification's exact strings, then the raw body goes onto the webhook stream and Midtrans gets 200 at
//! once; the checkout workers apply it. A bad signature is 401 and nothing is queued; Redis unavailable is
//! 503, so Midtrans retries later.

use axum::{body::Bytes, extract::State};
use midtrans::Notification;
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    error::{ApiError, ErrorBody},
    state::AppState,
};

#[derive(Serialize, ToSchema)]
pub struct Received {
    /// `queued`.
    pub status: &'static str,
}

/// Receive a Midtrans notification.
#[utoipa::path(post, operation_id = "receive_midtrans_notification", path = "/api/webhooks/midtrans", tag = "payments",
    request_body(content = Object, description = "a Midtrans HTTP notification"),
    responses((status = 200, body = Received),
        (status = 401, description = "bad signature", body = ErrorBody)))]
pub async fn receive(State(state): State<AppState>, body: Bytes) -> Result<axum::Json<Received>, ApiError> {
    let Some(client) = &state.midtrans else {
        return Err(ApiError::Unavailable {
            message: "payments are not configured",
            retry_after: std::time::Duration::from_secs(60),
        });
    };
    let raw = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("invalid_json", "the notification is not UTF-8 text"))?;
    let notification: Notification = serde_json::from_str(raw).map_err(|e| {
        ApiError::bad_request("invalid_json", format!("the notification is not valid JSON: {e}"))
    })?;
    if !notification.verify(client.server_key()) {
        metrics::counter!("webhooks_refused_total", "reason" => "signature").increment(1);
        // Never log the signature or the key: the order id is enough to investigate.
        tracing::warn!(midtrans_order_id = %notification.order_id, "Midtrans notification with a bad signature refused");
        return Err(ApiError::Unauthorized("invalid signature"));
    }
    if let Err(e) = pipeline::webhooks::append(&state.redis, &state.keys, raw, 0).await {
        tracing::warn!(error = %e, "webhook stream unavailable; Midtrans will retry");
        return Err(ApiError::Unavailable {
            message: "cannot accept notifications right now",
            retry_after: std::time::Duration::from_secs(5),
        });
    }
    metrics::counter!("webhooks_queued_total").increment(1);
    Ok(axum::Json(Received { status: "queued" }))
}
