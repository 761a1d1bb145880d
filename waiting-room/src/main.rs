use std::time::Duration;

use clap::Parser;

/// Queue-fronted checkout: the admission controller of the waiting rooms.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    config: waiting_room::config::Config,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let c = Cli::parse().config;
    telemetry::init_tracing(c.process.log_format());
    c.validate()?;
    let db = database::connect(
        c.process.database_url.expose(),
        &database::PoolSettings {
            application_name: "waiting-room",
            max_connections: 4,
            acquire_timeout: Duration::from_secs(5),
            // A tick's queries are small; one that runs longer than this must not hold locks meanwhile.
            statement_timeout: Duration::from_secs(5),
            lock_timeout: None,
        },
    )
    .await?;
    let redis = keyspace::connect(c.process.redis_url.expose(), 2).await?;
    let queue = waiting_room::queue::Queue::new(redis, keyspace::Keyspace::new(c.process.redis_key_prefix));
    let tick = Duration::from_millis(c.admission_tick_ms);
    waiting_room::run(db, queue, tick, c.process.order_backlog_limit, telemetry::shutdown_token()).await
}
