use anyhow::Context;
use clap::{Parser, Subcommand};
use gateway::{Application, config::Config};

/// Queue-fronted checkout: the HTTP gateway.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    config: Config,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API and the storefront (the default).
    Serve,
    /// Local all-in-one: the gateway, the admission controller and the checkout worker in one process.
    Local {
        #[command(flatten)]
        worker: Box<checkout_worker::config::Config>,
        /// Admission controller tick.
        #[arg(long, env = "ADMISSION_TICK_MS", default_value_t = 500)]
        admission_tick_ms: u64,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Create an admin account (or promote an existing one). The password is read from ADMIN_PASSWORD.
    CreateAdmin {
        #[arg(long)]
        email: String,
        #[arg(long, env = "ADMIN_PASSWORD", hide_env_values = true)]
        password: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    midtrans::install_crypto_provider();
    let cli = Cli::parse();
    telemetry::init_tracing(cli.config.process.log_format());
    cli.config.validate()?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = Application::build(cli.config).await?;
            app.run_until(gateway::shutdown_signal()).await
        }
        Command::Local { worker, admission_tick_ms } => {
            worker.validate()?;
            let app = Application::build(cli.config).await?;
            let shutdown = telemetry::shutdown_token();
            let (db, queue) = (app.state().db.clone(), app.state().queue.clone());
            let tick = std::time::Duration::from_millis(admission_tick_ms);
            tokio::spawn(waiting_room::run(
                db,
                queue,
                tick,
                app.state().config.process.order_backlog_limit,
                shutdown.clone(),
            ));
            let worker = tokio::spawn(checkout_worker::run(*worker, shutdown.clone()));
            let stop = shutdown.clone();
            app.run_until(async move { stop.cancelled().await }).await?;
            worker.await?
        }
        Command::Migrate => {
            let url = cli.config.process.database_url.expose();
            gateway::db::ensure_database(url).await?;
            let pool = sqlx::PgPool::connect(url).await.context("connecting to DATABASE_URL")?;
            gateway::db::migrate(&pool).await
        }
        Command::CreateAdmin { email, password } => {
            let pool = sqlx::PgPool::connect(cli.config.process.database_url.expose())
                .await
                .context("connecting to DATABASE_URL")?;
            gateway::bootstrap::ensure_admin(&pool, &email, &password).await.map(|found| {
                println!("{email}: {}", match found {
                    gateway::accounts::store::Ensured::Created => "admin created",
                    gateway::accounts::store::Ensured::Present => "already an admin; left as it was",
                    gateway::accounts::store::Ensured::TakenOver => {
                        "was a non-admin account: now the admin with the given password, its old sessions ended"
                    }
                });
            })
        }
    }
}
