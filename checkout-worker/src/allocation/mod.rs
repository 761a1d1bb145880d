//! Allocation: turns a batch of accepted checkout requests into orders, in one PostgreSQL transaction.
//!
//! Batching is what makes a hot ticket category cheap: one transaction locks the batch's product rows once
//! and allocates many carts under that lock, instead of one lock round per order. Within the transaction:
//!
//! 1. the batch's request rows are locked; requests already decided (a redelivery after a crash) keep their
//!    recorded decision, so the same request never makes a second order;
//! 2. one advisory lock per (buyer, event), in key order, so parallel requests of one buyer in different
//!    batches cannot both pass the per-buyer limit ([`buyers`]);
//! 3. the ticket-category and merchandise rows, each family in id order (the hold sweeper uses the same
//!    order, so the two never deadlock);
//! 4. carts are allocated in stream order, all or nothing per cart ([`cart`]); then orders, items, held
//!    counts and request outcomes are written with a fixed number of statements, whatever the batch size.

mod buyers;
mod cart;

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use pipeline::{
    orders::{CheckoutRequest, ProductId},
    states::{Reason, RequestStatus},
};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

pub use buyers::revival_within_buyer_limit;
use cart::{EventRow, Product};

use crate::stock::{self, Move};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Confirmed { order_id: Uuid },
    Rejected { reason: Reason },
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
    status: RequestStatus,
    order_id: Option<Uuid>,
    reason: Option<Reason>,
}

impl RequestRow {
    fn decision(&self, outcome: Outcome) -> Decision {
        Decision {
            request_id: self.id,
            user_id: self.user_id,
            event_id: self.event_id,
            visitor_id: self.visitor_id,
            outcome,
        }
    }

    /// The decision recorded before (a redelivered request).
    fn recorded(&self) -> Outcome {
        match self.order_id {
            Some(order_id) => Outcome::Confirmed { order_id },
            None => Outcome::Rejected { reason: self.reason.unwrap_or(Reason::InternalError) },
        }
    }
}

/// What the batch's transaction has locked and read: products and events, and each buyer's holdings.
struct Locked {
    products: HashMap<ProductId, Product>,
    events: HashMap<Uuid, EventRow>,
    holdings: HashMap<(Uuid, Uuid), i64>,
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
    decided: Vec<Uuid>,
    decided_status: Vec<RequestStatus>,
    decided_order: Vec<Option<Uuid>>,
    decided_reason: Vec<Option<Reason>>,
}

/// Allocates `batch` (in order) at `now`; unpaid orders hold their stock until `now + hold`.
/// Requests must have been recorded in `order_requests`; unknown ids are ignored.
pub async fn allocate(
    db: &PgPool,
    batch: &[CheckoutRequest],
    now: DateTime<Utc>,
    hold: Duration,
) -> Result<Vec<Decision>, sqlx::Error> {
    let mut tx = db.begin().await?;
    let rows = lock_requests(&mut tx, batch).await?;
    let undecided: Vec<&CheckoutRequest> = batch
        .iter()
        .filter(|r| rows.get(&r.request_id).is_some_and(|row| row.status == RequestStatus::Queued))
        .collect();
    let mut locked = lock_and_read(&mut tx, &rows, &undecided, now).await?;

    let mut writes = Writes::default();
    let mut decisions = Vec::with_capacity(batch.len());
    let mut seen = HashSet::new();
    for r in batch {
        // A request redelivered twice within one batch is decided once.
        if !seen.insert(r.request_id) {
            continue;
        }
        let Some(row) = rows.get(&r.request_id) else { continue };
        if row.status != RequestStatus::Queued {
            decisions.push(row.decision(row.recorded()));
            continue;
        }
        let outcome = decide(r, row, &mut locked, &mut writes);
        writes.record(row.id, &outcome);
        decisions.push(row.decision(outcome));
    }

    writes.save(&mut tx, now + hold).await?;
    tx.commit().await?;
    Ok(decisions)
}

/// Step 1: the batch's request rows, locked in id order.
async fn lock_requests(
    conn: &mut PgConnection,
    batch: &[CheckoutRequest],
) -> Result<HashMap<Uuid, RequestRow>, sqlx::Error> {
    let ids: Vec<Uuid> = batch.iter().map(|r| r.request_id).collect();
    let rows = sqlx::query_as!(
        RequestRow,
        r#"select id, user_id, event_id, visitor_id, idempotency_key, status as "status: RequestStatus",
                  order_id, reason as "reason: Reason"
           from order_requests where id = any($1) order by id for update"#,
        &ids
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r)).collect())
}

/// Steps 2 and 3 for the requests still to decide: the buyers' advisory locks and holdings, then the
/// product rows (each family in id order) and the events.
async fn lock_and_read(
    conn: &mut PgConnection,
    rows: &HashMap<Uuid, RequestRow>,
    undecided: &[&CheckoutRequest],
    now: DateTime<Utc>,
) -> Result<Locked, sqlx::Error> {
    let buyers: BTreeSet<(Uuid, Uuid)> =
        undecided.iter().map(|r| &rows[&r.request_id]).map(|r| (r.user_id, r.event_id)).collect();
    buyers::lock(conn, &buyers).await?;
    let holdings = buyers::holdings(conn, &buyers).await?;
    let products = lock_products(conn, undecided, now).await?;
    let event_ids: Vec<Uuid> = buyers.iter().map(|(_, e)| *e).collect::<BTreeSet<_>>().into_iter().collect();
    let events = sqlx::query_as!(
        EventRow,
        r#"select id, max_tickets_per_buyer,
                  status = 'published' and (sale_opens_at is null or sale_opens_at <= $2)
                  and (sale_closes_at is null or sale_closes_at > $2) as "on_sale!"
           from events where id = any($1)"#,
        &event_ids,
        now
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|e| (e.id, e))
    .collect();
    Ok(Locked { products, events, holdings })
}

/// The product rows the carts name, locked: ticket categories in id order, then merchandise in id order
/// (one statement; each family's rows are locked as its part of the union is read, in its order).
async fn lock_products(
    conn: &mut PgConnection,
    carts: &[&CheckoutRequest],
    now: DateTime<Utc>,
) -> Result<HashMap<ProductId, Product>, sqlx::Error> {
    let mut categories = BTreeSet::new();
    let mut merchandise = BTreeSet::new();
    for line in carts.iter().flat_map(|r| &r.items) {
        categories.extend(line.ticket_category_id);
        merchandise.extend(line.merchandise_id);
    }
    let rows = sqlx::query!(
        r#"with c as (select id, event_id, name, price, quota - sold - held as remaining, max_per_order,
                             (sale_starts_at is null or sale_starts_at <= $3)
                             and (sale_ends_at is null or sale_ends_at > $3) as on_sale
                      from ticket_categories where id = any($1) order by id for update),
                m as (select id, event_id, name, price, stock - sold - held as remaining, max_per_order
                      from merchandise where id = any($2) order by id for update)
           select true as "ticket!", id as "id!", event_id, name as "name!", price as "price!",
                  remaining as "remaining!", max_per_order as "max_per_order!", on_sale as "on_sale!" from c
           union all
           select false, id, event_id, name, price, remaining, max_per_order, true from m"#,
        &categories.into_iter().collect::<Vec<_>>(),
        &merchandise.into_iter().collect::<Vec<_>>(),
        now
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|p| {
            let id = if p.ticket { ProductId::Category(p.id) } else { ProductId::Merchandise(p.id) };
            let product = Product {
                event_id: p.event_id,
                name: p.name,
                price: p.price,
                remaining: p.remaining,
                max_per_order: p.max_per_order,
                on_sale: p.on_sale,
                ticket: p.ticket,
            };
            (id, product)
        })
        .collect())
}

/// Step 4 for one cart: checks it against what is left and, if it fits, takes its units and adds its
/// order to `writes`. The recorded row, not the stream message, says who and which event.
fn decide(r: &CheckoutRequest, row: &RequestRow, locked: &mut Locked, writes: &mut Writes) -> Outcome {
    let key = (row.user_id, row.event_id);
    let already = locked.holdings.get(&key).copied().unwrap_or(0);
    let tickets =
        match cart::check(r, row.event_id, locked.events.get(&row.event_id), &locked.products, already) {
            Ok(tickets) => tickets,
            Err(reason) => return Outcome::Rejected { reason },
        };
    let order_id = Uuid::now_v7();
    let mut total = 0i64;
    for line in &r.items {
        let p = locked.products.get_mut(&line.product().expect("checked")).expect("checked");
        p.remaining -= line.quantity;
        total += p.price * i64::from(line.quantity);
        writes.item_id.push(Uuid::now_v7());
        writes.item_order.push(order_id);
        writes.item_category.push(line.ticket_category_id);
        writes.item_merch.push(line.merchandise_id);
        writes.item_name.push(p.name.clone());
        writes.item_qty.push(line.quantity);
        writes.item_price.push(p.price);
    }
    *locked.holdings.entry(key).or_default() += tickets;
    writes.order_id.push(order_id);
    writes.order_user.push(row.user_id);
    writes.order_event.push(row.event_id);
    writes.order_request.push(row.id);
    writes.order_key.push(row.idempotency_key.clone());
    writes.order_total.push(total);
    Outcome::Confirmed { order_id }
}

impl Writes {
    fn record(&mut self, request: Uuid, outcome: &Outcome) {
        let (status, order, reason) = match outcome {
            Outcome::Confirmed { order_id } => (RequestStatus::Confirmed, Some(*order_id), None),
            Outcome::Rejected { reason } => (RequestStatus::Rejected, None, Some(*reason)),
        };
        self.decided.push(request);
        self.decided_status.push(status);
        self.decided_order.push(order);
        self.decided_reason.push(reason);
    }

    /// All writes of a batch: a fixed number of statements whatever its size. The new orders' units are
    /// counted as held from their items, as every other move of units is ([`stock::shift`]).
    async fn save(&self, conn: &mut PgConnection, expires_at: DateTime<Utc>) -> Result<(), sqlx::Error> {
        if !self.order_id.is_empty() {
            sqlx::query!(
                r#"insert into orders (id, user_id, event_id, request_id, idempotency_key, total, expires_at)
                   select *, $7::timestamptz from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::bigint[])"#,
                &self.order_id,
                &self.order_user,
                &self.order_event,
                &self.order_request,
                &self.order_key,
                &self.order_total,
                expires_at
            )
            .execute(&mut *conn)
            .await?;
            sqlx::query!(
                r#"insert into order_items (id, order_id, ticket_category_id, merchandise_id, name, quantity, unit_price)
                   select * from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::int[], $7::bigint[])"#,
                &self.item_id,
                &self.item_order,
                &self.item_category as &[Option<Uuid>],
                &self.item_merch as &[Option<Uuid>],
                &self.item_name,
                &self.item_qty,
                &self.item_price
            )
            .execute(&mut *conn)
            .await?;
            stock::shift(conn, &self.order_id, Move::Hold).await?;
        }
        if !self.decided.is_empty() {
            sqlx::query!(
                r#"update order_requests r set status = x.status, order_id = x.order_id, reason = x.reason,
                          decided_at = now()
                   from unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[]) as x(id, status, order_id, reason)
                   where r.id = x.id"#,
                &self.decided,
                &self.decided_status as &[RequestStatus],
                &self.decided_order as &[Option<Uuid>],
                &self.decided_reason as &[Option<Reason>]
            )
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}
