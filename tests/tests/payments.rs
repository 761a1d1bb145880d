//! Payments end to end against the fake Midtrans over real HTTP: starting a payment, notifications applied
//! exactly once whatever their number and order, forged and wrong ones refused, crashes and poison
//! notifications, late payments after expiry, reconciliation, refunds, reversals, tickets and check-in.

use std::{sync::Arc, time::Duration};

use checkout_worker::payments::{reconcile::reconcile_once, webhooks::ProcessorSettings};
use chrono::Utc;
use e2e::{
    MIDTRANS_KEY, PayApp, TestApp, assert_error, fast_processor, spawn_app_with_midtrans,
    spawn_app_with_midtrans_and,
};
use fred::interfaces::StreamsInterface;
use pipeline::orders::CartLine;
use serde_json::{Value, json};
use tokio::sync::Barrier;
use uuid::Uuid;

fn tickets(category: Uuid, quantity: i32) -> CartLine {
    CartLine { ticket_category_id: Some(category), merchandise_id: None, quantity }
}

fn merch(item: Uuid, quantity: i32) -> CartLine {
    CartLine { ticket_category_id: None, merchandise_id: Some(item), quantity }
}

/// A published event (quota, stock), a buyer, and an order of 2 tickets + 1 T-shirt awaiting payment.
struct Setup {
    event: Uuid,
    category: Uuid,
    buyer: Uuid,
    token: String,
    order: Uuid,
}

async fn setup(app: &TestApp, quota: i32, stock: i32) -> Setup {
    let admin = app.admin_token().await;
    let (event, category, shirt) = app.published_event(&admin, quota, stock).await;
    let (buyer, token) = app.quick_buyer().await;
    let order = app.pending_order(buyer, event, vec![tickets(category, 2), merch(shirt, 1)]).await;
    Setup { event, category, buyer, token, order }
}

async fn start_payment(app: &TestApp, token: &str, order: Uuid, key: &str, body: Value) -> (u16, Value) {
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
async fn snap(app: &TestApp, s: &Setup) -> String {
    let (status, body) = start_payment(app, &s.token, s.order, &Uuid::new_v4().to_string(), json!({})).await;
    assert_eq!(status, 200, "{body}");
    body["midtrans_order_id"].as_str().unwrap().to_owned()
}

/// The usual arrangement paid on the Snap page: the order is `paid` on return.
async fn paid_order(app: &TestApp, midtrans: &fake_midtrans::FakeMidtrans) -> (Setup, String) {
    let s = setup(app, 10, 10).await;
    let mid = snap(app, &s).await;
    midtrans.pay(&mid).await.unwrap();
    wait_for_status(app, s.order, "paid").await;
    (s, mid)
}

async fn order_status(app: &TestApp, order: Uuid) -> String {
    sqlx::query_scalar("select status from orders where id = $1")
        .bind(order)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

async fn wait_for_status(app: &TestApp, order: Uuid, want: &str) {
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

async fn wait_for_payment(app: &TestApp, midtrans_order_id: &str, want: &str) {
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
async fn category_counts(app: &TestApp, category: Uuid) -> (i32, i32) {
    sqlx::query_as("select sold, held from ticket_categories where id = $1")
        .bind(category)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

async fn count(app: &TestApp, sql: &'static str, order: Uuid) -> i64 {
    sqlx::query_scalar(sql).bind(order).fetch_one(&app.db).await.unwrap()
}

async fn post_notification(app: &TestApp, body: &Value) -> u16 {
    app.post("/api/webhooks/midtrans").json(body).send().await.unwrap().status().as_u16()
}

/// Waits until every queued notification has been applied (nothing undelivered or unacknowledged).
async fn drained(app: &TestApp) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let keys = keyspace::Keyspace::new(app.redis_prefix.clone());
    loop {
        let left = pipeline::webhooks::backlog(&app.state.redis, &keys).await.unwrap();
        if left == 0 {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{left} notifications not applied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_buyer_pays_on_the_snap_page_and_gets_tickets_once() {
    let PayApp { app, midtrans, .. } = spawn_app_with_midtrans().await;
    let stop = app.webhook_processor(fast_processor()).await;
    let s = setup(&app, 10, 10).await;

    let key = Uuid::new_v4().to_string();
    let (status, first) = start_payment(&app, &s.token, s.order, &key, json!({"method": "snap"})).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["method"], "snap");
    assert_eq!(first["gross_amount"], 2 * 150_000 + 100_000);
    assert!(first["redirect_url"].as_str().unwrap().starts_with(&midtrans.url()));
    let mid = first["midtrans_order_id"].as_str().unwrap().to_owned();
    assert!(mid.len() <= 50);

    // A repeat, with the same key or another, answers the same live payment; Midtrans was called once.
    let (_, again) = start_payment(&app, &s.token, s.order, &key, json!({})).await;
    let (_, other) = start_payment(&app, &s.token, s.order, "another-key", json!({"method": "qris"})).await;
    assert_eq!(again["token"], first["token"]);
    assert_eq!(other["token"], first["token"]);
    assert_eq!(midtrans.api_calls("/snap/v1/transactions"), 1);

    // What Midtrans got: item lines summing exactly to the amount, the customer, a finish URL.
    let tx = midtrans.transaction(&mid).unwrap();
    let items = tx.items.as_array().unwrap();
    let sum: i64 = items.iter().map(|i| i["price"].as_i64().unwrap() * i["quantity"].as_i64().unwrap()).sum();
    assert_eq!(sum, tx.gross_amount);
    assert_eq!(tx.customer["first_name"], "Budi Santoso");
    assert!(tx.finish_url.unwrap().ends_with(&format!("/order.html?id={}", s.order)));

    midtrans.pay(&mid).await.unwrap();
    wait_for_status(&app, s.order, "paid").await;
    assert_eq!(category_counts(&app, s.category).await, (2, 0));
    assert_eq!(
        count(&app, "select count(*) from tickets where order_id = $1 and kind = 'ticket'", s.order).await,
        2
    );
    assert_eq!(
        count(
            &app,
            "select count(*) from tickets where order_id = $1 and kind = 'merchandise_pickup'",
            s.order
        )
        .await,
        1
    );

    let (status, body) =
        app.call("GET", &format!("/api/orders/{}/tickets", s.order), Some(&s.token), None).await;
    assert_eq!(status, 200, "{body}");
    let list = body["tickets"].as_array().unwrap();
    assert_eq!(list.len(), 3);
    for t in list {
        assert_eq!(t["code"].as_str().unwrap().len(), 26);
        assert!(
            t["qr_svg"].as_str().unwrap().starts_with("<?xml")
                || t["qr_svg"].as_str().unwrap().contains("<svg")
        );
    }
    let (_, order) = app.call("GET", &format!("/api/orders/{}", s.order), Some(&s.token), None).await;
    assert_eq!(order["payment"]["status"], "paid");

    // Another buyer sees nothing of it.
    let (_, stranger) = app.quick_buyer().await;
    let (status, _) =
        app.call("GET", &format!("/api/orders/{}/tickets", s.order), Some(&stranger), None).await;
    assert_eq!(status, 404);
    stop.cancel();
}

#[tokio::test]
async fn the_same_settlement_ten_times_at_once_makes_one_payment_and_one_set_of_tickets() {
    let PayApp { app, midtrans, .. } = spawn_app_with_midtrans().await;
    let stop = app.webhook_processor(fast_processor()).await;
    let s = setup(&app, 10, 10).await;
    let mid = snap(&app, &s).await;
    midtrans.set_delivery(fake_midtrans::Delivery { duplicates: 3, ..Default::default() });
    midtrans.pay(&mid).await.unwrap();
    let settlement = midtrans.notification(&mid, "settlement", Some("accept")).unwrap();
    let barrier = Arc::new(Barrier::new(10));
    let app = Arc::new(app);
    let posts: Vec<_> = (0..10)
        .map(|_| {
            let (app, barrier, body) = (app.clone(), barrier.clone(), settlement.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                post_notification(&app, &body).await
            })
        })
        .collect();
    for p in posts {
        assert_eq!(p.await.unwrap(), 200);
    }
    wait_for_status(&app, s.order, "paid").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    drained(&app).await;
    assert_eq!(category_counts(&app, s.category).await, (2, 0));
    assert_eq!(count(&app, "select count(*) from tickets where order_id = $1", s.order).await, 3);
    assert_eq!(
        count(
            &app,
            "select count(*) from payment_events e join payments p on p.id = e.payment_id where p.order_id = $1 and e.outcome = 'paid'",
            s.order
        )
        .await,
        1
    );
    stop.cancel();
}

#[tokio::test]
async fn settlement_before_pending_and_expire_after_settlement_leave_the_order_paid() {
    let PayApp { app, midtrans, .. } = spawn_app_with_midtrans().await;
    let stop = app.webhook_processor(fast_processor()).await;
    let s = setup(&app, 10, 10).await;
    let mid = snap(&app, &s).await;
    // The payer picks QRIS (Midtrans now knows the transaction) but we hold its notifications.
    midtrans.set_delivery(fake_midtrans::Delivery { hold: true, ..Default::default() });
    midtrans.pay(&mid).await.unwrap();
    // Reverse order: settlement first, then pending; then a stale expire.
    midtrans.release_held().await;
    wait_for_status(&app, s.order, "paid").await;
    let expire = midtrans.notification(&mid, "expire", None).unwrap();
    assert_eq!(post_notification(&app, &expire).await, 200);
    let pending = midtrans.notification(&mid, "pending", None).unwrap();
    assert_eq!(post_notification(&app, &pending).await, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    drained(&app).await;
    assert_eq!(order_status(&app, s.order).await, "paid");
    assert_eq!(category_counts(&app, s.category).await, (2, 0));
    assert_eq!(
        count(&app, "select count(*) from tickets where order_id = $1 and status = 'valid'", s.order).await,
        3
    );
    // Each delivery was checked against Midtrans' own status (settlement), so the late ones were duplicates.
    let released: i64 = sqlx::query_scalar("select count(*) from payment_events where outcome = 'released'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(released, 0);
    stop.cancel();
}

#[tokio::test]
async fn forged_wrong_amount_and_unknown_order_notifications_change_nothing() {
    let PayApp { app, midtrans, .. } = spawn_app_with_midtrans().await;
    let stop = app.webhook_processor(fast_processor()).await;
    let s = setup(&app, 10, 10).await;
    // The payer has not chosen a method yet, so Midtrans does not know the transaction: the processor
    // cannot read its status back and the signed notification is all there is.
    let mid = snap(&app, &s).await;
    let real = midtrans.notification(&mid, "settlement", Some("accept")).unwrap();
    let keys = keyspace::Keyspace::new(app.redis_prefix.clone());
    let stream_len =
        || async { app.state.redis.next().xlen::<i64, _>(keys.webhooks_stream()).await.unwrap() };
    let before = stream_len().await;

    // Forged: signed with another key, or a field changed after signing, or no signature.
    let mut forged = real.clone();
    forged["signature_key"] = json!(midtrans::signature(
        &mid,
        "200",
        real["gross_amount"].as_str().unwrap(),
        "SB-Mid-server-wrong"
    ));
    let resp = app.post("/api/webhooks/midtrans").json(&forged).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_error(&resp.json().await.unwrap(), "unauthorized");
    let mut tampered = real.clone();
    tampered["gross_amount"] = json!("1.00");
    assert_eq!(post_notification(&app, &tampered).await, 401);
    let mut unsigned = real.clone();
    unsigned.as_object_mut().unwrap().remove("signature_key");
    assert_eq!(post_notification(&app, &unsigned).await, 401);
    let resp = app.post("/api/webhooks/midtrans").body("{not json").send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(stream_len().await, before, "nothing queued for refused notifications");

    // Correctly signed but for another amount: recorded, not applied.
    let mut wrong_amount = real.clone();
    wrong_amount["gross_amount"] = json!("1000.00");
    wrong_amount["signature_key"] = json!(midtrans::signature(&mid, "200", "1000.00", MIDTRANS_KEY));
    assert_eq!(post_notification(&app, &wrong_amount).await, 200);
    // Correctly signed for an order we never made.
    let mut unknown = real.clone();
    unknown["order_id"] = json!("QC-unknown-1");
    unknown["signature_key"] = json!(midtrans::signature(
        "QC-unknown-1",
        "200",
        real["gross_amount"].as_str().unwrap(),
        MIDTRANS_KEY
    ));
    assert_eq!(post_notification(&app, &unknown).await, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    drained(&app).await;

    // The mismatch puts the payment under review: neither paid nor released (the order keeps its hold).
    assert_eq!(order_status(&app, s.order).await, "payment_review");
    let payment: String = sqlx::query_scalar("select status from payments where midtrans_order_id = $1")
        .bind(&mid)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(payment, "needs_review");
    // Operators find it in the admin list (buyers may not look).
    let admin = app.admin_token().await;
    let (status, list) = app.call("GET", "/api/admin/payments?status=needs_review", Some(&admin), None).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["midtrans_order_id"], mid.as_str());
    assert_eq!(list[0]["order_status"], "payment_review");
    let (status, _) = app.call("GET", "/api/admin/payments?status=paid", Some(&admin), None).await;
    assert_eq!(status, 422);
    let (status, _) = app.call("GET", "/api/admin/payments", Some(&s.token), None).await;
    assert_eq!(status, 403);
    assert_eq!(category_counts(&app, s.category).await, (0, 2));
    assert_eq!(count(&app, "select count(*) from tickets where order_id = $1", s.order).await, 0);
    let outcomes: Vec<String> = sqlx::query_scalar("select outcome from payment_events order by id")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert_eq!(outcomes, ["amount_mismatch", "unknown_order"]);
    let payments: i64 = sqlx::query_scalar("select count(*) from payments").fetch_one(&app.db).await.unwrap();
    assert_eq!(payments, 1);
    stop.cancel();
}

#[tokio::test]
async fn a_processor_crash_mid_notification_is_applied_exactly_once_after_redelivery() {
    let PayApp { app, midtrans, .. } = spawn_app_with_midtrans().await;
    let s = setup(&app, 10, 10).await;
    let mid = snap(&app, &s).await;
    midtrans.set_delivery(fake_midtrans::Delivery { hold: true, ..Default::default() });
    midtrans.pay(&mid).await.unwrap();
    let settlement = midtrans.notification(&mid, "settlement", Some("accept")).unwrap();
    assert_eq!(post_notification(&app, &settlement).await, 200);

    // A worker takes the entry and dies before committing (never acknowledges).
    let keys = keyspace::Keyspace::new(app.redis_prefix.clone());
    let dead = pipeline::group::GroupReader::connect(
        &e2e::redis_url(),
        keys.webhooks_stream(),
        pipeline::webhooks::GROUP,
    )
    .await
    .unwrap();
    let taken = dead.read(10, Duration::from_millis(100)).await.unwrap();
    assert_eq!(taken.len(), 1);
    // A second worker dies after committing but before acknowledging: simulate by applying directly.
    let n: midtrans::Notification = serde_json::from_value(settlement.clone()).unwrap();
    let applied =
        checkout_worker::payments::apply::apply(&app.db, &n, &settlement, Utc::now()).await.unwrap();
    assert_eq!(applied, checkout_worker::payments::apply::Effect::Paid);

    // A live processor reclaims the dead worker's entry: a duplicate, no second effect.
    let stop = app.webhook_processor(fast_processor()).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    drained(&app).await;
    assert_eq!(order_status(&app, s.order).await, "paid");
    assert_eq!(category_counts(&app, s.category).await, (2, 0));
    assert_eq!(count(&app, "select count(*) from tickets where order_id = $1", s.order).await, 3);
    assert_eq!(count(&app, "select count(*) from payment_events e join payments p on p.id = e.payment_id where p.order_id = $1", s.order).await, 1);
    stop.cancel();
    dead.quit().await;
}

#[tokio::test]
async fn a_notification_that_always_fails_is_dead_lettered_and_replay_applies_it_once() {
    let PayApp { app, midtrans, .. } = spawn_app_with_midtrans().await;
    let s = setup(&app, 10, 10).await;
    let mid = snap(&app, &s).await;
    // The cause: something in the database refuses this payment's events.
    sqlx::query(
        r#"create function refuse_events() returns trigger language plpgsql as $$
           begin raise exception 'payment_events is read-only for maintenance'; end $$"#,
    )
    .execute(&app.db)
    .await
    .unwrap();
    sqlx::query(
        "create trigger refuse before insert on payment_events for each row execute function refuse_events()",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let stop = app.webhook_processor(ProcessorSettings { max_attempts: 3, ..fast_processor() }).await;
    midtrans.pay(&mid).await.unwrap();

    let admin = app.admin_token().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let letters = loop {
        let (status, body) = app.call("GET", "/api/admin/webhooks/dead-letters", Some(&admin), None).await;
        assert_eq!(status, 200);
        let settled = body
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["transaction_status"] == "settlement")
            .cloned()
            .collect::<Vec<_>>();
        if !settled.is_empty() {
            break settled;
        }
        assert!(tokio::time::Instant::now() < deadline, "no dead letter: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(letters[0]["attempts"], 3);
    assert!(letters[0]["last_error"].as_str().unwrap().contains("read-only"));
    assert_eq!(order_status(&app, s.order).await, "pending_payment");
    // Buyers may not see or replay dead letters.
    let (status, _) = app.call("GET", "/api/admin/webhooks/dead-letters", Some(&s.token), None).await;
    assert_eq!(status, 403);

    // Fixed: replay every dead letter (the pending one too); the settlement is applied once.
    sqlx::query("drop trigger refuse on payment_events").execute(&app.db).await.unwrap();
    let (_, all) = app.call("GET", "/api/admin/webhooks/dead-letters", Some(&admin), None).await;
    for letter in all.as_array().unwrap() {
        let id = letter["id"].as_str().unwrap();
        let (status, body) = app
            .call("POST", &format!("/api/admin/webhooks/dead-letters/{id}/replay"), Some(&admin), None)
            .await;
        assert_eq!(status, 200, "{body}");
        let (status, _) = app
            .call("POST", &format!("/api/admin/webhooks/dead-letters/{id}/replay"), Some(&admin), None)
            .await;
        assert_eq!(status, 404, "a letter is replayed once");
    }
    wait_for_status(&app, s.order, "paid").await;
    drained(&app).await;
    assert_eq!(category_counts(&app, s.category).await, (2, 0));
    assert_eq!(count(&app, "select count(*) from tickets where order_id = $1", s.order).await, 3);
    let audited: i64 = sqlx::query_scalar("select count(*) from audit_log where action = 'webhook.replay'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(audited >= 1);
    stop.cancel();
}

/// Ends the order's hold now: its expiry moves into the past (the clock, in effect, moved forward).
async fn end_hold(app: &TestApp, order: Uuid) {
    sqlx::query("update orders set expires_at = now() - interval '1 second' where id = $1")
        .bind(order)
        .execute(&app.db)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_late_settlement_gets_tickets_while_stock_remains_and_a_refund_once_it_is_gone() {
    let PayApp { app, midtrans, client } = spawn_app_with_midtrans().await;
    let stop = app.webhook_processor(fast_processor()).await;
    // Room for exactly one order of 2 tickets + 1 shirt at a time.
    let admin = app.admin_token().await;
    let (event, category, shirt) = app.published_event(&admin, 2, 5).await;
    let (buyer_a, token_a) = app.quick_buyer().await;
    let order_a = app.pending_order(buyer_a, event, vec![tickets(category, 2), merch(shirt, 1)]).await;
    let a = Setup { event, category, buyer: buyer_a, token: token_a, order: order_a };
    let mid_a = snap(&app, &a).await;

    // The hold ends before the payer chose a method (Midtrans does not know the transaction yet): the
    // reconciler expires the order and its stock returns.
    end_hold(&app, a.order).await;
    let done = reconcile_once(&app.db, &client, Utc::now(), 100).await.unwrap();
    assert_eq!(done.checked, 1);
    assert_eq!(order_status(&app, a.order).await, "expired");
    assert_eq!(category_counts(&app, category).await, (0, 0));

    // Paid anyway, and the seats are still free: honoured.
    midtrans.pay(&mid_a).await.unwrap();
    wait_for_status(&app, a.order, "paid").await;
    assert_eq!(category_counts(&app, category).await, (2, 0));
    assert_eq!(count(&app, "select count(*) from tickets where order_id = $1", a.order).await, 3);

    // Now the same story for a second buyer after someone else took the last seats.
    sqlx::query("update ticket_categories set quota = 4 where id = $1")
        .bind(category)
        .execute(&app.db)
        .await
        .unwrap();
    let (buyer_b, token_b) = app.quick_buyer().await;
    let order_b = app.pending_order(buyer_b, event, vec![tickets(category, 2)]).await;
    let b = Setup { event, category, buyer: buyer_b, token: token_b, order: order_b };
    let mid_b = snap(&app, &b).await;
    end_hold(&app, b.order).await;
    reconcile_once(&app.db, &client, Utc::now(), 100).await.unwrap();
    assert_eq!(order_status(&app, b.order).await, "expired");
    let (buyer_c, _) = app.quick_buyer().await;
    app.pending_order(buyer_c, event, vec![tickets(category, 2)]).await;
    assert_eq!(category_counts(&app, category).await, (2, 2));

    midtrans.pay(&mid_b).await.unwrap();
    wait_for_payment(&app, &mid_b, "refund_pending").await;
    assert_eq!(order_status(&app, b.order).await, "expired");
    assert_eq!(category_counts(&app, category).await, (2, 2), "no oversell");
    // The reconciler asks Midtrans for the refund (once, whatever the number of passes).
    reconcile_once(&app.db, &client, Utc::now(), 100).await.unwrap();
    reconcile_once(&app.db, &client, Utc::now(), 100).await.unwrap();
    let tx = midtrans.transaction(&mid_b).unwrap();
    assert_eq!(tx.refunded, tx.gross_amount);
    assert_eq!(tx.refund_keys.len(), 1);
    wait_for_payment(&app, &mid_b, "refunded").await;
    // The buyer is told.
    let (_, order) = app.call("GET", &format!("/api/orders/{}", b.order), Some(&b.token), None).await;
    assert!(order["notice"].as_str().unwrap().contains("refunded"), "{order}");
    assert_eq!(count(&app, "select count(*) from tickets where order_id = $1", b.order).await, 0);
    assert_every_settled_payment_ends_as_tickets_or_a_refund(&app).await;
    stop.cancel();
}

/// The invariant behind every payment test: every payment that took money (settled, or captured and
/// accepted) ends as tickets (a live paid order with valid tickets) or as a refund owed or made, never
/// as a notification in the dead-letter list that a replay cannot apply.
async fn assert_every_settled_payment_ends_as_tickets_or_a_refund(app: &TestApp) {
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

#[tokio::test]
async fn a_late_payment_for_repeated_lines_of_one_category_is_refunded_when_their_sum_is_gone() {
    let PayApp { app, midtrans, client } = spawn_app_with_midtrans().await;
    let stop = app.webhook_processor(fast_processor()).await;
    let admin = app.admin_token().await;
    let (event, category, _) = app.published_event(&admin, 5, 5).await;
    // A cart of 2 + 2 of one category (an older gateway, or a stream entry from before the intake merged
    // lines); the allocator takes it as 4.
    let (buyer, token) = app.quick_buyer().await;
    let order = app.pending_order(buyer, event, vec![tickets(category, 2), tickets(category, 2)]).await;
    let s = Setup { event, category, buyer, token, order };
    let mid = snap(&app, &s).await;
    end_hold(&app, order).await;
    reconcile_once(&app.db, &client, Utc::now(), 100).await.unwrap();
    assert_eq!(order_status(&app, order).await, "expired");
    // Another buyer takes 2 of the 5: each line alone (2) would fit in the 3 left, their sum (4) does not.
    let (other, _) = app.quick_buyer().await;
    app.pending_order(other, event, vec![tickets(category, 2)]).await;

    midtrans.pay(&mid).await.unwrap();
    wait_for_payment(&app, &mid, "refund_pending").await;
    assert_eq!(order_status(&app, order).await, "expired");
    assert_eq!(category_counts(&app, category).await, (0, 2), "no oversell");
    assert_every_settled_payment_ends_as_tickets_or_a_refund(&app).await;
    stop.cancel();
}

#[tokio::test]
async fn a_late_payment_that_would_pass_the_per_buyer_limit_is_refunded() {
    let PayApp { app, midtrans, client } = spawn_app_with_midtrans().await;
    let stop = app.webhook_processor(fast_processor()).await;
    let admin = app.admin_token().await;
    let (event, category, _) = app.published_event(&admin, 100, 5).await;
    // Six tickets per buyer (the default). An order of 4 expires unpaid; the buyer orders 4 again.
    let (buyer, token) = app.quick_buyer().await;
    let first = app.pending_order(buyer, event, vec![tickets(category, 4)]).await;
    let s = Setup { event, category, buyer, token, order: first };
    let mid = snap(&app, &s).await;
    end_hold(&app, first).await;
    reconcile_once(&app.db, &client, Utc::now(), 100).await.unwrap();
    assert_eq!(order_status(&app, first).await, "expired");
    app.pending_order(buyer, event, vec![tickets(category, 4)]).await;

    // The first order's payment arrives late: reviving it would give the buyer 8.
    midtrans.pay(&mid).await.unwrap();
    wait_for_payment(&app, &mid, "refund_pending").await;
    assert_eq!(order_status(&app, first).await, "expired");
    assert_eq!(category_counts(&app, category).await, (0, 4));
    let reason: String =
        sqlx::query_scalar("select refund_reason from payments where midtrans_order_id = $1")
            .bind(&mid)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(reason, "per_buyer_limit_after_hold");
    assert_every_settled_payment_ends_as_tickets_or_a_refund(&app).await;
    stop.cancel();
}

#[tokio::test]
async fn the_reconciler_finds_a_missed_settlement_and_cancels_an_unpaid_transaction_when_the_hold_ends() {
    let PayApp { app, midtrans, client } = spawn_app_with_midtrans().await;
    let s = setup(&app, 10, 10).await;
    // QRIS: Midtrans knows the transaction at once.
    let (status, body) = start_payment(&app, &s.token, s.order, "k1", json!({"method": "qris"})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["qr_svg"].as_str().unwrap().contains("<svg"));
    assert!(body["qr_string"].as_str().unwrap().starts_with("000201"));
    let mid = body["midtrans_order_id"].as_str().unwrap().to_owned();

    // Paid, but every notification is lost.
    midtrans.set_delivery(fake_midtrans::Delivery { hold: true, ..Default::default() });
    midtrans.pay(&mid).await.unwrap();
    let later = Utc::now() + chrono::Duration::minutes(2);
    reconcile_once(&app.db, &client, later, 100).await.unwrap();
    assert_eq!(order_status(&app, s.order).await, "paid");
    assert_eq!(count(&app, "select count(*) from tickets where order_id = $1", s.order).await, 3);

    // A second order whose hold ends while its QRIS code is unpaid: cancelled at Midtrans first.
    let other = app.pending_order(s.buyer, s.event, vec![tickets(s.category, 1)]).await;
    let (_, body) = start_payment(&app, &s.token, other, "k2", json!({"method": "qris"})).await;
    let mid2 = body["midtrans_order_id"].as_str().unwrap().to_owned();
    // The plain hold sweeper leaves it alone: it has a live transaction.
    end_hold(&app, other).await;
    let swept = checkout_worker::expiry::sweep_once(&app.db, Utc::now(), 100).await.unwrap();
    assert!(swept.orders.is_empty());
    reconcile_once(&app.db, &client, Utc::now(), 100).await.unwrap();
    assert_eq!(midtrans.transaction(&mid2).unwrap().status.as_deref(), Some("cancel"));
    assert_eq!(order_status(&app, other).await, "expired");
    assert_eq!(category_counts(&app, s.category).await, (2, 0));
}

#[tokio::test]
async fn challenge_review_reversal_and_refund_move_the_order_and_its_stock() {
    let PayApp { app, midtrans, client } = spawn_app_with_midtrans().await;
    let stop = app.webhook_processor(fast_processor()).await;
    let s = setup(&app, 10, 10).await;
    let mid = snap(&app, &s).await;

    // Card under fraud review: held, not expired by the sweeper, then accepted.
    midtrans.challenge(&mid).await.unwrap();
    wait_for_status(&app, s.order, "payment_review").await;
    end_hold(&app, s.order).await;
    assert!(checkout_worker::expiry::sweep_once(&app.db, Utc::now(), 100).await.unwrap().orders.is_empty());
    midtrans.accept_challenge(&mid).await.unwrap();
    wait_for_status(&app, s.order, "paid").await;
    assert_eq!(category_counts(&app, s.category).await, (2, 0));

    // A full refund through Midtrans: tickets void, seats back on sale.
    client.refund(&mid, "rf-test-1", 400_000, "event moved").await.unwrap();
    wait_for_status(&app, s.order, "refunded").await;
    assert_eq!(category_counts(&app, s.category).await, (0, 0));
    assert_eq!(
        count(&app, "select count(*) from tickets where order_id = $1 and status = 'void'", s.order).await,
        3
    );

    // Another order: paid by settlement, then reversed by the bank.
    let second = app.pending_order(s.buyer, s.event, vec![tickets(s.category, 1)]).await;
    let (_, body) = start_payment(&app, &s.token, second, "k", json!({})).await;
    let mid2 = body["midtrans_order_id"].as_str().unwrap().to_owned();
    midtrans.pay(&mid2).await.unwrap();
    wait_for_status(&app, second, "paid").await;
    assert_eq!(category_counts(&app, s.category).await, (1, 0));
    midtrans.reverse(&mid2).await.unwrap();
    wait_for_status(&app, second, "cancelled").await;
    assert_eq!(category_counts(&app, s.category).await, (0, 0));
    assert_eq!(
        count(&app, "select count(*) from tickets where order_id = $1 and status = 'void'", second).await,
        1
    );
    stop.cancel();
}

#[tokio::test]
async fn starting_a_payment_is_guarded_and_idempotent_under_concurrency() {
    let PayApp { app, midtrans, .. } = spawn_app_with_midtrans().await;
    let s = setup(&app, 10, 10).await;
    let path = format!("/api/orders/{}/payment", s.order);

    // Bad input: no key, bad JSON, unknown method, someone else's or unknown order.
    let resp = app.post(&path).bearer_auth(&s.token).json(&json!({})).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_error(&resp.json().await.unwrap(), "missing_idempotency_key");
    let resp =
        app.post(&path).bearer_auth(&s.token).header("idempotency-key", "k").body("{").send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let (status, _) = start_payment(&app, &s.token, s.order, "k", json!({"method": "bitcoin"})).await;
    assert_eq!(status, 422);
    let (_, stranger) = app.quick_buyer().await;
    let (status, _) = start_payment(&app, &stranger, s.order, "k", json!({})).await;
    assert_eq!(status, 404);
    let (status, _) = start_payment(&app, &s.token, Uuid::new_v4(), "k", json!({})).await;
    assert_eq!(status, 404);
    let resp = app.post(&path).header("idempotency-key", "k").json(&json!({})).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        sqlx::query_scalar::<_, i64>("select count(*) from payments").fetch_one(&app.db).await.unwrap(),
        0
    );

    // Ten at once, different keys: one payment, one Midtrans transaction, all the same token (or a
    // "being created, retry" answer for the ones that arrived mid-creation).
    let barrier = Arc::new(Barrier::new(10));
    let app = Arc::new(app);
    let starts: Vec<_> = (0..10)
        .map(|i| {
            let (app, barrier, token) = (app.clone(), barrier.clone(), s.token.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                start_payment(&app, &token, s.order, &format!("key-{i}"), json!({})).await
            })
        })
        .collect();
    let mut tokens = std::collections::HashSet::new();
    for st in starts {
        let (status, body) = st.await.unwrap();
        match status {
            200 => {
                tokens.insert(body["token"].as_str().unwrap().to_owned());
            }
            503 => {}
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(tokens.len(), 1);
    assert_eq!(midtrans.api_calls("/snap/v1/transactions"), 1);
    assert_eq!(
        sqlx::query_scalar::<_, i64>("select count(*) from payments").fetch_one(&app.db).await.unwrap(),
        1
    );

    // Midtrans down: 503 and the attempt is kept; when it is back the same attempt completes.
    let other = app.pending_order(s.buyer, s.event, vec![tickets(s.category, 1)]).await;
    // (The gateway makes one attempt per request: the buyer's retry is the next attempt.)
    midtrans.fail_next("/snap/v1/transactions", 1, 503);
    let (status, body) = start_payment(&app, &s.token, other, "retry-key", json!({})).await;
    assert_eq!(status, 503, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("same Idempotency-Key"));
    let (status, body) = start_payment(&app, &s.token, other, "retry-key", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["token"].is_string());
    let attempts: i64 = sqlx::query_scalar("select count(*) from payments where order_id = $1")
        .bind(other)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(attempts, 1, "the retry completed the same attempt");
    // A definite refusal ends the attempt; a new one may start.
    let refused = app.pending_order(s.buyer, s.event, vec![tickets(s.category, 1)]).await;
    midtrans.fail_next("/snap/v1/transactions", 1, 400);
    let (status, body) = start_payment(&app, &s.token, refused, "r1", json!({})).await;
    assert_eq!(status, 502, "{body}");
    assert_error(&body, "payment_provider_error");
    let (status, _) = start_payment(&app, &s.token, refused, "r1", json!({})).await;
    assert_eq!(status, 200);
    // Paid, expired or cancelled orders cannot be paid.
    let cancelled = app.pending_order(s.buyer, s.event, vec![tickets(s.category, 1)]).await;
    let (status, _) =
        app.call("POST", &format!("/api/orders/{cancelled}/cancel"), Some(&s.token), None).await;
    assert_eq!(status, 200);
    let (status, body) = start_payment(&app, &s.token, cancelled, "k3", json!({})).await;
    assert_eq!(status, 409);
    assert_error(&body, "not_payable");
}

#[tokio::test]
async fn twenty_concurrent_scans_of_one_ticket_let_exactly_one_in() {
    let PayApp { app, midtrans, .. } = spawn_app_with_midtrans().await;
    let stop = app.webhook_processor(fast_processor()).await;
    let (s, mid) = paid_order(&app, &midtrans).await;
    let (_, body) = app.call("GET", &format!("/api/orders/{}/tickets", s.order), Some(&s.token), None).await;
    let list = body["tickets"].as_array().unwrap().clone();
    let ticket = list.iter().find(|t| t["kind"] == "ticket").unwrap()["code"].as_str().unwrap().to_owned();
    let pickup =
        list.iter().find(|t| t["kind"] == "merchandise_pickup").unwrap()["code"].as_str().unwrap().to_owned();

    let admin = app.admin_token().await;
    let staff = app.staff_token(&admin).await;
    // Buyers cannot scan.
    let (status, _) = app.call("POST", "/api/checkin", Some(&s.token), Some(json!({"code": ticket}))).await;
    assert_eq!(status, 403);

    let barrier = Arc::new(Barrier::new(20));
    let app = Arc::new(app);
    let scans: Vec<_> = (0..20)
        .map(|_| {
            let (app, barrier, staff, code) = (app.clone(), barrier.clone(), staff.clone(), ticket.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                app.call("POST", "/api/checkin", Some(&staff), Some(json!({ "code": code }))).await
            })
        })
        .collect();
    let mut ok = 0;
    for scan in scans {
        let (status, body) = scan.await.unwrap();
        match status {
            200 => {
                ok += 1;
                assert_eq!(body["ticket"]["holder_name"], "Budi Santoso");
                assert_eq!(body["ticket"]["item_name"], "Festival");
            }
            409 => {
                assert_error(&body, "already_checked_in");
                assert!(body["error"]["checked_in_by"].as_str().unwrap().starts_with("staff-"));
                assert!(body["error"]["checked_in_at"].is_string());
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(ok, 1);
    let scans_audited: i64 =
        sqlx::query_scalar("select count(*) from audit_log where action like 'ticket.scan.%'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(scans_audited, 20);

    // Unknown codes; the merchandise pickup code works the same way (and tolerates scanner spacing).
    let (status, _) = app.call("POST", "/api/checkin", Some(&staff), Some(json!({"code": "NOPE"}))).await;
    assert_eq!(status, 404);
    let spaced = format!(" {} ", pickup.to_lowercase());
    let (status, body) =
        app.call("POST", "/api/checkin", Some(&staff), Some(json!({ "code": spaced }))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ticket"]["kind"], "merchandise_pickup");
    let (status, _) = app.call("POST", "/api/checkin", Some(&staff), Some(json!({"code": ""}))).await;
    assert_eq!(status, 422);

    // Refunded: the remaining ticket is void at the gate.
    let other = list
        .iter()
        .filter(|t| t["kind"] == "ticket")
        .map(|t| t["code"].as_str().unwrap())
        .find(|c| *c != ticket)
        .unwrap()
        .to_owned();
    let client = midtrans::Client::new(midtrans::ClientConfig {
        server_key: MIDTRANS_KEY.into(),
        api_base_url: midtrans.url(),
        snap_base_url: midtrans.snap_base_url(),
        timeout: Duration::from_secs(3),
        attempts: 1,
    })
    .unwrap();
    client.refund(&mid, "rf-1", 400_000, "cancelled").await.unwrap();
    wait_for_status(&app, s.order, "refunded").await;
    let (status, body) = app.call("POST", "/api/checkin", Some(&staff), Some(json!({ "code": other }))).await;
    assert_eq!(status, 409);
    assert_error(&body, "ticket_void");
    stop.cancel();
}

#[tokio::test]
async fn a_partial_refund_keeps_the_tickets_and_the_rest_voids_them_once() {
    let PayApp { app, midtrans, client } = spawn_app_with_midtrans().await;
    let stop = app.webhook_processor(fast_processor()).await;
    let (s, mid) = paid_order(&app, &midtrans).await;

    // The T-shirt is returned: 100,000 of 400,000 back, the tickets stay valid.
    client.refund(&mid, "rf-shirt", 100_000, "shirt returned").await.unwrap();
    wait_for_status(&app, s.order, "partially_refunded").await;
    let refunded: i64 = sqlx::query_scalar("select refunded_amount from orders where id = $1")
        .bind(s.order)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(refunded, 100_000);
    assert_eq!(
        count(&app, "select count(*) from tickets where order_id = $1 and status = 'valid'", s.order).await,
        3
    );
    // The same refund_key again is the same refund, not a second one.
    client.refund(&mid, "rf-shirt", 100_000, "shirt returned").await.unwrap();
    assert_eq!(midtrans.transaction(&mid).unwrap().refunded, 100_000);

    // The rest: fully refunded, tickets void, seats back.
    client.refund(&mid, "rf-rest", 300_000, "event cancelled").await.unwrap();
    wait_for_status(&app, s.order, "refunded").await;
    drained(&app).await;
    assert_eq!(category_counts(&app, s.category).await, (0, 0));
    assert_eq!(
        count(&app, "select count(*) from tickets where order_id = $1 and status = 'void'", s.order).await,
        3
    );
    let payment: (String, i64) =
        sqlx::query_as("select status, refunded_amount from payments where midtrans_order_id = $1")
            .bind(&mid)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(payment, ("refunded".to_owned(), 400_000));
    stop.cancel();
}

#[tokio::test]
async fn new_payment_attempts_are_limited_per_buyer_but_repeats_are_not() {
    // The fake stops when its last handle drops: keep it for the whole test.
    let PayApp { app, midtrans: _fake, .. } =
        spawn_app_with_midtrans_and(|c| c.payments_per_user_per_min = 2).await;
    let s = setup(&app, 20, 20).await;
    let mut orders = vec![s.order];
    for _ in 0..2 {
        orders.push(app.pending_order(s.buyer, s.event, vec![tickets(s.category, 1)]).await);
    }
    for (i, order) in orders.iter().take(2).enumerate() {
        let (status, body) = start_payment(&app, &s.token, *order, &format!("k{i}"), json!({})).await;
        assert_eq!(status, 200, "{body}");
    }
    // Repeats of a live payment are answered freely.
    for _ in 0..5 {
        let (status, _) = start_payment(&app, &s.token, orders[0], "k0", json!({})).await;
        assert_eq!(status, 200);
    }
    let resp = app
        .post(&format!("/api/orders/{}/payment", orders[2]))
        .bearer_auth(&s.token)
        .header("idempotency-key", "k2")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    assert_eq!(
        sqlx::query_scalar::<_, i64>("select count(*) from payments").fetch_one(&app.db).await.unwrap(),
        2
    );
}

#[tokio::test]
async fn cancelling_an_order_cancels_its_live_payment_at_midtrans_first() {
    let PayApp { app, midtrans, .. } = spawn_app_with_midtrans().await;
    let stop = app.webhook_processor(fast_processor()).await;
    let s = setup(&app, 10, 10).await;
    // A QRIS code is live at Midtrans.
    let (_, body) = start_payment(&app, &s.token, s.order, "q", json!({"method": "qris"})).await;
    let mid = body["midtrans_order_id"].as_str().unwrap().to_owned();
    let (status, order) =
        app.call("POST", &format!("/api/orders/{}/cancel", s.order), Some(&s.token), None).await;
    assert_eq!(status, 200, "{order}");
    assert_eq!(order["status"], "cancelled");
    assert_eq!(midtrans.transaction(&mid).unwrap().status.as_deref(), Some("cancel"));
    assert!(midtrans.pay(&mid).await.is_err(), "a cancelled QR code cannot be paid");
    assert_eq!(category_counts(&app, s.category).await, (0, 0));

    // A Snap page where no method was chosen: Midtrans does not know it; the order still cancels.
    let other = app.pending_order(s.buyer, s.event, vec![tickets(s.category, 1)]).await;
    let (_, body) = start_payment(&app, &s.token, other, "s", json!({})).await;
    let snap_mid = body["midtrans_order_id"].as_str().unwrap().to_owned();
    let (status, order) =
        app.call("POST", &format!("/api/orders/{other}/cancel"), Some(&s.token), None).await;
    assert_eq!(status, 200, "{order}");
    assert_eq!(order["payment"]["status"], "cancelled");
    assert_eq!(category_counts(&app, s.category).await, (0, 0));
    drained(&app).await;
    // Paid anyway on the still-open page: the units went back on sale, so it is honoured while they last.
    midtrans.pay(&snap_mid).await.unwrap();
    wait_for_status(&app, other, "paid").await;
    assert_eq!(category_counts(&app, s.category).await, (1, 0));
    stop.cancel();
}

/// Applies a notification body directly, as the processor does when Midtrans cannot be asked.
async fn apply_body(app: &TestApp, body: &Value) -> checkout_worker::payments::apply::Effect {
    let n: midtrans::Notification = serde_json::from_value(body.clone()).unwrap();
    checkout_worker::payments::apply::apply(&app.db, &n, body, Utc::now()).await.unwrap()
}

#[tokio::test]
async fn a_late_deny_of_an_earlier_attempt_does_not_undo_the_payment_that_succeeded() {
    use checkout_worker::payments::apply::Effect;
    let PayApp { app, midtrans, .. } = spawn_app_with_midtrans().await;
    let s = setup(&app, 10, 10).await;
    let mid = snap(&app, &s).await;
    midtrans.set_delivery(fake_midtrans::Delivery { hold: true, ..Default::default() });
    midtrans.pay(&mid).await.unwrap();
    let settlement = midtrans.notification(&mid, "settlement", Some("accept")).unwrap();
    assert_eq!(apply_body(&app, &settlement).await, Effect::Paid);
    // The buyer's first card on the same Snap page had been refused; that notification comes last.
    let mut first_card = midtrans.notification(&mid, "deny", None).unwrap();
    first_card["transaction_id"] = json!(Uuid::new_v4().to_string());
    first_card["payment_type"] = json!("credit_card");
    assert_eq!(apply_body(&app, &first_card).await, Effect::Stale);
    assert_eq!(order_status(&app, s.order).await, "paid");
    assert_eq!(
        count(&app, "select count(*) from tickets where order_id = $1 and status = 'valid'", s.order).await,
        3
    );
    assert_eq!(category_counts(&app, s.category).await, (2, 0));
    // The same deny for the transaction that paid is a reversal.
    let mut reversal = first_card.clone();
    reversal["transaction_id"] = settlement["transaction_id"].clone();
    assert_eq!(apply_body(&app, &reversal).await, Effect::Reversed);
    assert_eq!(order_status(&app, s.order).await, "cancelled");
}

#[tokio::test]
async fn a_reversal_that_arrives_before_its_settlement_wins() {
    use checkout_worker::payments::apply::Effect;
    let PayApp { app, midtrans, .. } = spawn_app_with_midtrans().await;
    let s = setup(&app, 10, 10).await;
    let mid = snap(&app, &s).await;
    midtrans.set_delivery(fake_midtrans::Delivery { hold: true, ..Default::default() });
    midtrans.pay(&mid).await.unwrap();
    // Settlement turned into deny for the same transaction; the deny is applied first.
    let settlement = midtrans.notification(&mid, "settlement", Some("accept")).unwrap();
    let mut deny = midtrans.notification(&mid, "deny", None).unwrap();
    deny["transaction_id"] = settlement["transaction_id"].clone();
    assert_eq!(apply_body(&app, &deny).await, Effect::Released);
    assert_eq!(apply_body(&app, &settlement).await, Effect::Stale);
    assert_eq!(order_status(&app, s.order).await, "cancelled");
    assert_eq!(count(&app, "select count(*) from tickets where order_id = $1", s.order).await, 0);
    assert_eq!(category_counts(&app, s.category).await, (0, 0));
}

#[tokio::test]
async fn the_processor_applies_what_midtrans_says_not_what_a_notification_claims() {
    let PayApp { app, midtrans, .. } = spawn_app_with_midtrans().await;
    let stop = app.webhook_processor(fast_processor()).await;
    let s = setup(&app, 10, 10).await;
    let (_, body) = start_payment(&app, &s.token, s.order, "q", json!({"method": "qris"})).await;
    let mid = body["midtrans_order_id"].as_str().unwrap().to_owned();
    // A correctly signed body for this transaction with its status rewritten: Midtrans says "pending".
    let mut rewritten = midtrans.notification(&mid, "pending", None).unwrap();
    rewritten["transaction_status"] = json!("deny");
    assert_eq!(post_notification(&app, &rewritten).await, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    drained(&app).await;
    assert_eq!(order_status(&app, s.order).await, "pending_payment");
    assert_eq!(category_counts(&app, s.category).await, (0, 2));
    stop.cancel();
}

#[tokio::test]
async fn a_gate_for_one_event_refuses_another_events_ticket_and_leaves_it_unused() {
    let PayApp { app, midtrans, .. } = spawn_app_with_midtrans().await;
    let stop = app.webhook_processor(fast_processor()).await;
    let (s, _) = paid_order(&app, &midtrans).await;
    let (_, body) = app.call("GET", &format!("/api/orders/{}/tickets", s.order), Some(&s.token), None).await;
    let code = body["tickets"].as_array().unwrap().iter().find(|t| t["kind"] == "ticket").unwrap()["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin = app.admin_token().await;
    let (status, body) = app
        .call("POST", "/api/checkin", Some(&admin), Some(json!({ "code": code, "event_id": Uuid::new_v4() })))
        .await;
    assert_eq!(status, 409, "{body}");
    assert_error(&body, "wrong_event");
    let (status, _) = app
        .call("POST", "/api/checkin", Some(&admin), Some(json!({ "code": code, "event_id": s.event })))
        .await;
    assert_eq!(status, 200);
    stop.cancel();
}

#[tokio::test]
async fn with_redis_down_a_notification_gets_503_so_midtrans_retries() {
    let mut redis = e2e::private_redis::PrivateRedis::start().await;
    let app = e2e::spawn_app_with(e2e::Options {
        redis_url: Some(redis.url()),
        midtrans: Some(e2e::MidtransTarget {
            server_key: MIDTRANS_KEY.into(),
            api_base_url: "http://127.0.0.1:9".into(),
            snap_base_url: "http://127.0.0.1:9/snap/v1".into(),
        }),
        ..Default::default()
    })
    .await;
    let amount = "150000.00";
    let body = json!({
        "order_id": "QC-redis-down-1", "status_code": "200", "gross_amount": amount,
        "transaction_status": "settlement", "fraud_status": "accept",
        "signature_key": midtrans::signature("QC-redis-down-1", "200", amount, MIDTRANS_KEY)
    });
    assert_eq!(post_notification(&app, &body).await, 200, "queued while Redis is up");
    redis.kill();
    let resp = app.post("/api/webhooks/midtrans").json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn a_free_order_is_confirmed_without_a_payment() {
    let PayApp { app, midtrans, .. } = spawn_app_with_midtrans().await;
    let s = setup(&app, 10, 10).await;
    let admin = app.admin_token().await;
    let (status, free) = app
        .call(
            "POST",
            &format!("/api/admin/events/{}/ticket-categories", s.event),
            Some(&admin),
            Some(json!({ "name": "Undangan", "price": 0, "quota": 5, "max_per_order": 2 })),
        )
        .await;
    assert_eq!(status, 201, "{free}");
    let free: Uuid = free["id"].as_str().unwrap().parse().unwrap();
    let order = app.pending_order(s.buyer, s.event, vec![tickets(free, 2)]).await;
    let (status, body) = start_payment(&app, &s.token, order, "f", json!({})).await;
    assert_eq!(status, 409);
    assert_error(&body, "free_order");
    assert_eq!(midtrans.api_calls("/snap/v1/transactions"), 0);

    let confirmed = checkout_worker::payments::apply::settle_free_orders(&app.db, 100).await.unwrap();
    assert_eq!(confirmed, 1);
    assert_eq!(order_status(&app, order).await, "paid");
    assert_eq!(category_counts(&app, free).await, (2, 0));
    assert_eq!(count(&app, "select count(*) from tickets where order_id = $1", order).await, 2);
    // Paid orders are left alone; the order that costs money still waits for its payment.
    assert_eq!(checkout_worker::payments::apply::settle_free_orders(&app.db, 100).await.unwrap(), 0);
    assert_eq!(order_status(&app, s.order).await, "pending_payment");
}

/// A payment put under review by a settlement for the wrong amount: (arrangement, payment id, admin token).
async fn payment_under_review(app: &TestApp) -> (Setup, Uuid, String) {
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

async fn payment_row(app: &TestApp, payment: Uuid) -> (String, Option<String>) {
    sqlx::query_as("select status, refund_reason from payments where id = $1")
        .bind(payment)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_operator_accepts_a_payment_under_review_and_the_buyer_gets_tickets() {
    let PayApp { app, midtrans: _midtrans, .. } = spawn_app_with_midtrans().await;
    let (s, payment, admin) = payment_under_review(&app).await;
    let path = format!("/api/admin/payments/{payment}/review");
    // Buyers cannot resolve reviews; nonsense is refused.
    assert_eq!(app.call("POST", &path, Some(&s.token), Some(json!({ "decision": "accept" }))).await.0, 403);
    assert_eq!(app.call("POST", &path, Some(&admin), Some(json!({ "decision": "maybe" }))).await.0, 400);
    let unknown = format!("/api/admin/payments/{}/review", Uuid::new_v4());
    assert_eq!(app.call("POST", &unknown, Some(&admin), Some(json!({ "decision": "accept" }))).await.0, 404);

    let (status, body) = app
        .call("POST", &path, Some(&admin), Some(json!({ "decision": "accept", "note": "bank confirmed" })))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["outcome"].as_str(), body["order_status"].as_str()), (Some("paid"), Some("paid")));
    assert_eq!(category_counts(&app, s.category).await, (2, 0));
    assert_eq!(count(&app, "select count(*) from tickets where order_id = $1", s.order).await, 3);
    // Once: a second decision finds nothing under review.
    let (status, body) = app.call("POST", &path, Some(&admin), Some(json!({ "decision": "refund" }))).await;
    assert_eq!(status, 409);
    assert_error(&body, "not_under_review");
    assert_eq!(
        count(
            &app,
            "select count(*) from audit_log where action = 'payment.review' and entity_id = $1",
            payment
        )
        .await,
        1
    );
}

#[tokio::test]
async fn an_operator_refunds_a_payment_under_review_and_the_stock_comes_back() {
    let PayApp { app, midtrans: _midtrans, .. } = spawn_app_with_midtrans().await;
    let (s, payment, admin) = payment_under_review(&app).await;
    assert_eq!(category_counts(&app, s.category).await, (0, 2), "held while under review");
    let (status, body) = app
        .call(
            "POST",
            &format!("/api/admin/payments/{payment}/review"),
            Some(&admin),
            Some(json!({ "decision": "refund" })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"], "refund_owed");
    assert_eq!(order_status(&app, s.order).await, "cancelled");
    assert_eq!(category_counts(&app, s.category).await, (0, 0));
    assert_eq!(payment_row(&app, payment).await, ("refund_pending".into(), Some("review_refund".into())));
    assert_eq!(count(&app, "select count(*) from tickets where order_id = $1", s.order).await, 0);
}

#[tokio::test]
async fn a_review_left_unresolved_past_its_deadline_releases_the_hold_and_owes_the_money_back() {
    use checkout_worker::payments::review::refund_overdue;
    let PayApp { app, midtrans: _midtrans, .. } = spawn_app_with_midtrans().await;
    let (s, payment, _) = payment_under_review(&app).await;
    let day = chrono::Duration::days(1);
    // Not yet due: nothing happens.
    assert_eq!(refund_overdue(&app.db, Utc::now(), day, 100).await.unwrap(), 0);
    assert_eq!(order_status(&app, s.order).await, "payment_review");
    // A day and a minute later (the clock moved forward): refunded once, the hold ends.
    let later = Utc::now() + day + chrono::Duration::minutes(1);
    assert_eq!(refund_overdue(&app.db, later, day, 100).await.unwrap(), 1);
    assert_eq!(refund_overdue(&app.db, later, day, 100).await.unwrap(), 0);
    assert_eq!(order_status(&app, s.order).await, "cancelled");
    assert_eq!(category_counts(&app, s.category).await, (0, 0));
    assert_eq!(payment_row(&app, payment).await, ("refund_pending".into(), Some("review_deadline".into())));
}
