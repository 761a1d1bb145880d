//! Hold expiry: unpaid orders past their hold become `expired` and their stock comes back exactly once,
//! also with several sweepers at work and with the clock moved forward.

use std::{collections::HashSet, sync::Arc};

use checkout_worker::expiry::sweep_once;
use chrono::{Duration, Utc};
use e2e::{TestApp, spawn_with_admin};
use tokio::sync::Barrier;
use uuid::Uuid;

/// Inserts an order holding `tickets` units of `category` and `merch_units` of `merch`, and bumps `held`
/// to match, as the allocator does.
async fn hold(
    app: &TestApp,
    buyer: Uuid,
    event: Uuid,
    (category, tickets): (Uuid, i32),
    (merch, merch_units): (Uuid, i32),
    expires_in: Duration,
    status: &str,
) -> Uuid {
    let id = Uuid::now_v7();
    let mut tx = app.db.begin().await.unwrap();
    sqlx::query("insert into orders (id, user_id, event_id, idempotency_key, status, total, expires_at) values ($1, $2, $3, $4, $5, 0, $6)")
        .bind(id).bind(buyer).bind(event).bind(id.to_string()).bind(status).bind(Utc::now() + expires_in)
        .execute(&mut *tx).await.unwrap();
    if tickets > 0 {
        sqlx::query("insert into order_items (id, order_id, ticket_category_id, name, quantity, unit_price) values ($1, $2, $3, 'Festival', $4, 1)")
            .bind(Uuid::now_v7()).bind(id).bind(category).bind(tickets).execute(&mut *tx).await.unwrap();
        let column = if status == "paid" { "sold" } else { "held" };
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "update ticket_categories set {column} = {column} + $2 where id = $1"
        )))
        .bind(category)
        .bind(tickets)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    if merch_units > 0 {
        sqlx::query("insert into order_items (id, order_id, merchandise_id, name, quantity, unit_price) values ($1, $2, $3, 'Kaos', $4, 1)")
            .bind(Uuid::now_v7()).bind(id).bind(merch).bind(merch_units).execute(&mut *tx).await.unwrap();
        sqlx::query("update merchandise set held = held + $2 where id = $1")
            .bind(merch)
            .bind(merch_units)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    id
}

async fn counts(app: &TestApp, category: Uuid, merch: Uuid) -> (i32, i32, i32) {
    let (sold, held): (i32, i32) = sqlx::query_as("select sold, held from ticket_categories where id = $1")
        .bind(category)
        .fetch_one(&app.db)
        .await
        .unwrap();
    let m: i32 = app.scalar("select held from merchandise where id = $1", merch).await;
    (sold, held, m)
}

async fn status(app: &TestApp, order: Uuid) -> String {
    app.scalar("select status from orders where id = $1", order).await
}

#[tokio::test]
async fn expired_holds_return_their_stock_once_and_nothing_else_moves() {
    let (app, admin) = spawn_with_admin().await;
    let (event, category, merch) = app.published_event(&admin, 10, 5).await;
    let (_, buyer) = app.register("expiry@kampus.ac.id").await;
    let past = Duration::minutes(-1);
    let a = hold(&app, buyer, event, (category, 2), (merch, 1), past, "pending_payment").await;
    let b =
        hold(&app, buyer, event, (category, 3), (merch, 0), Duration::minutes(10), "pending_payment").await;
    let c = hold(&app, buyer, event, (category, 1), (merch, 0), past, "pending_payment").await;
    let d = hold(&app, buyer, event, (category, 2), (merch, 0), past, "paid").await;
    assert_eq!(counts(&app, category, merch).await, (2, 6, 1));

    let swept = sweep_once(&app.db, Utc::now(), 100).await.unwrap();
    assert_eq!(swept.orders.iter().copied().collect::<HashSet<_>>(), HashSet::from([a, c]));
    assert_eq!(swept.events, vec![event]);
    assert_eq!(counts(&app, category, merch).await, (2, 3, 0));
    assert_eq!(status(&app, a).await, "expired");
    assert_eq!(status(&app, b).await, "pending_payment");
    assert_eq!(status(&app, d).await, "paid");

    // A second sweep finds nothing: stock is returned exactly once.
    assert!(sweep_once(&app.db, Utc::now(), 100).await.unwrap().orders.is_empty());
    assert_eq!(counts(&app, category, merch).await, (2, 3, 0));

    // Move the clock past B's hold.
    let later = Utc::now() + Duration::minutes(11);
    assert_eq!(sweep_once(&app.db, later, 100).await.unwrap().orders, vec![b]);
    assert_eq!(counts(&app, category, merch).await, (2, 0, 0));
}

#[tokio::test]
async fn four_concurrent_sweepers_expire_each_order_exactly_once() {
    let (app, admin) = spawn_with_admin().await;
    let (event, category, merch) = app.published_event(&admin, 300, 300).await;
    let (_, buyer) = app.register("sweepers@kampus.ac.id").await;
    for i in 0..200 {
        let merch_units = i32::from(i % 2 == 0);
        hold(
            &app,
            buyer,
            event,
            (category, 1),
            (merch, merch_units),
            Duration::seconds(-5),
            "pending_payment",
        )
        .await;
    }
    assert_eq!(counts(&app, category, merch).await, (0, 200, 100));

    let barrier = Arc::new(Barrier::new(4));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (db, barrier) = (app.db.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut mine = Vec::new();
            loop {
                let swept = sweep_once(&db, Utc::now(), 15).await.unwrap();
                if swept.orders.is_empty() {
                    break;
                }
                mine.extend(swept.orders);
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), 200, "every order expired by exactly one sweeper");
    assert_eq!(unique.len(), 200);
    assert_eq!(counts(&app, category, merch).await, (0, 0, 0));
    let expired: i64 = sqlx::query_scalar("select count(*) from orders where status = 'expired'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(expired, 200);
}
