//! Demo data for the local run: one published campus concert with two days, three ticket categories and
//! three merchandise items. Loaded only into a database that has no event yet.

use chrono::{DateTime, Duration, Utc};
use pipeline::states::EventStatus;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// Loads the demo event if the database holds no event. Returns its id when it was created.
pub async fn load_if_empty(db: &PgPool) -> anyhow::Result<Option<Uuid>> {
    let mut tx = db.begin().await?;
    // Serialise concurrent starts (several processes on one database) so only one loads the demo.
    sqlx::query!("select pg_advisory_xact_lock(7262001)").execute(&mut *tx).await?;
    let any =
        sqlx::query_scalar!(r#"select exists(select 1 from events) as "e!""#).fetch_one(&mut *tx).await?;
    if any {
        return Ok(None);
    }
    let now = Utc::now();
    let event = Uuid::now_v7();
    let starts = now + Duration::days(30);
    progress(1, "event");
    insert_event(&mut tx, event, now, starts).await?;
    waiting_room::settings::insert_defaults(&mut tx, event).await?;
    progress(2, "schedules");
    insert_schedules(&mut tx, event, starts).await?;
    progress(3, "ticket categories");
    insert_categories(&mut tx, event).await?;
    progress(4, "merchandise");
    insert_merchandise(&mut tx, event).await?;
    tx.commit().await?;
    progress(5, "done");
    Ok(Some(event))
}

/// The concert, on sale since an hour ago, a month from now.
async fn insert_event(
    conn: &mut PgConnection,
    event: Uuid,
    now: DateTime<Utc>,
    starts: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"insert into events (id, name, description, venue, starts_at, ends_at, sale_opens_at,
                               sale_closes_at, status, published_at, max_tickets_per_buyer)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, now(), 6)"#,
        event,
        "Pesta Musik Kampus 2026",
        "Two nights of campus bands and guest stars on the rector's field. Gates open 16:00 WIB.",
        "Lapangan Rektorat, Universitas Nusantara, Bandung",
        starts,
        starts + Duration::days(1) + Duration::hours(6),
        now - Duration::hours(1),
        starts - Duration::hours(2),
        EventStatus::Published as _
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Its two nights.
async fn insert_schedules(
    conn: &mut PgConnection,
    event: Uuid,
    starts: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    for (day, label) in [(0, "Day 1 — Friday"), (1, "Day 2 — Saturday")] {
        let s = starts + Duration::days(day);
        sqlx::query!(
            "insert into schedules (id, event_id, label, starts_at, ends_at) values ($1, $2, $3, $4, $5)",
            Uuid::now_v7(),
            event,
            label,
            s,
            s + Duration::hours(6)
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Festival, grandstand and VIP tickets.
async fn insert_categories(conn: &mut PgConnection, event: Uuid) -> Result<(), sqlx::Error> {
    let categories: [(&str, &str, i64, i32, i32); 3] = [
        ("Festival", "Standing area in front of the stage, both days.", 150_000, 2_000, 4),
        ("Tribun", "Numbered grandstand seating, both days.", 250_000, 800, 4),
        ("VIP", "Front pit, fast-lane entry and a merch pack.", 750_000, 100, 2),
    ];
    for (i, (name, description, price, quota, max)) in categories.into_iter().enumerate() {
        sqlx::query!(
            r#"insert into ticket_categories (id, event_id, name, description, price, quota, max_per_order, sort_order)
               values ($1, $2, $3, $4, $5, $6, $7, $8)"#,
            Uuid::now_v7(),
            event,
            name,
            description,
            price,
            quota,
            max,
            i as i32
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// A T-shirt, a tote bag and a lightstick.
async fn insert_merchandise(conn: &mut PgConnection, event: Uuid) -> Result<(), sqlx::Error> {
    let merchandise: [(&str, &str, i64, i32); 3] = [
        (
            "Official T-shirt",
            "Black cotton tee with the line-up on the back. Pick up at the gate.",
            120_000,
            500,
        ),
        ("Tote bag", "Canvas tote with the festival logo.", 60_000, 300),
        ("Lightstick", "Battery-powered lightstick in the festival colours.", 95_000, 400),
    ];
    for (i, (name, description, price, stock)) in merchandise.into_iter().enumerate() {
        sqlx::query!(
            r#"insert into merchandise (id, event_id, name, description, price, stock, max_per_order, sort_order)
               values ($1, $2, $3, $4, $5, $6, 5, $7)"#,
            Uuid::now_v7(),
            event,
            name,
            description,
            price,
            stock,
            i as i32
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

fn progress(step: u32, what: &str) {
    tracing::info!("demo data [{step}/5] {what}");
}
