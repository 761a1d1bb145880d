//! Webhook load generator: Midtrans settlement notifications for many orders at once.
//!
//! 1. Arranges `--orders` orders awaiting payment (one ticket each, a Snap payment each) directly in the
//!    database.
//! 2. **Intake**: posts one correctly signed settlement notification per order to the gateway's
//!    `POST /api/webhooks/midtrans` from `--concurrency` connections, and in the same run the same number of
//!    `GET /healthz` (the gateway's bare HTTP ceiling on this machine, as the baseline). The gateway must run
//!    without a webhook processor, so intake is measured alone.
//! 3. **Processing**: runs `--processors` webhook processors in this process on the queued notifications
//!    and times until every one is applied; then checks that every order is paid once, with one ticket.
//!
//! Prints progress on stderr and one JSON line on stdout.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use clap::Parser;
use e2e::load::{arrange, hammer, pct};
use serde::Serialize;
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    database_url: String,
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// The gateway's REDIS_KEY_PREFIX.
    #[arg(long)]
    redis_prefix: String,
    /// The gateway (host:port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    gateway: String,
    /// The gateway's MIDTRANS_SERVER_KEY (to sign the notifications as Midtrans would).
    #[arg(long, env = "MIDTRANS_SERVER_KEY", hide_env_values = true)]
    server_key: String,
    #[arg(long, default_value_t = 5000)]
    orders: usize,
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    #[arg(long, default_value_t = 1)]
    processors: usize,
    /// Notifications each processor applies at the same time.
    #[arg(long, default_value_t = 4)]
    processor_concurrency: usize,
}

#[derive(Serialize)]
struct Report {
    orders: usize,
    concurrency: usize,
    processors: usize,
    processor_concurrency: usize,
    intake_ok: usize,
    intake_errors: usize,
    intake_per_sec: f64,
    intake_ms_p50: f64,
    intake_ms_p99: f64,
    healthz_per_sec: f64,
    healthz_ms_p99: f64,
    applied_per_sec: f64,
    paid_orders: i64,
    tickets: i64,
    sold: i64,
}

const PRICE: i64 = 150_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    midtrans::install_crypto_provider();
    let args = Args::parse();
    let db = PgPoolOptions::new().max_connections(16).connect(&args.database_url).await?;
    let keys = keyspace::Keyspace::new(args.redis_prefix.clone());

    // 1. Orders awaiting payment, each with a live Snap payment.
    let (event, category, users) = arrange(&db, args.orders, args.orders as i32).await?;
    let orders: Vec<Uuid> = (0..args.orders).map(|_| Uuid::now_v7()).collect();
    let mids: Vec<String> = orders.iter().map(|o| format!("QC-{}-1", o.simple())).collect();
    sqlx::query(
        "insert into orders (id, user_id, event_id, idempotency_key, total, expires_at)
         select o, u, $3, o::text, $4, now() + interval '15 minutes' from unnest($1::uuid[], $2::uuid[]) t(o, u)",
    )
    .bind(&orders)
    .bind(&users)
    .bind(event)
    .bind(PRICE)
    .execute(&db)
    .await?;
    sqlx::query(
        "insert into order_items (id, order_id, ticket_category_id, name, quantity, unit_price)
         select gen_random_uuid(), o, $2, 'Hot', 1, $3 from unnest($1::uuid[]) o",
    )
    .bind(&orders)
    .bind(category)
    .bind(PRICE)
    .execute(&db)
    .await?;
    sqlx::query("update ticket_categories set held = $2 where id = $1")
        .bind(category)
        .bind(args.orders as i32)
        .execute(&db)
        .await?;
    sqlx::query(
        "insert into payments (id, order_id, midtrans_order_id, method, gross_amount, idempotency_key, snap_token)
         select gen_random_uuid(), o, m, 'snap', $3, 'k', 't' from unnest($1::uuid[], $2::text[]) t(o, m)",
    )
    .bind(&orders)
    .bind(&mids)
    .bind(PRICE)
    .execute(&db)
    .await?;
    eprintln!("arranged {} orders awaiting payment", args.orders);

    // 2. Intake, then the /healthz baseline, with the same client and concurrency.
    let http = reqwest::Client::builder().pool_max_idle_per_host(args.concurrency).build()?;
    let url = format!("http://{}/api/webhooks/midtrans", args.gateway);
    let amount = midtrans::format_amount(PRICE);
    let bodies: Arc<Vec<String>> = Arc::new(
        mids.iter()
            .map(|m| {
                json!({
                    "transaction_time": "2026-11-25 18:00:00", "transaction_status": "settlement",
                    "transaction_id": Uuid::new_v4(), "status_message": "midtrans payment notification",
                    "status_code": "200", "signature_key": midtrans::signature(m, "200", &amount, &args.server_key),
                    "payment_type": "qris", "order_id": m, "merchant_id": "G-LOAD", "gross_amount": amount,
                    "fraud_status": "accept", "currency": "IDR", "settlement_time": "2026-11-25 18:00:05"
                })
                .to_string()
            })
            .collect(),
    );
    let (intake_secs, mut intake_ms, intake_errors) = hammer(args.concurrency, bodies.len(), "intake", |i| {
        http.post(&url).header("content-type", "application/json").body(bodies[i].clone())
    })
    .await;
    let health = format!("http://{}/healthz", args.gateway);
    let (health_secs, mut health_ms, _) =
        hammer(args.concurrency, bodies.len(), "healthz", |_| http.get(&health)).await;

    // 3. Processing: the queued notifications applied by `processors` processors.
    let stop = CancellationToken::new();
    let redis = keyspace::connect(&args.redis_url, 2).await?;
    let started = Instant::now();
    for _ in 0..args.processors {
        tokio::spawn(checkout_worker::payments::processor::run_processor(
            db.clone(),
            args.redis_url.clone(),
            redis.clone(),
            keys.clone(),
            checkout_worker::payments::processor::ProcessorSettings {
                concurrency: args.processor_concurrency,
                ..Default::default()
            },
            // No Midtrans to ask here: the signed notifications are applied as they are.
            None,
            stop.clone(),
        ));
    }
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let left = pipeline::webhooks::backlog(&redis, &keys).await?;
        eprintln!("processing: {left} left, {:.1} s", started.elapsed().as_secs_f64());
        if left == 0 {
            break;
        }
    }
    let process_secs = started.elapsed().as_secs_f64();
    stop.cancel();

    let paid: i64 = sqlx::query_scalar("select count(*) from orders where event_id = $1 and status = 'paid'")
        .bind(event)
        .fetch_one(&db)
        .await?;
    let tickets: i64 = sqlx::query_scalar(
        "select count(*) from tickets t join orders o on o.id = t.order_id where o.event_id = $1",
    )
    .bind(event)
    .fetch_one(&db)
    .await?;
    let sold: i32 = sqlx::query_scalar("select sold from ticket_categories where id = $1")
        .bind(category)
        .fetch_one(&db)
        .await?;
    let report = Report {
        orders: args.orders,
        concurrency: args.concurrency,
        processors: args.processors,
        processor_concurrency: args.processor_concurrency,
        intake_ok: bodies.len() - intake_errors,
        intake_errors,
        intake_per_sec: bodies.len() as f64 / intake_secs,
        intake_ms_p50: pct(&mut intake_ms, 0.50),
        intake_ms_p99: pct(&mut intake_ms, 0.99),
        healthz_per_sec: bodies.len() as f64 / health_secs,
        healthz_ms_p99: pct(&mut health_ms, 0.99),
        applied_per_sec: args.orders as f64 / process_secs,
        paid_orders: paid,
        tickets,
        sold: i64::from(sold),
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
