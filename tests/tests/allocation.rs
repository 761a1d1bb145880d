//! Batched allocation against real PostgreSQL: many buyers on a hot category, carts all or nothing,
//! redelivery, per-buyer limits under parallel workers, and every bad cart rejected without a trace.

use std::sync::Arc;

use checkout_worker::allocation::{Decision, Outcome, allocate};
use chrono::{Duration, Utc};
use e2e::{TestApp, spawn_with_admin};
use pipeline::orders::{CartLine, CheckoutRequest};
use tokio::sync::Barrier;
use uuid::Uuid;

/// Buyers are inserted directly: hashing 1,000 passwords would only slow the test down.
async fn buyers(app: &TestApp, n: usize) -> Vec<Uuid> {
    let ids: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
    let emails: Vec<String> = ids.iter().map(|i| format!("{}@buyers.example.id", i.simple())).collect();
    sqlx::query(
        "insert into users (id, email, password_hash, name) select id, email, 'x', 'Buyer' from unnest($1::uuid[], $2::text[]) as t(id, email)",
    )
    .bind(&ids)
    .bind(&emails)
    .execute(&app.db)
    .await
    .unwrap();
    ids
}

async fn request(app: &TestApp, user: Uuid, event: Uuid, items: Vec<CartLine>) -> CheckoutRequest {
    app.record_request(user, event, items).await
}

fn tickets(category: Uuid, quantity: i32) -> CartLine {
    CartLine { ticket_category_id: Some(category), merchandise_id: None, quantity }
}

fn merch(item: Uuid, quantity: i32) -> CartLine {
    CartLine { ticket_category_id: None, merchandise_id: Some(item), quantity }
}

fn reason(d: &Decision) -> &'static str {
    match &d.outcome {
        Outcome::Rejected { reason } => reason.as_str(),
        Outcome::Confirmed { .. } => "confirmed",
    }
}

async fn held(app: &TestApp, category: Uuid) -> i32 {
    app.scalar("select held from ticket_categories where id = $1", category).await
}

#[tokio::test]
async fn a_thousand_buyers_on_a_hundred_tickets_with_four_workers_hold_exactly_a_hundred() {
    let (app, admin) = spawn_with_admin().await;
    let (event, category, _) = app.published_event(&admin, 100, 10).await;
    let mut requests = Vec::new();
    for user in buyers(&app, 1000).await {
        requests.push(request(&app, user, event, vec![tickets(category, 1)]).await);
    }
    // Four workers, each draining its own share in batches of 50, all at once.
    let barrier = Arc::new(Barrier::new(4));
    let mut workers = Vec::new();
    for share in requests.chunks(250).map(<[CheckoutRequest]>::to_vec) {
        let (db, barrier) = (app.db.clone(), barrier.clone());
        workers.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut out = Vec::new();
            for batch in share.chunks(50) {
                out.extend(allocate(&db, batch, Utc::now(), Duration::minutes(15)).await.unwrap());
            }
            out
        }));
    }
    let mut decisions = Vec::new();
    for w in workers {
        decisions.extend(w.await.unwrap());
    }
    assert_eq!(decisions.len(), 1000, "every buyer gets a definitive answer");
    assert_eq!(decisions.iter().filter(|d| reason(d) == "confirmed").count(), 100);
    assert_eq!(decisions.iter().filter(|d| reason(d) == "sold_out").count(), 900);
    assert_eq!(held(&app, category).await, 100);
    let (orders, units): (i64, i64) = sqlx::query_as(
        "select count(distinct o.id), coalesce(sum(i.quantity), 0) from orders o join order_items i on i.order_id = o.id",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!((orders, units), (100, 100));
    let confirmed: i64 = sqlx::query_scalar("select count(*) from order_requests where status = 'confirmed'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(confirmed, 100);
}

#[tokio::test]
async fn a_cart_with_one_unavailable_item_is_rejected_whole_and_holds_nothing() {
    let (app, admin) = spawn_with_admin().await;
    let (event, category, shirt) = app.published_event(&admin, 100, 1).await;
    let users = buyers(&app, 2).await;
    let first = request(&app, users[0], event, vec![merch(shirt, 1)]).await;
    let mixed = request(&app, users[1], event, vec![tickets(category, 2), merch(shirt, 1)]).await;
    let d = allocate(&app.db, &[first, mixed], Utc::now(), Duration::minutes(15)).await.unwrap();
    assert_eq!(reason(&d[0]), "confirmed");
    assert_eq!(reason(&d[1]), "sold_out");
    assert_eq!(held(&app, category).await, 0, "the tickets of the rejected cart are not held");
    let merch_held: i32 = app.scalar("select held from merchandise where id = $1", shirt).await;
    assert_eq!(merch_held, 1);
}

#[tokio::test]
async fn a_redelivered_batch_gives_the_same_decisions_and_no_second_order() {
    let (app, admin) = spawn_with_admin().await;
    let (event, category, _) = app.published_event(&admin, 3, 1).await;
    let users = buyers(&app, 4).await;
    let mut batch = Vec::new();
    for u in &users {
        batch.push(request(&app, *u, event, vec![tickets(category, 1)]).await);
    }
    // The same request twice in one batch, as a redelivery can produce.
    batch.push(batch[0].clone());
    let first = allocate(&app.db, &batch, Utc::now(), Duration::minutes(15)).await.unwrap();
    assert_eq!(first.len(), 4);
    let again = allocate(&app.db, &batch, Utc::now(), Duration::minutes(15)).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(held(&app, category).await, 3);
    let orders: i64 = sqlx::query_scalar("select count(*) from orders").fetch_one(&app.db).await.unwrap();
    assert_eq!(orders, 3);
}

#[tokio::test]
async fn parallel_requests_of_one_buyer_cannot_pass_the_per_buyer_limit() {
    let (app, admin) = spawn_with_admin().await;
    let (event, festival, _) = app.published_event(&admin, 100, 10).await;
    let (s, vip) = app
        .by(&admin)
        .post(
            &format!("/api/admin/events/{event}/ticket-categories"),
            serde_json::json!({ "name": "VIP", "price": 500000, "quota": 100, "max_per_order": 4 }),
        )
        .await;
    assert_eq!(s, 201);
    let vip: Uuid = vip["id"].as_str().unwrap().parse().unwrap();
    let buyer = buyers(&app, 1).await[0];
    // Six tickets per buyer for the event (the default); ten requests of two, on two categories, in ten
    // single-request batches running at once (as ten workers would).
    let mut requests = Vec::new();
    for i in 0..10 {
        let category = if i % 2 == 0 { festival } else { vip };
        requests.push(request(&app, buyer, event, vec![tickets(category, 2)]).await);
    }
    let barrier = Arc::new(Barrier::new(10));
    let mut tasks = Vec::new();
    for r in requests {
        let (db, barrier) = (app.db.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            allocate(&db, &[r], Utc::now(), Duration::minutes(15)).await.unwrap()
        }));
    }
    let mut confirmed = 0;
    for t in tasks {
        let d = t.await.unwrap();
        match reason(&d[0]) {
            "confirmed" => confirmed += 1,
            other => assert_eq!(other, "per_buyer_limit"),
        }
    }
    assert_eq!(confirmed, 3, "3 orders of 2 = the limit of 6");
    assert_eq!(held(&app, festival).await + held(&app, vip).await, 6);
}

#[tokio::test]
async fn a_partly_refunded_order_still_counts_towards_the_per_buyer_limit() {
    let (app, admin) = spawn_with_admin().await;
    let (event, category, _) = app.published_event(&admin, 100, 10).await;
    let buyer = buyers(&app, 1).await[0];
    // Four tickets paid, then part of the money returned (a T-shirt, say): the tickets still check in.
    let kept = app.pending_order(buyer, event, vec![tickets(category, 4)]).await;
    sqlx::query("update orders set status = 'partially_refunded', refunded_amount = 1 where id = $1")
        .bind(kept)
        .execute(&app.db)
        .await
        .unwrap();
    // Six per buyer: four more would make eight.
    let r = request(&app, buyer, event, vec![tickets(category, 4)]).await;
    let d = allocate(&app.db, &[r], Utc::now(), Duration::minutes(15)).await.unwrap();
    assert_eq!(reason(&d[0]), "per_buyer_limit");
    let r = request(&app, buyer, event, vec![tickets(category, 2)]).await;
    let d = allocate(&app.db, &[r], Utc::now(), Duration::minutes(15)).await.unwrap();
    assert_eq!(reason(&d[0]), "confirmed", "two more make exactly six");
}

#[tokio::test]
async fn bad_carts_are_rejected_with_a_reason_and_write_nothing() {
    let (app, admin) = spawn_with_admin().await;
    let (event, category, shirt) = app.published_event(&admin, 10, 10).await;
    let (other_event, other_category, _) = app.published_event(&admin, 10, 10).await;
    let users = buyers(&app, 6).await;
    let cases = vec![
        (vec![tickets(category, 5)], "per_order_limit"),
        (vec![tickets(category, 3), tickets(category, 2)], "per_order_limit"),
        (vec![tickets(Uuid::new_v4(), 1)], "unknown_item"),
        (vec![tickets(other_category, 1)], "unknown_item"),
        (vec![], "unknown_item"),
        (
            vec![CartLine { ticket_category_id: Some(category), merchandise_id: Some(shirt), quantity: 1 }],
            "unknown_item",
        ),
    ];
    let mut batch = Vec::new();
    for ((items, _), user) in cases.iter().zip(&users) {
        batch.push(request(&app, *user, event, items.clone()).await);
    }
    let decisions = allocate(&app.db, &batch, Utc::now(), Duration::minutes(15)).await.unwrap();
    for (d, (_, expected)) in decisions.iter().zip(&cases) {
        assert_eq!(reason(d), *expected);
    }
    assert_eq!(held(&app, category).await, 0);
    assert_eq!(held(&app, other_category).await, 0);
    let orders: i64 = sqlx::query_scalar("select count(*) from orders").fetch_one(&app.db).await.unwrap();
    assert_eq!(orders, 0);
    // A sale that has not opened yet.
    sqlx::query("update events set sale_opens_at = now() + interval '1 day' where id = $1")
        .bind(other_event)
        .execute(&app.db)
        .await
        .unwrap();
    let early = request(&app, users[0], other_event, vec![tickets(other_category, 1)]).await;
    let d = allocate(&app.db, &[early], Utc::now(), Duration::minutes(15)).await.unwrap();
    assert_eq!(reason(&d[0]), "not_on_sale");
}

#[tokio::test]
async fn stock_returned_by_expiry_is_sold_again() {
    let (app, admin) = spawn_with_admin().await;
    let (event, category, _) = app.published_event(&admin, 2, 1).await;
    let users = buyers(&app, 2).await;
    let first = request(&app, users[0], event, vec![tickets(category, 2)]).await;
    let d = allocate(&app.db, &[first], Utc::now(), Duration::minutes(15)).await.unwrap();
    assert_eq!(reason(&d[0]), "confirmed");
    let late = request(&app, users[1], event, vec![tickets(category, 1)]).await;
    assert_eq!(
        reason(&allocate(&app.db, &[late], Utc::now(), Duration::minutes(15)).await.unwrap()[0]),
        "sold_out"
    );
    // The first buyer never pays: 16 minutes later the sweeper gives the tickets back.
    let swept =
        checkout_worker::expiry::sweep_once(&app.db, Utc::now() + Duration::minutes(16), 100).await.unwrap();
    assert_eq!(swept.orders.len(), 1);
    let again = request(&app, users[1], event, vec![tickets(category, 1)]).await;
    assert_eq!(
        reason(&allocate(&app.db, &[again], Utc::now(), Duration::minutes(15)).await.unwrap()[0]),
        "confirmed"
    );
    assert_eq!(held(&app, category).await, 1);
}
