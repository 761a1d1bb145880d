//! The order stream: gateways append accepted checkout requests; workers read them as one consumer group
//! (`checkout`) in bounded batches, allocate each batch in one transaction, and acknowledge only after the
//! commit. An entry left pending by a worker that died is reclaimed (XAUTOCLAIM) and decided once: the
//! request row in PostgreSQL, not the stream, records the decision. A request whose entry was lost (a
//! Redis restart) is appended again from PostgreSQL by [`requeue_orphans`] after [`ORPHAN_AGE`]. The entry, its append and the
//! published result are the processes' contract, in [`pipeline::orders`].

use std::time::Duration;

use chrono::Utc;
use fred::{
    clients::{Client, Pool},
    interfaces::PubsubInterface,
};
use keyspace::{Keyspace, STREAM_PARTITIONS};
use pipeline::{
    group::{Entry, GroupReader, Pace},
    orders::{CheckoutRequest, FIELD, GROUP, OrderResult, append},
    states::{Reason, RequestStatus},
};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::allocation::{Decision, Outcome, allocate};

/// A queued request older than this with no decision is appended to the stream again (by default; the
/// worker's `ORDER_ORPHAN_AGE_MS`).
pub const ORPHAN_AGE: Duration = Duration::from_secs(60);
/// After this many appends without a decision a request is rejected rather than retried forever.
const MAX_ATTEMPTS: i32 = 5;

impl From<&Decision> for OrderResult {
    fn from(d: &Decision) -> Self {
        let (status, order_id, reason) = match &d.outcome {
            Outcome::Confirmed { order_id } => (RequestStatus::Confirmed, Some(*order_id), None),
            Outcome::Rejected { reason } => (RequestStatus::Rejected, None, Some(*reason)),
        };
        OrderResult {
            event: d.event_id,
            visitor: d.visitor_id,
            user: d.user_id,
            request_id: d.request_id,
            status,
            order_id,
            reason,
        }
    }
}

/// Settings of one consumer.
#[derive(Clone, Debug)]
pub struct ConsumerSettings {
    pub batch: u64,
    pub hold: chrono::Duration,
    /// An entry pending this long belongs to a worker presumed dead and is taken over.
    pub reclaim_idle: Duration,
    /// How often to look for such entries.
    pub reclaim_every: Duration,
}

impl ConsumerSettings {
    pub fn new(batch: u64, hold: chrono::Duration) -> Self {
        Self { batch, hold, reclaim_idle: Duration::from_secs(30), reclaim_every: Duration::from_secs(10) }
    }

    /// Reclaims entries pending `idle`, looking every third of it (at most every 10 s).
    pub fn reclaiming_after(self, idle: Duration) -> Self {
        Self { reclaim_idle: idle, reclaim_every: (idle / 3).min(Duration::from_secs(10)), ..self }
    }
}

/// Reads, allocates and acknowledges batches until `shutdown`, on every partition of the order stream at
/// once (one reader each: a blocking read holds its connection, and in a cluster the partitions live on
/// different nodes); the batch in hand is finished first.
pub async fn run_consumer(
    db: PgPool,
    redis_url: String,
    keys: Keyspace,
    settings: ConsumerSettings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let readers = futures::future::try_join_all(
        (0..STREAM_PARTITIONS).map(|p| GroupReader::connect(&redis_url, keys.orders_stream(p), GROUP)),
    )
    .await?;
    tracing::info!(
        consumer = %readers[0].consumer(),
        partitions = readers.len(),
        batch = settings.batch,
        "order consumer started"
    );
    let pace = Pace {
        batch: settings.batch,
        block: Duration::from_secs(1),
        reclaim_idle: settings.reclaim_idle,
        reclaim_every: settings.reclaim_every,
    };
    futures::future::join_all(readers.into_iter().map(|reader| {
        let (db, keys, settings, shutdown) = (&db, &keys, &settings, &shutdown);
        async move {
            while !shutdown.is_cancelled() {
                let Some(entries) = reader.next_batch(pace, shutdown).await else { break };
                if !entries.is_empty() {
                    process(db, &reader, keys, &entries, settings).await;
                }
            }
            reader.quit().await;
        }
    }))
    .await;
    tracing::info!("order consumer stopped");
    Ok(())
}

/// Allocates one batch, retrying transient failures; a batch that keeps failing is split so one bad
/// entry cannot stall the stream. Acknowledges only what was committed.
async fn process(
    db: &PgPool,
    reader: &GroupReader,
    keys: &Keyspace,
    entries: &[Entry],
    settings: &ConsumerSettings,
) {
    let mut batch: Vec<(String, CheckoutRequest)> = Vec::with_capacity(entries.len());
    let mut unreadable = Vec::new();
    for entry in entries {
        match entry.field(FIELD).map(serde_json::from_str::<CheckoutRequest>) {
            Some(Ok(r)) => batch.push((entry.id.clone(), r)),
            // Nothing to decide in it; its request (if any) is re-queued from PostgreSQL.
            _ => unreadable.push(entry.id.clone()),
        }
    }
    if !unreadable.is_empty() {
        tracing::warn!(
            entries = unreadable.len(),
            "unreadable order stream entries acknowledged and skipped"
        );
        reader.ack(&unreadable).await;
    }
    let requests: Vec<CheckoutRequest> = batch.iter().map(|(_, r)| r.clone()).collect();
    let ids: Vec<String> = batch.iter().map(|(id, _)| id.clone()).collect();
    if requests.is_empty() {
        return;
    }
    let mut decisions = None;
    for attempt in 0..3u32 {
        match allocate(db, &requests, Utc::now(), settings.hold).await {
            Ok(d) => {
                decisions = Some(d);
                break;
            }
            Err(e) => {
                tracing::warn!(error = %e, attempt, size = requests.len(), "batch allocation failed");
                tokio::time::sleep(Duration::from_millis(100 * 2u64.pow(attempt))).await;
            }
        }
    }
    let decisions = match decisions {
        Some(d) => d,
        None if requests.len() > 1 => {
            // Split: decide every request alone; only the ones that fail alone stay pending.
            let mut all = Vec::new();
            for (entry, r) in &batch {
                match allocate(db, std::slice::from_ref(r), Utc::now(), settings.hold).await {
                    Ok(d) => {
                        all.extend(d);
                        reader.ack(std::slice::from_ref(entry)).await;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, request = %r.request_id, "request failed alone; left pending")
                    }
                }
            }
            publish(reader.client(), keys, &all).await;
            return;
        }
        None => return, // left pending: reclaimed later, or rejected by the orphan pass after MAX_ATTEMPTS
    };
    reader.ack(&ids).await;
    metrics::counter!("orders_decided_total").increment(decisions.len() as u64);
    publish(reader.client(), keys, &decisions).await;
}

async fn publish(client: &Client, keys: &Keyspace, decisions: &[Decision]) {
    if decisions.is_empty() {
        return;
    }
    // One round trip for the whole batch.
    let pipeline = client.pipeline();
    for d in decisions {
        let message = serde_json::to_string(&OrderResult::from(d)).expect("results serialise");
        let queued: Result<(), _> = pipeline.publish(keys.order_results_channel(), message).await;
        if let Err(e) = queued {
            tracing::warn!(error = %e, "queueing an order result failed");
        }
    }
    let sent: Result<Vec<fred::types::Value>, _> = pipeline.all().await;
    if let Err(e) = sent {
        tracing::warn!(error = %e, "publishing order results failed (buyers still see them by polling)");
    }
}

/// Appends again every request still queued after `age` (its entry was lost, or its worker is stuck);
/// after [`MAX_ATTEMPTS`] it is rejected so the buyer gets an answer. Returns how many.
pub async fn requeue_orphans(
    db: &PgPool,
    redis: &Pool,
    keys: &Keyspace,
    age: Duration,
) -> anyhow::Result<usize> {
    let mut tx = db.begin().await?;
    let rows = sqlx::query!(
        r#"update order_requests set attempts = attempts + 1
           where id in (select id from order_requests
                        where status = 'queued' and created_at < now() - make_interval(secs => $1)
                        order by created_at limit 500 for update skip locked)
           returning id, user_id, event_id, items, attempts"#,
        age.as_secs_f64()
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut given_up = Vec::new();
    let mut again = Vec::new();
    for r in rows {
        if r.attempts > MAX_ATTEMPTS {
            given_up.push(r.id);
        } else if let Ok(items) = serde_json::from_value(r.items) {
            again.push(CheckoutRequest { request_id: r.id, user_id: r.user_id, event_id: r.event_id, items });
        } else {
            given_up.push(r.id);
        }
    }
    if !given_up.is_empty() {
        // Dead letters: kept in Redis for operators, with the reason; the buyer is answered `rejected`.
        use fred::interfaces::ListInterface;
        let letters: Vec<String> = given_up
            .iter()
            .map(|id| {
                serde_json::json!({ "request_id": id, "reason": Reason::InternalError, "at": Utc::now() })
                    .to_string()
            })
            .collect();
        let pushed: Result<i64, _> = redis.next().lpush(keys.orders_dead_letters(), letters).await;
        if let Err(e) = pushed {
            tracing::warn!(error = %e, "recording dead letters failed");
        }
        sqlx::query!(
            "update order_requests set status = $2, reason = $3, decided_at = now() where id = any($1)",
            &given_up,
            RequestStatus::Rejected as _,
            Reason::InternalError as _
        )
        .execute(&mut *tx)
        .await?;
        tracing::error!(requests = given_up.len(), "requests rejected after repeated failures");
    }
    tx.commit().await?;
    for r in &again {
        append(redis, keys, r).await?;
    }
    Ok(again.len() + given_up.len())
}
