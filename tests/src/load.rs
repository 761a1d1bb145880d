//! Shared by the load generators: arranging a hot event in the database, and percentiles.

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
