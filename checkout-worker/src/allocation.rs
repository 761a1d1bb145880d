//! Allocation: turns a batch of accepted checkout requests into orders, in one PostgreSQL transaction.
//!
//! Batching is what makes a hot ticket category cheap: one transaction locks the batch's product rows once
//! and allocates many carts under that lock, instead of one lock round per order. Within the transaction:
//!
//! 1. the batch's request rows are locked; requests already decided (a redelivery after a crash) keep their
//!    recorded decision, so the same request never makes a second order;
//! 2. one advisory lock per (buyer, event), in key order, so parallel requests of one buyer in different
//!    batches cannot both pass the per-buyer limit;
//! 3. the ticket-category and merchandise rows, each family in id order (the hold sweeper uses the same
//!    order, so the two never deadlock);
//! 4. carts are allocated in stream order, all or nothing per cart; then orders, items, held counts and
//!    request outcomes are written with a fixed number of statements, whatever the batch size.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use pipeline::orders::{CheckoutRequest, ProductId};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    SoldOut,
    PerOrderLimit,
    PerBuyerLimit,
    NotOnSale,
    UnknownItem,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::SoldOut => "sold_out",
            Reason::PerOrderLimit => "per_order_limit",
            Reason::PerBuyerLimit => "per_buyer_limit",
            Reason::NotOnSale => "not_on_sale",
            Reason::UnknownItem => "unknown_item",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Confirmed { order_id: Uuid },
    Rejected { reason: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub request_id: Uuid,
    pub user_id: Uuid,
    pub event_id: Uuid,
    /// The waiting-room visitor the request came from, to push the result to its sockets.
    pub visitor_id: Option<Uuid>,
    pub outcome: Outcome,
}

struct RequestRow {
    id: Uuid,
    user_id: Uuid,
    event_id: Uuid,
    visitor_id: Option<Uuid>,
    idempotency_key: String,
    status: String,
    order_id: Option<Uuid>,
    reason: Option<String>,
}

/// A product row as locked for this batch; `remaining` goes down as carts are allocated.
struct Product {
    event_id: Option<Uuid>,
    name: String,
    price: i64,
    remaining: i32,
    max_per_order: i32,
    on_sale: bool,
    ticket: bool,
}

struct EventRow {
    id: Uuid,
    max_tickets_per_buyer: i32,
    on_sale: bool,
}

/// New rows written at the end of the transaction, as column arrays (one statement per table).
#[derive(Default)]
struct Writes {
    order_id: Vec<Uuid>,
    order_user: Vec<Uuid>,
    order_event: Vec<Uuid>,
    order_request: Vec<Uuid>,
    order_key: Vec<String>,
    order_total: Vec<i64>,
    item_id: Vec<Uuid>,
    item_order: Vec<Uuid>,
    item_category: Vec<Option<Uuid>>,
    item_merch: Vec<Option<Uuid>>,
    item_name: Vec<String>,
    item_qty: Vec<i32>,
    item_price: Vec<i64>,
    held: HashMap<ProductId, i32>,
}

/// Allocates `batch` (in order) at `now`; unpaid orders hold their stock until `now + hold`.
/// Requests must have been recorded in `order_requests`; unknown ids are ignored.
pub async fn allocate(
    db: &PgPool,
    batch: &[CheckoutRequest],
    now: DateTime<Utc>,
    hold: Duration,
) -> Result<Vec<Decision>, sqlx::Error> {
    let ids: Vec<Uuid> = batch.iter().map(|r| r.request_id).collect();
    let mut tx = db.begin().await?;

    // 1. The requests themselves; decided ones keep their decision.
    let rows = sqlx::query_as!(
        RequestRow,
        r#"select id, user_id, event_id, visitor_id, idempotency_key, status, order_id, reason
           from order_requests where id = any($1) order by id for update"#,
        &ids
    )
    .fetch_all(&mut *tx)
    .await?;
    let rows: HashMap<Uuid, RequestRow> = rows.into_iter().map(|r| (r.id, r)).collect();

    // 2. One advisory lock per (buyer, event), in key order.
    let buyers: BTreeSet<(Uuid, Uuid)> =
        rows.values().filter(|r| r.status == "queued").map(|r| (r.user_id, r.event_id)).collect();
    let mut lock_keys: Vec<i64> = buyers.iter().map(|(u, e)| buyer_lock_key(*u, *e)).collect();
    lock_keys.sort_unstable();
    lock_keys.dedup();
    sqlx::query!(
        r#"select count(pg_advisory_xact_lock(k)) as "n!" from (select unnest($1::bigint[]) as k order by 1) s"#,
        &lock_keys
    )
    .fetch_one(&mut *tx)
    .await?;

    // Tickets each buyer already holds or owns for the event.
    let pairs: Vec<(Uuid, Uuid)> = buyers.iter().copied().collect();
    let mut holdings = holdings(&mut tx, &pairs).await?;

    // 3. Product rows, each family in id order.
    let mut category_ids = BTreeSet::new();
    let mut merch_ids = BTreeSet::new();
    for r in batch.iter().filter(|r| rows.get(&r.request_id).is_some_and(|row| row.status == "queued")) {
        for line in &r.items {
            category_ids.extend(line.ticket_category_id);
            merch_ids.extend(line.merchandise_id);
        }
    }
    let category_ids: Vec<Uuid> = category_ids.into_iter().collect();
    let merch_ids: Vec<Uuid> = merch_ids.into_iter().collect();
    let mut products: HashMap<ProductId, Product> = HashMap::new();
    for c in sqlx::query!(
        r#"select id, event_id, name, price, quota - sold - held as "remaining!", max_per_order,
                  (sale_starts_at is null or sale_starts_at <= $2)
                  and (sale_ends_at is null or sale_ends_at > $2) as "on_sale!"
           from ticket_categories where id = any($1) order by id for update"#,
        &category_ids,
        now
    )
    .fetch_all(&mut *tx)
    .await?
    {
        products.insert(
            ProductId::Category(c.id),
            Product {
                event_id: Some(c.event_id),
                name: c.name,
                price: c.price,
                remaining: c.remaining,
                max_per_order: c.max_per_order,
                on_sale: c.on_sale,
                ticket: true,
            },
        );
    }
    for m in sqlx::query!(
        r#"select id, event_id, name, price, stock - sold - held as "remaining!", max_per_order
           from merchandise where id = any($1) order by id for update"#,
        &merch_ids
    )
    .fetch_all(&mut *tx)
    .await?
    {
        products.insert(
            ProductId::Merchandise(m.id),
            Product {
                event_id: m.event_id,
                name: m.name,
                price: m.price,
                remaining: m.remaining,
                max_per_order: m.max_per_order,
                on_sale: true,
                ticket: false,
            },
        );
    }
    let event_ids: Vec<Uuid> = buyers.iter().map(|(_, e)| *e).collect::<BTreeSet<_>>().into_iter().collect();
    let events: HashMap<Uuid, EventRow> = sqlx::query_as!(
        EventRow,
        r#"select id, max_tickets_per_buyer,
                  status = 'published' and (sale_opens_at is null or sale_opens_at <= $2)
                  and (sale_closes_at is null or sale_closes_at > $2) as "on_sale!"
           from events where id = any($1)"#,
        &event_ids,
        now
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|e| (e.id, e))
    .collect();

    // 4. Allocate in stream order.
    let mut writes = Writes::default();
    let mut decisions = Vec::with_capacity(batch.len());
    let mut decided_now: Vec<(Uuid, Option<Uuid>, Option<String>)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for r in batch {
        // A request redelivered twice within one batch is decided once.
        if !seen.insert(r.request_id) {
            continue;
        }
        let Some(row) = rows.get(&r.request_id) else { continue };
        if row.status != "queued" {
            decisions.push(Decision {
                request_id: row.id,
                user_id: row.user_id,
                event_id: row.event_id,
                visitor_id: row.visitor_id,
                outcome: match row.order_id {
                    Some(order_id) => Outcome::Confirmed { order_id },
                    None => Outcome::Rejected { reason: row.reason.clone().unwrap_or_default() },
                },
            });
            continue;
        }
        // The recorded row, not the stream message, says who and which event.
        let key = (row.user_id, row.event_id);
        let outcome = match check_cart(
            r,
            row.event_id,
            events.get(&row.event_id),
            &products,
            holdings.get(&key).copied().unwrap_or(0),
        ) {
            Err(reason) => Outcome::Rejected { reason: reason.as_str().to_owned() },
            Ok(tickets) => {
                let order_id = Uuid::now_v7();
                let mut total = 0i64;
                for line in &r.items {
                    let pk = line.product().expect("checked");
                    let p = products.get_mut(&pk).expect("checked");
                    p.remaining -= line.quantity;
                    total += p.price * i64::from(line.quantity);
                    *writes.held.entry(pk).or_default() += line.quantity;
                    writes.item_id.push(Uuid::now_v7());
                    writes.item_order.push(order_id);
                    writes.item_category.push(line.ticket_category_id);
                    writes.item_merch.push(line.merchandise_id);
                    writes.item_name.push(p.name.clone());
                    writes.item_qty.push(line.quantity);
                    writes.item_price.push(p.price);
                }
                *holdings.entry(key).or_default() += tickets;
                writes.order_id.push(order_id);
                writes.order_user.push(row.user_id);
                writes.order_event.push(row.event_id);
                writes.order_request.push(row.id);
                writes.order_key.push(row.idempotency_key.clone());
                writes.order_total.push(total);
                Outcome::Confirmed { order_id }
            }
        };
        decided_now.push(match &outcome {
            Outcome::Confirmed { order_id } => (row.id, Some(*order_id), None),
            Outcome::Rejected { reason } => (row.id, None, Some(reason.clone())),
        });
        decisions.push(Decision {
            request_id: row.id,
            user_id: row.user_id,
            event_id: row.event_id,
            visitor_id: row.visitor_id,
            outcome,
        });
    }

    write(&mut tx, &writes, &decided_now, now + hold).await?;
    tx.commit().await?;
    Ok(decisions)
}

/// Checks one cart against the locked rows; returns the number of ticket units on success.
fn check_cart(
    r: &CheckoutRequest,
    event_id: Uuid,
    event: Option<&EventRow>,
    products: &HashMap<ProductId, Product>,
    already: i64,
) -> Result<i64, Reason> {
    let event = event.ok_or(Reason::UnknownItem)?;
    if !event.on_sale {
        return Err(Reason::NotOnSale);
    }
    if r.items.is_empty() {
        return Err(Reason::UnknownItem);
    }
    let mut wanted: HashMap<ProductId, i32> = HashMap::new();
    let mut tickets = 0i64;
    for line in &r.items {
        let pk = line.product().ok_or(Reason::UnknownItem)?;
        let p = products.get(&pk).ok_or(Reason::UnknownItem)?;
        if p.event_id.is_some_and(|e| e != event_id) || (p.ticket && p.event_id != Some(event_id)) {
            return Err(Reason::UnknownItem);
        }
        if !p.on_sale {
            return Err(Reason::NotOnSale);
        }
        if line.quantity < 1 {
            return Err(Reason::UnknownItem);
        }
        let total = wanted.entry(pk).or_default();
        *total += line.quantity;
        if *total > p.max_per_order {
            return Err(Reason::PerOrderLimit);
        }
        if p.ticket {
            tickets += i64::from(line.quantity);
        }
    }
    if already + tickets > i64::from(event.max_tickets_per_buyer) {
        return Err(Reason::PerBuyerLimit);
    }
    for (pk, qty) in &wanted {
        if products[pk].remaining < *qty {
            return Err(Reason::SoldOut);
        }
    }
    Ok(tickets)
}

/// All writes of a batch: a fixed number of statements whatever its size.
async fn write(
    tx: &mut sqlx::PgConnection,
    w: &Writes,
    decided: &[(Uuid, Option<Uuid>, Option<String>)],
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    if !w.order_id.is_empty() {
        sqlx::query!(
            r#"insert into orders (id, user_id, event_id, request_id, idempotency_key, total, expires_at)
               select *, $7::timestamptz from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::bigint[])"#,
            &w.order_id,
            &w.order_user,
            &w.order_event,
            &w.order_request,
            &w.order_key,
            &w.order_total,
            expires_at
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            r#"insert into order_items (id, order_id, ticket_category_id, merchandise_id, name, quantity, unit_price)
               select * from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::int[], $7::bigint[])"#,
            &w.item_id,
            &w.item_order,
            &w.item_category as &[Option<Uuid>],
            &w.item_merch as &[Option<Uuid>],
            &w.item_name,
            &w.item_qty,
            &w.item_price
        )
        .execute(&mut *tx)
        .await?;
    }
    for ticket in [true, false] {
        let (ids, qty): (Vec<Uuid>, Vec<i32>) = w
            .held
            .iter()
            .filter_map(|(pk, q)| match (pk, ticket) {
                (ProductId::Category(id), true) | (ProductId::Merchandise(id), false) => Some((*id, *q)),
                _ => None,
            })
            .unzip();
        if ids.is_empty() {
            continue;
        }
        if ticket {
            sqlx::query!(
                r#"update ticket_categories c set held = c.held + x.qty, updated_at = now()
                   from unnest($1::uuid[], $2::int[]) as x(id, qty) where c.id = x.id"#,
                &ids,
                &qty
            )
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query!(
                r#"update merchandise m set held = m.held + x.qty, updated_at = now()
                   from unnest($1::uuid[], $2::int[]) as x(id, qty) where m.id = x.id"#,
                &ids,
                &qty
            )
            .execute(&mut *tx)
            .await?;
        }
    }
    if !decided.is_empty() {
        let ids: Vec<Uuid> = decided.iter().map(|d| d.0).collect();
        let orders: Vec<Option<Uuid>> = decided.iter().map(|d| d.1).collect();
        let reasons: Vec<Option<String>> = decided.iter().map(|d| d.2.clone()).collect();
        sqlx::query!(
            r#"update order_requests r set
                   status = case when x.order_id is null then 'rejected' else 'confirmed' end,
                   order_id = x.order_id, reason = x.reason, decided_at = now()
               from unnest($1::uuid[], $2::uuid[], $3::text[]) as x(id, order_id, reason)
               where r.id = x.id"#,
            &ids,
            &orders as &[Option<Uuid>],
            &reasons as &[Option<String>]
        )
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// Ticket units each (buyer, event) of `pairs` holds or owns in its live orders: awaiting payment, under
/// review, paid, or partly refunded (its tickets still check in). Call under the pairs' advisory locks.
async fn holdings(
    conn: &mut sqlx::PgConnection,
    pairs: &[(Uuid, Uuid)],
) -> Result<HashMap<(Uuid, Uuid), i64>, sqlx::Error> {
    let (users, events): (Vec<Uuid>, Vec<Uuid>) = pairs.iter().copied().unzip();
    Ok(sqlx::query!(
        r#"select o.user_id, o.event_id, coalesce(sum(i.quantity), 0)::bigint as "qty!"
           from orders o join order_items i on i.order_id = o.id
           where (o.user_id, o.event_id) in (select * from unnest($1::uuid[], $2::uuid[]))
             and o.status in ('pending_payment', 'payment_review', 'paid', 'partially_refunded')
             and i.ticket_category_id is not null
           group by o.user_id, o.event_id"#,
        &users,
        &events
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|r| ((r.user_id, r.event_id), r.qty))
    .collect())
}

/// Whether `order` (ended: expired or cancelled, and now paid late) may become live again without its
/// buyer passing the event's per-buyer limit. Takes the buyer's advisory lock, as allocation does, so a
/// concurrent batch cannot pass the limit beside it.
pub async fn revival_within_buyer_limit(
    conn: &mut sqlx::PgConnection,
    order: Uuid,
) -> Result<bool, sqlx::Error> {
    let o = sqlx::query!(
        r#"select o.user_id, o.event_id, e.max_tickets_per_buyer,
                  (select coalesce(sum(quantity), 0) from order_items
                   where order_id = o.id and ticket_category_id is not null)::bigint as "tickets!"
           from orders o join events e on e.id = o.event_id where o.id = $1"#,
        order
    )
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query!("select pg_advisory_xact_lock($1)", buyer_lock_key(o.user_id, o.event_id))
        .execute(&mut *conn)
        .await?;
    let already = holdings(conn, &[(o.user_id, o.event_id)]).await?.values().sum::<i64>();
    Ok(already + o.tickets <= i64::from(o.max_tickets_per_buyer))
}

/// A stable 64-bit advisory-lock key for one buyer's purchases for one event.
fn buyer_lock_key(user: Uuid, event: Uuid) -> i64 {
    let digest = Sha256::digest([user.as_bytes().as_slice(), event.as_bytes().as_slice()].concat());
    i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}
