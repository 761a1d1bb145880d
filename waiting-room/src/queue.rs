//! One event's waiting room in Redis: join, status, the opening draw, admission ticks.
//! Every multi-key step is one Lua script (`lua/*.lua`), so concurrent gateways and controllers see each
//! step whole.

use std::sync::Arc;

use fred::{
    clients::Pool,
    interfaces::{ClientLike, SetsInterface},
    types::scripts::Script,
};
use keyspace::Keyspace;
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub type RedisError = fred::error::Error;

/// Where a visitor stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Waiting for the opening draw.
    PreQueue,
    /// In line: `ahead` visitors (some may turn out to have left) are before it.
    Waiting {
        seq: i64,
        ahead: i64,
    },
    /// Admitted until `expires_ms`.
    Admitted {
        seq: i64,
        expires_ms: i64,
    },
    /// Its admission passed or it was skipped while away; joining again gives a new place.
    Left {
        seq: i64,
    },
    Unknown,
}

/// What one admission tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickOutcome {
    /// Sequence number of the last visitor taken off the head (admitted or skipped).
    pub admitted_through: i64,
    pub waiting: i64,
    pub active: i64,
    /// Visitors skipped because they were away longer than the grace period, since the start.
    pub left_total: i64,
    pub admitted_total: i64,
    /// (visitor, seq) admitted by this tick, in queue order.
    pub admitted: Vec<(Uuid, i64)>,
}

/// Live counters of one waiting room.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct QueueStats {
    pub waiting: i64,
    pub prequeue: i64,
    pub active: i64,
    pub admitted_through: i64,
    pub left_total: i64,
    pub admitted_total: i64,
}

/// Knobs of one tick, from the event's waiting-room settings.
#[derive(Debug, Clone, Copy)]
pub struct TickParams {
    pub now_ms: i64,
    pub rate_per_sec: i64,
    pub max_active: i64,
    pub grace_ms: i64,
    pub admission_ttl_ms: i64,
    pub paused: bool,
}

#[derive(Clone)]
pub struct Queue {
    redis: Pool,
    keys: Keyspace,
    scripts: Arc<Scripts>,
    /// Events whose opening draw this process knows is done (a draw happens once, so this only grows),
    /// and one lock so that a rush of joins at the opening runs the draw once per process, not once each.
    drawn: Arc<std::sync::Mutex<std::collections::HashSet<Uuid>>>,
    draw_lock: Arc<tokio::sync::Mutex<()>>,
}

struct Scripts {
    join: Script,
    status: Script,
    draw: Script,
    admit: Script,
}

/// Most queue entries one tick looks at (bounds the script's run time when many visitors left).
const MAX_SCAN: i64 = 20_000;

impl Queue {
    pub fn new(redis: Pool, keys: Keyspace) -> Self {
        Self {
            redis,
            keys,
            scripts: Arc::new(Scripts {
                join: Script::from_lua(include_str!("lua/join.lua")),
                status: Script::from_lua(include_str!("lua/status.lua")),
                draw: Script::from_lua(include_str!("lua/draw.lua")),
                admit: Script::from_lua(include_str!("lua/admit.lua")),
            }),
            drawn: Default::default(),
            draw_lock: Default::default(),
        }
    }

    /// Makes sure the event's opening draw is done; call once the sale has opened. A join right after the
    /// opening (or while the room is paused, or before any controller has ticked for the event) then gets
    /// its first-come-first-served place at once, behind everyone who arrived before the opening. Cheap
    /// after the first call: the answer is remembered.
    pub async fn ensure_drawn(&self, event: Uuid) -> Result<(), RedisError> {
        if self.drawn.lock().expect("drawn events").contains(&event) {
            return Ok(());
        }
        let _one_at_a_time = self.draw_lock.lock().await;
        if self.drawn.lock().expect("drawn events").contains(&event) {
            return Ok(());
        }
        if self.revealed_seed(event).await?.is_none()
            && let Some(placed) = self.draw(event).await?
        {
            tracing::info!(event_id = %event, placed, "opening draw done (at a join)");
        }
        let mut drawn = self.drawn.lock().expect("drawn events");
        if drawn.len() > 100_000 {
            drawn.clear(); // bounded whatever ids arrive; forgetting only costs one more look
        }
        drawn.insert(event);
        Ok(())
    }

    pub fn keys(&self) -> &Keyspace {
        &self.keys
    }

    pub fn redis(&self) -> &Pool {
        &self.redis
    }

    /// Joins (or rejoins) `visitor`: into the pre-queue until the event's opening draw, in line after it.
    pub async fn join(&self, event: Uuid, visitor: Uuid, now_ms: i64) -> Result<Standing, RedisError> {
        let (kind, seq): (String, i64) = self
            .scripts
            .join
            .evalsha_with_reload(
                self.redis.next(),
                self.keys.queue_keys(event),
                vec![visitor.to_string(), now_ms.to_string()],
            )
            .await?;
        Ok(match kind.as_str() {
            "pre_queue" => Standing::PreQueue,
            "admitted" => self.standing(event, visitor, now_ms).await?,
            _ => Standing::Waiting { seq, ahead: self.ahead(event, seq).await? },
        })
    }

    /// Where `visitor` stands now; also marks it present (a poll or socket counts as presence).
    pub async fn standing(&self, event: Uuid, visitor: Uuid, now_ms: i64) -> Result<Standing, RedisError> {
        let (kind, seq, n): (String, i64, i64) = self
            .scripts
            .status
            .evalsha_with_reload(
                self.redis.next(),
                self.keys.queue_keys(event),
                vec![visitor.to_string(), now_ms.to_string()],
            )
            .await?;
        Ok(match kind.as_str() {
            "pre_queue" => Standing::PreQueue,
            "waiting" => Standing::Waiting { seq, ahead: n },
            "admitted" => Standing::Admitted { seq, expires_ms: n },
            "left" => Standing::Left { seq },
            _ => Standing::Unknown,
        })
    }

    async fn ahead(&self, event: Uuid, seq: i64) -> Result<i64, RedisError> {
        use fred::interfaces::SortedSetsInterface;
        self.redis.next().zcount(self.keys.event_queue(event), f64::NEG_INFINITY, (seq - 1) as f64).await
    }

    /// Marks many visitors present at once (one command per call; the push hub batches its sockets).
    pub async fn touch(&self, event: Uuid, visitors: &[Uuid], now_ms: i64) -> Result<(), RedisError> {
        use fred::interfaces::SortedSetsInterface;
        if visitors.is_empty() {
            return Ok(());
        }
        let members: Vec<(f64, String)> = visitors.iter().map(|v| (now_ms as f64, v.to_string())).collect();
        let _: i64 =
            self.redis.next().zadd(self.keys.queue_seen(event), None, None, false, false, members).await?;
        Ok(())
    }

    /// The hash of the opening draw's seed, creating the seed on first call. Published before the sale so
    /// that, once the seed is revealed, anyone can check the draw used the seed fixed in advance.
    pub async fn seed_hash(&self, event: Uuid) -> Result<String, RedisError> {
        use fred::interfaces::HashesInterface;
        let key = self.keys.queue_draw(event);
        let seed = hex::encode(rand::random::<[u8; 32]>());
        let _: bool = self.redis.next().hsetnx(&key, "seed_secret", &seed).await?;
        let seed: String = self.redis.next().hget(&key, "seed_secret").await?;
        Ok(seed_hash(&seed))
    }

    /// The finished draw's record, `limit` participants from `offset`; `None` before the draw.
    pub async fn draw_record(
        &self,
        event: Uuid,
        offset: i64,
        limit: i64,
    ) -> Result<Option<DrawRecord>, RedisError> {
        use fred::interfaces::{HashesInterface, ListInterface};
        let c = self.redis.next();
        let fields: Vec<Option<String>> =
            c.hmget(self.keys.queue_draw(event), vec!["seed", "sorted"]).await?;
        let (Some(seed), sorted) = (fields[0].clone(), fields[1].clone()) else { return Ok(None) };
        let total: i64 = c.llen(self.keys.queue_drawn(event)).await?;
        let visitors: Vec<String> = if limit > 0 {
            c.lrange(self.keys.queue_drawn(event), offset, offset + limit - 1).await?
        } else {
            Vec::new()
        };
        Ok(Some(DrawRecord {
            seed,
            // Draws from before the count was recorded placed late joiners too; all count as sorted.
            sorted: sorted.and_then(|s| s.parse().ok()).unwrap_or(total),
            total,
            participants: visitors.iter().map(|v| participant(v)).collect(),
        }))
    }

    /// The revealed seed, once the draw is done.
    pub async fn revealed_seed(&self, event: Uuid) -> Result<Option<String>, RedisError> {
        use fred::interfaces::HashesInterface;
        self.redis.next().hget(self.keys.queue_draw(event), "seed").await
    }

    /// Runs the opening draw once: orders the pre-queue by [`draw_key`] of each visitor's [`participant`].
    /// Returns the number placed, or `None` if the draw had already been done.
    pub async fn draw(&self, event: Uuid) -> Result<Option<i64>, RedisError> {
        use fred::interfaces::HashesInterface;
        let _ = self.seed_hash(event).await?;
        let seed: String = self.redis.next().hget(self.keys.queue_draw(event), "seed_secret").await?;
        let members: Vec<String> = self.redis.next().smembers(self.keys.queue_prequeue(event)).await?;
        let mut order: Vec<(String, String)> =
            members.into_iter().map(|m| (draw_key(&seed, &participant(&m)), m)).collect();
        order.sort();
        let mut args = Vec::with_capacity(order.len() + 1);
        args.push(seed);
        args.extend(order.into_iter().map(|(_, m)| m));
        let placed: i64 = self
            .scripts
            .draw
            .evalsha_with_reload(self.redis.next(), self.keys.queue_keys(event), args)
            .await?;
        Ok((placed >= 0).then_some(placed))
    }

    /// One admission tick (see `lua/admit.lua`).
    pub async fn tick(&self, event: Uuid, p: TickParams) -> Result<TickOutcome, RedisError> {
        let raw: Vec<fred::types::Value> = self
            .scripts
            .admit
            .evalsha_with_reload(
                self.redis.next(),
                self.keys.queue_keys(event),
                vec![
                    p.now_ms.to_string(),
                    p.rate_per_sec.to_string(),
                    p.max_active.to_string(),
                    p.grace_ms.to_string(),
                    p.admission_ttl_ms.to_string(),
                    if p.paused { "1" } else { "0" }.to_owned(),
                    MAX_SCAN.to_string(),
                ],
            )
            .await?;
        let int = |i: usize| raw.get(i).and_then(|v| v.as_i64()).unwrap_or(0);
        let mut admitted = Vec::new();
        let mut i = 5;
        while i + 1 < raw.len() {
            if let (Some(v), Some(seq)) =
                (raw[i].as_string().and_then(|s| s.parse().ok()), raw[i + 1].as_i64())
            {
                admitted.push((v, seq));
            }
            i += 2;
        }
        Ok(TickOutcome {
            admitted_through: int(0),
            waiting: int(1),
            active: int(2),
            left_total: int(3),
            admitted_total: int(4),
            admitted,
        })
    }

    /// Counters for the admin's live view.
    pub async fn stats(&self, event: Uuid, now_ms: i64) -> Result<QueueStats, RedisError> {
        use fred::interfaces::{HashesInterface, SortedSetsInterface};
        let c = self.redis.next();
        let waiting: i64 = c.zcard(self.keys.event_queue(event)).await?;
        let active: i64 = c.zcount(self.keys.queue_active(event), now_ms as f64, f64::INFINITY).await?;
        let prequeue = self.prequeue_len(event).await?;
        let state: Vec<Option<i64>> =
            c.hmget(self.keys.queue_state(event), vec!["admitted_through", "left", "admitted_total"]).await?;
        let at = |i: usize| state.get(i).copied().flatten().unwrap_or(0);
        Ok(QueueStats {
            waiting,
            prequeue,
            active,
            admitted_through: at(0),
            left_total: at(1),
            admitted_total: at(2),
        })
    }

    /// Sequence numbers of `visitors` (None for those without one yet), in one command.
    pub async fn seqs(&self, event: Uuid, visitors: &[Uuid]) -> Result<Vec<Option<i64>>, RedisError> {
        use fred::interfaces::HashesInterface;
        if visitors.is_empty() {
            return Ok(Vec::new());
        }
        let fields: Vec<String> = visitors.iter().map(Uuid::to_string).collect();
        self.redis.next().hmget(self.keys.queue_visitors(event), fields).await
    }

    /// Number of visitors waiting for the opening draw.
    pub async fn prequeue_len(&self, event: Uuid) -> Result<i64, RedisError> {
        self.redis.next().scard(self.keys.queue_prequeue(event)).await
    }

    /// Is Redis reachable?
    pub async fn ping(&self) -> bool {
        self.redis.next().ping::<String>(None).await.is_ok()
    }
}

/// `hex(sha256(seed))`: what is published before the draw.
pub fn seed_hash(seed: &str) -> String {
    hex::encode(Sha256::digest(seed.as_bytes()))
}

/// How a visitor appears in the published draw: `hex(sha256("participant:" visitor))`, with the visitor id
/// in its hyphenated form. The visitor id stays private (it is what the visitor credential names), yet each
/// visitor can find itself in the list.
pub fn participant(visitor: &str) -> String {
    hex::encode(Sha256::digest(format!("participant:{visitor}").as_bytes()))
}

/// The sort key of one participant in the draw: `hex(sha256(seed ":" participant))`. Anyone holding the
/// revealed seed and the published participants can recompute the order (`scripts/verify-draw`).
pub fn draw_key(seed: &str, participant: &str) -> String {
    hex::encode(Sha256::digest(format!("{seed}:{participant}").as_bytes()))
}

/// The published record of a finished draw (one page of its participants).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrawRecord {
    pub seed: String,
    /// The first `sorted` participants were in the pre-queue when the draw read it and are in seed order;
    /// any after them joined during the draw and are in arrival order.
    pub sorted: i64,
    pub total: i64,
    /// Participant hashes from the requested offset, in queue order.
    pub participants: Vec<String>,
}
