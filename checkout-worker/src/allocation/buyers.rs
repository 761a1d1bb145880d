//! The per-buyer limit: one advisory lock per (buyer, event), and the ticket units each buyer already
//! holds or owns for the event.

use std::collections::{BTreeSet, HashMap};

use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

/// Takes one advisory lock per (buyer, event) of `buyers`, in key order, so parallel requests of one buyer
/// in different batches cannot both pass the per-buyer limit.
pub(super) async fn lock(
    conn: &mut PgConnection,
    buyers: &BTreeSet<(Uuid, Uuid)>,
) -> Result<(), sqlx::Error> {
    let mut keys: Vec<i64> = buyers.iter().map(|(u, e)| lock_key(*u, *e)).collect();
    keys.sort_unstable();
    keys.dedup();
    sqlx::query!(
        r#"select count(pg_advisory_xact_lock(k)) as "n!" from (select unnest($1::bigint[]) as k order by 1) s"#,
        &keys
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(())
}

/// Ticket units each (buyer, event) of `pairs` holds or owns in its live orders: awaiting payment, under
/// review, paid, or partly refunded (its tickets still check in). Call under the pairs' advisory locks.
pub(super) async fn holdings(
    conn: &mut PgConnection,
    pairs: &BTreeSet<(Uuid, Uuid)>,
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
pub async fn revival_within_buyer_limit(conn: &mut PgConnection, order: Uuid) -> Result<bool, sqlx::Error> {
    let o = sqlx::query!(
        r#"select o.user_id, o.event_id, e.max_tickets_per_buyer,
                  (select coalesce(sum(quantity), 0) from order_items
                   where order_id = o.id and ticket_category_id is not null)::bigint as "tickets!"
           from orders o join events e on e.id = o.event_id where o.id = $1"#,
        order
    )
    .fetch_one(&mut *conn)
    .await?;
    let buyer = BTreeSet::from([(o.user_id, o.event_id)]);
    lock(conn, &buyer).await?;
    let already = holdings(conn, &buyer).await?.values().sum::<i64>();
    Ok(already + o.tickets <= i64::from(o.max_tickets_per_buyer))
}

/// A stable 64-bit advisory-lock key for one buyer's purchases for one event.
fn lock_key(user: Uuid, event: Uuid) -> i64 {
    let digest = Sha256::digest([user.as_bytes().as_slice(), event.as_bytes().as_slice()].concat());
    i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}
