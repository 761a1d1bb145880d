//! Moving an order's units between a product's `held` and `sold` counts, under row locks taken in the
//! one order every writer uses (ticket categories by id, then merchandise by id), so allocation, expiry,
//! payments and refunds never deadlock with each other.

use sqlx::PgConnection;
use uuid::Uuid;

/// What happens to the units of the given orders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Move {
    /// A new order takes its units: they become held.
    Hold,
    /// An unpaid order ends (expired, cancelled, payment failed): held units go back on sale.
    ReleaseHeld,
    /// An order is paid while its hold stands: held units become sold.
    HeldToSold,
    /// A paid order is undone (full refund, payment reversed): sold units go back on sale.
    ReleaseSold,
    /// A payment arrived after the hold ended and the units were still free: they become sold.
    ClaimSold,
}

impl Move {
    /// (change of `held`, change of `sold`) per unit.
    fn deltas(self) -> (i32, i32) {
        match self {
            Move::Hold => (1, 0),
            Move::ReleaseHeld => (-1, 0),
            Move::HeldToSold => (-1, 1),
            Move::ReleaseSold => (0, -1),
            Move::ClaimSold => (0, 1),
        }
    }
}

/// Locks the product rows of `orders`' items: ticket categories in id order, then merchandise in id order
/// (one statement; each family's rows are locked as its part of the union is read, in its order).
pub async fn lock_products(conn: &mut PgConnection, orders: &[Uuid]) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"with items as (select ticket_category_id, merchandise_id from order_items where order_id = any($1)),
                c as (select id from ticket_categories where id in (select ticket_category_id from items)
                      order by id for update),
                m as (select id from merchandise where id in (select merchandise_id from items)
                      order by id for update)
           select id as "id!" from c union all select id from m"#,
        orders
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(())
}

/// Whether every product of `order` is still available in the quantity the order wants of it, all its
/// lines of one product added up (call with the rows locked).
pub async fn available(conn: &mut PgConnection, order: Uuid) -> Result<bool, sqlx::Error> {
    let short = sqlx::query_scalar!(
        r#"select count(*) as "n!"
           from (select ticket_category_id, merchandise_id, sum(quantity) as qty from order_items
                 where order_id = $1 group by 1, 2) x
           left join ticket_categories c on c.id = x.ticket_category_id
           left join merchandise m on m.id = x.merchandise_id
           where coalesce(c.quota - c.sold - c.held, m.stock - m.sold - m.held) < x.qty"#,
        order
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(short == 0)
}

/// Applies `mv` to the units of `orders` (their lines of one product added up), both families in one
/// statement. The caller holds the order rows and has called [`lock_products`] in this transaction (or
/// locked the product rows itself, as allocation does).
pub async fn shift(conn: &mut PgConnection, orders: &[Uuid], mv: Move) -> Result<(), sqlx::Error> {
    let (held, sold) = mv.deltas();
    sqlx::query!(
        r#"with x as (select ticket_category_id, merchandise_id, sum(quantity)::int as qty from order_items
                      where order_id = any($1) group by 1, 2),
                c as (update ticket_categories c
                      set held = c.held + $2 * x.qty, sold = c.sold + $3 * x.qty, updated_at = now()
                      from x where c.id = x.ticket_category_id returning c.id),
                m as (update merchandise m
                      set held = m.held + $2 * x.qty, sold = m.sold + $3 * x.qty, updated_at = now()
                      from x where m.id = x.merchandise_id returning m.id)
           select (select count(*) from c) + (select count(*) from m) as "rows!""#,
        orders,
        held,
        sold
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(())
}
