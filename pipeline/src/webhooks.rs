//! The webhook stream: gateways append each verified Midtrans notification, raw, and answer Midtrans at
//! once; checkout workers apply them as one consumer group (`webhooks`), retrying failures (an entry
//! appended again carries its attempt count). A notification that failed every attempt waits in the
//! dead-letter hash for people to replay it.

use chrono::{DateTime, Utc};
use fred::{clients::Pool, interfaces::HashesInterface};
use keyspace::{Keyspace, STREAM_PARTITIONS};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The consumer group of the checkout workers' webhook processors.
pub const GROUP: &str = "webhooks";
/// Field holding the notification as Midtrans sent it.
pub const FIELD: &str = "notification";
/// Field holding how many times applying it was tried before.
pub const ATTEMPTS: &str = "attempts";

/// The partition of the webhook stream that carries the notifications of Midtrans order `order_id`: one
/// order's notifications travel in one stream, in arrival order (FNV-1a, the same in every process).
pub fn partition(order_id: &str) -> usize {
    let hash = order_id
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3));
    (hash % STREAM_PARTITIONS as u64) as usize
}

/// The Midtrans order id of a raw notification, as far as it can be read (an unreadable body goes to
/// the partition of the empty id and is dead-lettered there).
fn order_id_of(raw: &str) -> String {
    #[derive(Deserialize)]
    struct Named {
        order_id: Option<String>,
    }
    serde_json::from_str::<Named>(raw).ok().and_then(|n| n.order_id).unwrap_or_default()
}

/// Appends a verified notification (the raw body) to its order's partition; returns the entry id.
pub async fn append(
    redis: &Pool,
    keys: &Keyspace,
    raw: &str,
    attempts: u32,
) -> Result<String, fred::error::Error> {
    crate::group::append(
        redis,
        keys.webhooks_stream(partition(&order_id_of(raw))),
        vec![(FIELD, raw.to_owned()), (ATTEMPTS, attempts.to_string())],
    )
    .await
}

/// Notifications received but not yet applied (undelivered plus unacknowledged), over every partition.
pub async fn backlog(redis: &Pool, keys: &Keyspace) -> Result<i64, fred::error::Error> {
    let streams = (0..STREAM_PARTITIONS).map(|p| keys.webhooks_stream(p));
    crate::group::backlog_of_all(redis, streams, GROUP).await
}

/// A notification that failed every attempt (as kept in Redis, and as operators list it).
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeadLetter {
    pub id: Uuid,
    pub midtrans_order_id: Option<String>,
    pub transaction_status: Option<String>,
    /// The notification as Midtrans sent it (signature included; it is not a secret).
    pub notification: String,
    pub attempts: u32,
    pub last_error: String,
    pub failed_at: DateTime<Utc>,
}

/// Every dead letter, oldest first.
pub async fn dead_letters(redis: &Pool, keys: &Keyspace) -> Result<Vec<DeadLetter>, fred::error::Error> {
    let values: Vec<String> = redis.next().hvals(keys.webhooks_dead_letters()).await?;
    let mut letters: Vec<DeadLetter> = values.iter().filter_map(|v| serde_json::from_str(v).ok()).collect();
    letters.sort_by_key(|l| l.id);
    Ok(letters)
}

/// Puts a dead letter back on the stream with a fresh attempt count. `false` if there is no such letter.
pub async fn replay(redis: &Pool, keys: &Keyspace, id: Uuid) -> Result<bool, fred::error::Error> {
    let body: Option<String> = redis.next().hget(keys.webhooks_dead_letters(), id.to_string()).await?;
    let Some(letter) = body.and_then(|b| serde_json::from_str::<DeadLetter>(&b).ok()) else {
        return Ok(false);
    };
    append(redis, keys, &letter.notification, 0).await?;
    let removed: i64 = redis.next().hdel(keys.webhooks_dead_letters(), id.to_string()).await?;
    Ok(removed == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_order_keeps_one_partition_and_orders_spread_over_all() {
        assert_eq!(partition("order-1"), partition(&order_id_of(r#"{"order_id":"order-1","x":1}"#)));
        let used: std::collections::HashSet<usize> = (0..200).map(|i| partition(&format!("o-{i}"))).collect();
        assert_eq!(used.len(), STREAM_PARTITIONS);
        assert_eq!(partition(&order_id_of("not json")), partition(""));
    }
}
