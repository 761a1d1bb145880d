//! E-tickets: one ticket per ticket unit of a paid order, one pickup code per merchandise line. Each code
//! is 128 random bits (26 characters of base32), so it cannot be guessed; `(order_item_id, seq)` is unique,
//! so issuing twice for the same order is impossible.

use rand::RngCore;
use sqlx::PgConnection;
use uuid::Uuid;

const ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// A fresh unguessable code: 128 random bits as 26 characters (no 0/O or 1/I to misread at a gate).
pub fn new_code() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let mut bits: u128 = u128::from_be_bytes(bytes);
    let mut out = [0u8; 26];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(bits & 31) as usize];
        bits >>= 5;
    }
    String::from_utf8(out.to_vec()).expect("ASCII alphabet")
}

/// Issues the order's tickets and pickup codes once; a second call adds nothing.
pub async fn issue(conn: &mut PgConnection, order: Uuid) -> Result<u64, sqlx::Error> {
    let items = sqlx::query!(
        r#"select id, ticket_category_id is not null as "ticket!", quantity from order_items where order_id = $1"#,
        order
    )
    .fetch_all(&mut *conn)
    .await?;
    let (mut ids, mut item_ids, mut seqs, mut kinds, mut codes) = (vec![], vec![], vec![], vec![], vec![]);
    for item in items {
        let (count, kind) = if item.ticket { (item.quantity, "ticket") } else { (1, "merchandise_pickup") };
        for seq in 1..=count {
            ids.push(Uuid::now_v7());
            item_ids.push(item.id);
            seqs.push(seq);
            kinds.push(kind.to_owned());
            codes.push(new_code());
        }
    }
    let inserted = sqlx::query!(
        r#"insert into tickets (id, order_id, order_item_id, seq, kind, code)
           select t.id, $1, t.item, t.seq, t.kind, t.code
           from unnest($2::uuid[], $3::uuid[], $4::int[], $5::text[], $6::text[]) as t(id, item, seq, kind, code)
           on conflict (order_item_id, seq) do nothing"#,
        order,
        &ids,
        &item_ids,
        &seqs,
        &kinds,
        &codes
    )
    .execute(&mut *conn)
    .await?;
    // An order paid again after a reversal voided its tickets gets them back.
    sqlx::query!("update tickets set status = 'valid' where order_id = $1 and status = 'void'", order)
        .execute(&mut *conn)
        .await?;
    Ok(inserted.rows_affected())
}

/// Voids the order's tickets that were not used yet (refund, reversal).
pub async fn void(conn: &mut PgConnection, order: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!("update tickets set status = 'void' where order_id = $1 and status = 'valid'", order)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_long_and_distinct() {
        let a = new_code();
        assert_eq!(a.len(), 26);
        assert!(a.bytes().all(|b| ALPHABET.contains(&b)));
        let many: std::collections::HashSet<String> = (0..10_000).map(|_| new_code()).collect();
        assert_eq!(many.len(), 10_000);
    }
}
