//! What each fault test measured, for RELIABILITY.md: the fault, the load it fell on, what was lost,
//! duplicated or oversold (counted from PostgreSQL, not assumed), how long the system took to recover and
//! what the buyers were answered meanwhile. Printed to stderr; also appended as one JSON line to the file
//! named by `RELIABILITY_OUT` (`scripts/reliability` collects them into the table).

use std::{io::Write, time::Duration};

use uuid::Uuid;

use crate::topology::Topology;

pub struct Record {
    pub fault: &'static str,
    /// Requests sent while the test ran (retries of one purchase count once).
    pub requests: usize,
    /// Of those, answered 202 (or 200 for a retry of an accepted one).
    pub accepted: usize,
    pub damage: Damage,
    /// How long recovery took, and what was timed.
    pub recovered_in: Duration,
    pub recovery: &'static str,
    pub buyers_saw: String,
}

/// Counted in PostgreSQL after the test's load was decided.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Damage {
    /// Accepted requests with no decision recorded.
    pub lost: i64,
    /// Orders beyond one per confirmed request.
    pub duplicated: i64,
    /// Units sold or held beyond a category's quota or an item's stock.
    pub oversold: i64,
}

impl Damage {
    /// Counts the damage on `t`'s database; `accepted` are the request ids the buyers were given.
    pub async fn count(t: &Topology, accepted: &[Uuid]) -> Damage {
        let (lost, duplicated, oversold): (i64, i64, i64) = sqlx::query_as(
            "select
               cardinality($1::uuid[]) - (select count(*) from order_requests
                                          where id = any($1) and status <> 'queued'),
               (select count(*) from orders)
                 - (select count(distinct order_id) from order_requests where status = 'confirmed'),
               (select coalesce(sum(greatest(sold + held - quota, 0)), 0) from ticket_categories)
                 + (select coalesce(sum(greatest(sold + held - stock, 0)), 0) from merchandise)",
        )
        .bind(accepted)
        .fetch_one(&t.db)
        .await
        .expect("damage counts");
        Damage { lost, duplicated, oversold }
    }
}

impl Record {
    /// Prints the record, appends it to `RELIABILITY_OUT` if set, and fails the test on any damage.
    pub fn report(&self) {
        let line = serde_json::json!({
            "fault": self.fault,
            "requests": self.requests,
            "accepted": self.accepted,
            "lost": self.damage.lost,
            "duplicated": self.damage.duplicated,
            "oversold": self.damage.oversold,
            "recovered_ms": self.recovered_in.as_millis() as u64,
            "recovery": self.recovery,
            "buyers_saw": self.buyers_saw,
        });
        eprintln!("reliability: {line}");
        if let Ok(path) = std::env::var("RELIABILITY_OUT") {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .expect("RELIABILITY_OUT opens");
            writeln!(file, "{line}").expect("RELIABILITY_OUT is written");
        }
        assert_eq!(self.damage, Damage::default(), "{}: lost, duplicated or oversold", self.fault);
    }
}
