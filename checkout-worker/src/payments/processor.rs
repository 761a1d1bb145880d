//! The webhook stream: gateways append each verified Midtrans notification (raw) and answer Midtrans at
//! once; workers apply them as one consumer group (`webhooks`), one transaction per notification, and
//! acknowledge after the commit.
//!
//! A notification whose application fails is scheduled again in `webhooks:retry` (a sorted set scored by
//! the due time) with exponential backoff and jitter, and moved back onto the stream when due. After
//! `max_attempts` it lands in `webhooks:dead` (a hash by letter id, with the last error), which admins list
//! and replay. Entries left pending by a worker that died are reclaimed; applying twice is harmless (see
//! [`super::apply`]).

use std::time::Duration;

use chrono::Utc;
use fred::{
    clients::Pool,
    interfaces::{HashesInterface, SortedSetsInterface},
};
use futures::StreamExt;
use keyspace::{Keyspace, STREAM_PARTITIONS};
use midtrans::Notification;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::apply::{Effect, apply};
use pipeline::group::{Entry, GroupReader, Pace};

use pipeline::webhooks::{ATTEMPTS, DeadLetter, FIELD, GROUP, append};

#[derive(Clone, Debug)]
pub struct ProcessorSettings {
    pub batch: u64,
    /// Notifications of one batch applied at the same time (each in its own transaction; two for the
    /// same order serialise on its row lock, and the state machine makes their order irrelevant).
    pub concurrency: usize,
    /// Attempts before a notification is dead-lettered.
    pub max_attempts: u32,
    /// Delay before the first retry; doubled each attempt, with up to 50 % jitter, capped at `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    pub reclaim_idle: Duration,
    pub reclaim_every: Duration,
}

impl Default for ProcessorSettings {
    fn default() -> Self {
        ProcessorSettings {
            batch: 50,
            concurrency: 4,
            max_attempts: 8,
            base_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            reclaim_idle: Duration::from_secs(30),
            reclaim_every: Duration::from_secs(10),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Retry {
    notification: String,
    attempts: u32,
    /// Keeps two identical notifications apart in the sorted set.
    nonce: Uuid,
}

/// Reads and applies notifications until `shutdown`, moving due retries back onto the stream.
pub async fn run_processor(
    db: PgPool,
    redis_url: String,
    redis: Pool,
    keys: Keyspace,
    settings: ProcessorSettings,
    midtrans: Option<midtrans::Client>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let readers = futures::future::try_join_all(
        (0..STREAM_PARTITIONS).map(|p| GroupReader::connect(&redis_url, keys.webhooks_stream(p), GROUP)),
    )
    .await?;
    tracing::info!(consumer = %readers[0].consumer(), partitions = readers.len(), "webhook processor started");
    let pace = Pace {
        batch: settings.batch,
        block: Duration::from_millis(500),
        reclaim_idle: settings.reclaim_idle,
        reclaim_every: settings.reclaim_every,
    };
    let (db, redis, keys, settings, shutdown) = (&db, &redis, &keys, &settings, &shutdown);
    let midtrans = midtrans.as_ref();
    futures::future::join_all(readers.into_iter().enumerate().map(|(partition, reader)| async move {
        while !shutdown.is_cancelled() {
            // One partition's loop moves due retries back (each to its own order's partition).
            if partition == 0
                && let Err(e) = requeue_due(redis, keys).await
            {
                tracing::warn!(error = %e, "moving due webhook retries failed");
            }
            let Some(entries) = reader.next_batch(pace, shutdown).await else { break };
            // Different orders in parallel; one order's notifications one after another, in arrival order.
            futures::stream::iter(by_order(&entries))
                .for_each_concurrent(settings.concurrency.max(1), |group| {
                    let reader = &reader;
                    async move {
                        for received in &group {
                            handle(db, redis, keys, reader, received, settings, midtrans).await;
                        }
                    }
                })
                .await;
        }
        reader.quit().await;
    }))
    .await;
    tracing::info!("webhook processor stopped");
    Ok(())
}

/// One stream entry, read once: the raw notification, its attempt count, and the parsed notification (or
/// why it cannot be read).
struct Received<'a> {
    entry: &'a Entry,
    raw: &'a str,
    attempts: u32,
    parsed: Result<(Notification, serde_json::Value), String>,
}

impl<'a> Received<'a> {
    fn read(entry: &'a Entry) -> Self {
        let raw = entry.field(FIELD).unwrap_or_default();
        let parsed = serde_json::from_str::<serde_json::Value>(raw)
            .and_then(|v| serde_json::from_value::<Notification>(v.clone()).map(|n| (n, v)))
            .map_err(|e| e.to_string());
        let attempts = entry.field(ATTEMPTS).and_then(|a| a.parse().ok()).unwrap_or(0);
        Received { entry, raw, attempts, parsed }
    }

    fn order_id(&self) -> Option<&str> {
        self.parsed.as_ref().ok().map(|(n, _)| n.order_id.as_str()).filter(|o| !o.is_empty())
    }
}

/// The entries grouped by Midtrans order id, groups and entries in arrival order (unreadable entries
/// each on their own).
fn by_order(entries: &[Entry]) -> Vec<Vec<Received<'_>>> {
    let mut groups: Vec<Vec<Received<'_>>> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for received in entries.iter().map(Received::read) {
        match received.order_id().map(|o| (index.get(o).copied(), o.to_owned())) {
            Some((Some(i), _)) => groups[i].push(received),
            Some((None, order)) => {
                index.insert(order, groups.len());
                groups.push(vec![received]);
            }
            None => groups.push(vec![received]),
        }
    }
    groups
}

/// Applies one entry; on failure schedules a retry or dead-letters it. The entry is acknowledged only once
/// its fate is recorded (applied, scheduled or dead-lettered).
async fn handle(
    db: &PgPool,
    redis: &Pool,
    keys: &Keyspace,
    reader: &GroupReader,
    received: &Received<'_>,
    settings: &ProcessorSettings,
    midtrans: Option<&midtrans::Client>,
) {
    let (entry, raw, attempts) = (received.entry, received.raw, received.attempts);
    let (notification, value) = match &received.parsed {
        Ok(p) => p,
        Err(e) => {
            // Cannot become readable by retrying: straight to the dead letters.
            if dead_letter(redis, keys, raw, None, attempts + 1, &format!("unreadable: {e}")).await.is_ok() {
                reader.ack(std::slice::from_ref(&entry.id)).await;
            }
            return;
        }
    };
    let started = std::time::Instant::now();
    let outcome = match confirm(midtrans, notification, value).await {
        Ok((truth, truth_raw)) => apply(db, &truth, &truth_raw, Utc::now())
            .await
            .map(|effect| (effect, truth))
            .map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    match outcome {
        Ok((effect, truth)) => {
            metrics::histogram!("webhook_apply_seconds").record(started.elapsed().as_secs_f64());
            if effect == Effect::UnknownOrder {
                tracing::warn!(midtrans_order_id = %notification.order_id, "notification for an unknown order");
            }
            tracing::info!(
                midtrans_order_id = %notification.order_id,
                notified = %notification.transaction_status,
                transaction_status = %truth.transaction_status,
                effect = effect.as_str(),
                "notification applied"
            );
            reader.ack(std::slice::from_ref(&entry.id)).await;
        }
        Err(error) => {
            let attempts = attempts + 1;
            let recorded = if attempts >= settings.max_attempts {
                tracing::error!(
                    midtrans_order_id = %notification.order_id, attempts, error = %error,
                    "notification failed every attempt; dead-lettered"
                );
                dead_letter(redis, keys, raw, Some(notification), attempts, &error).await
            } else {
                tracing::warn!(
                    midtrans_order_id = %notification.order_id, attempts, error = %error,
                    "applying a notification failed; retrying later"
                );
                schedule_retry(redis, keys, raw, attempts, backoff(settings, attempts)).await
            };
            match recorded {
                Ok(()) => reader.ack(std::slice::from_ref(&entry.id)).await,
                // Left pending: reclaimed and tried again later.
                Err(e) => tracing::warn!(error = %e, "recording a failed notification failed"),
            }
        }
    }
}

/// What to apply for a verified notification. The signature covers only the order id, status code and
/// amount, so, as Midtrans recommends, the transaction's state is read back with GET status and that
/// answer is applied (recorded together with the notification). Without a client, or when Midtrans does
/// not know the transaction, the signed notification itself stands. `Err`: Midtrans did not answer; the
/// notification is tried again later.
async fn confirm(
    midtrans: Option<&midtrans::Client>,
    n: &Notification,
    raw: &serde_json::Value,
) -> Result<(Notification, serde_json::Value), String> {
    let Some(client) = midtrans else { return Ok((n.clone(), raw.clone())) };
    match client.status(&n.order_id).await {
        Ok(Some(status)) => {
            let answer = serde_json::to_value(&status).unwrap_or_default();
            Ok((status, serde_json::json!({ "notification": raw, "status": answer })))
        }
        Ok(None) => Ok((n.clone(), raw.clone())),
        Err(e) if e.is_transient() => Err(format!("Midtrans status check: {e}")),
        Err(e) => {
            tracing::warn!(error = %e, midtrans_order_id = %n.order_id, "status check refused; applying the signed notification");
            Ok((n.clone(), raw.clone()))
        }
    }
}

/// Exponential backoff with up to 50 % random jitter, capped.
fn backoff(settings: &ProcessorSettings, attempts: u32) -> Duration {
    let exp = settings.base_backoff.saturating_mul(2u32.saturating_pow(attempts.saturating_sub(1)));
    let capped = exp.min(settings.max_backoff);
    let jitter = rand::rng().random_range(0.0..0.5);
    capped.mul_f64(1.0 + jitter)
}

async fn schedule_retry(
    redis: &Pool,
    keys: &Keyspace,
    raw: &str,
    attempts: u32,
    after: Duration,
) -> Result<(), fred::error::Error> {
    let due = Utc::now().timestamp_millis() + after.as_millis() as i64;
    let member =
        serde_json::to_string(&Retry { notification: raw.to_owned(), attempts, nonce: Uuid::new_v4() })
            .expect("serialises");
    let _: i64 =
        redis.next().zadd(keys.webhooks_retry(), None, None, false, false, (due as f64, member)).await?;
    Ok(())
}

/// Moves retries that are due back onto the stream. Two workers moving the same retry append it twice,
/// which is harmless (notifications are applied once).
pub async fn requeue_due(redis: &Pool, keys: &Keyspace) -> Result<usize, fred::error::Error> {
    let now = Utc::now().timestamp_millis() as f64;
    let due: Vec<String> = redis
        .next()
        .zrangebyscore(keys.webhooks_retry(), f64::NEG_INFINITY, now, false, Some((0, 100)))
        .await?;
    for member in &due {
        if let Ok(retry) = serde_json::from_str::<Retry>(member) {
            append(redis, keys, &retry.notification, retry.attempts).await?;
        }
        let _: i64 = redis.next().zrem(keys.webhooks_retry(), member.clone()).await?;
    }
    Ok(due.len())
}

async fn dead_letter(
    redis: &Pool,
    keys: &Keyspace,
    raw: &str,
    notification: Option<&Notification>,
    attempts: u32,
    error: &str,
) -> Result<(), fred::error::Error> {
    let letter = DeadLetter {
        id: Uuid::now_v7(),
        midtrans_order_id: notification.map(|n| n.order_id.clone()),
        transaction_status: notification.map(|n| n.transaction_status.clone()),
        notification: raw.to_owned(),
        attempts,
        last_error: error.chars().take(500).collect(),
        failed_at: Utc::now(),
    };
    let body = serde_json::to_string(&letter).expect("serialises");
    let _: i64 = redis.next().hset(keys.webhooks_dead_letters(), (letter.id.to_string(), body)).await?;
    metrics::counter!("webhook_dead_letters_total").increment(1);
    Ok(())
}
