//! The checkout pipeline end to end: HTTP submission, the order stream, batched workers, results by
//! polling and by push, idempotency, admissions, bad input, cancelling, crash recovery.

use std::time::Duration;

use chrono::Utc;
use e2e::{
    TestApp, assert_error,
    checkout::{OnSale, admitted, count, decided, on_sale_with_worker, settings, submit, worker},
    spawn_app, spawn_with_admin,
};
use futures::StreamExt;
use serde_json::{Value, json};
use uuid::Uuid;
use waiting_room::tokens::RoomTokens;

#[tokio::test]
async fn a_buyer_orders_tickets_and_merchandise_in_one_cart_and_sees_only_its_own_orders() {
    let app = spawn_app().await;
    let OnSale { event, category, shirt, token, visitor_token: vt, admission: at, worker: _worker } =
        on_sale_with_worker(&app).await;
    let body = json!({ "event_id": event, "items": [
        { "ticket_category_id": category, "quantity": 2 }, { "merchandise_id": shirt, "quantity": 1 } ] });
    let (s, accepted) = submit(&app, &token, "cart-1", &vt, &at, &body).await;
    assert_eq!(s, 202, "{accepted}");
    assert_eq!(accepted["status"], "queued");
    let request = accepted["request_id"].as_str().unwrap();
    let result = decided(&app, &token, request).await;
    assert_eq!(result["status"], "confirmed", "{result}");
    let order_id = result["order_id"].as_str().unwrap();

    let order = app.expect(200, "GET", &format!("/api/orders/{order_id}"), Some(&token), None).await;
    assert_eq!(order["status"], "pending_payment");
    assert_eq!(order["total"], 2 * 150_000 + 100_000);
    assert_eq!(order["items"].as_array().unwrap().len(), 2);
    let (_, mine) = app.by(&token).get("/api/orders").await;
    assert_eq!(mine.as_array().unwrap().len(), 1);

    let (_, other) = app.quick_buyer().await;
    for path in [format!("/api/orders/{order_id}"), format!("/api/orders/requests/{request}")] {
        app.expect(404, "GET", &path, Some(&other), None).await;
    }
    let (_, none) = app.by(&other).get("/api/orders").await;
    assert_eq!(none, json!([]));
}

#[tokio::test]
async fn a_thousand_concurrent_buyers_on_a_hundred_tickets_get_exactly_a_hundred_orders() {
    let (app, admin) = spawn_with_admin().await;
    let (event, category, _) = app.published_event(&admin, 100, 10).await;
    let _a = worker(&app, settings()).drop_guard();
    let _b = worker(&app, settings()).drop_guard();
    let mut buyers = Vec::new();
    for _ in 0..1000 {
        let (_, token) = app.quick_buyer().await;
        let (_, vt, at) = admitted(&app, event);
        buyers.push((token, vt, at));
    }
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(1000));
    let mut tasks = Vec::new();
    for (i, (token, vt, at)) in buyers.into_iter().enumerate() {
        let (http, url, barrier) = (app.http.clone(), app.url("/api/orders"), barrier.clone());
        let body = json!({ "event_id": event, "items": [{ "ticket_category_id": category, "quantity": 1 }] });
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            // Like the storefront: a 503 (the gateway shedding load) is retried after its Retry-After
            // with the same Idempotency-Key, so it never makes a second request.
            for _ in 0..20 {
                let resp = http
                    .post(&url)
                    .bearer_auth(&token)
                    .header("idempotency-key", format!("k{i}"))
                    .header("visitor-token", &vt)
                    .header("admission-token", &at)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let status = resp.status().as_u16();
                let retry_after =
                    resp.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse().ok());
                let body: Value = resp.json().await.unwrap();
                if status != 503 {
                    return (status, body, token);
                }
                tokio::time::sleep(Duration::from_secs(retry_after.unwrap_or(1))).await;
            }
            panic!("buyer {i} was refused with 503 twenty times");
        }));
    }
    let mut confirmed = 0;
    let mut sold_out = 0;
    for t in tasks {
        let (status, body, token) = t.await.unwrap();
        match status {
            202 => {
                let result = decided(&app, &token, body["request_id"].as_str().unwrap()).await;
                match result["status"].as_str() {
                    Some("confirmed") => confirmed += 1,
                    _ => {
                        assert_eq!(result["reason"], "sold_out", "{result}");
                        sold_out += 1;
                    }
                }
            }
            409 => {
                assert_error(&body, "sold_out");
                sold_out += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((confirmed, sold_out), (100, 900), "every buyer gets a definitive answer");
    assert_eq!(count(&app, "select held::bigint from ticket_categories").await, 100);
    assert_eq!(count(&app, "select count(*) from orders").await, 100);
    assert_eq!(count(&app, "select sum(quantity)::bigint from order_items").await, 100);
    assert_eq!(count(&app, "select count(*) from order_requests where status = 'confirmed'").await, 100);
}

#[tokio::test]
async fn the_same_idempotency_key_fifty_times_at_once_and_later_makes_one_order() {
    let app = spawn_app().await;
    let OnSale { event, category, token, visitor_token: vt, admission: at, worker: _worker, .. } =
        on_sale_with_worker(&app).await;
    let body = json!({ "event_id": event, "items": [{ "ticket_category_id": category, "quantity": 1 }] });
    let answers =
        futures::future::join_all((0..50).map(|_| submit(&app, &token, "double-click", &vt, &at, &body)))
            .await;
    let ids: std::collections::HashSet<String> = answers
        .iter()
        .map(|(s, b)| {
            assert_eq!(*s, 202, "{b}");
            b["request_id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1, "one request for one key");
    let request = ids.into_iter().next().unwrap();
    decided(&app, &token, &request).await;
    let (s, later) = submit(&app, &token, "double-click", &vt, &at, &body).await;
    assert_eq!(s, 202);
    assert_eq!(later["request_id"], request.as_str());
    assert_eq!(later["status"], "confirmed");
    assert_eq!(count(&app, "select count(*) from orders").await, 1);
    // The same key for another cart is refused.
    let other = json!({ "event_id": event, "items": [{ "ticket_category_id": category, "quantity": 2 }] });
    let (s, body) = submit(&app, &token, "double-click", &vt, &at, &other).await;
    assert_eq!(s, 422, "{body}");
}

/// Each buyer's three calls at once: the cart twice under one key (a double click), then either another
/// cart under that key, or the same admission under a second key (a replay).
#[tokio::test]
async fn requests_arriving_together_share_commits_and_answer_as_if_alone() {
    let app = spawn_app().await; // the default intake: ORDER_INTAKE=batched
    let admin = app.admin_token().await;
    let (event, category, _) = app.published_event(&admin, 1000, 10).await;
    let cart =
        |n: i64| json!({ "event_id": event, "items": [{ "ticket_category_id": category, "quantity": n }] });
    let buyers = 150;
    let mut calls = Vec::new();
    for b in 0..buyers {
        let (_, token) = app.quick_buyer().await;
        let (_, vt, at) = admitted(&app, event);
        let third = if b % 2 == 0 { ("k", cart(2)) } else { ("replay", cart(1)) };
        for (key, body) in [("k", cart(1)), ("k", cart(1)), third] {
            calls.push((b, key, body, token.clone(), vt.clone(), at.clone()));
        }
    }
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(calls.len()));
    let answers = futures::future::join_all(calls.iter().map(|(b, key, body, token, vt, at)| {
        let (app, barrier) = (&app, barrier.clone());
        async move {
            barrier.wait().await;
            (*b, submit(app, token, key, vt, at, body).await)
        }
    }))
    .await;
    for b in 0..buyers {
        let mine: Vec<_> = answers.iter().filter(|a| a.0 == b).collect();
        let accepted: std::collections::HashSet<&str> =
            mine.iter().filter(|a| a.1.0 == 202).map(|a| a.1.1["request_id"].as_str().unwrap()).collect();
        assert_eq!(accepted.len(), 1, "buyer {b}: one request, and every 202 names it: {mine:?}");
        for (_, (status, body)) in &mine {
            match status {
                202 => {}
                // Another cart under a key already used, or a second key with a spent admission.
                422 => assert!(b % 2 == 0, "{body}"),
                409 => {
                    assert!(b % 2 == 1, "{body}");
                    assert_error(body, "admission_used");
                }
                other => panic!("buyer {b}: {other} {body}"),
            }
        }
    }
    let rows = count(&app, "select count(*) from order_requests").await;
    assert_eq!(rows, buyers as i64, "one recorded request per admission");
    // Rows written by one insert share its transaction id: far fewer commits than requests.
    let commits = count(&app, "select count(distinct xmin::text) from order_requests").await;
    assert!(commits < rows, "{commits} commits for {rows} requests");
}

#[tokio::test]
async fn an_admission_buys_once_for_its_own_visitor() {
    let app = spawn_app().await;
    let OnSale { event, category, token, visitor_token: vt, admission: at, worker: _worker, .. } =
        on_sale_with_worker(&app).await;
    let body = json!({ "event_id": event, "items": [{ "ticket_category_id": category, "quantity": 1 }] });
    let (s, first) = submit(&app, &token, "first", &vt, &at, &body).await;
    assert_eq!(s, 202);
    // The same admission again, under a new key (a replay): refused, and so is that key's retry.
    let (s, replay) = submit(&app, &token, "second", &vt, &at, &body).await;
    assert_eq!(s, 409);
    assert_error(&replay, "admission_used");
    assert_eq!(submit(&app, &token, "second", &vt, &at, &body).await.0, 409);
    // Someone else's visitor credential with this admission.
    let (_, other_vt, _) = admitted(&app, event);
    let (s, _) = submit(&app, &token, "third", &other_vt, &at, &body).await;
    assert_eq!(s, 403);
    // Forged and missing admissions.
    let forged = waiting_room::tokens::Signer::new(b"some-other-secret-entirely-0123456").admission(
        event,
        Uuid::new_v4(),
        1,
        Utc::now().timestamp(),
        Utc::now().timestamp_millis() + 60_000,
    );
    assert_eq!(submit(&app, &token, "fourth", &vt, &forged, &body).await.0, 401);
    let resp = app
        .post("/api/orders")
        .bearer_auth(&token)
        .header("idempotency-key", "fifth")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    // Counted once the first request is decided (the worker may not have reached it yet).
    decided(&app, &token, first["request_id"].as_str().unwrap()).await;
    assert_eq!(count(&app, "select count(*) from orders where status <> 'cancelled'").await, 1);
}

#[tokio::test]
async fn repeated_lines_of_one_product_become_one_line_and_count_together() {
    let app = spawn_app().await;
    let OnSale { event, category, shirt, token, visitor_token: vt, admission: at, worker: _worker } =
        on_sale_with_worker(&app).await;
    let body = json!({ "event_id": event, "items": [
        { "ticket_category_id": category, "quantity": 2 }, { "merchandise_id": shirt, "quantity": 1 },
        { "ticket_category_id": category, "quantity": 2 } ] });
    let (s, accepted) = submit(&app, &token, "repeated", &vt, &at, &body).await;
    assert_eq!(s, 202, "{accepted}");
    let result = decided(&app, &token, accepted["request_id"].as_str().unwrap()).await;
    let order_id = result["order_id"].as_str().unwrap();
    let (_, order) = app.by(&token).get(&format!("/api/orders/{order_id}")).await;
    let quantities: Vec<(Option<&str>, i64)> = order["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["ticket_category_id"].as_str(), i["quantity"].as_i64().unwrap()))
        .collect();
    assert_eq!(quantities, vec![(Some(category.to_string().as_str()), 4), (None, 1)], "{order}");
    // Added up, the lines are held to the per-order limit (4) like one line.
    let (_, vt, at) = admitted(&app, event);
    let over = json!({ "event_id": event, "items": [
        { "ticket_category_id": category, "quantity": 3 }, { "ticket_category_id": category, "quantity": 2 } ] });
    let (s, body) = submit(&app, &token, "repeated-over", &vt, &at, &over).await;
    assert_eq!(s, 422, "{body}");
}

#[tokio::test]
async fn bad_orders_get_clear_errors_and_write_nothing() {
    let (app, admin) = spawn_with_admin().await;
    let (event, category, shirt) = app.published_event(&admin, 100, 10).await;
    let (_, other_category, _) = app.published_event(&admin, 100, 10).await;
    let (_, token) = app.quick_buyer().await;
    let line =
        |q: Value| json!({ "event_id": event, "items": [{ "ticket_category_id": category, "quantity": q }] });
    let cases: Vec<(Value, u16)> = vec![
        (line(json!(0)), 422),
        (line(json!(-1)), 422),
        (line(json!(101)), 422),
        (line(json!(1_000_000_000_000i64)), 422),
        (line(json!("two")), 400),
        (line(json!(1.5)), 400),
        (json!({ "event_id": event, "items": [] }), 422),
        (
            json!({ "event_id": event, "items": [{ "ticket_category_id": category, "merchandise_id": shirt, "quantity": 1 }] }),
            422,
        ),
        (json!({ "event_id": event, "items": [{ "quantity": 1 }] }), 422),
        (json!({ "event_id": event, "items": [{ "ticket_category_id": category, "quantity": 5 }] }), 422),
        (
            json!({ "event_id": event, "items": [{ "ticket_category_id": other_category, "quantity": 1 }] }),
            422,
        ),
        (
            json!({ "event_id": event, "items": [{ "ticket_category_id": Uuid::new_v4(), "quantity": 1 }] }),
            404,
        ),
        // A merchandise id sent as a ticket category (and the reverse) names nothing.
        (json!({ "event_id": event, "items": [{ "ticket_category_id": shirt, "quantity": 1 }] }), 404),
        (json!({ "event_id": event, "items": [{ "merchandise_id": category, "quantity": 1 }] }), 404),
        (
            json!({ "event_id": Uuid::new_v4(), "items": [{ "ticket_category_id": category, "quantity": 1 }] }),
            401,
        ),
        (
            json!({ "event_id": event, "items": [{ "ticket_category_id": category, "quantity": 1 }], "price": 0 }),
            400,
        ),
    ];
    for (i, (body, status)) in cases.into_iter().enumerate() {
        let (_, vt, at) = admitted(&app, event);
        let (s, resp) = submit(&app, &token, &format!("bad-{i}"), &vt, &at, &body).await;
        assert_eq!(s, status, "case {i} {body}: {resp}");
        assert!(resp["error"]["code"].is_string(), "{resp}");
    }
    // Missing Idempotency-Key, and no sign-in at all.
    let (_, vt, at) = admitted(&app, event);
    let resp = app
        .post("/api/orders")
        .bearer_auth(&token)
        .header("visitor-token", &vt)
        .header("admission-token", &at)
        .json(&line(json!(1)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    app.expect(401, "POST", "/api/orders", None, Some(line(json!(1)))).await;
    assert_eq!(count(&app, "select count(*) from order_requests").await, 0);
    assert_eq!(count(&app, "select count(*) from orders").await, 0);
}

#[tokio::test]
async fn a_buyer_cancels_an_unpaid_order_and_the_stock_comes_back_once() {
    let (app, admin) = spawn_with_admin().await;
    let (event, category, _) = app.published_event(&admin, 10, 10).await;
    let _stop = worker(&app, settings()).drop_guard();
    let (_, token) = app.quick_buyer().await;
    let (_, vt, at) = admitted(&app, event);
    let body = json!({ "event_id": event, "items": [{ "ticket_category_id": category, "quantity": 3 }] });
    let (_, accepted) = submit(&app, &token, "to-cancel", &vt, &at, &body).await;
    let result = decided(&app, &token, accepted["request_id"].as_str().unwrap()).await;
    let order = result["order_id"].as_str().unwrap();
    assert_eq!(count(&app, "select held::bigint from ticket_categories").await, 3);
    let (_, other) = app.quick_buyer().await;
    assert_eq!(app.by(&other).post_empty(&format!("/api/orders/{order}/cancel")).await.0, 404);
    let cancelled = app.expect(200, "POST", &format!("/api/orders/{order}/cancel"), Some(&token), None).await;
    assert_eq!(cancelled["status"], "cancelled");
    let again = app.expect(409, "POST", &format!("/api/orders/{order}/cancel"), Some(&token), None).await;
    assert_error(&again, "not_cancellable");
    assert_eq!(count(&app, "select held::bigint from ticket_categories").await, 0);
}

#[tokio::test]
async fn an_entry_left_pending_by_a_dead_worker_is_decided_once_by_another() {
    let (app, admin) = spawn_with_admin().await;
    let (event, category, _) = app.published_event(&admin, 10, 10).await;
    let keys = keyspace::Keyspace::new(app.redis_prefix.clone());
    let (_, token) = app.quick_buyer().await;
    let mut requests = Vec::new();
    for i in 0..3 {
        let (_, vt, at) = admitted(&app, event);
        let body = json!({ "event_id": event, "items": [{ "ticket_category_id": category, "quantity": 1 }] });
        let (s, accepted) = submit(&app, &token, &format!("crash-{i}"), &vt, &at, &body).await;
        assert_eq!(s, 202);
        requests.push(accepted["request_id"].as_str().unwrap().to_owned());
    }
    // A worker reads the entries and dies: one request it even committed before dying (crash after commit,
    // before acknowledgement); the others it never got to (crash before commit).
    let redis = keyspace::connect(&e2e::redis_url(), 1).await.unwrap();
    use fred::interfaces::StreamsInterface;
    let stream = keys.orders_stream(pipeline::orders::partition(event));
    let _: fred::types::Value = redis.next().xgroup_create(&stream, "checkout", "0", true).await.unwrap();
    let read: fred::types::streams::XReadResponse<String, String, String, String> = redis
        .next()
        .xreadgroup_map("checkout", "dead-worker", Some(10), None, false, &stream, ">")
        .await
        .unwrap();
    let entries = &read[&stream];
    assert_eq!(entries.len(), 3);
    let first: pipeline::orders::CheckoutRequest = serde_json::from_str(&entries[0].1["request"]).unwrap();
    checkout_worker::allocation::allocate(&app.db, &[first], Utc::now(), chrono::Duration::minutes(15))
        .await
        .unwrap();

    // A live worker takes the dead one's entries over.
    let mut s = settings();
    s.reclaim_idle = Duration::from_millis(200);
    s.reclaim_every = Duration::from_millis(100);
    let _stop = worker(&app, s).drop_guard();
    for r in &requests {
        assert_eq!(decided(&app, &token, r).await["status"], "confirmed");
    }
    assert_eq!(count(&app, "select count(*) from orders").await, 3, "no second order for the committed one");
    assert_eq!(count(&app, "select held::bigint from ticket_categories").await, 3);
}

#[tokio::test]
async fn the_result_is_pushed_to_the_buyers_waiting_room_socket() {
    let (app, admin) = spawn_with_admin().await;
    let (event, category, _) = app.published_event(&admin, 10, 10).await;
    let _stop = worker(&app, settings()).drop_guard();
    let (_, joined) = app.anon().post_empty(&format!("/api/events/{event}/queue")).await;
    let vt = joined["visitor_token"].as_str().unwrap().to_owned();
    let visitor = app.state.signer.verify_visitor(&vt, event).unwrap();
    let url = format!("ws://{}/api/events/{event}/queue/ws?visitor_token={vt}", app.addr);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), ws.next()).await; // the first snapshot
    let now = Utc::now();
    let at = app.state.signer.admission(event, visitor, 1, now.timestamp(), now.timestamp_millis() + 60_000);
    let (_, token) = app.quick_buyer().await;
    let body = json!({ "event_id": event, "items": [{ "ticket_category_id": category, "quantity": 1 }] });
    let (s, accepted) = submit(&app, &token, "pushed", &vt, &at, &body).await;
    assert_eq!(s, 202);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next()).await.expect("in time").unwrap().unwrap();
        if let tokio_tungstenite::tungstenite::Message::Text(t) = frame {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "order_result" {
                assert_eq!(v["request_id"], accepted["request_id"]);
                assert_eq!(v["status"], "confirmed");
                break;
            }
        }
    }
}

/// A gateway allowing each buyer one new order a minute (burst of three), an event on sale, a buyer and a
/// one-ticket cart: (app, event, buyer token, cart).
async fn one_order_a_minute() -> (TestApp, Uuid, String, Value) {
    let app = e2e::spawn_app_with(e2e::Options {
        configure: |c| c.orders_per_user_per_min = 1,
        ..Default::default()
    })
    .await;
    let admin = app.admin_token().await;
    let (event, category, _) = app.published_event(&admin, 100, 10).await;
    let (_, token) = app.quick_buyer().await;
    let body = json!({ "event_id": event, "items": [{ "ticket_category_id": category, "quantity": 1 }] });
    (app, event, token, body)
}

#[tokio::test]
async fn new_submissions_are_rate_limited_per_buyer_but_retries_are_not() {
    let (app, event, token, body) = one_order_a_minute().await;
    let mut statuses = Vec::new();
    for i in 0..4 {
        let (_, vt, at) = admitted(&app, event);
        let resp = app
            .post("/api/orders")
            .bearer_auth(&token)
            .header("idempotency-key", format!("new-{i}"))
            .header("visitor-token", vt)
            .header("admission-token", at)
            .json(&body)
            .send()
            .await
            .unwrap();
        if resp.status() == 429 {
            assert!(resp.headers().contains_key("retry-after"));
        }
        statuses.push(resp.status().as_u16());
    }
    assert_eq!(statuses, vec![202, 202, 202, 429], "a burst of three, then one a minute");
    // A retry of an accepted key is answered from the record.
    let (_, vt, at) = admitted(&app, event);
    assert_eq!(submit(&app, &token, "new-0", &vt, &at, &body).await.0, 202);
}

#[tokio::test]
async fn a_drifted_stock_counter_can_neither_sell_nor_refuse_for_long() {
    use fred::interfaces::HashesInterface;
    let (app, admin) = spawn_with_admin().await;
    let (event, category, _) = app.published_event(&admin, 1, 10).await;
    let _stop = worker(&app, settings()).drop_guard();
    let keys = keyspace::Keyspace::new(app.redis_prefix.clone());
    let redis = keyspace::connect(&e2e::redis_url(), 1).await.unwrap();
    let set_counter = |n: i64| {
        let (redis, key) = (redis.clone(), keys.event_stock(event));
        async move {
            let _: i64 = redis.next().hset(key, (category.to_string(), n)).await.unwrap();
        }
    };
    let (_, token) = app.quick_buyer().await;
    let body = json!({ "event_id": event, "items": [{ "ticket_category_id": category, "quantity": 1 }] });

    // The counter says plenty while PostgreSQL is sold out: the worker still refuses.
    sqlx::query("update ticket_categories set sold = quota").execute(&app.db).await.unwrap();
    set_counter(50).await;
    let (_, vt, at) = admitted(&app, event);
    let (s, accepted) = submit(&app, &token, "drift-high", &vt, &at, &body).await;
    assert_eq!(s, 202);
    let result = decided(&app, &token, accepted["request_id"].as_str().unwrap()).await;
    assert_eq!(result["reason"], "sold_out");
    assert_eq!(count(&app, "select count(*) from orders").await, 0);

    // The counter says sold out while stock came back: refused early, until the next controller tick.
    sqlx::query("update ticket_categories set sold = 0").execute(&app.db).await.unwrap();
    set_counter(0).await;
    let (_, vt, at) = admitted(&app, event);
    let (s, body409) = submit(&app, &token, "drift-low", &vt, &at, &body).await;
    assert_eq!(s, 409);
    assert_error(&body409, "sold_out");
    waiting_room::controller::Controller::new(app.db.clone(), app.state.queue.clone())
        .tick(Utc::now())
        .await
        .unwrap();
    let (_, vt, at) = admitted(&app, event);
    let (s, accepted) = submit(&app, &token, "after-tick", &vt, &at, &body).await;
    assert_eq!(s, 202);
    assert_eq!(decided(&app, &token, accepted["request_id"].as_str().unwrap()).await["status"], "confirmed");
}

#[tokio::test]
async fn a_request_whose_stream_entry_was_lost_is_queued_again_or_answered() {
    use fred::interfaces::ListInterface;
    let (app, admin) = spawn_with_admin().await;
    let (event, category, _) = app.published_event(&admin, 10, 10).await;
    let keys = keyspace::Keyspace::new(app.redis_prefix.clone());
    let redis = keyspace::connect(&e2e::redis_url(), 1).await.unwrap();
    let (user, token) = app.quick_buyer().await;
    // Two requests recorded in PostgreSQL whose stream entries never made it (a Redis restart).
    let items = json!([{ "ticket_category_id": category, "merchandise_id": null, "quantity": 1 }]);
    let (lost, doomed) = (Uuid::now_v7(), Uuid::now_v7());
    for (id, attempts) in [(lost, 0), (doomed, 5)] {
        sqlx::query(
            "insert into order_requests (id, user_id, event_id, idempotency_key, body_hash, items, attempts, created_at)
             values ($1, $2, $3, $4, 'h', $5, $6, now() - interval '2 minutes')",
        )
        .bind(id)
        .bind(user)
        .bind(event)
        .bind(id.to_string())
        .bind(&items)
        .bind(attempts)
        .execute(&app.db)
        .await
        .unwrap();
    }
    let n =
        checkout_worker::stream::requeue_orphans(&app.db, &redis, &keys, checkout_worker::stream::ORPHAN_AGE)
            .await
            .unwrap();
    assert_eq!(n, 2);
    let _stop = worker(&app, settings()).drop_guard();
    assert_eq!(decided(&app, &token, &lost.to_string()).await["status"], "confirmed");
    let gave_up = decided(&app, &token, &doomed.to_string()).await;
    assert_eq!(
        (gave_up["status"].as_str(), gave_up["reason"].as_str()),
        (Some("rejected"), Some("internal_error"))
    );
    let letters: Vec<String> = redis.next().lrange(keys.orders_dead_letters(), 0, -1).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert!(letters[0].contains(&doomed.to_string()));
}

#[tokio::test]
async fn a_full_order_backlog_turns_new_submissions_away_and_stops_admission() {
    use fred::interfaces::StreamsInterface;
    let app = e2e::spawn_app_with(e2e::Options {
        configure: |c| c.process.order_backlog_limit = 5,
        ..Default::default()
    })
    .await;
    let admin = app.admin_token().await;
    let (event, category, _) = app.published_event(&admin, 100, 10).await;
    let keys = keyspace::Keyspace::new(app.redis_prefix.clone());
    let redis = keyspace::connect(&e2e::redis_url(), 1).await.unwrap();
    // Six requests waiting (on two partitions: the backlog counts them all) and no worker to take them.
    for i in 0..6 {
        let _: String = redis
            .next()
            .xadd(keys.orders_stream(i % 2), false, None, "*", vec![("request", format!("{i}"))])
            .await
            .unwrap();
    }
    let (_, token) = app.quick_buyer().await;
    let body = json!({ "event_id": event, "items": [{ "ticket_category_id": category, "quantity": 1 }] });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let refused = loop {
        let (_, vt, at) = admitted(&app, event);
        let resp = app
            .post("/api/orders")
            .bearer_auth(&token)
            .header("idempotency-key", Uuid::new_v4().to_string())
            .header("visitor-token", vt)
            .header("admission-token", at)
            .json(&body)
            .send()
            .await
            .unwrap();
        if resp.status() == 503 {
            break resp;
        }
        assert!(tokio::time::Instant::now() < deadline, "never refused");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.unwrap();
    assert_error(&body, "unavailable");

    // The admission controller stops admitting while the backlog is at its limit.
    let c = waiting_room::controller::Controller::new(app.db.clone(), app.state.queue.clone())
        .with_backlog_limit(5);
    let t0 = Utc::now();
    c.tick(t0).await.unwrap();
    app.state.queue.join(event, Uuid::new_v4(), t0.timestamp_millis()).await.unwrap();
    let ticked = c.tick(t0 + chrono::Duration::seconds(1)).await.unwrap();
    assert!(ticked.iter().all(|p| p.admitted.is_empty()));
}

#[tokio::test]
async fn a_new_request_refused_by_the_per_buyer_limit_is_recorded_with_a_definitive_answer() {
    // A double click may have been told 202 for the refused request: it must not vanish.
    let (app, event, token, body) = one_order_a_minute().await;
    for i in 0..3 {
        let (_, vt, at) = admitted(&app, event);
        assert_eq!(submit(&app, &token, &format!("k-{i}"), &vt, &at, &body).await.0, 202);
    }
    let (_, vt, at) = admitted(&app, event);
    assert_eq!(submit(&app, &token, "k-3", &vt, &at, &body).await.0, 429);
    let recorded: (String, Option<String>) =
        sqlx::query_as("select status, reason from order_requests where idempotency_key = 'k-3'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(recorded, ("rejected".to_owned(), Some("rate_limited".to_owned())));
    // The same key later answers from that record, and no order was made for it.
    let (_, vt, at) = admitted(&app, event);
    let (status, answer) = submit(&app, &token, "k-3", &vt, &at, &body).await;
    assert_eq!(status, 202);
    assert_eq!(answer["status"], "rejected");
    assert_eq!(answer["reason"], "rate_limited");
    assert_eq!(count(&app, "select count(*) from orders").await, 0);
}
