//! The message the admission controller publishes for each event on every tick (`wr:ticks` channel).
//! Gateways turn it into per-visitor push messages, so 100,000 sockets cost one Redis message per tick
//! per event, not 100,000 rank lookups: each socket knows its own sequence number and computes its
//! position from `admitted_through`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Before the sale opens: arrivals wait for the draw.
    PreSale,
    /// Admitting from the head of the queue.
    Open,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub event: Uuid,
    pub at_ms: i64,
    pub phase: Phase,
    pub paused: bool,
    pub sale_opens_at: Option<DateTime<Utc>>,
    /// sha256 of the draw seed, published before the sale opens.
    pub seed_hash: Option<String>,
    /// The seed itself, revealed once the draw is done.
    pub seed: Option<String>,
    pub prequeue: i64,
    pub admitted_through: i64,
    pub waiting: i64,
    pub active: i64,
    pub left_total: i64,
    pub admitted_total: i64,
    pub rate_per_sec: i64,
    pub admitted: Vec<Admitted>,
    pub stock: Stock,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admitted {
    pub visitor: Uuid,
    pub seq: i64,
    pub expires_ms: i64,
}

/// Live remaining stock of one event.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Stock {
    pub ticket_categories: Vec<StockLine>,
    pub merchandise: Vec<StockLine>,
    pub tickets_remaining: i64,
    /// Every ticket category is sold out.
    pub sold_out: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StockLine {
    pub id: Uuid,
    pub remaining: i64,
}

/// An honest estimate of the wait: the fast end assumes the share of visitors who left so far also
/// holds ahead of this one; the slow end assumes everyone ahead is still there.
pub fn eta_secs(ahead: i64, rate_per_sec: i64, left_total: i64, admitted_total: i64) -> (i64, i64) {
    if rate_per_sec <= 0 {
        return (0, 0);
    }
    let seen = (left_total + admitted_total).max(1) as f64;
    let staying = 1.0 - left_total as f64 / seen;
    let slow = (ahead as f64 / rate_per_sec as f64).ceil() as i64;
    let fast = ((ahead as f64 * staying) / rate_per_sec as f64).floor() as i64;
    (fast.min(slow), slow)
}

/// More people ahead than tickets left (with a margin for those who leave or buy less): the visitor is
/// likely to find the sale sold out by its turn, and should be told now.
pub fn likely_sold_out(ahead: i64, stock: &Stock) -> bool {
    stock.sold_out || ahead > stock.tickets_remaining.saturating_mul(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_is_a_range_that_narrows_when_nobody_leaves() {
        assert_eq!(eta_secs(100, 10, 0, 50), (10, 10));
        assert_eq!(eta_secs(100, 10, 50, 50), (5, 10));
        assert_eq!(eta_secs(0, 10, 0, 0), (0, 0));
        assert_eq!(eta_secs(5, 0, 0, 0), (0, 0));
    }

    #[test]
    fn many_ahead_of_little_stock_is_flagged() {
        let stock = Stock { tickets_remaining: 10, ..Default::default() };
        assert!(!likely_sold_out(15, &stock));
        assert!(likely_sold_out(25, &stock));
        let gone = Stock { sold_out: true, ..Default::default() };
        assert!(likely_sold_out(0, &gone));
    }
}
