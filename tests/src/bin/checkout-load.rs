//! Checkout load generator: many buyers submitting at once on one hot ticket category.
//!
//! `--mode pipeline` sends real `POST /api/orders` requests (signed-in buyers with admission tokens) to the
//! gateways and waits until PostgreSQL has decided every request; `--mode baseline` does what the seed
//! system did, one transaction per order with `SELECT … FOR UPDATE` on the category row over a pool of 25
//! connections. Both run on the same database and report JSON: accepted/s, decided/s, committed orders/s,
//! decision latency p50/p99 and the oversold count (which must be 0).

use std::{sync::Arc, time::Instant};

use chrono::Utc;
use clap::{Parser, ValueEnum};
use e2e::load::{arrange, hammer, pct};
use serde::Serialize;
use sqlx::{PgPool, postgres::PgPoolOptions};
use tokio::sync::Barrier;
use uuid::Uuid;
use waiting_room::tokens::RoomTokens;

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Pipeline,
    Baseline,
    /// The workers' batched allocation alone: every request already recorded and on the stream, then
    /// `--consumers` order consumers (in this process) decide them.
    Allocation,
    /// The order intake alone: `--buyers` submissions from `--concurrency` keep-alive connections to one
    /// gateway with no worker running, then as many `GET /healthz` from the same client (the gateway's
    /// bare HTTP ceiling, as the baseline of the same run).
    Intake,
}

#[derive(Parser)]
struct Args {
    #[arg(long, value_enum)]
    mode: Mode,
    #[arg(long)]
    database_url: String,
    /// The deployment's JWT_SECRET (to sign buyers' access and admission tokens).
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    jwt_secret: String,
    /// Gateways (host:port, comma separated), pipeline mode.
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1:8080")]
    gateways: Vec<String>,
    #[arg(long, default_value_t = 2000)]
    buyers: usize,
    /// Tickets on sale in the hot category.
    #[arg(long, default_value_t = 1000)]
    quota: i32,
    /// Allocation mode: where the order stream lives (a prefix no other worker reads).
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    #[arg(long, default_value = "bench-allocation:")]
    redis_prefix: String,
    /// Allocation mode: order consumers, and requests per batch.
    #[arg(long, default_value_t = 1)]
    consumers: usize,
    #[arg(long, default_value_t = 100)]
    batch: u64,
    /// Intake mode: connections.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
}

#[derive(Serialize)]
struct Report {
    mode: &'static str,
    buyers: usize,
    quota: i32,
    accepted: usize,
    refused_early: usize,
    errors: usize,
    /// Buyers who got a 503/429 (Retry-After) at least once and tried again with the same key.
    retried: usize,
    committed: i64,
    rejected: i64,
    wall_secs: f64,
    accepted_per_sec: f64,
    decided_per_sec: f64,
    committed_per_sec: f64,
    decision_ms_p50: f64,
    decision_ms_p99: f64,
    oversold: i64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    midtrans::install_crypto_provider();
    let args = Args::parse();
    let db = PgPoolOptions::new().max_connections(25).connect(&args.database_url).await?;
    let (event, category, users) = arrange(&db, args.buyers, args.quota).await?;
    eprintln!("arranged: event {event}, category {category}, {} buyers", users.len());
    if let Mode::Intake = args.mode {
        let report = intake(&args, event, category, users).await?;
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    let report = match args.mode {
        Mode::Pipeline => pipeline(&args, &db, event, category, users).await?,
        Mode::Baseline => baseline(&args, &db, event, category, users).await?,
        Mode::Allocation => allocation(&args, &db, event, category, users).await?,
        Mode::Intake => unreachable!("reported above"),
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

#[derive(Serialize)]
struct IntakeReport {
    mode: &'static str,
    submissions: usize,
    concurrency: usize,
    accepted: usize,
    errors: usize,
    intake_per_sec: f64,
    intake_ms_p50: f64,
    intake_ms_p99: f64,
    healthz_per_sec: f64,
    healthz_ms_p99: f64,
    /// Intake rate over the bare `/healthz` rate, in percent.
    intake_share_of_healthz: f64,
}

/// One buyer's ready-made submission: access, visitor and admission tokens, and the body.
struct Submission {
    access: String,
    visitor: String,
    admission: String,
    body: String,
}

fn submissions(args: &Args, event: Uuid, category: Uuid, users: &[Uuid]) -> anyhow::Result<Vec<Submission>> {
    let tokens = gateway::accounts::token::TokenKeys::new(args.jwt_secret.as_bytes(), 3600);
    let signer = waiting_room::tokens::Signer::new(args.jwt_secret.as_bytes());
    let now = Utc::now();
    let body = serde_json::json!({ "event_id": event, "items": [{ "ticket_category_id": category, "quantity": 1 }] })
        .to_string();
    users
        .iter()
        .enumerate()
        .map(|(i, user)| {
            let visitor = Uuid::new_v4();
            Ok(Submission {
                access: tokens.issue_access(*user, gateway::accounts::Role::Buyer, 0)?,
                visitor: signer.visitor(event, visitor, now.timestamp()),
                admission: signer.admission(
                    event,
                    visitor,
                    i as i64 + 1,
                    now.timestamp(),
                    now.timestamp_millis() + 600_000,
                ),
                body: body.clone(),
            })
        })
        .collect()
}

impl Submission {
    fn request(&self, http: &reqwest::Client, url: &str, key: &str) -> reqwest::RequestBuilder {
        http.post(url)
            .bearer_auth(&self.access)
            .header("idempotency-key", key)
            .header("visitor-token", &self.visitor)
            .header("admission-token", &self.admission)
            .header("content-type", "application/json")
            .body(self.body.clone())
    }
}

async fn intake(args: &Args, event: Uuid, category: Uuid, users: Vec<Uuid>) -> anyhow::Result<IntakeReport> {
    let subs = submissions(args, event, category, &users)?;
    let http = reqwest::Client::builder().pool_max_idle_per_host(args.concurrency).build()?;
    let gateway = &args.gateways[0];
    let url = format!("http://{gateway}/api/orders");
    let (intake_secs, mut intake_ms, errors) = hammer(args.concurrency, subs.len(), "intake", |i| {
        subs[i].request(&http, &url, &format!("load-{i}"))
    })
    .await;
    let health = format!("http://{gateway}/healthz");
    let (health_secs, mut health_ms, _) =
        hammer(args.concurrency, subs.len(), "healthz", |_| http.get(&health)).await;
    let (intake_per_sec, healthz_per_sec) =
        (subs.len() as f64 / intake_secs, subs.len() as f64 / health_secs);
    Ok(IntakeReport {
        mode: "intake",
        submissions: subs.len(),
        concurrency: args.concurrency,
        accepted: subs.len() - errors,
        errors,
        intake_per_sec,
        intake_ms_p50: pct(&mut intake_ms, 0.5),
        intake_ms_p99: pct(&mut intake_ms, 0.99),
        healthz_per_sec,
        healthz_ms_p99: pct(&mut health_ms, 0.99),
        intake_share_of_healthz: 100.0 * intake_per_sec / healthz_per_sec,
    })
}

async fn pipeline(
    args: &Args,
    db: &PgPool,
    event: Uuid,
    category: Uuid,
    users: Vec<Uuid>,
) -> anyhow::Result<Report> {
    let subs = submissions(args, event, category, &users)?;
    let http = reqwest::Client::builder().pool_max_idle_per_host(args.buyers).build()?;
    let barrier = Arc::new(Barrier::new(users.len() + 1));
    let mut tasks = Vec::with_capacity(users.len());
    for (i, sub) in subs.into_iter().enumerate() {
        let url = format!("http://{}/api/orders", args.gateways[i % args.gateways.len()]);
        let (http, barrier) = (http.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            // Like the storefront: a 503/429 is retried after its Retry-After with the same key (three times
            // at most).
            let mut retries = 0;
            loop {
                let resp = sub.request(&http, &url, &format!("load-{i}")).send().await;
                let (status, after) = match resp {
                    Ok(r) => {
                        let after = r
                            .headers()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.parse::<u64>().ok())
                            .unwrap_or(1);
                        (r.status().as_u16(), after)
                    }
                    Err(_) => (0, 1),
                };
                if matches!(status, 503 | 429) && retries < 3 {
                    retries += 1;
                    tokio::time::sleep(std::time::Duration::from_secs(after)).await;
                    continue;
                }
                return (status, retries);
            }
        }));
    }
    barrier.wait().await;
    let started = Instant::now();
    let (mut accepted, mut refused, mut errors, mut retried) = (0, 0, 0, 0);
    for t in tasks {
        let (status, retries) = t.await?;
        retried += usize::from(retries > 0);
        match status {
            202 => accepted += 1,
            409 => refused += 1,
            _ => errors += 1,
        }
    }
    let accept_secs = started.elapsed().as_secs_f64();
    eprintln!(
        "submitted: {accepted} accepted, {refused} refused early, {errors} errors, {retried} retried after 503/429, in {accept_secs:.2}s"
    );
    let mut report = decided(args, db, event, category, users.len(), started).await?;
    report.accepted = accepted;
    report.refused_early = refused;
    report.errors = errors;
    report.retried = retried;
    report.accepted_per_sec = accepted as f64 / accept_secs;
    Ok(report)
}

/// Waits until every recorded request of `event` is decided and reports the decisions.
async fn decided(
    args: &Args,
    db: &PgPool,
    event: Uuid,
    category: Uuid,
    buyers: usize,
    started: Instant,
) -> anyhow::Result<Report> {
    // Wait until every accepted request is decided.
    loop {
        let queued: i64 = sqlx::query_scalar(
            "select count(*) from order_requests where event_id = $1 and status = 'queued'",
        )
        .bind(event)
        .fetch_one(db)
        .await?;
        eprintln!("undecided: {queued}");
        if queued == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let wall = started.elapsed().as_secs_f64();
    let mut latencies: Vec<f64> = sqlx::query_scalar(
        "select extract(epoch from (decided_at - created_at))::float8 * 1000 from order_requests where event_id = $1",
    )
    .bind(event)
    .fetch_all(db)
    .await?;
    let (committed, rejected): (i64, i64) = sqlx::query_as(
        "select count(*) filter (where status = 'confirmed'), count(*) filter (where status = 'rejected')
         from order_requests where event_id = $1",
    )
    .bind(event)
    .fetch_one(db)
    .await?;
    // Decided within the run: from the first request's arrival to the last decision.
    let span: f64 = sqlx::query_scalar(
        "select extract(epoch from (max(decided_at) - min(created_at)))::float8 from order_requests where event_id = $1",
    )
    .bind(event)
    .fetch_one(db)
    .await?;
    Ok(Report {
        mode: "pipeline",
        buyers,
        quota: args.quota,
        accepted: 0,
        refused_early: 0,
        errors: 0,
        retried: 0,
        committed,
        rejected,
        wall_secs: wall,
        accepted_per_sec: 0.0,
        decided_per_sec: (committed + rejected) as f64 / span.max(0.001),
        committed_per_sec: committed as f64 / span.max(0.001),
        decision_ms_p50: pct(&mut latencies, 0.5),
        decision_ms_p99: pct(&mut latencies, 0.99),
        oversold: oversold(db, category).await?,
    })
}

async fn allocation(
    args: &Args,
    db: &PgPool,
    event: Uuid,
    category: Uuid,
    users: Vec<Uuid>,
) -> anyhow::Result<Report> {
    use checkout_worker::stream::{ConsumerSettings, run_consumer};
    use pipeline::orders::{CartLine, CheckoutRequest, append};
    let keys = keyspace::Keyspace::new(format!("{}{}:", args.redis_prefix, Uuid::new_v4().simple()));
    let redis = keyspace::connect(&args.redis_url, 4).await?;
    let line = CartLine { ticket_category_id: Some(category), merchandise_id: None, quantity: 1 };
    let ids: Vec<Uuid> = users.iter().map(|_| Uuid::now_v7()).collect();
    let items = serde_json::to_value(std::slice::from_ref(&line))?;
    sqlx::query(
        "insert into order_requests (id, user_id, event_id, idempotency_key, body_hash, items)
         select id, u, $3, id::text, 'h', $4 from unnest($1::uuid[], $2::uuid[]) t(id, u)",
    )
    .bind(&ids)
    .bind(&users)
    .bind(event)
    .bind(&items)
    .execute(db)
    .await?;
    for (id, user) in ids.iter().zip(&users) {
        let request =
            CheckoutRequest { request_id: *id, user_id: *user, event_id: event, items: vec![line.clone()] };
        append(&redis, &keys, &request).await?;
    }
    eprintln!("queued {} requests; starting {} consumer(s)", ids.len(), args.consumers);
    // Decision latency counts from here: the requests waited for the consumers, not for each other.
    sqlx::query("update order_requests set created_at = clock_timestamp() where event_id = $1")
        .bind(event)
        .execute(db)
        .await?;
    let stop = tokio_util::sync::CancellationToken::new();
    let started = Instant::now();
    for _ in 0..args.consumers {
        tokio::spawn(run_consumer(
            db.clone(),
            args.redis_url.clone(),
            keys.clone(),
            ConsumerSettings::new(args.batch, chrono::Duration::minutes(15)),
            stop.clone(),
        ));
    }
    let mut report = decided(args, db, event, category, users.len(), started).await?;
    stop.cancel();
    report.mode = "allocation";
    report.accepted = ids.len();
    Ok(report)
}

/// The seed's design: every order its own transaction, locking the category row.
async fn baseline(
    args: &Args,
    db: &PgPool,
    event: Uuid,
    category: Uuid,
    users: Vec<Uuid>,
) -> anyhow::Result<Report> {
    let barrier = Arc::new(Barrier::new(users.len() + 1));
    let mut tasks = Vec::with_capacity(users.len());
    for (i, user) in users.iter().copied().enumerate() {
        let (db, barrier) = (db.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let t = Instant::now();
            let result: Result<bool, sqlx::Error> = async {
                let mut tx = db.begin().await?;
                let remaining: i32 = sqlx::query_scalar(
                    "select quota - sold - held from ticket_categories where id = $1 for update",
                )
                .bind(category)
                .fetch_one(&mut *tx)
                .await?;
                if remaining < 1 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                let order = Uuid::now_v7();
                sqlx::query(
                    "insert into orders (id, user_id, event_id, idempotency_key, total, expires_at)
                     values ($1, $2, $3, $4, 150000, now() + interval '15 minutes')",
                )
                .bind(order)
                .bind(user)
                .bind(event)
                .bind(format!("baseline-{i}"))
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "insert into order_items (id, order_id, ticket_category_id, name, quantity, unit_price)
                     values ($1, $2, $3, 'Hot', 1, 150000)",
                )
                .bind(Uuid::now_v7())
                .bind(order)
                .bind(category)
                .execute(&mut *tx)
                .await?;
                sqlx::query("update ticket_categories set held = held + 1 where id = $1")
                    .bind(category)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(true)
            }
            .await;
            (result, t.elapsed().as_secs_f64() * 1000.0)
        }));
    }
    barrier.wait().await;
    let started = Instant::now();
    let (mut committed, mut rejected, mut errors) = (0i64, 0i64, 0usize);
    let mut latencies = Vec::with_capacity(users.len());
    for t in tasks {
        let (result, ms) = t.await?;
        latencies.push(ms);
        match result {
            Ok(true) => committed += 1,
            Ok(false) => rejected += 1,
            Err(_) => errors += 1,
        }
    }
    let wall = started.elapsed().as_secs_f64();
    Ok(Report {
        mode: "baseline",
        buyers: users.len(),
        quota: args.quota,
        accepted: users.len(),
        refused_early: 0,
        errors,
        retried: 0,
        committed,
        rejected,
        wall_secs: wall,
        accepted_per_sec: users.len() as f64 / wall,
        decided_per_sec: (committed + rejected) as f64 / wall,
        committed_per_sec: committed as f64 / wall,
        decision_ms_p50: pct(&mut latencies, 0.5),
        decision_ms_p99: pct(&mut latencies, 0.99),
        oversold: oversold(db, category).await?,
    })
}

async fn oversold(db: &PgPool, category: Uuid) -> anyhow::Result<i64> {
    let (quota, sold, held): (i32, i32, i32) =
        sqlx::query_as("select quota, sold, held from ticket_categories where id = $1")
            .bind(category)
            .fetch_one(db)
            .await?;
    let orders: i64 = sqlx::query_scalar(
        "select coalesce(sum(i.quantity), 0)::bigint from order_items i join orders o on o.id = i.order_id
         where i.ticket_category_id = $1 and o.status in ('pending_payment', 'paid')",
    )
    .bind(category)
    .fetch_one(db)
    .await?;
    Ok((i64::from(sold + held) - i64::from(quota)).max(0) + (orders - i64::from(quota)).max(0))
}
