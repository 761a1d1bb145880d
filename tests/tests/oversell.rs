//! The last line of defence: PostgreSQL itself refuses any write that would oversell, whatever the code
//! above it does, also under many concurrent writers.

use std::sync::Arc;

use e2e::spawn_with_admin;
use tokio::sync::Barrier;
use uuid::Uuid;

fn constraint_of(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(db) => db.constraint().map(str::to_owned),
        _ => None,
    }
}

#[tokio::test]
async fn postgres_rejects_an_update_that_would_oversell_a_category_or_an_item() {
    let (app, admin) = spawn_with_admin().await;
    let (_, category, merch) = app.published_event(&admin, 10, 5).await;

    let err = sqlx::query("update ticket_categories set held = 11 where id = $1")
        .bind(category)
        .execute(&app.db)
        .await
        .unwrap_err();
    assert_eq!(constraint_of(&err).as_deref(), Some("ticket_categories_no_oversell"));
    let err = sqlx::query("update ticket_categories set sold = 6, held = 5 where id = $1")
        .bind(category)
        .execute(&app.db)
        .await
        .unwrap_err();
    assert_eq!(constraint_of(&err).as_deref(), Some("ticket_categories_no_oversell"));
    let err = sqlx::query("update ticket_categories set quota = 3, sold = 4 where id = $1")
        .bind(category)
        .execute(&app.db)
        .await
        .unwrap_err();
    assert_eq!(constraint_of(&err).as_deref(), Some("ticket_categories_no_oversell"));
    let err = sqlx::query("update merchandise set sold = 3, held = 3 where id = $1")
        .bind(merch)
        .execute(&app.db)
        .await
        .unwrap_err();
    assert_eq!(constraint_of(&err).as_deref(), Some("merchandise_no_oversell"));
    let err = sqlx::query("update merchandise set held = -1 where id = $1")
        .bind(merch)
        .execute(&app.db)
        .await
        .unwrap_err();
    assert_eq!(constraint_of(&err).as_deref(), Some("merchandise_counts_check"));
    let err = sqlx::query("update merchandise set stock = -1 where id = $1")
        .bind(merch)
        .execute(&app.db)
        .await
        .unwrap_err();
    assert!(constraint_of(&err).is_some());

    // Nothing changed.
    let (sold, held): (i32, i32) = sqlx::query_as("select sold, held from ticket_categories where id = $1")
        .bind(category)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!((sold, held), (0, 0));
}

#[tokio::test]
async fn many_concurrent_naive_writers_still_cannot_oversell() {
    // 100 writers each hold one unit with no application check at all: the constraint alone stops at 10.
    let (app, admin) = spawn_with_admin().await;
    let (_, category, merch) = app.published_event(&admin, 10, 7).await;
    let barrier = Arc::new(Barrier::new(100));
    let mut tasks = Vec::new();
    for i in 0..100 {
        let (db, barrier) = (app.db.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let (table, id) =
                if i % 2 == 0 { ("ticket_categories", category) } else { ("merchandise", merch) };
            sqlx::query(sqlx::AssertSqlSafe(format!("update {table} set held = held + 1 where id = $1")))
                .bind(id)
                .execute(&db)
                .await
                .map(|_| ())
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(e) => assert!(constraint_of(&e).unwrap_or_default().ends_with("no_oversell"), "{e}"),
        }
    }
    assert_eq!(ok, 17);
    let held: i32 = app.scalar("select held from ticket_categories where id = $1", category).await;
    assert_eq!(held, 10);
    let held: i32 = app.scalar("select held from merchandise where id = $1", merch).await;
    assert_eq!(held, 7);
}

#[tokio::test]
async fn order_items_hold_exactly_one_product_and_a_positive_quantity() {
    let (app, admin) = spawn_with_admin().await;
    let (event, category, merch) = app.published_event(&admin, 10, 5).await;
    let (_, buyer) = app.register("schema@kampus.ac.id").await;
    let order = Uuid::now_v7();
    sqlx::query("insert into orders (id, user_id, event_id, idempotency_key, total, expires_at) values ($1, $2, $3, 'k1', 0, now())")
        .bind(order).bind(buyer).bind(event).execute(&app.db).await.unwrap();
    let insert = |cat: Option<Uuid>, m: Option<Uuid>, qty: i32| {
        sqlx::query("insert into order_items (id, order_id, ticket_category_id, merchandise_id, name, quantity, unit_price) values ($1, $2, $3, $4, 'x', $5, 1)")
            .bind(Uuid::now_v7()).bind(order).bind(cat).bind(m).bind(qty)
            .execute(&app.db)
    };
    assert_eq!(
        constraint_of(&insert(Some(category), Some(merch), 1).await.unwrap_err()).as_deref(),
        Some("order_items_exactly_one_product")
    );
    assert_eq!(
        constraint_of(&insert(None, None, 1).await.unwrap_err()).as_deref(),
        Some("order_items_exactly_one_product")
    );
    assert_eq!(
        constraint_of(&insert(Some(category), None, 0).await.unwrap_err()).as_deref(),
        Some("order_items_quantity_check")
    );
    assert_eq!(
        constraint_of(&insert(None, Some(merch), -2).await.unwrap_err()).as_deref(),
        Some("order_items_quantity_check")
    );
    insert(Some(category), None, 2).await.unwrap();
    // The same idempotency key for the same buyer cannot make a second order.
    let dup = sqlx::query("insert into orders (id, user_id, event_id, idempotency_key, total, expires_at) values ($1, $2, $3, 'k1', 0, now())")
        .bind(Uuid::now_v7()).bind(buyer).bind(event).execute(&app.db).await.unwrap_err();
    assert_eq!(constraint_of(&dup).as_deref(), Some("orders_user_idempotency_key"));
}
