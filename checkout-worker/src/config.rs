//! Settings of the checkout-worker process, read once from the environment (see `.env.example`).

use clap::Args;

#[derive(Clone, Debug, Args)]
pub struct Config {
    /// Connections and log format.
    #[command(flatten)]
    pub process: settings::ProcessArgs,

    /// Checkout requests allocated per transaction (bounded so one batch never holds row locks for long).
    #[arg(long, env = "ORDER_BATCH_SIZE", default_value_t = 100)]
    pub order_batch_size: u64,

    /// How long an unpaid order holds its stock.
    #[arg(long, env = "ORDER_HOLD_SECS", default_value_t = 900)]
    pub order_hold_secs: i64,

    /// An order-stream entry delivered to a worker and unacknowledged this long is taken for a dead
    /// worker's and reclaimed by another (checked every third of it, at most every 10 s).
    #[arg(long, env = "ORDER_RECLAIM_IDLE_MS", default_value_t = 30_000)]
    pub order_reclaim_idle_ms: u64,

    /// A request recorded this long ago and still undecided is appended to the order stream again from
    /// PostgreSQL (its entry was lost, for example with a Redis crash).
    #[arg(long, env = "ORDER_ORPHAN_AGE_MS", default_value_t = 60_000)]
    pub order_orphan_age_ms: u64,

    /// PostgreSQL `lock_timeout` for the worker's transactions: a batch waiting longer for a row lock fails
    /// and is retried, instead of queueing behind a stuck transaction.
    #[arg(long, env = "WORKER_LOCK_TIMEOUT_MS", default_value_t = 2000)]
    pub lock_timeout_ms: u64,

    /// PostgreSQL `statement_timeout` for the worker's statements.
    #[arg(long, env = "WORKER_STATEMENT_TIMEOUT_MS", default_value_t = 10_000)]
    pub statement_timeout_ms: u64,

    /// Connections this worker may hold.
    #[arg(long, env = "WORKER_DB_MAX_CONNECTIONS", default_value_t = 8)]
    pub db_max_connections: u32,

    /// How often the hold sweeper looks for unpaid orders past their expiry.
    #[arg(long, env = "HOLD_SWEEP_INTERVAL_MS", default_value_t = 1000)]
    pub hold_sweep_interval_ms: u64,

    /// Orders expired per transaction (bounded so a backlog never holds locks for long).
    #[arg(long, env = "HOLD_SWEEP_BATCH", default_value_t = 200)]
    pub hold_sweep_batch: i64,

    /// A payment under review (amount mismatch) left unresolved this long is refunded and its order's
    /// hold ends, so an unanswered review cannot keep stock out of the sale.
    #[arg(long, env = "REVIEW_DEADLINE_SECS", default_value_t = 86_400)]
    pub review_deadline_secs: i64,

    /// Midtrans (status checks, cancel, refunds).
    #[command(flatten)]
    pub midtrans: midtrans::MidtransArgs,

    /// Attempts to apply a notification before it is dead-lettered.
    #[arg(long, env = "WEBHOOK_MAX_ATTEMPTS", default_value_t = 8)]
    pub webhook_max_attempts: u32,

    /// Notifications applied at the same time by this worker (each holds a database connection).
    #[arg(long, env = "WEBHOOK_CONCURRENCY", default_value_t = 4)]
    pub webhook_concurrency: usize,

    /// Delay before the first retry of a failed notification (doubled each attempt, with jitter).
    #[arg(long, env = "WEBHOOK_RETRY_BASE_MS", default_value_t = 1000)]
    pub webhook_retry_base_ms: u64,

    /// How often open payments and refunds owed are reconciled with Midtrans.
    #[arg(long, env = "PAYMENT_RECONCILE_INTERVAL_MS", default_value_t = 5000)]
    pub payment_reconcile_interval_ms: u64,
}

impl Config {
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.process.production() {
            // Without Midtrans the reconciler cannot end holds of orders with a live payment.
            self.midtrans.validate_production()?;
        }
        if self.db_max_connections == 0 {
            anyhow::bail!("WORKER_DB_MAX_CONNECTIONS must be at least 1");
        }
        if !(1..=10_000).contains(&self.hold_sweep_batch) {
            anyhow::bail!("HOLD_SWEEP_BATCH must be between 1 and 10000");
        }
        if !(1..=1_000).contains(&self.order_batch_size) {
            anyhow::bail!("ORDER_BATCH_SIZE must be between 1 and 1000");
        }
        if !(60..=86_400).contains(&self.order_hold_secs) {
            anyhow::bail!("ORDER_HOLD_SECS must be between 60 and 86400");
        }
        if !(1..=100).contains(&self.webhook_max_attempts) {
            anyhow::bail!("WEBHOOK_MAX_ATTEMPTS must be between 1 and 100");
        }
        if !(1..=256).contains(&self.webhook_concurrency) {
            anyhow::bail!("WEBHOOK_CONCURRENCY must be between 1 and 256");
        }
        if !(60..=30 * 86_400).contains(&self.review_deadline_secs) {
            anyhow::bail!("REVIEW_DEADLINE_SECS must be between 60 and 2592000 (30 days)");
        }
        if self.payment_reconcile_interval_ms == 0 {
            anyhow::bail!("PAYMENT_RECONCILE_INTERVAL_MS must be at least 1");
        }
        if self.hold_sweep_interval_ms == 0 {
            anyhow::bail!("HOLD_SWEEP_INTERVAL_MS must be at least 1");
        }
        Ok(())
    }
}
