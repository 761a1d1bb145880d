//! Unauthenticated control endpoints under `/_fake/` (and `/healthz`) for the local demo and the
//! browser tests: list transactions and deliveries, act on a transaction, change delivery settings.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::model::Transaction;
use crate::state::{ActError, Action, Shared};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/_fake/transactions", get(list))
        .route("/_fake/transactions/{order_id}", get(one))
        .route("/_fake/transactions/{order_id}/{action}", post(act))
        .route("/_fake/config", put(configure).get(current_config))
        .route("/_fake/release", post(release))
        .route("/_fake/deliveries", get(deliveries))
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

pub(crate) fn sorted(mut txs: Vec<Transaction>) -> Vec<Transaction> {
    txs.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.order_id.cmp(&b.order_id)));
    txs
}

async fn list(State(s): State<Arc<Shared>>) -> Json<Vec<Transaction>> {
    Json(sorted(s.lock().txs.values().cloned().collect()))
}

async fn one(State(s): State<Arc<Shared>>, Path(order_id): Path<String>) -> Response {
    match s.lock().find(&order_id) {
        Some(tx) => Json(tx.clone()).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no transaction {order_id:?}")),
    }
}

async fn act(State(s): State<Arc<Shared>>, Path((order_id, action)): Path<(String, String)>) -> Response {
    let Some(parsed) = Action::parse(&action) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("unknown action {action:?}: use pay, challenge, accept, deny, expire or reverse"),
        );
    };
    match s.act(&order_id, parsed) {
        Ok(tx) => Json(tx).into_response(),
        Err(e @ ActError::NotFound(_)) => error(StatusCode::NOT_FOUND, e.to_string()),
        Err(e @ ActError::Invalid(_)) => error(StatusCode::CONFLICT, e.to_string()),
    }
}

#[derive(Deserialize)]
struct ConfigPatch {
    /// An empty string clears the URL.
    notification_url: Option<String>,
    duplicates: Option<u32>,
    delay_ms: Option<u64>,
    hold: Option<bool>,
}

fn config_json(s: &Shared) -> Value {
    let st = s.lock();
    json!({
        "notification_url": st.notification_url,
        "duplicates": st.delivery.duplicates,
        "delay_ms": u64::try_from(st.delivery.delay.as_millis()).unwrap_or(u64::MAX),
        "hold": st.delivery.hold,
        "held": st.held.len(),
    })
}

async fn current_config(State(s): State<Arc<Shared>>) -> Json<Value> {
    Json(config_json(&s))
}

async fn configure(State(s): State<Arc<Shared>>, Json(patch): Json<ConfigPatch>) -> Json<Value> {
    {
        let mut st = s.lock();
        if let Some(url) = patch.notification_url {
            st.notification_url = Some(url).filter(|u| !u.trim().is_empty());
        }
        if let Some(duplicates) = patch.duplicates {
            st.delivery.duplicates = duplicates;
        }
        if let Some(ms) = patch.delay_ms {
            st.delivery.delay = Duration::from_millis(ms);
        }
        if let Some(hold) = patch.hold {
            st.delivery.hold = hold;
        }
    }
    Json(config_json(&s))
}

async fn release(State(s): State<Arc<Shared>>) -> Json<Value> {
    let released = s.release_held().await;
    Json(json!({ "released": released }))
}

async fn deliveries(State(s): State<Arc<Shared>>) -> Json<Value> {
    Json(json!(s.lock().deliveries))
}
