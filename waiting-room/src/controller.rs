//! The admission controller: every tick, for every published event whose sale has not closed, it runs the
//! opening draw once the sale opens, admits from the head of the queue at the configured rate (never more
//! than `max_active` admitted at once, skipping visitors away longer than the grace period), and publishes
//! one [`Progress`] message with the event's live stock. Settings are read every tick, so an admin's change
//! applies within one tick. Any number of controllers may run: the draw and the admission budget live in
//! Redis scripts, so they never double-admit.

use std::{collections::HashMap, time::Duration};

use chrono::{DateTime, Utc};
use fred::interfaces::PubsubInterface;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    progress::{Admitted, Phase, Progress, Stock, StockLine},
    queue::{Queue, TickParams},
};

pub struct Controller {
    db: PgPool,
    queue: Queue,
    /// Checkout requests waiting for a worker at which admission stops altogether; from half of it the
    /// admission rate is scaled down (closed loop: admitted buyers are what fills the order stream).
    backlog_limit: i64,
}

/// Default for [`Controller::with_backlog_limit`].
pub const DEFAULT_BACKLOG_LIMIT: i64 = 20_000;

/// The admission rate to use when `backlog` checkout requests are waiting: full up to half the limit,
/// then falling linearly to zero at the limit.
pub fn throttled_rate(rate: i64, backlog: i64, limit: i64) -> i64 {
    let half = (limit / 2).max(1);
    if backlog <= half {
        return rate;
    }
    let room = (limit - backlog).max(0) as f64 / (limit - half).max(1) as f64;
    (rate as f64 * room).floor() as i64
}

struct OpenEvent {
    event_id: Uuid,
    sale_opens_at: Option<DateTime<Utc>>,
    admission_rate_per_sec: i32,
    max_active: i32,
    paused: bool,
    token_ttl_secs: i32,
    presence_grace_secs: i32,
}

impl Controller {
    pub fn new(db: PgPool, queue: Queue) -> Self {
        Self { db, queue, backlog_limit: DEFAULT_BACKLOG_LIMIT }
    }

    pub fn with_backlog_limit(mut self, limit: i64) -> Self {
        self.backlog_limit = limit.max(1);
        self
    }

    /// Ticks every `every` until `shutdown`; a tick in progress finishes first.
    pub async fn run(self, every: Duration, shutdown: CancellationToken) {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tracing::info!(tick_ms = every.as_millis() as u64, "admission controller started");
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = interval.tick() => {}
            }
            if let Err(e) = self.tick(Utc::now()).await {
                tracing::warn!(error = %e, "admission tick failed; retrying next tick");
            }
        }
        tracing::info!("admission controller stopped");
    }

    /// One tick over every open event; returns what was published.
    pub async fn tick(&self, now: DateTime<Utc>) -> anyhow::Result<Vec<Progress>> {
        let events = sqlx::query_as!(
            OpenEvent,
            r#"select s.event_id, e.sale_opens_at, s.admission_rate_per_sec, s.max_active, s.paused,
                      s.token_ttl_secs, s.presence_grace_secs
               from waiting_room_settings s join events e on e.id = s.event_id
               where e.status = 'published' and (e.sale_closes_at is null or e.sale_closes_at > $1)"#,
            now
        )
        .fetch_all(&self.db)
        .await?;
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let backlog = match pipeline::orders::backlog(self.queue.redis(), self.queue.keys()).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "order backlog unknown; admitting at the configured rate");
                0
            }
        };
        metrics::gauge!("order_backlog").set(backlog as f64);
        let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
        let mut stock = load_stock(&self.db, &ids).await?;
        let now_ms = now.timestamp_millis();
        let mut published = Vec::with_capacity(events.len());
        for e in events {
            let stock = stock.remove(&e.event_id).unwrap_or_default();
            self.refresh_counters(e.event_id, &stock).await?;
            let progress = self.tick_event(&e, now, now_ms, stock, backlog).await?;
            let message = serde_json::to_string(&progress)?;
            let _: i64 =
                self.queue.redis().next().publish(self.queue.keys().ticks_channel(), message).await?;
            metrics::counter!("admissions_total").increment(progress.admitted.len() as u64);
            published.push(progress);
        }
        Ok(published)
    }

    /// Rewrites the event's Redis stock counters from PostgreSQL's figures, so the gateways' early
    /// "sold out" answers follow the truth within one tick, whatever drift happened.
    async fn refresh_counters(&self, event: Uuid, stock: &Stock) -> anyhow::Result<()> {
        use fred::interfaces::HashesInterface;
        let fields: Vec<(String, i64)> = stock
            .ticket_categories
            .iter()
            .chain(&stock.merchandise)
            .map(|l| (l.id.to_string(), l.remaining))
            .collect();
        if !fields.is_empty() {
            let _: i64 = self.queue.redis().next().hset(self.queue.keys().event_stock(event), fields).await?;
        }
        Ok(())
    }

    async fn tick_event(
        &self,
        e: &OpenEvent,
        now: DateTime<Utc>,
        now_ms: i64,
        stock: Stock,
        backlog: i64,
    ) -> anyhow::Result<Progress> {
        let opened = e.sale_opens_at.is_none_or(|t| t <= now);
        let seed_hash = Some(self.queue.seed_hash(e.event_id).await?);
        let mut progress = Progress {
            event: e.event_id,
            at_ms: now_ms,
            phase: if opened { Phase::Open } else { Phase::PreSale },
            paused: e.paused,
            sale_opens_at: e.sale_opens_at,
            seed_hash,
            seed: None,
            prequeue: 0,
            admitted_through: 0,
            waiting: 0,
            active: 0,
            left_total: 0,
            admitted_total: 0,
            rate_per_sec: i64::from(e.admission_rate_per_sec),
            admitted: Vec::new(),
            stock,
        };
        if opened {
            progress.seed = self.queue.revealed_seed(e.event_id).await?;
            if progress.seed.is_none() {
                if let Some(placed) = self.queue.draw(e.event_id).await? {
                    tracing::info!(event_id = %e.event_id, placed, "opening draw done");
                }
                progress.seed = self.queue.revealed_seed(e.event_id).await?;
            }
        }
        // Ticks run before the opening too (with a zero budget) to keep the bucket state fresh.
        let ttl_ms = i64::from(e.token_ttl_secs) * 1000;
        let outcome = self
            .queue
            .tick(
                e.event_id,
                TickParams {
                    now_ms,
                    rate_per_sec: throttled_rate(
                        i64::from(e.admission_rate_per_sec),
                        backlog,
                        self.backlog_limit,
                    ),
                    max_active: i64::from(e.max_active),
                    grace_ms: i64::from(e.presence_grace_secs) * 1000,
                    admission_ttl_ms: ttl_ms,
                    paused: e.paused || !opened || progress.stock.sold_out,
                },
            )
            .await?;
        progress.prequeue = self.queue.prequeue_len(e.event_id).await?;
        progress.admitted_through = outcome.admitted_through;
        progress.waiting = outcome.waiting;
        progress.active = outcome.active;
        progress.left_total = outcome.left_total;
        progress.admitted_total = outcome.admitted_total;
        progress.admitted = outcome
            .admitted
            .into_iter()
            .map(|(visitor, seq)| Admitted { visitor, seq, expires_ms: now_ms + ttl_ms })
            .collect();
        Ok(progress)
    }
}

/// Remaining stock of every ticket category and merchandise item of `events`, in one query.
pub async fn load_stock(db: &PgPool, events: &[Uuid]) -> Result<HashMap<Uuid, Stock>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"select event_id as "event_id!", id as "id!", greatest(quota - sold - held, 0)::bigint as "remaining!",
                  true as "ticket!"
           from ticket_categories where event_id = any($1)
           union all
           select event_id as "event_id!", id as "id!", greatest(stock - sold - held, 0)::bigint, false
           from merchandise where event_id = any($1)
           order by 1, 4 desc, 2"#,
        events
    )
    .fetch_all(db)
    .await?;
    let mut out: HashMap<Uuid, Stock> = HashMap::new();
    for r in rows {
        let s = out.entry(r.event_id).or_default();
        let line = StockLine { id: r.id, remaining: r.remaining };
        if r.ticket {
            s.tickets_remaining += r.remaining;
            s.ticket_categories.push(line);
        } else {
            s.merchandise.push(line);
        }
    }
    for s in out.values_mut() {
        s.sold_out = !s.ticket_categories.is_empty() && s.tickets_remaining == 0;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::throttled_rate;

    #[test]
    fn admission_slows_as_the_order_backlog_grows() {
        assert_eq!(throttled_rate(100, 0, 1000), 100);
        assert_eq!(throttled_rate(100, 500, 1000), 100);
        assert_eq!(throttled_rate(100, 750, 1000), 50);
        assert_eq!(throttled_rate(100, 1000, 1000), 0);
        assert_eq!(throttled_rate(100, 5000, 1000), 0);
    }
}
