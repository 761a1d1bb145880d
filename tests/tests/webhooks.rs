//! Midtrans notifications: applied exactly once whatever their number and order, forged and wrong ones
//! refused, crashes and poison notifications (retries, dead letters, replay), Redis outages, reversals.

use std::{sync::Arc, time::Duration};

use checkout_worker::payments::processor::ProcessorSettings;
use chrono::Utc;
use e2e::{MIDTRANS_KEY, PayApp, assert_error, fast_processor, payments::*, spawn_app_with_midtrans};
use fred::interfaces::StreamsInterface;
use serde_json::json;
use tokio::sync::Barrier;
use uuid::Uuid;

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
    let stream = keys.webhooks_stream(pipeline::webhooks::partition(real["order_id"].as_str().unwrap()));
    let stream_len = || async { app.state.redis.next().xlen::<i64, _>(&stream).await.unwrap() };
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
    drained(&app).await;

    // The mismatch puts the payment under review: neither paid nor released (the order keeps its hold).
    assert_eq!(order_status(&app, s.order).await, "payment_review");
    let payment: String =
        app.scalar("select status from payments where midtrans_order_id = $1", mid.clone()).await;
    assert_eq!(payment, "needs_review");
    // Operators find it in the admin list (buyers may not look).
    let admin = app.admin_token().await;
    let list = app.expect(200, "GET", "/api/admin/payments?status=needs_review", Some(&admin), None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["midtrans_order_id"], mid.as_str());
    assert_eq!(list[0]["order_status"], "payment_review");
    app.expect(422, "GET", "/api/admin/payments?status=paid", Some(&admin), None).await;
    app.expect(403, "GET", "/api/admin/payments", Some(&s.token), None).await;
    assert_eq!(category_counts(&app, s.category).await, (0, 2));
    assert_eq!(count(&app, "select count(*) from tickets where order_id = $1", s.order).await, 0);
    // Two different orders: their notifications may travel in different partitions, in either order.
    let outcomes: Vec<String> = sqlx::query_scalar("select outcome from payment_events order by outcome")
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
        keys.webhooks_stream(pipeline::webhooks::partition(settlement["order_id"].as_str().unwrap())),
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
        let body = app.expect(200, "GET", "/api/admin/webhooks/dead-letters", Some(&admin), None).await;
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
    app.expect(403, "GET", "/api/admin/webhooks/dead-letters", Some(&s.token), None).await;

    // Fixed: replay every dead letter (the pending one too); the settlement is applied once.
    sqlx::query("drop trigger refuse on payment_events").execute(&app.db).await.unwrap();
    let (_, all) = app.by(&admin).get("/api/admin/webhooks/dead-letters").await;
    for letter in all.as_array().unwrap() {
        let id = letter["id"].as_str().unwrap();
        let (status, body) =
            app.by(&admin).post_empty(&format!("/api/admin/webhooks/dead-letters/{id}/replay")).await;
        assert_eq!(status, 200, "{body}");
        let (status, _) =
            app.by(&admin).post_empty(&format!("/api/admin/webhooks/dead-letters/{id}/replay")).await;
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
    drained(&app).await;
    assert_eq!(order_status(&app, s.order).await, "pending_payment");
    assert_eq!(category_counts(&app, s.category).await, (0, 2));
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
