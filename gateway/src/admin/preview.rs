//! Admin: what an admission rate or cap will do before it is applied (served by
//! [`super::waiting_room`] as `GET /api/admin/events/{id}/waiting-room/preview`), from the live queue and stock: how long the queue
//! takes to clear, near which position the tickets are likely gone, the checkout load it makes.
//!
//! The forecast is arithmetic on what is measured now, not a simulation: the people waiting are admitted
//! at the rate, each admission turns into an order as often as admissions have so far (all of them
//! before the first order), and each order takes as many tickets as orders of this event have so far
//! (one before the first).

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The values to preview; an absent one is the value in force.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Proposed {
    #[param(minimum = 1, maximum = 100_000)]
    pub admission_rate_per_sec: Option<i32>,
    #[param(minimum = 1, maximum = 10_000_000)]
    pub max_active: Option<i32>,
}

/// What is measured now, the forecast's input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Now {
    pub waiting: i64,
    pub tickets_remaining: i64,
    /// Tickets per order of this event so far (1 before the first order).
    pub tickets_per_order: f64,
    /// Orders per admission so far (1 before the first order), at most 1.
    pub orders_per_admission: f64,
    pub backlog: i64,
    pub backlog_limit: i64,
    pub token_ttl_secs: i32,
    pub paused: bool,
}

#[derive(Debug, Serialize, ToSchema, PartialEq)]
pub struct Preview {
    pub admission_rate_per_sec: i32,
    pub max_active: i32,
    /// Visitors in the queue now (waiting and pre-queue).
    pub waiting: i64,
    /// Seconds until everyone waiting now is admitted at this rate (from the resumption, if paused).
    pub clears_in_secs: i64,
    /// Whether admission is paused now (the forecast then starts when it resumes).
    pub paused: bool,
    pub tickets_remaining: i64,
    /// The queue position (1 = next in line) near which the remaining tickets are likely gone; null if
    /// the people waiting now are not likely to buy them all.
    pub sold_out_near_position: Option<i64>,
    /// Seconds until then at this rate (from the resumption, if paused).
    pub sold_out_in_secs: Option<i64>,
    pub tickets_per_order: f64,
    pub orders_per_admission: f64,
    /// Orders per second this rate sends to checkout.
    pub expected_orders_per_sec: f64,
    /// Admissions per second that `max_active` sustains if every admitted visitor kept a slot for the
    /// admission token's whole lifetime (the worst case; most buy sooner and free it).
    pub max_active_sustains_per_sec: f64,
    /// Whether the cap may hold admission below the rate.
    pub max_active_may_bind: bool,
    pub backlog: i64,
    pub backlog_limit: i64,
    /// The forecast in one sentence.
    pub summary: String,
}

/// The forecast of admitting at `rate` with at most `max_active` active buyers.
pub fn forecast(now: Now, rate: i32, max_active: i32) -> Preview {
    let per_sec = f64::from(rate.max(1));
    let secs = |people: f64| (people / per_sec).ceil() as i64;
    let per_admission = now.tickets_per_order * now.orders_per_admission;
    let position = (now.tickets_remaining as f64 / per_admission.max(f64::MIN_POSITIVE)).ceil() as i64;
    let sold_out_near_position =
        (now.tickets_remaining > 0 && position <= now.waiting).then_some(position.max(1));
    let sustains = f64::from(max_active) / f64::from(now.token_ttl_secs.max(1));
    let clears_in_secs = secs(now.waiting as f64);
    let sold_out_in_secs = sold_out_near_position.map(|p| secs(p as f64));
    let expected_orders_per_sec = per_sec * now.orders_per_admission;
    let summary = summary(&now, rate, clears_in_secs, sold_out_near_position);
    Preview {
        admission_rate_per_sec: rate,
        max_active,
        waiting: now.waiting,
        clears_in_secs,
        paused: now.paused,
        tickets_remaining: now.tickets_remaining,
        sold_out_near_position,
        sold_out_in_secs,
        tickets_per_order: now.tickets_per_order,
        orders_per_admission: now.orders_per_admission,
        expected_orders_per_sec,
        max_active_sustains_per_sec: sustains,
        max_active_may_bind: sustains < per_sec,
        backlog: now.backlog,
        backlog_limit: now.backlog_limit,
        summary,
    }
}

fn summary(now: &Now, rate: i32, clears: i64, gone_near: Option<i64>) -> String {
    let queue = format!("at {rate}/s the queue of {} clears in about {}", now.waiting, duration(clears));
    let queue = if now.paused { format!("admission is paused; once resumed, {queue}") } else { queue };
    let stock = match gone_near {
        _ if now.tickets_remaining == 0 => "no tickets are left".to_owned(),
        Some(p) => format!("the {} tickets are likely gone near position {p}", now.tickets_remaining),
        None => format!("the {} tickets likely outlast this queue", now.tickets_remaining),
    };
    format!("{queue}; {stock}; checkout backlog {} of {}", now.backlog, now.backlog_limit)
}

fn duration(secs: i64) -> String {
    match secs {
        s if s < 90 => format!("{s} s"),
        s if s < 5400 => format!("{} minutes", (s + 30) / 60),
        s => format!("{:.1} hours", s as f64 / 3600.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Now {
        Now {
            waiting: 12_400,
            tickets_remaining: 2_000,
            tickets_per_order: 1.6,
            orders_per_admission: 0.4,
            backlog: 0,
            backlog_limit: 20_000,
            token_ttl_secs: 600,
            paused: false,
        }
    }

    #[test]
    fn the_queue_clears_at_the_rate_and_the_tickets_go_where_the_buyers_take_them() {
        let p = forecast(now(), 40, 50_000);
        assert_eq!(p.clears_in_secs, 310);
        // 2,000 tickets at 1.6 per order and 0.4 orders per admission: 0.64 tickets per admission.
        assert_eq!(p.sold_out_near_position, Some(3_125));
        assert_eq!(p.sold_out_in_secs, Some(79));
        assert!((p.expected_orders_per_sec - 16.0).abs() < 1e-9);
        assert!(!p.max_active_may_bind, "50,000 over 600 s sustains 83/s: {p:?}");
        assert_eq!(
            p.summary,
            "at 40/s the queue of 12400 clears in about 5 minutes; the 2000 tickets are likely gone near \
             position 3125; checkout backlog 0 of 20000"
        );
    }

    #[test]
    fn paused_short_or_sold_out_queues_say_so() {
        let paused = forecast(Now { paused: true, ..now() }, 40, 5_000);
        assert_eq!((paused.clears_in_secs, paused.paused), (310, true));
        assert!(paused.summary.starts_with("admission is paused; once resumed, at 40/s the queue of 12400"));
        let short = forecast(Now { waiting: 100, ..now() }, 40, 5_000);
        assert_eq!(short.sold_out_near_position, None, "100 people do not buy 2,000 tickets");
        let gone = forecast(Now { tickets_remaining: 0, ..now() }, 40, 5_000);
        assert_eq!(gone.sold_out_near_position, None);
        assert!(gone.summary.contains("no tickets are left"));
        let tight = forecast(now(), 40, 600);
        assert!(tight.max_active_may_bind, "600 over 600 s sustains 1/s");
    }
}
