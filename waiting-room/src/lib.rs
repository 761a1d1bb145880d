//! The virtual waiting room in front of each event's sale.
//!
//! # Layout
//!
//! - [`settings`]: the per-event knobs (admission rate, max active, pause, token lifetime, presence grace),
//!   stored in PostgreSQL and changed by admins at runtime.
//! - [`queue`]: the Redis side (sorted set per event, pre-queue and opening draw, admission ticks, spent
//!   tokens); every multi-key step is a Lua script in `lua/`.
//! - [`tokens`]: signed visitor and admission tokens.
//! - [`controller`]: the admission controller loop; [`progress`]: the message it publishes each tick.
//! - [`config`] and [`run`]: the `waiting-room` process.

pub mod config;
pub mod controller;
pub mod progress;
pub mod queue;
pub mod settings;
pub mod tokens;

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Runs the admission controller until `shutdown`; admission slows down as the order backlog nears
/// `backlog_limit`.
pub async fn run(
    db: sqlx::PgPool,
    queue: queue::Queue,
    tick: Duration,
    backlog_limit: i64,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    controller::Controller::new(db, queue).with_backlog_limit(backlog_limit).run(tick, shutdown).await;
    Ok(())
}
