use clap::Parser;

/// Queue-fronted checkout: the checkout worker (order stream, hold expiry).
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    config: checkout_worker::config::Config,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init_tracing(cli.config.process.log_format());
    cli.config.validate()?;
    checkout_worker::run(cli.config, telemetry::shutdown_token()).await
}
