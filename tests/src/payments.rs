//! Arrangements and waits for payment tests: an order awaiting payment, starting a Snap payment, paying it
//! on the fake Midtrans, waiting for an order's or payment's status, the webhook stream drained, a payment
//! under review, and the invariant every payment test ends with.

use std::time::Duration;

use chrono::Utc;
use pipeline::orders::CartLine;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{MIDTRANS_KEY, TestApp};

pub fn tickets(category: Uuid, quantity: i32) -> CartLine {
    CartLine { ticket_category_id: Some(category), merchandise_id: None, quantity }
}

pub fn merch(item: Uuid, quantity: i32) -> CartLine {
    CartLine { ticket_category_id: None, merchandise_id: Some(item), quantity }
}

/// A published event (quota, stock), a buyer, and an order of 2 tickets + 1 T-shirt awaiting payment.
pub struct Setup {
    pub event: Uuid,
    pub category: Uuid,
    pub buyer: Uuid,
    pub token: String,
    pub order: Uuid,
}

pub async fn setup(app: &TestApp, quota: i32, stock: i32) -> Setup {
    let admin = app.admin_token().await;
    let (event, category, shirt) = app.published_event(&admin, quota, stock).await;
    let (buyer, token) = app.quick_buyer().await;
    let order = app.pending_order(buyer, event, vec![tickets(category, 2), merch(shirt, 1)]).await;
    Setup { event, category, buyer, token, order }
}

pub async fn start_payment(app: &TestApp, token: &str, order: Uuid, key: &str, body: Value) -> (u16, Value) {
    let resp = app
        .post(&format!("/api/orders/{order}/payment"))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

/// Starts a Snap payment and returns its Midtrans order id.
pub async fn snap(app: &TestApp, s: &Setup) -> String {
    let (status, body) = start_payment(app, &s.token, s.order, &Uuid::new_v4().to_string(), json!({})).await;
    assert_eq!(status, 200, "{body}");
    body["midtrans_order_id"].as_str().unwrap().to_owned()
}

/// The usual arrangement paid on the Snap page: the order is `paid` on return.
pub async fn paid_order(app: &TestApp, midtrans: &fake_midtrans::FakeMidtrans) -> (Setup, String) {
    let s = setup(app, 10, 10).await;
    let mid = snap(app, &s).await;
    midtrans.pay(&mid).await.unwrap();
    wait_for_status(app, s.order, "paid").await;
    (s, mid)
}

pub async fn order_status(app: &TestApp, order: Uuid) -> String {
    sqlx::query_scalar("select status from orders where id = $1")
        .bind(order)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

pub async fn wait_for_status(app: &TestApp, order: Uuid, want: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let status = order_status(app, order).await;
        if status == want {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "order stayed {status}, wanted {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn wait_for_payment(app: &TestApp, midtrans_order_id: &str, want: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status: String = sqlx::query_scalar("select status from payments where midtrans_order_id = $1")
            .bind(midtrans_order_id)
            .fetch_one(&app.db)
            .await
            .unwrap();
        if status == want {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "payment is {status}, wanted {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// (sold, held) of a ticket category.
pub async fn category_counts(app: &TestApp, category: Uuid) -> (i32, i32) {
    sqlx::query_as("select sold, held from ticket_categories where id = $1")
        .bind(category)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

pub async fn count(app: &TestApp, sql: &'static str, order: Uuid) -> i64 {
    sqlx::query_scalar(sql).bind(order).fetch_one(&app.db).await.unwrap()
}

pub async fn post_notification(app: &TestApp, body: &Value) -> u16 {
    app.post("/api/webhooks/midtrans").json(body).send().await.unwrap().status().as_u16()
}

/// Waits until every queued notification has been applied: nothing undelivered, unacknowledged or waiting
/// to be retried. (Tests wait on this condition, never on a fixed time.)
pub async fn drained(app: &TestApp) {
    use fred::interfaces::SortedSetsInterface;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let keys = keyspace::Keyspace::new(app.redis_prefix.clone());
    loop {
        let left = pipeline::webhooks::backlog(&app.state.redis, &keys).await.unwrap();
        let retrying: i64 = app.state.redis.next().zcard(keys.webhooks_retry()).await.unwrap();
        if left == 0 && retrying == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{left} notifications not applied, {retrying} retrying"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Ends the order's hold now: its expiry moves into the past (the clock, in effect, moved forward).
pub async fn end_hold(app: &TestApp, order: Uuid) {
    sqlx::query("update orders set expires_at = now() - interval '1 second' where id = $1")
        .bind(order)
        .execute(&app.db)
        .await
        .unwrap();
}

/// The invariant behind every payment test: every payment that took money (settled, or captured and
/// accepted) ends as tickets (a live paid order with valid tickets) or as a refund owed or made, never
/// as a notification in the dead-letter list that a replay cannot apply.
pub async fn assert_every_settled_payment_ends_as_tickets_or_a_refund(app: &TestApp) {
    drained(app).await;
    let stranded: Vec<(String, String, String)> = sqlx::query_as(
        r#"select p.midtrans_order_id, p.status, o.status from payments p join orders o on o.id = p.order_id
           where p.midtrans_status in ('settlement', 'capture') and p.status <> 'challenge'
             and not (p.status in ('refund_pending', 'refunded')
                      or (p.status in ('paid', 'partially_refunded')
                          and o.status in ('paid', 'partially_refunded')
                          and exists (select 1 from tickets t where t.order_id = o.id and t.status <> 'void')))"#,
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert!(stranded.is_empty(), "money in without tickets or a refund owed: {stranded:?}");
    let keys = keyspace::Keyspace::new(app.redis_prefix.clone());
    let letters = pipeline::webhooks::dead_letters(&app.state.redis, &keys).await.unwrap();
    assert!(letters.is_empty(), "dead letters: {}", letters.len());
}

/// Applies a notification body directly, as the processor does when Midtrans cannot be asked.
pub async fn apply_body(app: &TestApp, body: &Value) -> checkout_worker::payments::apply::Effect {
    let n: midtrans::Notification = serde_json::from_value(body.clone()).unwrap();
    checkout_worker::payments::apply::apply(&app.db, &n, body, Utc::now()).await.unwrap()
}

/// A payment put under review by a settlement for the wrong amount: (arrangement, payment id, admin token).
pub async fn payment_under_review(app: &TestApp) -> (Setup, Uuid, String) {
    let s = setup(app, 10, 10).await;
    let mid = snap(app, &s).await;
    let body = json!({
        "order_id": mid, "status_code": "200", "gross_amount": "1000.00", "transaction_id": "tx-odd",
        "transaction_status": "settlement", "fraud_status": "accept",
        "signature_key": midtrans::signature(&mid, "200", "1000.00", MIDTRANS_KEY)
    });
    assert_eq!(apply_body(app, &body).await, checkout_worker::payments::apply::Effect::AmountMismatch);
    assert_eq!(order_status(app, s.order).await, "payment_review");
    let payment: Uuid = sqlx::query_scalar("select id from payments where midtrans_order_id = $1")
        .bind(&mid)
        .fetch_one(&app.db)
        .await
        .unwrap();
    let admin = app.admin_token().await;
    (s, payment, admin)
}

pub async fn payment_row(app: &TestApp, payment: Uuid) -> (String, Option<String>) {
    sqlx::query_as("select status, refund_reason from payments where id = $1")
        .bind(payment)
        .fetch_one(&app.db)
        .await
        .unwrap()
}
