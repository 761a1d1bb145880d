//! Starting a payment against the fake Midtrans over real HTTP: the Snap page end to end, one live
//! transaction per order under concurrency, idempotent repeats, per-buyer limits, cancelling, free orders.

use std::sync::Arc;

use e2e::{
    PayApp, assert_error, fast_processor, payments::*, spawn_app_with_midtrans, spawn_app_with_midtrans_and,
};
use serde_json::json;
use tokio::sync::Barrier;
use uuid::Uuid;

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

    let (status, body) = app.by(&s.token).get(&format!("/api/orders/{}/tickets", s.order)).await;
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
    let (_, order) = app.by(&s.token).get(&format!("/api/orders/{}", s.order)).await;
    assert_eq!(order["payment"]["status"], "paid");

    // Another buyer sees nothing of it.
    let (_, stranger) = app.quick_buyer().await;
    let (status, _) = app.by(&stranger).get(&format!("/api/orders/{}/tickets", s.order)).await;
    assert_eq!(status, 404);
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
    let attempts: i64 = app.scalar("select count(*) from payments where order_id = $1", other).await;
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
    let (status, _) = app.by(&s.token).post_empty(&format!("/api/orders/{cancelled}/cancel")).await;
    assert_eq!(status, 200);
    let (status, body) = start_payment(&app, &s.token, cancelled, "k3", json!({})).await;
    assert_eq!(status, 409);
    assert_error(&body, "not_payable");
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
    let (status, order) = app.by(&s.token).post_empty(&format!("/api/orders/{}/cancel", s.order)).await;
    assert_eq!(status, 200, "{order}");
    assert_eq!(order["status"], "cancelled");
    assert_eq!(midtrans.transaction(&mid).unwrap().status.as_deref(), Some("cancel"));
    assert!(midtrans.pay(&mid).await.is_err(), "a cancelled QR code cannot be paid");
    assert_eq!(category_counts(&app, s.category).await, (0, 0));

    // A Snap page where no method was chosen: Midtrans does not know it; the order still cancels.
    let other = app.pending_order(s.buyer, s.event, vec![tickets(s.category, 1)]).await;
    let (_, body) = start_payment(&app, &s.token, other, "s", json!({})).await;
    let snap_mid = body["midtrans_order_id"].as_str().unwrap().to_owned();
    let (status, order) = app.by(&s.token).post_empty(&format!("/api/orders/{other}/cancel")).await;
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

#[tokio::test]
async fn a_free_order_is_confirmed_without_a_payment() {
    let PayApp { app, midtrans, .. } = spawn_app_with_midtrans().await;
    let s = setup(&app, 10, 10).await;
    let admin = app.admin_token().await;
    let (status, free) = app
        .by(&admin)
        .post(
            &format!("/api/admin/events/{}/ticket-categories", s.event),
            json!({ "name": "Undangan", "price": 0, "quota": 5, "max_per_order": 2 }),
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
