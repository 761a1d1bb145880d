//! The Redis connection pool every process uses for ordinary commands (never for blocking stream reads,
//! which get a client of their own).

use std::time::Duration;

use anyhow::Context;
use fred::{
    clients::Pool,
    prelude::{Builder, ClientLike, Config, ReconnectPolicy},
};

pub async fn connect(url: &str, size: usize) -> anyhow::Result<Pool> {
    let config = Config::from_url(url).context("REDIS_URL is not a valid Redis URL")?;
    let pool = Builder::from_config(config)
        .with_connection_config(|c| {
            c.connection_timeout = Duration::from_secs(2);
            c.internal_command_timeout = Duration::from_secs(2);
        })
        .with_performance_config(|p| {
            // A command never waits longer than this; callers then degrade (e.g. the local rate limiter).
            p.default_command_timeout = Duration::from_secs(2);
        })
        // Reconnect forever with backoff up to 2 s: a Redis restart must not need a gateway restart.
        .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2))
        .build_pool(size)
        .context("building the Redis pool")?;
    pool.init().await.context("cannot connect to Redis (REDIS_URL); is it running and reachable?")?;
    Ok(pool)
}
