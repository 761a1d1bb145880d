//! Arrangements for checkout tests: admitted visitors, submissions through the HTTP intake, a worker on
//! the test's own database and Redis prefix, and waiting for a decision.

use std::{sync::atomic::AtomicI64, time::Duration};

use checkout_worker::stream::{ConsumerSettings, run_consumer};
use chrono::Utc;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use waiting_room::tokens::RoomTokens;

use crate::TestApp;

static SEQ: AtomicI64 = AtomicI64::new(1);

/// A waiting-room visitor admitted for `event`: (visitor id, visitor token, admission token).
pub fn admitted(app: &TestApp, event: Uuid) -> (Uuid, String, String) {
    let visitor = Uuid::new_v4();
    let now = Utc::now();
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    (
        visitor,
        app.state.signer.visitor(event, visitor, now.timestamp()),
        app.state.signer.admission(event, visitor, seq, now.timestamp(), now.timestamp_millis() + 600_000),
    )
}

/// Starts a checkout worker's stream consumer on this test's database and Redis (the shared one unless
/// `redis_url` names another); cancel the token to stop it.
pub fn worker_on(app: &TestApp, redis_url: String, settings: ConsumerSettings) -> CancellationToken {
    let stop = CancellationToken::new();
    tokio::spawn(run_consumer(
        app.db.clone(),
        redis_url,
        keyspace::Keyspace::new(app.redis_prefix.clone()),
        settings,
        stop.clone(),
    ));
    stop
}

/// [`worker_on`] the shared Redis.
pub fn worker(app: &TestApp, settings: ConsumerSettings) -> CancellationToken {
    worker_on(app, crate::redis_url(), settings)
}

/// Batches of 100, holds of 15 minutes.
pub fn settings() -> ConsumerSettings {
    ConsumerSettings::new(100, chrono::Duration::minutes(15))
}

/// `POST /api/orders` with the four headers: (status, body).
pub async fn submit(
    app: &TestApp,
    token: &str,
    key: &str,
    visitor: &str,
    admission: &str,
    body: &Value,
) -> (u16, Value) {
    let resp = app
        .post("/api/orders")
        .bearer_auth(token)
        .header("idempotency-key", key)
        .header("visitor-token", visitor)
        .header("admission-token", admission)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Polls the request until it is decided.
pub async fn decided(app: &TestApp, token: &str, request: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (s, body) = app.by(token).get(&format!("/api/orders/requests/{request}")).await;
        assert_eq!(s, 200, "{body}");
        if body["status"] != "queued" {
            return body;
        }
        assert!(tokio::time::Instant::now() < deadline, "request {request} never decided");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An event on sale (100 tickets, 10 T-shirts) with a worker deciding requests, and an admitted buyer.
pub struct OnSale {
    pub event: Uuid,
    pub category: Uuid,
    pub shirt: Uuid,
    /// The buyer's access token.
    pub token: String,
    pub visitor_token: String,
    pub admission: String,
    /// Stops the worker when dropped.
    pub worker: tokio_util::sync::DropGuard,
}

pub async fn on_sale_with_worker(app: &TestApp) -> OnSale {
    let admin = app.admin_token().await;
    let (event, category, shirt) = app.published_event(&admin, 100, 10).await;
    let worker = worker(app, settings()).drop_guard();
    let (_, token) = app.quick_buyer().await;
    let (_, visitor_token, admission) = admitted(app, event);
    OnSale { event, category, shirt, token, visitor_token, admission, worker }
}

/// A count from this test's database.
pub async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(&app.db).await.unwrap()
}
