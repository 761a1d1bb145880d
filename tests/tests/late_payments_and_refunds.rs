//! Money that arrives late or has to go back: late settlements honoured or refunded, the reconciler,
//! challenges, reversals, partial and full refunds, payments under review. Every settled payment ends as
//! tickets or as a refund owed.

use checkout_worker::payments::reconcile::reconcile_once;
use chrono::Utc;
use e2e::{PayApp, assert_error, fast_processor, payments::*, spawn_app_with_midtrans};
use serde_json::json;
use uuid::Uuid;

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
    let (_, order) = app.by(&b.token).get(&format!("/api/orders/{}", b.order)).await;
    assert!(order["notice"].as_str().unwrap().contains("refunded"), "{order}");
    assert_eq!(count(&app, "select count(*) from tickets where order_id = $1", b.order).await, 0);
    assert_every_settled_payment_ends_as_tickets_or_a_refund(&app).await;
    stop.cancel();
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
        app.scalar("select refund_reason from payments where midtrans_order_id = $1", mid.clone()).await;
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
async fn a_partial_refund_keeps_the_tickets_and_the_rest_voids_them_once() {
    let PayApp { app, midtrans, client } = spawn_app_with_midtrans().await;
    let stop = app.webhook_processor(fast_processor()).await;
    let (s, mid) = paid_order(&app, &midtrans).await;

    // The T-shirt is returned: 100,000 of 400,000 back, the tickets stay valid.
    client.refund(&mid, "rf-shirt", 100_000, "shirt returned").await.unwrap();
    wait_for_status(&app, s.order, "partially_refunded").await;
    let refunded: i64 = app.scalar("select refunded_amount from orders where id = $1", s.order).await;
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
async fn an_operator_accepts_a_payment_under_review_and_the_buyer_gets_tickets() {
    let PayApp { app, midtrans: _midtrans, .. } = spawn_app_with_midtrans().await;
    let (s, payment, admin) = payment_under_review(&app).await;
    let path = format!("/api/admin/payments/{payment}/review");
    // Buyers cannot resolve reviews; nonsense is refused.
    assert_eq!(app.by(&s.token).post(&path, json!({ "decision": "accept" })).await.0, 403);
    assert_eq!(app.by(&admin).post(&path, json!({ "decision": "maybe" })).await.0, 400);
    let unknown = format!("/api/admin/payments/{}/review", Uuid::new_v4());
    assert_eq!(app.by(&admin).post(&unknown, json!({ "decision": "accept" })).await.0, 404);

    let (status, body) =
        app.by(&admin).post(&path, json!({ "decision": "accept", "note": "bank confirmed" })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["outcome"].as_str(), body["order_status"].as_str()), (Some("paid"), Some("paid")));
    assert_eq!(category_counts(&app, s.category).await, (2, 0));
    assert_eq!(count(&app, "select count(*) from tickets where order_id = $1", s.order).await, 3);
    // Once: a second decision finds nothing under review.
    let body = app.expect(409, "POST", &path, Some(&admin), Some(json!({ "decision": "refund" }))).await;
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
        .by(&admin)
        .post(&format!("/api/admin/payments/{payment}/review"), json!({ "decision": "refund" }))
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
