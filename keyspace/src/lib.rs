//! Redis for every process: the key layout (every key, stream and channel is named here and nowhere
//! else) and the connection pool ([`connect`]).
//!
//! # Layout
//!
//! Every name starts with a deployment prefix (`REDIS_KEY_PREFIX`, default `qc:`), so that several
//! deployments, and every test, can share one Redis without seeing each other's keys. Keys that belong to
//! one event carry the hash tag `{event:<id>}` so that the whole family lives on one Redis Cluster slot and
//! multi-key Lua scripts over it stay legal in a cluster.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `rl:{scope}:{subject}` | string | the GCRA "theoretical arrival time" of one rate-limited subject |
//! | `{event:E}:queue` | sorted set | waiting visitors (member: visitor id, score: sequence number) |
//! | `{event:E}:seq` | string | last sequence number handed out (INCR) |
//! | `{event:E}:visitors` | hash | visitor id → sequence number, so a rejoin keeps its place |
//! | `{event:E}:prequeue` | set | visitors who arrived before the sale opened, awaiting the draw |
//! | `{event:E}:draw` | hash | the pre-queue draw: `seed_secret` (kept until the draw), then `seed` (revealed), `drawn`, `placed`, `sorted` |
//! | `{event:E}:drawn` | list | visitor ids in the order the draw placed them (published as participant hashes) |
//! | `{event:E}:seen` | sorted set | visitor id → last time (ms) a socket or poll showed the visitor present |
//! | `{event:E}:active` | sorted set | admitted visitor id → admission expiry (ms) |
//! | `{event:E}:state` | hash | controller state: `admitted_through`, `left`, `admitted_total`, token-bucket `last_ms`/`allowance` |
//! | `{event:E}:stock` | hash | live remaining stock per ticket category / merchandise item |
//! | `wr:ticks` | pub/sub channel | one message per event per controller tick: progress, admissions, stock |
//! | `{orders:P}` | stream (group `checkout`) | accepted checkout requests of the events of partition P (0..8), consumed by the checkout workers |
//! | `orders:results` | pub/sub channel | each decided request, pushed to the buyer's waiting-room sockets |
//! | `orders:dead` | list | requests rejected after repeated processing failures (JSON with the reason) |
//! | `{webhooks:P}` | stream (group `webhooks`) | verified Midtrans notifications of the orders of partition P (0..8), raw, applied by the checkout workers |
//! | `webhooks:retry` | sorted set | notifications whose application failed, scored by the time (ms) of their next attempt |
//! | `webhooks:dead` | hash | letter id → notification that failed every attempt (JSON with the last error), for replay |

//!
//! # Partitions
//!
//! The order and webhook streams are each [`STREAM_PARTITIONS`] streams, every one under a hash tag of its
//! own, so that in a Redis Cluster they spread over the nodes instead of making one node carry every
//! append and every read. Which partition holds an entry is the contract's choice (by event for orders, by
//! Midtrans order id for notifications: see the `pipeline` crate); every consumer and every backlog reading
//! covers all of them.

mod connect;

pub use connect::connect;
use uuid::Uuid;

/// How many streams the order stream and the webhook stream are each split into. Every process of a
/// deployment must agree on it: changing it means draining both streams first.
pub const STREAM_PARTITIONS: usize = 8;

/// Names every Redis key. Cheap to clone; built once from configuration.
#[derive(Clone, Debug)]
pub struct Keyspace {
    /// Deployment (or test) namespace put in front of every key.
    prefix: String,
}

impl Keyspace {
    /// `prefix` is used as given; by convention it ends with `:`.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self { prefix: prefix.into() }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// GCRA state of one subject (an IP, a user, an email) under one limit (`login-ip`, `register-ip`, ...).
    pub fn rate_limit(&self, scope: &str, subject: &str) -> String {
        format!("{}rl:{scope}:{subject}", self.prefix)
    }

    /// The waiting room's sorted set of one event.
    pub fn event_queue(&self, event: Uuid) -> String {
        self.event_key(event, "queue")
    }

    /// Live remaining stock of one event's categories and merchandise.
    pub fn event_stock(&self, event: Uuid) -> String {
        self.event_key(event, "stock")
    }

    /// Last sequence number handed out in one event's waiting room.
    pub fn queue_seq(&self, event: Uuid) -> String {
        self.event_key(event, "seq")
    }

    /// Visitor id → sequence number.
    pub fn queue_visitors(&self, event: Uuid) -> String {
        self.event_key(event, "visitors")
    }

    /// Visitors waiting for the opening draw.
    pub fn queue_prequeue(&self, event: Uuid) -> String {
        self.event_key(event, "prequeue")
    }

    /// The opening draw's seed hash, seed and status.
    pub fn queue_draw(&self, event: Uuid) -> String {
        self.event_key(event, "draw")
    }

    /// Visitor id → last seen (ms since the epoch).
    pub fn queue_seen(&self, event: Uuid) -> String {
        self.event_key(event, "seen")
    }

    /// Admitted visitor id → admission expiry (ms since the epoch).
    pub fn queue_active(&self, event: Uuid) -> String {
        self.event_key(event, "active")
    }

    /// The admission controller's per-event state.
    pub fn queue_state(&self, event: Uuid) -> String {
        self.event_key(event, "state")
    }

    /// Channel carrying every controller tick (progress, admissions, stock) to every gateway.
    pub fn ticks_channel(&self) -> String {
        format!("{}wr:ticks", self.prefix)
    }

    /// One partition of the stream of accepted checkout requests (`partition < STREAM_PARTITIONS`).
    pub fn orders_stream(&self, partition: usize) -> String {
        self.partition_key("orders", partition)
    }

    /// Checkout requests given up after repeated failures (newest first), for operators.
    pub fn orders_dead_letters(&self) -> String {
        format!("{}orders:dead", self.prefix)
    }

    /// Channel on which checkout results are announced to the gateways.
    pub fn order_results_channel(&self) -> String {
        format!("{}orders:results", self.prefix)
    }

    /// One partition of the stream of verified Midtrans notifications (`partition < STREAM_PARTITIONS`).
    pub fn webhooks_stream(&self, partition: usize) -> String {
        self.partition_key("webhooks", partition)
    }

    /// Notifications waiting for their next attempt, scored by when it is due.
    pub fn webhooks_retry(&self) -> String {
        format!("{}webhooks:retry", self.prefix)
    }

    /// Notifications that failed every attempt, by letter id.
    pub fn webhooks_dead_letters(&self) -> String {
        format!("{}webhooks:dead", self.prefix)
    }

    /// Every key of one event's waiting room, in the order the queue scripts expect them.
    pub fn queue_keys(&self, event: Uuid) -> Vec<String> {
        vec![
            self.event_queue(event),
            self.queue_seq(event),
            self.queue_visitors(event),
            self.queue_prequeue(event),
            self.queue_draw(event),
            self.queue_seen(event),
            self.queue_active(event),
            self.queue_state(event),
            self.queue_drawn(event),
        ]
    }

    /// The visitors the opening draw placed, in the order it placed them.
    pub fn queue_drawn(&self, event: Uuid) -> String {
        self.event_key(event, "drawn")
    }

    fn partition_key(&self, stream: &str, partition: usize) -> String {
        debug_assert!(partition < STREAM_PARTITIONS, "partition {partition} of {STREAM_PARTITIONS}");
        format!("{}{{{stream}:{partition}}}", self.prefix)
    }

    fn event_key(&self, event: Uuid, what: &str) -> String {
        format!("{}{{event:{event}}}:{what}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_keys_share_one_hash_tag() {
        let ks = Keyspace::new("qc:");
        let e = Uuid::nil();
        let tag = format!("{{event:{e}}}");
        assert!(ks.event_queue(e).contains(&tag));
        assert!(ks.event_stock(e).contains(&tag));
        assert!(ks.queue_keys(e).iter().all(|k| k.contains(&tag)));
        assert!(ks.event_queue(e).starts_with("qc:"));
    }

    #[test]
    fn stream_partitions_each_have_a_hash_tag_of_their_own() {
        let ks = Keyspace::new("qc:");
        let names: std::collections::HashSet<String> =
            (0..STREAM_PARTITIONS).flat_map(|p| [ks.orders_stream(p), ks.webhooks_stream(p)]).collect();
        assert_eq!(names.len(), 2 * STREAM_PARTITIONS);
        assert_eq!(ks.orders_stream(3), "qc:{orders:3}");
        assert_eq!(ks.webhooks_stream(0), "qc:{webhooks:0}");
    }

    #[test]
    fn prefixes_separate_deployments() {
        let a = Keyspace::new("a:");
        let b = Keyspace::new("b:");
        assert_ne!(a.rate_limit("login-ip", "1.2.3.4"), b.rate_limit("login-ip", "1.2.3.4"));
    }
}
