//! Shared by the load generators: arranging a hot event in the database, sending requests from many
//! connections, and percentiles.

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use sqlx::PgPool;
use uuid::Uuid;

/// The `p` quantile (0..=1) of `v` (sorted in place); 0 when empty.
pub fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// A published event on sale with one hot category, and `n` buyers.
pub async fn arrange(db: &PgPool, n: usize, quota: i32) -> anyhow::Result<(Uuid, Uuid, Vec<Uuid>)> {
    let (event, category) = (Uuid::now_v7(), Uuid::now_v7());
    sqlx::query(
        "insert into events (id, name, venue, starts_at, sale_opens_at, status, published_at, max_tickets_per_buyer)
         values ($1, 'Load test', 'Bench', now() + interval '30 days', now() - interval '1 hour', 'published', now(), 6)",
    )
    .bind(event)
    .execute(db)
    .await?;
    sqlx::query("insert into waiting_room_settings (event_id) values ($1)").bind(event).execute(db).await?;
    sqlx::query(
        "insert into ticket_categories (id, event_id, name, price, quota, max_per_order) values ($1, $2, 'Hot', 150000, $3, 4)",
    )
    .bind(category)
    .bind(event)
    .bind(quota)
    .execute(db)
    .await?;
    let users: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
    let emails: Vec<String> = users.iter().map(|u| format!("{}@load.example.id", u.simple())).collect();
    sqlx::query(
        "insert into users (id, email, password_hash, name) select id, email, 'x', 'Load' from unnest($1::uuid[], $2::text[]) t(id, email)",
    )
    .bind(&users)
    .bind(&emails)
    .execute(db)
    .await?;
    Ok((event, category, users))
}

/// Sends `n` requests built by `request(i)` from `concurrency` tasks; returns (seconds, latencies in ms,
/// errors). Prints progress every second.
pub async fn hammer<F>(
    concurrency: usize,
    n: usize,
    label: &'static str,
    request: F,
) -> (f64, Vec<f64>, usize)
where
    F: Fn(usize) -> reqwest::RequestBuilder + Send + Sync,
{
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let errors = AtomicUsize::new(0);
    let started = Instant::now();
    let request = &request;
    let (next, done, errors) = (&next, &done, &errors);
    let workers = (0..concurrency).map(|_| async move {
        let mut latencies = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= n {
                return latencies;
            }
            let t = Instant::now();
            match request(i).send().await {
                Ok(r) if r.status().is_success() => {}
                _ => {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            done.fetch_add(1, Ordering::Relaxed);
        }
    });
    let progress = async {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            eprintln!("{label}: {}/{n}", done.load(Ordering::Relaxed));
        }
    };
    let all = tokio::select! {
        all = futures::future::join_all(workers) => all,
        _ = progress => unreachable!("progress never ends"),
    };
    let secs = started.elapsed().as_secs_f64();
    eprintln!("{label}: {n} done in {secs:.2} s");
    (secs, all.into_iter().flatten().collect(), errors.load(Ordering::Relaxed))
}
