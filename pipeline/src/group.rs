//! One consumer of a Redis stream's consumer group: read new entries, take over entries a dead consumer
//! left pending (XAUTOCLAIM), acknowledge. Shared by the order stream and the webhook stream.

use std::{collections::HashMap, time::Duration};

use fred::{
    clients::{Client, Pool},
    interfaces::{ClientLike, StreamsInterface},
    prelude::{Builder, Config, ReconnectPolicy},
    types::{Value, streams::XReadResponse},
};
use uuid::Uuid;

/// One stream entry: its id and its fields.
#[derive(Clone, Debug)]
pub struct Entry {
    pub id: String,
    pub fields: HashMap<String, String>,
}

impl Entry {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

pub struct GroupReader {
    client: Client,
    stream: String,
    group: &'static str,
    consumer: String,
    last_reclaim: std::sync::Mutex<tokio::time::Instant>,
}

/// How a consumer waits for and takes over entries.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    /// Most entries per batch.
    pub batch: u64,
    /// Longest wait for a new entry.
    pub block: Duration,
    /// An entry pending this long belongs to a consumer presumed dead and is taken over...
    pub reclaim_idle: Duration,
    /// ...checked this often.
    pub reclaim_every: Duration,
}

impl GroupReader {
    /// Connects a client of its own (a blocking read holds its connection) and creates the group (and the
    /// stream) if needed.
    pub async fn connect(redis_url: &str, stream: String, group: &'static str) -> anyhow::Result<Self> {
        let client = Builder::from_config(Config::from_url(redis_url)?)
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2))
            .build()?;
        client.init().await?;
        let created: Result<Value, _> = client.xgroup_create(&stream, group, "0", true).await;
        if let Err(e) = created
            && !e.details().contains("BUSYGROUP")
        {
            return Err(e.into());
        }
        let consumer = format!("{group}-{}", Uuid::new_v4().simple());
        Ok(GroupReader {
            client,
            stream,
            group,
            consumer,
            last_reclaim: std::sync::Mutex::new(tokio::time::Instant::now()),
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// The next batch: entries taken over from a dead consumer when it is time to look for them, else new
    /// entries. `None` once `shutdown` is cancelled; an empty batch after a failed read (logged, paused).
    pub async fn next_batch(
        &self,
        pace: Pace,
        shutdown: &tokio_util::sync::CancellationToken,
    ) -> Option<Vec<Entry>> {
        let reclaim_due = {
            let mut last = self.last_reclaim.lock().expect("reclaim clock");
            let due = last.elapsed() >= pace.reclaim_every;
            if due {
                *last = tokio::time::Instant::now();
            }
            due
        };
        if reclaim_due {
            match self.reclaim(pace.reclaim_idle, pace.batch).await {
                Ok(entries) if !entries.is_empty() => return Some(entries),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, stream = %self.stream, "reclaiming pending entries failed")
                }
            }
        }
        let read = tokio::select! {
            _ = shutdown.cancelled() => return None,
            r = self.read(pace.batch, pace.block) => r,
        };
        match read {
            Ok(entries) => Some(entries),
            Err(e) => {
                tracing::warn!(error = %e, stream = %self.stream, "reading the stream failed");
                tokio::time::sleep(Duration::from_millis(500)).await;
                Some(Vec::new())
            }
        }
    }

    /// New entries for this consumer: at most `count`, waiting up to `block` for the first.
    pub async fn read(&self, count: u64, block: Duration) -> Result<Vec<Entry>, fred::error::Error> {
        // Read as a raw value: a BLOCK that times out answers nil, which is "nothing new", not an error.
        let read: Value = self
            .client
            .xreadgroup(
                self.group,
                &self.consumer,
                Some(count),
                Some(block.as_millis() as u64),
                false,
                &self.stream,
                ">",
            )
            .await?;
        let mut response = match read {
            Value::Null => XReadResponse::default(),
            v => v.into_xread_response::<String, String, String, String>()?,
        };
        Ok(response
            .remove(&self.stream)
            .unwrap_or_default()
            .into_iter()
            .map(|(id, fields)| Entry { id, fields: fields.into_iter().collect() })
            .collect())
    }

    /// Takes over entries pending longer than `idle` (their consumer is presumed dead). Entries deleted
    /// from the stream while pending are acknowledged so they leave the pending list.
    pub async fn reclaim(&self, idle: Duration, count: u64) -> Result<Vec<Entry>, fred::error::Error> {
        let raw: Value = self
            .client
            .xautoclaim(
                &self.stream,
                self.group,
                &self.consumer,
                idle.as_millis() as u64,
                "0-0",
                Some(count),
                false,
            )
            .await?;
        let Value::Array(parts) = raw else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        if let Some(Value::Array(claimed)) = parts.get(1) {
            for entry in claimed {
                let Value::Array(pair) = entry else { continue };
                let Some(id) = pair.first().and_then(Value::as_string) else { continue };
                let mut fields = HashMap::new();
                if let Some(Value::Array(flat)) = pair.get(1) {
                    for kv in flat.chunks(2) {
                        if let (Some(k), Some(v)) =
                            (kv.first().and_then(Value::as_string), kv.get(1).and_then(Value::as_string))
                        {
                            fields.insert(k, v);
                        }
                    }
                }
                out.push(Entry { id, fields });
            }
        }
        if let Some(Value::Array(deleted)) = parts.get(2) {
            let ids: Vec<String> = deleted.iter().filter_map(Value::as_string).collect();
            if !ids.is_empty() {
                self.ack(&ids).await;
            }
        }
        if !out.is_empty() {
            tracing::info!(stream = %self.stream, entries = out.len(), "reclaimed entries from a stalled consumer");
        }
        Ok(out)
    }

    /// Acknowledges entries; a failure is logged, not fatal (the entries are reclaimed later and their
    /// effects are recorded idempotently).
    pub async fn ack(&self, ids: &[String]) {
        if ids.is_empty() {
            return;
        }
        let acked: Result<i64, _> = self.client.xack(&self.stream, self.group, ids.to_vec()).await;
        if let Err(e) = acked {
            tracing::warn!(error = %e, stream = %self.stream, "acknowledging entries failed");
        }
    }

    pub async fn quit(self) {
        let _ = self.client.quit().await;
    }
}

/// Appends one entry to `stream`, trimmed approximately at a million entries: far beyond any backlog
/// (the order and webhook streams both recover entries lost to trimming: from PostgreSQL, or by
/// Midtrans' retries and the reconciler). Returns the entry id.
pub async fn append(
    redis: &Pool,
    stream: String,
    fields: Vec<(&str, String)>,
) -> Result<String, fred::error::Error> {
    redis.next().xadd(stream, false, TRIM, "*", fields).await
}

/// Every stream is trimmed to about a million entries.
const TRIM: (&str, &str, i64) = ("MAXLEN", "~", 1_000_000);

/// [`append`] for many entries in one round trip (a pipeline: in a cluster, one per node), each entry to
/// the stream named beside it; one entry id or error per entry, in order.
pub async fn append_many(
    redis: &Pool,
    entries: Vec<(String, Vec<(&str, String)>)>,
) -> Vec<Result<String, fred::error::Error>> {
    if entries.is_empty() {
        return Vec::new();
    }
    let pipe = redis.next().pipeline();
    for (stream, fields) in entries {
        let _: Result<(), _> = pipe.xadd(stream, false, TRIM, "*", fields).await;
    }
    pipe.try_all().await
}

/// [`backlog`] summed over `streams` (the partitions of one stream), read concurrently.
pub async fn backlog_of_all(
    redis: &Pool,
    streams: impl IntoIterator<Item = String>,
    group: &str,
) -> Result<i64, fred::error::Error> {
    let streams: Vec<String> = streams.into_iter().collect();
    let each = futures::future::try_join_all(streams.iter().map(|s| backlog(redis, s, group))).await?;
    Ok(each.into_iter().sum())
}

/// Entries of `stream` not yet done by `group`: never delivered (the group's lag) plus delivered but not
/// acknowledged. Without the group yet, the stream's length; without the stream, 0.
pub async fn backlog(redis: &Pool, stream: &str, group: &str) -> Result<i64, fred::error::Error> {
    let groups: Value = match redis.next().xinfo_groups(stream).await {
        Ok(v) => v,
        Err(e) if e.details().contains("no such key") => return Ok(0),
        Err(e) => return Err(e),
    };
    let Value::Array(groups) = groups else { return Ok(0) };
    for fields in groups.into_iter().filter_map(fields_of) {
        if fields.get("name").and_then(Value::as_string).as_deref() == Some(group) {
            let n = |k: &str| fields.get(k).and_then(Value::as_i64).unwrap_or(0);
            return Ok(n("lag") + n("pending"));
        }
    }
    redis.next().xlen(stream).await
}

/// An entry delivered to a consumer and not acknowledged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingEntry {
    pub id: String,
    pub consumer: String,
    /// Milliseconds since it was last delivered.
    pub idle_ms: i64,
}

/// Up to `count` entries of `group` on `stream` pending for longer than `idle` (none when the stream or
/// the group does not exist).
pub async fn pending_longer_than(
    redis: &Pool,
    stream: &str,
    group: &str,
    idle: Duration,
    count: u64,
) -> Result<Vec<PendingEntry>, fred::error::Error> {
    let reply: Value =
        match redis.next().xpending(stream, group, (idle.as_millis() as u64, "-", "+", count)).await {
            Ok(v) => v,
            Err(e) if e.details().contains("no such key") || e.details().contains("NOGROUP") => {
                return Ok(Vec::new());
            }
            Err(e) => return Err(e),
        };
    let Value::Array(entries) = reply else { return Ok(Vec::new()) };
    Ok(entries
        .into_iter()
        .filter_map(|e| match e {
            Value::Array(f) if f.len() >= 3 => Some(PendingEntry {
                id: f[0].as_string()?,
                consumer: f[1].as_string()?,
                idle_ms: f[2].as_i64()?,
            }),
            _ => None,
        })
        .collect())
}

/// The fields of one `XINFO` reply entry (a map in RESP3, a flat array in RESP2).
fn fields_of(entry: Value) -> Option<HashMap<String, Value>> {
    match entry {
        Value::Map(m) => {
            Some(m.inner().into_iter().filter_map(|(k, v)| k.as_str().map(|k| (k.to_string(), v))).collect())
        }
        Value::Array(flat) => Some(
            flat.chunks(2).filter_map(|kv| Some((kv.first()?.as_string()?, kv.get(1)?.clone()))).collect(),
        ),
        _ => None,
    }
}
