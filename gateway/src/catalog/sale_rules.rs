//! What the order intake needs to know about an event's products to check a cart without asking
//! PostgreSQL each time: the event's sale window and each item's owner, sale window and per-order limit,
//! kept per event for a second.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use pipeline::orders::CartLine;
use sqlx::PgPool;
use uuid::Uuid;

use super::EventStatus;
use crate::error::ApiError;

/// What the intake needs to know about an event's products to check a cart without PostgreSQL.
pub struct SaleRules {
    pub(crate) status: EventStatus,
    pub(crate) sale_opens_at: Option<DateTime<Utc>>,
    pub(crate) sale_closes_at: Option<DateTime<Utc>>,
    items: HashMap<Uuid, Item>,
}

#[derive(Clone)]
struct Item {
    id: Uuid,
    /// A ticket category (or else merchandise): ids of the two kinds must not be mixed up in a cart.
    ticket: bool,
    event_id: Option<Uuid>,
    max_per_order: i32,
    sale_starts_at: Option<DateTime<Utc>>,
    sale_ends_at: Option<DateTime<Utc>>,
}

/// Loads an event's sale rules: three queries, shared by every submission for a second (the intake
/// cache), so a rush costs PostgreSQL one load per second per gateway instead of three queries per order.
/// The worker checks everything again under row locks; a second of staleness here can only let a request
/// through to be refused there, or refuse one a second early.
pub async fn load_rules(db: &sqlx::PgPool, event: Uuid) -> Result<Option<SaleRules>, sqlx::Error> {
    let Some(e) = sqlx::query!(
        r#"select status as "status: EventStatus", sale_opens_at, sale_closes_at from events where id = $1"#,
        event
    )
    .fetch_optional(db)
    .await?
    else {
        return Ok(None);
    };
    let items = sqlx::query_as!(
        Item,
        r#"select id as "id!", ticket as "ticket!", event_id, max_per_order as "max_per_order!", sale_starts_at,
                  sale_ends_at
           from sale_items where event_id = $1"#,
        event
    )
    .fetch_all(db)
    .await?
    .into_iter()
    .map(|i| (i.id, i))
    .collect();
    Ok(Some(SaleRules {
        status: e.status,
        sale_opens_at: e.sale_opens_at,
        sale_closes_at: e.sale_closes_at,
        items,
    }))
}

/// Items exist, belong to the event (merchandise may also be standalone), are on sale, and each line is
/// within its per-order limit.
pub async fn check_cart(
    db: &PgPool,
    cache: &SaleRulesCache,
    event: Uuid,
    lines: &[CartLine],
) -> Result<(), ApiError> {
    let now = Utc::now();
    let rules = cache.get(db, event).await?.ok_or(ApiError::NotFound("event"))?;
    if rules.status != EventStatus::Published {
        return Err(ApiError::NotFound("event"));
    }
    if !on_sale(now, rules.sale_opens_at, rules.sale_closes_at) {
        return Err(ApiError::conflict("not_on_sale", "this event is not on sale now"));
    }
    let mut per_item: HashMap<Uuid, i32> = HashMap::new();
    for line in lines {
        let id = line.ticket_category_id.or(line.merchandise_id).expect("checked shape");
        let item = match rules.items.get(&id) {
            Some(i) if i.ticket == line.ticket_category_id.is_some() => i.clone(),
            _ => other_item(db, line).await?,
        };
        let standalone_merch = line.merchandise_id.is_some() && item.event_id.is_none();
        if item.event_id != Some(event) && !standalone_merch {
            return Err(ApiError::validation(format!("item {id} does not belong to this event")));
        }
        if !on_sale(now, item.sale_starts_at, item.sale_ends_at) {
            return Err(ApiError::conflict("not_on_sale", format!("item {id} is not on sale now")));
        }
        let total = per_item.entry(id).or_default();
        *total += line.quantity;
        if *total > item.max_per_order {
            return Err(ApiError::validation(format!(
                "at most {} of item {id} per order",
                item.max_per_order
            )));
        }
    }
    Ok(())
}

/// An item not among the event's own: standalone merchandise, or something of another event (or nothing).
async fn other_item(db: &PgPool, line: &CartLine) -> Result<Item, ApiError> {
    let id = line.ticket_category_id.or(line.merchandise_id).expect("checked shape");
    sqlx::query_as!(
        Item,
        r#"select id as "id!", ticket as "ticket!", event_id, max_per_order as "max_per_order!", sale_starts_at,
                  sale_ends_at
           from sale_items where id = $1 and ticket = $2"#,
        id,
        line.ticket_category_id.is_some()
    )
    .fetch_optional(db)
    .await?
    .ok_or(ApiError::NotFound("item"))
}

fn on_sale(now: DateTime<Utc>, opens: Option<DateTime<Utc>>, closes: Option<DateTime<Utc>>) -> bool {
    opens.is_none_or(|t| t <= now) && closes.is_none_or(|t| t > now)
}

/// When the rules were loaded, and the rules (`None`: no such event).
type CachedRules = (std::time::Instant, Option<std::sync::Arc<SaleRules>>);

/// Per-event sale rules, kept for a second (see [`load_rules`]).
#[derive(Clone)]
pub struct SaleRulesCache {
    ttl: std::time::Duration,
    entries: std::sync::Arc<std::sync::Mutex<HashMap<Uuid, CachedRules>>>,
}

impl SaleRulesCache {
    pub fn new(ttl: std::time::Duration) -> Self {
        Self { ttl, entries: Default::default() }
    }

    pub fn clear(&self) {
        self.entries.lock().expect("sale rules cache").clear();
    }

    pub(crate) async fn get(
        &self,
        db: &sqlx::PgPool,
        event: Uuid,
    ) -> Result<Option<std::sync::Arc<SaleRules>>, sqlx::Error> {
        if let Some((at, rules)) = self.entries.lock().expect("sale rules cache").get(&event)
            && at.elapsed() < self.ttl
        {
            return Ok(rules.clone());
        }
        let rules = load_rules(db, event).await?.map(std::sync::Arc::new);
        let mut entries = self.entries.lock().expect("sale rules cache");
        if entries.len() > 10_000 {
            entries.clear(); // bounded whatever ids clients send
        }
        entries.insert(event, (std::time::Instant::now(), rules.clone()));
        Ok(rules)
    }
}
