//! The consistency audit (`checkout-worker audit`): reads PostgreSQL and Redis and reports every place
//! where what the system stores disagrees with the invariants it promises. It changes nothing, so an
//! operator may run it against production at any time, and every fault test ends with it.
//!
//! - [`store`]: PostgreSQL, read in one repeatable-read snapshot: product counts against the orders, tickets
//!   against paid orders, requests against their decisions, holds against their orders, admissions.
//! - [`live`]: Redis against PostgreSQL: stock counters, and the streams' unacknowledged entries.

pub mod live;
pub mod store;

use std::{fmt, time::Duration};

use fred::clients::Pool;
use keyspace::Keyspace;
use sqlx::PgPool;

/// One disagreement found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Which check found it (stable, for scripts: `product_counts`, `tickets`, …).
    pub check: &'static str,
    /// What is wrong, with the ids an operator needs to look.
    pub detail: String,
}

/// Every check's name, in the order they run, and what it promises.
pub const CHECKS: &[(&str, &str)] = &[
    ("product_counts", "every category's and item's sold and held equal what its orders hold"),
    ("tickets", "every paid order has exactly its tickets, and no other order has live ones"),
    ("requests", "every decided request has its order or its reason, and every order its request"),
    ("holds", "no unpaid order keeps its hold long after it expired"),
    ("admissions", "no admission was spent on two requests"),
    ("stock_counters", "Redis's live stock counters never promise more than PostgreSQL has"),
    ("streams", "no stream entry stays delivered and unacknowledged longer than a reclaim takes"),
];

/// What the audit found: empty means consistent.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    /// Rows and entries looked at, per check (so "0 findings" can be told from "nothing read").
    pub examined: Vec<(&'static str, i64)>,
}

impl Report {
    pub fn is_consistent(&self) -> bool {
        self.findings.is_empty()
    }

    /// The findings of one check.
    pub fn of(&self, check: &str) -> Vec<&Finding> {
        self.findings.iter().filter(|f| f.check == check).collect()
    }

    fn add(&mut self, check: &'static str, examined: i64, findings: Vec<String>) {
        self.examined.push((check, examined));
        self.findings.extend(findings.into_iter().map(|detail| Finding { check, detail }));
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (check, promise) in CHECKS {
            let found = self.of(check);
            let examined = self.examined.iter().find(|(c, _)| c == check).map_or(0, |(_, n)| *n);
            let verdict = if found.is_empty() { "ok" } else { "FAILED" };
            writeln!(f, "{verdict:<6} {check:<15} {promise} ({examined} examined)")?;
            for finding in found {
                writeln!(f, "         - {}", finding.detail)?;
            }
        }
        let n = self.findings.len();
        if n == 0 {
            write!(f, "consistent: every check passed")
        } else {
            write!(f, "INCONSISTENT: {n} finding{}", if n == 1 { "" } else { "s" })
        }
    }
}

/// How much lag the audit allows the running system before it calls a difference a finding.
#[derive(Clone, Copy, Debug)]
pub struct Tolerances {
    /// How long past its expiry an unpaid order may still hold its units (the sweeper runs every few
    /// seconds; an order with a live payment waits for the reconciler and is not counted).
    pub hold_grace: chrono::Duration,
    /// A stock counter above PostgreSQL's figure is read again after this long before it counts: the
    /// admission controller rewrites the counters every tick, so a sale committed since the last tick
    /// looks like a counter that is too high for up to one tick.
    pub stock_recheck: Duration,
    /// How long a stream entry may stay delivered and unacknowledged (workers reclaim a dead one's
    /// entries after 30 s idle, trying every 10 s).
    pub stale_pending: Duration,
}

impl Default for Tolerances {
    fn default() -> Self {
        Tolerances {
            hold_grace: chrono::Duration::minutes(5),
            stock_recheck: Duration::from_secs(3),
            stale_pending: Duration::from_secs(120),
        }
    }
}

/// Runs every check.
pub async fn run(db: &PgPool, redis: &Pool, keys: &Keyspace, allow: &Tolerances) -> anyhow::Result<Report> {
    let mut report = Report::default();
    store::check(db, allow, &mut report).await?;
    live::check(db, redis, keys, allow, &mut report).await?;
    Ok(report)
}
