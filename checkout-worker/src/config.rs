//! Settings of the checkout-worker process, read once from the environment (see `.env.example`).

use clap::Args;

#[derive(Clone, Debug, Args)]
pub struct Config {
    /// PostgreSQL connection string.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/queue_checkout",
        hide_env_values = true
    )]
    pub database_url: String,

    /// Connections this worker may hold.
    #[arg(long, env = "WORKER_DB_MAX_CONNECTIONS", default_value_t = 8)]
    pub db_max_connections: u32,

    /// How often the hold sweeper looks for unpaid orders past their expiry.
    #[arg(long, env = "HOLD_SWEEP_INTERVAL_MS", default_value_t = 1000)]
    pub hold_sweep_interval_ms: u64,

    /// Orders expired per transaction (bounded so a backlog never holds locks for long).
    #[arg(long, env = "HOLD_SWEEP_BATCH", default_value_t = 200)]
    pub hold_sweep_batch: i64,
}

impl Config {
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.db_max_connections == 0 {
            anyhow::bail!("WORKER_DB_MAX_CONNECTIONS must be at least 1");
        }
        if !(1..=10_000).contains(&self.hold_sweep_batch) {
            anyhow::bail!("HOLD_SWEEP_BATCH must be between 1 and 10000");
        }
        if self.hold_sweep_interval_ms == 0 {
            anyhow::bail!("HOLD_SWEEP_INTERVAL_MS must be at least 1");
        }
        Ok(())
    }
}
