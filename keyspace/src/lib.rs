//! The Redis key layout: every key, stream and channel the system uses is named here and nowhere else.
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
//! | `{event:E}:queue` | sorted set | waiting visitors by sequence number |
//! | `{event:E}:stock` | hash | live remaining stock per ticket category / merchandise item |
//! | `catalog:changed` | pub/sub channel | catalog ids changed by an admin, so caches drop them |

use uuid::Uuid;

/// Names every Redis key. Cheap to clone; built once from configuration.
#[derive(Clone, Debug)]
pub struct Keyspace {
    /// Deployment (or test) namespace put in front of every key.
    prefix: String,
}

impl Keyspace {
    /// `prefix` is used as given; by convention it ends with `:`.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
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

    /// Channel on which a changed catalog entry is announced to every gateway's cache.
    pub fn catalog_changed_channel(&self) -> String {
        format!("{}catalog:changed", self.prefix)
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
        assert!(ks.event_queue(e).starts_with("qc:"));
    }

    #[test]
    fn prefixes_separate_deployments() {
        let a = Keyspace::new("a:");
        let b = Keyspace::new("b:");
        assert_ne!(
            a.rate_limit("login-ip", "1.2.3.4"),
            b.rate_limit("login-ip", "1.2.3.4")
        );
    }
}
