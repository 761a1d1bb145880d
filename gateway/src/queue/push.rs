//! The messages a waiting visitor receives, identical over WebSocket, SSE and the polling endpoint.

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use waiting_room::progress::{Phase, Progress, Stock, eta_secs, likely_sold_out};

#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Push {
    /// Still waiting: where, how long, and whether it is worth waiting.
    Position {
        position: i64,
        people_ahead: i64,
        eta_secs: EtaRange,
        waiting: i64,
        paused: bool,
        likely_sold_out: bool,
    },
    /// Before the sale opens: everyone who arrives is placed by a random draw at opening.
    PreQueue {
        sale_opens_at: Option<DateTime<Utc>>,
        seed_hash: Option<String>,
        prequeue: i64,
    },
    /// The visitor's turn: the token lets it check out once before `expires_at`.
    Admitted {
        admission_token: String,
        expires_at: DateTime<Utc>,
        /// When the controller admitted the visitor (lets clients and load tests see delivery delay).
        admitted_at: Option<DateTime<Utc>>,
    },
    /// Live remaining stock.
    Stock(StockView),
    Paused {
        paused: bool,
    },
    /// The turn passed (admission expired, or skipped while away); joining again gives a new place.
    Left,
    /// A checkout request of this visitor was decided.
    OrderResult {
        request_id: uuid::Uuid,
        status: pipeline::states::RequestStatus,
        order_id: Option<uuid::Uuid>,
        reason: Option<pipeline::states::Reason>,
    },
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct EtaRange {
    pub min: i64,
    pub max: i64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct StockView {
    #[serde(flatten)]
    pub stock: Stock,
}

impl Push {
    pub fn kind(&self) -> &'static str {
        match self {
            Push::Position { .. } => "position",
            Push::PreQueue { .. } => "pre_queue",
            Push::Admitted { .. } => "admitted",
            Push::Stock(_) => "stock",
            Push::Paused { .. } => "paused",
            Push::Left => "left",
            Push::OrderResult { .. } => "order_result",
        }
    }

    /// The position message for a visitor with `ahead` people before it, given the latest progress.
    pub fn position(ahead: i64, progress: Option<&Progress>) -> Push {
        let (rate, left, admitted, waiting, paused, likely) = match progress {
            Some(p) => (
                p.rate_per_sec,
                p.left_total,
                p.admitted_total,
                p.waiting,
                p.paused,
                likely_sold_out(ahead, &p.stock),
            ),
            None => (0, 0, 0, 0, false, false),
        };
        let (min, max) = eta_secs(ahead, rate, left, admitted);
        Push::Position {
            position: ahead + 1,
            people_ahead: ahead,
            eta_secs: EtaRange { min, max },
            waiting,
            paused,
            likely_sold_out: likely,
        }
    }

    pub fn pre_queue(progress: Option<&Progress>, sale_opens_at: Option<DateTime<Utc>>) -> Push {
        Push::PreQueue {
            sale_opens_at: progress.and_then(|p| p.sale_opens_at).or(sale_opens_at),
            seed_hash: progress.and_then(|p| p.seed_hash.clone()),
            prequeue: progress.map_or(0, |p| p.prequeue),
        }
    }

    pub fn stock(progress: &Progress) -> Push {
        Push::Stock(StockView { stock: progress.stock.clone() })
    }

    pub fn is_open(progress: &Progress) -> bool {
        progress.phase == Phase::Open
    }
}

pub fn ms_to_time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_else(Utc::now)
}
