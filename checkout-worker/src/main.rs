use clap::Parser;
use telemetry::LogFormat;

/// Queue-fronted checkout: the checkout worker (hold expiry; order and webhook streams).
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    config: checkout_worker::config::Config,
    /// `pretty` or `json`.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "pretty")]
    log_format: LogFormat,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init_tracing(cli.log_format);
    cli.config.validate()?;
    checkout_worker::run(cli.config, telemetry::shutdown_token()).await
}
