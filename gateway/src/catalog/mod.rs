//! The catalog: events, schedules, ticket categories and merchandise, as the public and admins see them.
//!
//! Reads are a fixed number of queries per page (never one per row). Public reads only see published
//! events; admin reads see drafts too and also get the sold/held counts.

pub mod cache;
pub mod routes;
pub mod sale_rules;

pub use pipeline::states::EventStatus;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

/// Who is looking: the public sees published events only and no internal counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    Public,
    Admin,
}

#[derive(Serialize, ToSchema)]
pub struct EventSummary {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub venue: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
    pub sale_opens_at: Option<DateTime<Utc>>,
    pub sale_closes_at: Option<DateTime<Utc>>,
    /// `draft`, `published` or `cancelled` (the public only ever sees `published`).
    pub status: String,
    /// Cheapest ticket price in rupiah, if the event has categories.
    pub from_price: Option<i64>,
    /// Tickets still available across all categories.
    pub tickets_remaining: i64,
}

#[derive(Serialize, ToSchema)]
pub struct EventDetail {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub venue: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
    pub sale_opens_at: Option<DateTime<Utc>>,
    pub sale_closes_at: Option<DateTime<Utc>>,
    pub status: String,
    pub published_at: Option<DateTime<Utc>>,
    /// Most ticket units one buyer may hold for this event, over all orders.
    pub max_tickets_per_buyer: i32,
    pub schedules: Vec<Schedule>,
    pub ticket_categories: Vec<TicketCategory>,
    pub merchandise: Vec<Merchandise>,
}

#[derive(Serialize, ToSchema)]
pub struct Schedule {
    pub id: Uuid,
    pub event_id: Uuid,
    pub label: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct TicketCategory {
    pub id: Uuid,
    pub event_id: Uuid,
    pub schedule_id: Option<Uuid>,
    pub name: String,
    pub description: String,
    /// Rupiah, integer.
    pub price: i64,
    pub quota: i32,
    pub remaining: i32,
    pub max_per_order: i32,
    pub sale_starts_at: Option<DateTime<Utc>>,
    pub sale_ends_at: Option<DateTime<Utc>>,
    pub sort_order: i32,
    /// Admin view only: units paid for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sold: Option<i32>,
    /// Admin view only: units held by unpaid orders.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<i32>,
}

#[derive(Serialize, ToSchema)]
pub struct Merchandise {
    pub id: Uuid,
    pub event_id: Option<Uuid>,
    pub name: String,
    pub description: String,
    pub price: i64,
    pub stock: i32,
    pub remaining: i32,
    pub max_per_order: i32,
    pub sort_order: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sold: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<i32>,
}

struct CategoryRow {
    id: Uuid,
    event_id: Uuid,
    schedule_id: Option<Uuid>,
    name: String,
    description: String,
    price: i64,
    quota: i32,
    sold: i32,
    held: i32,
    max_per_order: i32,
    sale_starts_at: Option<DateTime<Utc>>,
    sale_ends_at: Option<DateTime<Utc>>,
    sort_order: i32,
}

impl CategoryRow {
    fn view(self, audience: Audience) -> TicketCategory {
        let admin = audience == Audience::Admin;
        TicketCategory {
            id: self.id,
            event_id: self.event_id,
            schedule_id: self.schedule_id,
            name: self.name,
            description: self.description,
            price: self.price,
            quota: self.quota,
            remaining: (self.quota - self.sold - self.held).max(0),
            max_per_order: self.max_per_order,
            sale_starts_at: self.sale_starts_at,
            sale_ends_at: self.sale_ends_at,
            sort_order: self.sort_order,
            sold: admin.then_some(self.sold),
            held: admin.then_some(self.held),
        }
    }
}

struct MerchandiseRow {
    id: Uuid,
    event_id: Option<Uuid>,
    name: String,
    description: String,
    price: i64,
    stock: i32,
    sold: i32,
    held: i32,
    max_per_order: i32,
    sort_order: i32,
}

impl MerchandiseRow {
    fn view(self, audience: Audience) -> Merchandise {
        let admin = audience == Audience::Admin;
        Merchandise {
            id: self.id,
            event_id: self.event_id,
            name: self.name,
            description: self.description,
            price: self.price,
            stock: self.stock,
            remaining: (self.stock - self.sold - self.held).max(0),
            max_per_order: self.max_per_order,
            sort_order: self.sort_order,
            sold: admin.then_some(self.sold),
            held: admin.then_some(self.held),
        }
    }
}

pub async fn list_events(
    conn: &mut PgConnection,
    audience: Audience,
    limit: i64,
    offset: i64,
) -> Result<Vec<EventSummary>, sqlx::Error> {
    sqlx::query_as!(
        EventSummary,
        r#"select e.id, e.name, e.description, e.venue, e.starts_at, e.ends_at, e.sale_opens_at,
                  e.sale_closes_at, e.status,
                  (select min(c.price) from ticket_categories c where c.event_id = e.id) as from_price,
                  (select coalesce(sum(greatest(c.quota - c.sold - c.held, 0)), 0)
                     from ticket_categories c where c.event_id = e.id)::bigint as "tickets_remaining!"
           from events e
           where e.status = 'published' or $1
           order by e.starts_at, e.id
           limit $2 offset $3"#,
        audience == Audience::Admin,
        limit,
        offset
    )
    .fetch_all(conn)
    .await
}

/// One event with everything on sale for it: four queries, whatever the number of rows.
pub async fn event_detail(
    conn: &mut PgConnection,
    id: Uuid,
    audience: Audience,
) -> Result<Option<EventDetail>, sqlx::Error> {
    let Some(e) = sqlx::query!(
        r#"select id, name, description, venue, starts_at, ends_at, sale_opens_at, sale_closes_at,
                  status, published_at, max_tickets_per_buyer
           from events where id = $1 and (status = 'published' or $2)"#,
        id,
        audience == Audience::Admin
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let schedules = schedules_of(conn, id).await?;
    let ticket_categories = categories_of(conn, id, audience).await?;
    let merchandise = sqlx::query_as!(
        MerchandiseRow,
        r#"select id, event_id, name, description, price, stock, sold, held, max_per_order, sort_order
           from merchandise where event_id = $1 order by sort_order, name, id"#,
        id
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|m| m.view(audience))
    .collect();
    Ok(Some(EventDetail {
        id: e.id,
        name: e.name,
        description: e.description,
        venue: e.venue,
        starts_at: e.starts_at,
        ends_at: e.ends_at,
        sale_opens_at: e.sale_opens_at,
        sale_closes_at: e.sale_closes_at,
        status: e.status,
        published_at: e.published_at,
        max_tickets_per_buyer: e.max_tickets_per_buyer,
        schedules,
        ticket_categories,
        merchandise,
    }))
}

pub async fn schedules_of(conn: &mut PgConnection, event: Uuid) -> Result<Vec<Schedule>, sqlx::Error> {
    sqlx::query_as!(
        Schedule,
        r#"select id, event_id, label, starts_at, ends_at from schedules
           where event_id = $1 order by starts_at, id"#,
        event
    )
    .fetch_all(conn)
    .await
}

pub async fn categories_of(
    conn: &mut PgConnection,
    event: Uuid,
    audience: Audience,
) -> Result<Vec<TicketCategory>, sqlx::Error> {
    Ok(sqlx::query_as!(
        CategoryRow,
        r#"select id, event_id, schedule_id, name, description, price, quota, sold, held, max_per_order,
                  sale_starts_at, sale_ends_at, sort_order
           from ticket_categories where event_id = $1 order by sort_order, name, id"#,
        event
    )
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(|c| c.view(audience))
    .collect())
}

pub async fn category(conn: &mut PgConnection, id: Uuid) -> Result<Option<TicketCategory>, sqlx::Error> {
    Ok(sqlx::query_as!(
        CategoryRow,
        r#"select id, event_id, schedule_id, name, description, price, quota, sold, held, max_per_order,
                  sale_starts_at, sale_ends_at, sort_order
           from ticket_categories where id = $1"#,
        id
    )
    .fetch_optional(conn)
    .await?
    .map(|c| c.view(Audience::Admin)))
}

/// Merchandise visible to `audience`: standalone items and those of visible events, optionally of one event.
pub async fn list_merchandise(
    conn: &mut PgConnection,
    event: Option<Uuid>,
    audience: Audience,
) -> Result<Vec<Merchandise>, sqlx::Error> {
    Ok(sqlx::query_as!(
        MerchandiseRow,
        r#"select m.id, m.event_id, m.name, m.description, m.price, m.stock, m.sold, m.held,
                  m.max_per_order, m.sort_order
           from merchandise m left join events e on e.id = m.event_id
           where (m.event_id is null or e.status = 'published' or $2)
             and ($1::uuid is null or m.event_id = $1)
           order by m.sort_order, m.name, m.id
           limit 500"#,
        event,
        audience == Audience::Admin
    )
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(|m| m.view(audience))
    .collect())
}

pub async fn merchandise(
    conn: &mut PgConnection,
    id: Uuid,
    audience: Audience,
) -> Result<Option<Merchandise>, sqlx::Error> {
    Ok(sqlx::query_as!(
        MerchandiseRow,
        r#"select m.id, m.event_id, m.name, m.description, m.price, m.stock, m.sold, m.held,
                  m.max_per_order, m.sort_order
           from merchandise m left join events e on e.id = m.event_id
           where m.id = $1 and (m.event_id is null or e.status = 'published' or $2)"#,
        id,
        audience == Audience::Admin
    )
    .fetch_optional(conn)
    .await?
    .map(|m| m.view(audience)))
}

/// Is this event visible to the public?
pub async fn is_published(conn: &mut PgConnection, id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select exists(select 1 from events where id = $1 and status = 'published') as "e!""#,
        id
    )
    .fetch_one(conn)
    .await
}
