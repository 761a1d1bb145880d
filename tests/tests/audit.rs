//! The consistency audit (`checkout-worker audit`): clean on a sale the system ran itself, and each kind
//! of damage, made by hand in PostgreSQL or Redis, named by the check that promises against it. The
//! binary's exit status and report are checked too, as an operator sees them.

use std::{process::Command, time::Duration};

use checkout_worker::audit::{self, Report, Tolerances};
use e2e::{PayApp, TestApp, fast_processor, payments::*, spawn_app_with_midtrans};
use fred::interfaces::{HashesInterface, StreamsInterface};
use uuid::Uuid;

/// Tolerances short enough for a test: no waiting on holds, counters or silent consumers.
const QUICK: Tolerances = Tolerances {
    hold_grace: chrono::Duration::zero(),
    stock_recheck: Duration::from_millis(100),
    stale_pending: Duration::from_secs(1),
};

async fn audit(app: &TestApp) -> Report {
    let keys = keyspace::Keyspace::new(app.redis_prefix.clone());
    audit::run(&app.db, &app.state.redis, &keys, &QUICK).await.expect("the audit runs")
}

async fn exec(app: &TestApp, sql: &'static str, id: Uuid) {
    sqlx::query(sql).bind(id).execute(&app.db).await.unwrap();
}

/// A paid order with its tickets, an order awaiting payment, and the live stock counters as the
/// controller writes them.
async fn a_running_sale(app: &TestApp, midtrans: &fake_midtrans::FakeMidtrans) -> (Setup, Uuid) {
    let (paid, _) = paid_order(app, midtrans).await;
    let (buyer, _) = app.quick_buyer().await;
    let pending = app.pending_order(buyer, paid.event, vec![tickets(paid.category, 1)]).await;
    let left: i64 = app
        .scalar("select (quota - sold - held)::bigint from ticket_categories where id = $1", paid.category)
        .await;
    let keys = keyspace::Keyspace::new(app.redis_prefix.clone());
    let _: i64 = app
        .state
        .redis
        .next()
        .hset(keys.event_stock(paid.event), (paid.category.to_string(), left))
        .await
        .unwrap();
    (paid, pending)
}

#[tokio::test]
async fn a_sale_the_system_ran_audits_clean_and_every_damage_is_named_by_its_check() {
    let PayApp { app, midtrans, .. } = spawn_app_with_midtrans().await;
    let stop = app.webhook_processor(fast_processor()).await;
    let (paid, pending) = a_running_sale(&app, &midtrans).await;
    drained(&app).await;
    let report = audit(&app).await;
    assert!(report.is_consistent(), "{report}");
    for check in ["product_counts", "tickets", "requests", "holds"] {
        let examined = report.examined.iter().find(|(c, _)| *c == check).map(|(_, n)| *n);
        assert!(examined.is_some_and(|n| n > 0), "{check} looked at nothing: {report}");
    }

    // Each damage alone is found by its own check (and only by it), then undone.
    let damages: [(&str, &'static str, Uuid, &'static str); 4] = [
        (
            "product_counts",
            "update ticket_categories set held = held - 1 where id = $1",
            paid.category,
            "update ticket_categories set held = held + 1 where id = $1",
        ),
        (
            "tickets",
            "update tickets set status = 'void' where id = (select id from tickets where order_id = $1 limit 1)",
            paid.order,
            "update tickets set status = 'valid' where order_id = $1",
        ),
        (
            "requests",
            "update order_requests set reason = 'sold_out' where order_id = $1",
            paid.order,
            "update order_requests set reason = null where order_id = $1",
        ),
        (
            "holds",
            "update orders set expires_at = now() - interval '1 hour' where id = $1",
            pending,
            "update orders set expires_at = now() + interval '15 minutes' where id = $1",
        ),
    ];
    for (check, damage, id, repair) in damages {
        exec(&app, damage, id).await;
        let report = audit(&app).await;
        let checks: Vec<&str> = report.findings.iter().map(|f| f.check).collect();
        assert_eq!(checks, [check], "{report}");
        assert!(report.to_string().contains("INCONSISTENT: 1 finding"), "{report}");
        exec(&app, repair, id).await;
        assert!(audit(&app).await.is_consistent(), "after repairing {check}");
    }
    stop.cancel();
}

#[tokio::test]
async fn redis_counters_that_promise_too_much_and_entries_nobody_reclaims_are_found() {
    let PayApp { app, midtrans, .. } = spawn_app_with_midtrans().await;
    let stop = app.webhook_processor(fast_processor()).await;
    let (paid, _) = a_running_sale(&app, &midtrans).await;
    drained(&app).await;
    stop.cancel();
    let keys = keyspace::Keyspace::new(app.redis_prefix.clone());
    let redis = app.state.redis.next();

    // A counter above what PostgreSQL has left (after the recheck: a controller would have rewritten it).
    let _: i64 = redis.hset(keys.event_stock(paid.event), (paid.category.to_string(), 1_000)).await.unwrap();
    let report = audit(&app).await;
    let found = report.of("stock_counters");
    assert_eq!(found.len(), 1, "{report}");
    assert!(found[0].detail.contains("Redis counts 1000 left"), "{report}");
    // Lower than PostgreSQL is allowed (the worker decides; the next tick corrects it).
    let _: i64 = redis.hset(keys.event_stock(paid.event), (paid.category.to_string(), 0)).await.unwrap();
    assert!(audit(&app).await.is_consistent());

    // An order entry delivered to a consumer that then died, and not reclaimed by anyone.
    let stream = keys.orders_stream(3);
    let _: String = redis.xadd(&stream, false, None, "*", vec![("request", "{}")]).await.unwrap();
    let _: fred::types::Value =
        redis.xgroup_create(&stream, pipeline::orders::GROUP, "0", true).await.unwrap();
    let _: fred::types::Value = redis
        .xreadgroup(pipeline::orders::GROUP, "worker-that-died", Some(10), None, false, &stream, ">")
        .await
        .unwrap();
    assert!(audit(&app).await.is_consistent(), "just delivered: not stuck yet");
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let report = audit(&app).await;
    let found = report.of("streams");
    assert_eq!(found.len(), 1, "{report}");
    assert!(found[0].detail.contains("worker-that-died"), "{report}");
    // Reclaimed by a live worker (as workers do after 30 s), it is no longer stuck.
    let _: fred::types::Value = redis
        .xautoclaim(&stream, pipeline::orders::GROUP, "live-worker", 0, "0", Some(10), false)
        .await
        .unwrap();
    let report = audit(&app).await;
    assert!(report.is_consistent(), "{report}");
}

#[tokio::test]
async fn the_audit_command_prints_its_report_and_exits_non_zero_when_something_disagrees() {
    let PayApp { app, midtrans, .. } = spawn_app_with_midtrans().await;
    let stop = app.webhook_processor(fast_processor()).await;
    let (paid, _) = a_running_sale(&app, &midtrans).await;
    drained(&app).await;
    stop.cancel();
    e2e::topology::ensure_binaries();
    let run = || {
        Command::new(e2e::topology::bin_dir().join("checkout-worker"))
            .arg("audit")
            .env("DATABASE_URL", format!("{}/{}", e2e::pg_base_url(), app.db_name))
            .env("REDIS_URL", e2e::redis_url())
            .env("REDIS_KEY_PREFIX", &app.redis_prefix)
            .env("APP_ENV", "development")
            .output()
            .expect("checkout-worker audit")
    };
    let clean = run();
    let text = String::from_utf8_lossy(&clean.stdout);
    assert_eq!(clean.status.code(), Some(0), "{text}{}", String::from_utf8_lossy(&clean.stderr));
    assert!(text.contains("consistent: every check passed"), "{text}");
    assert_eq!(text.lines().filter(|l| l.starts_with("ok ")).count(), audit::CHECKS.len(), "{text}");

    exec(&app, "update ticket_categories set sold = sold + 1 where id = $1", paid.category).await;
    let damaged = run();
    let text = String::from_utf8_lossy(&damaged.stdout);
    assert_eq!(damaged.status.code(), Some(1), "{text}");
    assert!(text.contains("FAILED product_counts"), "{text}");
    assert!(text.contains(&paid.category.to_string()), "{text}");
}
