//! The Redis half of the audit: the live stock counters against PostgreSQL, and the order and webhook
//! streams' unacknowledged entries against their consumers.

use std::{collections::HashMap, time::Duration};

use fred::{clients::Pool, interfaces::HashesInterface};
use keyspace::{Keyspace, STREAM_PARTITIONS};
use pipeline::{group::pending_longer_than, states::EventStatus};
use sqlx::PgPool;
use uuid::Uuid;

use super::{Report, Tolerances};

pub async fn check(
    db: &PgPool,
    redis: &Pool,
    keys: &Keyspace,
    allow: &Tolerances,
    report: &mut Report,
) -> anyhow::Result<()> {
    stock_counters(db, redis, keys, allow.stock_recheck, report).await?;
    streams(redis, keys, allow.stale_pending, report).await?;
    Ok(())
}

/// Every counter of an event on sale is at most the units PostgreSQL has left: a counter that promises
/// more would let the gateways queue requests that can only be refused. (Lower is harmless: the worker
/// decides, and the next tick corrects it.)
async fn stock_counters(
    db: &PgPool,
    redis: &Pool,
    keys: &Keyspace,
    recheck: Duration,
    report: &mut Report,
) -> anyhow::Result<()> {
    let (first, examined) = above(db, redis, keys).await?;
    // Only what is still too high after a tick counts (read again, with the values of the second read).
    let suspects = if first.is_empty() {
        first
    } else {
        tokio::time::sleep(recheck).await;
        let (again, _) = above(db, redis, keys).await?;
        again.into_iter().filter(|(k, _)| first.contains_key(k)).collect()
    };
    let mut findings: Vec<String> = suspects
        .into_iter()
        .map(|((event, product), (counter, left))| {
            format!("event {event}, product {product}: Redis counts {counter} left, PostgreSQL {left}")
        })
        .collect();
    findings.sort();
    report.add("stock_counters", examined, findings);
    Ok(())
}

type Above = HashMap<(Uuid, Uuid), (i64, i64)>;

/// The counters of events on sale that exceed PostgreSQL's remaining units, and how many were read.
async fn above(db: &PgPool, redis: &Pool, keys: &Keyspace) -> anyhow::Result<(Above, i64)> {
    let rows: Vec<(Uuid, Uuid, i64)> = sqlx::query_as(
        r#"select c.event_id, c.id, greatest(c.quota - c.sold - c.held, 0)::bigint
           from ticket_categories c join events e on e.id = c.event_id
           where e.status = $1 and (e.sale_closes_at is null or e.sale_closes_at > now())
           union all
           select m.event_id, m.id, greatest(m.stock - m.sold - m.held, 0)::bigint
           from merchandise m join events e on e.id = m.event_id
           where e.status = $1 and (e.sale_closes_at is null or e.sale_closes_at > now())"#,
    )
    .bind(EventStatus::Published.as_str())
    .fetch_all(db)
    .await?;
    let mut by_event: HashMap<Uuid, Vec<(Uuid, i64)>> = HashMap::new();
    for (event, product, left) in rows {
        by_event.entry(event).or_default().push((product, left));
    }
    let (mut out, mut examined) = (Above::new(), 0);
    for (event, products) in by_event {
        let counters: HashMap<String, i64> = redis.next().hgetall(keys.event_stock(event)).await?;
        for (product, left) in products {
            let Some(&counter) = counters.get(&product.to_string()) else { continue };
            examined += 1;
            if counter > left {
                out.insert((event, product), (counter, left));
            }
        }
    }
    Ok((out, examined))
}

/// In every partition of both streams, no entry stays delivered and unacknowledged for long: a live
/// worker finishes its batch within seconds, and the entries of a worker that died are reclaimed by
/// another after 30 s idle (workers try every 10 s). An entry pending for longer than `stale` is held by
/// a dead consumer with no live worker left to reclaim it, or reclaiming is broken.
async fn streams(redis: &Pool, keys: &Keyspace, stale: Duration, report: &mut Report) -> anyhow::Result<()> {
    let (mut findings, mut examined) = (Vec::new(), 0);
    let partitions = (0..STREAM_PARTITIONS)
        .map(|p| (keys.orders_stream(p), pipeline::orders::GROUP))
        .chain((0..STREAM_PARTITIONS).map(|p| (keys.webhooks_stream(p), pipeline::webhooks::GROUP)));
    for (stream, group) in partitions {
        examined += pipeline::group::backlog(redis, &stream, group).await?;
        let stuck = pending_longer_than(redis, &stream, group, stale, 10).await?;
        findings.extend(stuck.into_iter().map(|e| {
            format!(
                "{stream}: entry {} held by {} unacknowledged for {} s (group {group}): no live worker reclaimed it",
                e.id,
                e.consumer,
                e.idle_ms / 1000
            )
        }));
    }
    report.add("streams", examined, findings);
    Ok(())
}
