//! The PostgreSQL half of the audit, in one repeatable-read, read-only snapshot (so a sale running
//! meanwhile cannot make two tables seem to disagree).

use chrono::Utc;
use pipeline::states::{OrderStatus, PaymentStatus, Reason, RequestStatus, TicketStatus};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{Report, Tolerances};

/// At most this many findings per check are listed (the count of the rest is given).
const LIST: i64 = 50;

pub async fn check(db: &PgPool, allow: &Tolerances, report: &mut Report) -> anyhow::Result<()> {
    let mut tx = db.begin().await?;
    sqlx::query("set transaction isolation level repeatable read, read only").execute(&mut *tx).await?;
    let (holding, paid) = (statuses(OrderStatus::is_holding), statuses(OrderStatus::is_paid));
    product_counts(&mut tx, &holding, &paid, report).await?;
    tickets(&mut tx, &paid, report).await?;
    requests(&mut tx, report).await?;
    holds(&mut tx, allow.hold_grace, report).await?;
    admissions(&mut tx, report).await?;
    tx.rollback().await?;
    Ok(())
}

/// Payments the buyer may still complete, as stored.
fn open_payments() -> Vec<&'static str> {
    PaymentStatus::ALL.iter().copied().filter(|s| s.is_open()).map(PaymentStatus::as_str).collect()
}

/// The order states `pick` selects, as stored.
fn statuses(pick: fn(OrderStatus) -> bool) -> Vec<&'static str> {
    OrderStatus::ALL.iter().copied().filter(|s| pick(*s)).map(OrderStatus::as_str).collect()
}

async fn count(conn: &mut PgConnection, sql: &'static str) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(sql).fetch_one(conn).await?)
}

/// `sold` and `held` of every category and item against the units of its paid and holding orders.
async fn product_counts(
    conn: &mut PgConnection,
    holding: &[&str],
    paid: &[&str],
    report: &mut Report,
) -> anyhow::Result<()> {
    let rows: Vec<(String, Uuid, String, i32, i32, i64, i64)> = sqlx::query_as(
        r#"with units as (
               select i.ticket_category_id, i.merchandise_id,
                      coalesce(sum(i.quantity) filter (where o.status = any($2)), 0) as sold,
                      coalesce(sum(i.quantity) filter (where o.status = any($1)), 0) as held
               from order_items i join orders o on o.id = i.order_id group by 1, 2),
           products as (
               select 'category' as kind, c.id, c.name, c.sold, c.held,
                      coalesce(u.sold, 0) as want_sold, coalesce(u.held, 0) as want_held
               from ticket_categories c left join units u on u.ticket_category_id = c.id
               union all
               select 'merchandise', m.id, m.name, m.sold, m.held, coalesce(u.sold, 0), coalesce(u.held, 0)
               from merchandise m left join units u on u.merchandise_id = m.id)
           select kind, id, name, sold, held, want_sold, want_held from products
           where sold <> want_sold or held <> want_held order by kind, id limit $3"#,
    )
    .bind(holding)
    .bind(paid)
    .bind(LIST)
    .fetch_all(&mut *conn)
    .await?;
    let examined =
        count(conn, "select (select count(*) from ticket_categories) + (select count(*) from merchandise)")
            .await?;
    let findings = rows
        .into_iter()
        .map(|(kind, id, name, sold, held, want_sold, want_held)| {
            format!(
                "{kind} {id} ({name}): sold {sold}, held {held}; its orders say sold {want_sold}, held {want_held}"
            )
        })
        .collect();
    report.add("product_counts", examined, findings);
    Ok(())
}

/// Each item of a paid order has its live codes (one per ticket, one pickup code per merchandise line);
/// an order that is not paid has none.
async fn tickets(conn: &mut PgConnection, paid: &[&str], report: &mut Report) -> anyhow::Result<()> {
    let rows: Vec<(Uuid, String, Uuid, i64, i64)> = sqlx::query_as(
        r#"with live as (
               select order_item_id, count(*) as n from tickets where status <> $2 group by 1),
           expected as (
               select o.id as order_id, o.status, i.id as item_id,
                      case when o.status <> all($1) then 0
                           when i.ticket_category_id is not null then i.quantity else 1 end as want
               from orders o join order_items i on i.order_id = o.id)
           select e.order_id, e.status, e.item_id, e.want::bigint, coalesce(l.n, 0)
           from expected e left join live l on l.order_item_id = e.item_id
           where e.want <> coalesce(l.n, 0) order by e.order_id limit $3"#,
    )
    .bind(paid)
    .bind(TicketStatus::Void.as_str())
    .bind(LIST)
    .fetch_all(&mut *conn)
    .await?;
    let examined = count(conn, "select count(*) from order_items").await?;
    let findings = rows
        .into_iter()
        .map(|(order, status, item, want, live)| {
            format!("order {order} ({status}), item {item}: {live} live codes, {want} expected")
        })
        .collect();
    report.add("tickets", examined, findings);
    Ok(())
}

/// A request, its decision, and the order that names it.
type RequestRow = (Uuid, String, Option<Uuid>, Option<String>, Option<Uuid>);

/// Queued requests have no decision yet; confirmed ones their order (which names them back); rejected
/// ones a reason and no order. No order claims a request that does not name it.
async fn requests(conn: &mut PgConnection, report: &mut Report) -> anyhow::Result<()> {
    let rows: Vec<RequestRow> = sqlx::query_as(
        r#"select r.id, r.status, r.order_id, r.reason, o.id
           from order_requests r left join orders o on o.request_id = r.id
           where case r.status
                   when $1 then r.order_id is not null or r.reason is not null or o.id is not null
                   when $2 then r.order_id is null or o.id is distinct from r.order_id or r.reason is not null
                   when $3 then r.reason is null or r.order_id is not null or o.id is not null
                   else true end
           order by r.created_at limit $4"#,
    )
    .bind(RequestStatus::Queued.as_str())
    .bind(RequestStatus::Confirmed.as_str())
    .bind(RequestStatus::Rejected.as_str())
    .bind(LIST)
    .fetch_all(&mut *conn)
    .await?;
    let examined = count(conn, "select count(*) from order_requests").await?;
    let mut findings: Vec<String> = rows
        .into_iter()
        .map(|(id, status, order, reason, claimed_by)| {
            format!(
                "request {id} is {status} with order {}, reason {}; the order naming it: {}",
                shown(order),
                reason.as_deref().unwrap_or("none"),
                shown(claimed_by)
            )
        })
        .collect();
    // A rejection reason the code does not know (the CHECK constraint should make this impossible).
    let reasons: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
    let unknown: i64 = sqlx::query_scalar(
        "select count(*) from order_requests where reason is not null and reason <> all($1)",
    )
    .bind(&reasons)
    .fetch_one(&mut *conn)
    .await?;
    if unknown > 0 {
        findings.push(format!("{unknown} requests with a reason the code does not know"));
    }
    report.add("requests", examined, findings);
    Ok(())
}

fn shown(id: Option<Uuid>) -> String {
    id.map_or_else(|| "none".to_owned(), |id| id.to_string())
}

/// Unpaid orders still holding their units well after `expires_at` (the sweeper has stopped, or is far
/// behind). Orders with a live payment are the reconciler's and are left out.
async fn holds(conn: &mut PgConnection, grace: chrono::Duration, report: &mut Report) -> anyhow::Result<()> {
    let rows: Vec<(Uuid, chrono::DateTime<Utc>)> = sqlx::query_as(
        r#"select o.id, o.expires_at from orders o
           where o.status = $1 and o.expires_at < $2
             and not exists (select 1 from payments p where p.order_id = o.id and p.status = any($4))
           order by o.expires_at limit $3"#,
    )
    .bind(OrderStatus::PendingPayment.as_str())
    .bind(Utc::now() - grace)
    .bind(LIST)
    .bind(open_payments())
    .fetch_all(&mut *conn)
    .await?;
    let examined: i64 = sqlx::query_scalar("select count(*) from orders where status = $1")
        .bind(OrderStatus::PendingPayment.as_str())
        .fetch_one(&mut *conn)
        .await?;
    let findings = rows
        .into_iter()
        .map(|(id, expires)| format!("order {id} still holds its units; its hold ended at {expires}"))
        .collect();
    report.add("holds", examined, findings);
    Ok(())
}

/// One admission, one request (the unique constraint promises it; the audit checks the promise).
async fn admissions(conn: &mut PgConnection, report: &mut Report) -> anyhow::Result<()> {
    let rows: Vec<(Uuid, String, i64)> = sqlx::query_as(
        r#"select event_id, admission_jti, count(*) from order_requests where admission_jti is not null
           group by 1, 2 having count(*) > 1 limit $1"#,
    )
    .bind(LIST)
    .fetch_all(&mut *conn)
    .await?;
    let examined = count(conn, "select count(*) from order_requests where admission_jti is not null").await?;
    let findings = rows
        .into_iter()
        .map(|(event, jti, n)| format!("event {event}: admission {jti} spent on {n} requests"))
        .collect();
    report.add("admissions", examined, findings);
    Ok(())
}
