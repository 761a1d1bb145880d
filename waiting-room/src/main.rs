use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use telemetry::LogFormat;

/// Queue-fronted checkout: the admission controller of the waiting rooms.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    config: waiting_room::config::Config,
    /// `pretty` or `json`.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "pretty")]
    log_format: LogFormat,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init_tracing(cli.log_format);
    let c = cli.config;
    c.validate()?;
    let db = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect(&c.database_url)
        .await
        .context("cannot connect to PostgreSQL (DATABASE_URL)")?;
    let redis = keyspace::connect(&c.redis_url, 2).await?;
    let queue = waiting_room::queue::Queue::new(redis, keyspace::Keyspace::new(c.redis_key_prefix));
    let tick = Duration::from_millis(c.admission_tick_ms);
    waiting_room::run(db, queue, tick, c.order_backlog_limit, telemetry::shutdown_token()).await
}
