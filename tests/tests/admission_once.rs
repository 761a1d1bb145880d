//! One admission buys at most one order, ever: whatever fails around the submission (a dropped
//! connection, a Redis outage or restart, a stream append that never happened), whichever accounts and
//! keys replay it, and however many replay it at once. And a request once recorded is never withdrawn: a
//! 202 given for it (to a double click racing the failing call) always leads to a definitive answer.

use std::time::Duration;

use e2e::{
    TestApp, assert_error,
    checkout::{admitted, count, decided, settings, submit, worker, worker_on},
    private_redis::PrivateRedis,
    spawn_app,
};
use fred::interfaces::{ClientLike, KeysInterface};
use serde_json::{Value, json};
use uuid::Uuid;

async fn on_sale(app: &TestApp) -> (Uuid, Value) {
    let admin = app.admin_token().await;
    let (event, category, _) = app.published_event(&admin, 100, 10).await;
    (event, json!({ "event_id": event, "items": [{ "ticket_category_id": category, "quantity": 1 }] }))
}

/// Makes the workers' orphan pass see every queued request as old, then runs it.
async fn requeue_now(app: &TestApp, redis_url: &str) {
    sqlx::query(
        "update order_requests set created_at = now() - interval '5 minutes' where status = 'queued'",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let redis = keyspace::connect(redis_url, 1).await.unwrap();
    let keys = keyspace::Keyspace::new(app.redis_prefix.clone());
    checkout_worker::stream::requeue_orphans(&app.db, &redis, &keys, checkout_worker::stream::ORPHAN_AGE)
        .await
        .unwrap();
}

async fn wait_all_decided(app: &TestApp) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while count(app, "select count(*) from order_requests where status = 'queued'").await > 0 {
        assert!(tokio::time::Instant::now() < deadline, "requests left undecided");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_admission_stays_spent_when_redis_forgets_everything() {
    let app = spawn_app().await;
    let (event, body) = on_sale(&app).await;
    let (_, vt, at) = admitted(&app, event);
    let (_, first) = app.quick_buyer().await;
    assert_eq!(submit(&app, &first, "k-first", &vt, &at, &body).await.0, 202);

    // Redis loses every key of this system (a restart without persistence, or a request cut off before
    // anything reached Redis): nothing there remembers the admission any more.
    let redis = keyspace::connect(&e2e::redis_url(), 1).await.unwrap();
    let keys: Vec<String> = {
        use fred::types::scan::Scanner;
        use futures::TryStreamExt;
        let mut found = Vec::new();
        let mut scan = redis.next().scan(format!("{}*", app.redis_prefix), Some(1000), None);
        while let Some(mut page) = scan.try_next().await.unwrap() {
            found.extend(page.take_results().unwrap_or_default().into_iter().filter_map(|k| k.into_string()));
        }
        found
    };
    let _: () = redis.next().del(keys).await.unwrap();

    // The same admission from other accounts, with new keys, all at once: refused, every one.
    let mut others = Vec::new();
    for _ in 0..10 {
        others.push(app.quick_buyer().await.1);
    }
    let keys: Vec<String> = (0..others.len()).map(|i| format!("k-other-{i}")).collect();
    let answers = futures::future::join_all(
        others.iter().zip(&keys).map(|(t, key)| submit(&app, t, key, &vt, &at, &body)),
    )
    .await;
    for (s, b) in &answers {
        assert_eq!(*s, 409, "{b}");
        assert_error(b, "admission_used");
    }
    let _stop = worker(&app, settings()).drop_guard();
    requeue_now(&app, &e2e::redis_url()).await;
    wait_all_decided(&app).await;
    assert_eq!(count(&app, "select count(*) from orders").await, 1, "one admission, one order");
    let _ = redis.quit().await;
}

#[tokio::test]
async fn twenty_accounts_racing_one_admission_make_one_request() {
    let app = spawn_app().await;
    let (event, body) = on_sale(&app).await;
    let (_, vt, at) = admitted(&app, event);
    let mut buyers = Vec::new();
    for _ in 0..20 {
        buyers.push(app.quick_buyer().await.1);
    }
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(buyers.len()));
    let answers = futures::future::join_all(buyers.iter().enumerate().map(|(i, t)| {
        let (barrier, vt, at, body) = (barrier.clone(), vt.clone(), at.clone(), body.clone());
        let app = &app;
        async move {
            barrier.wait().await;
            submit(app, t, &format!("race-{i}"), &vt, &at, &body).await
        }
    }))
    .await;
    let accepted = answers.iter().filter(|(s, _)| *s == 202).count();
    let refused = answers.iter().filter(|(s, b)| *s == 409 && b["error"]["code"] == "admission_used").count();
    assert_eq!((accepted, refused), (1, 19), "{answers:?}");
    assert_eq!(count(&app, "select count(*) from order_requests").await, 1);
}

#[tokio::test]
async fn a_submission_cut_off_right_after_it_was_recorded_buys_at_most_once_from_its_admission() {
    // The cut lands between recording the request and anything after it: the insert is held back by a
    // table lock until Redis has stopped taking writes, so the request is recorded and then stuck on
    // Redis until the gateway's own deadline drops it.
    let redis = PrivateRedis::start().await;
    let app = e2e::spawn_app_with(e2e::Options {
        redis_url: Some(redis.url()),
        configure: |c| c.request_timeout_ms = 1_500,
        ..Default::default()
    })
    .await;
    let (event, body) = on_sale(&app).await;
    let (_, vt, at) = admitted(&app, event);
    let (_, first) = app.quick_buyer().await;
    let (_, second) = app.quick_buyer().await;

    let mut lock = app.db.begin().await.unwrap();
    sqlx::query("lock table order_requests in exclusive mode").execute(&mut *lock).await.unwrap();
    let cut = tokio::spawn({
        let request = app
            .post("/api/orders")
            .bearer_auth(&first)
            .header("idempotency-key", "cut-off")
            .header("visitor-token", &vt)
            .header("admission-token", &at)
            .json(&body);
        async move { request.send().await.map(|r| r.status().as_u16()) }
    });
    // Wait until the intake is blocked on the insert (it has passed every Redis step before it).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "select count(*) from pg_stat_activity where wait_event_type = 'Lock' and query like 'insert into order_requests%'",
        )
        .fetch_one(&app.db)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the intake never reached its insert");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pauser = keyspace::connect(&redis.url(), 1).await.unwrap();
    let _: fred::types::Value =
        pauser.next().custom(fred::cmd!("CLIENT"), vec!["PAUSE", "3000", "WRITE"]).await.unwrap();
    lock.commit().await.unwrap();
    let answer = cut.await.unwrap();
    assert_ne!(answer.ok(), Some(202), "the request was cut off before its answer");
    let recorded = count(&app, "select count(*) from order_requests where idempotency_key = 'cut-off'").await;
    assert_eq!(recorded, 1, "the request was recorded before the cut");
    // Redis takes writes again.
    let _: fred::types::Value = pauser.next().custom(fred::cmd!("CLIENT"), vec!["UNPAUSE"]).await.unwrap();

    // Another account replays the admission under new keys: refused. The recorded request is queued by
    // the workers' orphan pass and decided; one order in all.
    for key in ["replay-1", "replay-2"] {
        let (s, b) = submit(&app, &second, key, &vt, &at, &body).await;
        assert_eq!(s, 409, "{b}");
        assert_error(&b, "admission_used");
    }
    let _stop = worker_on(&app, redis.url(), settings()).drop_guard();
    requeue_now(&app, &redis.url()).await;
    wait_all_decided(&app).await;
    assert_eq!(count(&app, "select count(*) from orders").await, 1, "one admission, one order");
    let _ = pauser.quit().await;
}

#[tokio::test]
async fn a_request_recorded_before_redis_failed_stays_answerable_and_is_decided() {
    let mut redis = PrivateRedis::start().await;
    let app = e2e::spawn_app_with(e2e::Options { redis_url: Some(redis.url()), ..Default::default() }).await;
    let (event, body) = on_sale(&app).await;
    let (_, vt, at) = admitted(&app, event);
    let (_, token) = app.quick_buyer().await;

    // Redis goes away: the request is recorded, its append fails, the buyer is asked to retry.
    redis.kill();
    let (status, answer) = submit(&app, &token, "through-the-outage", &vt, &at, &body).await;
    assert_eq!(status, 503, "{answer}");
    let recorded: Option<Uuid> =
        sqlx::query_scalar("select id from order_requests where idempotency_key = 'through-the-outage'")
            .fetch_optional(&app.db)
            .await
            .unwrap();
    let recorded = recorded.expect("the request stays recorded (a racing double click may hold its id)");

    // Redis is back (empty). The retry names the same request, and the request gets a definitive answer.
    redis.restart().await;
    let (status, retry) = submit(&app, &token, "through-the-outage", &vt, &at, &body).await;
    assert_eq!(status, 202, "{retry}");
    assert_eq!(retry["request_id"], recorded.to_string());
    let _stop = worker_on(&app, redis.url(), settings()).drop_guard();
    requeue_now(&app, &redis.url()).await;
    assert_eq!(decided(&app, &token, &recorded.to_string()).await["status"], "confirmed");
    assert_eq!(count(&app, "select count(*) from orders").await, 1);
}
