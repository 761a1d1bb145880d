use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Queue-fronted checkout: the checkout worker (order stream, hold expiry, payments).
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    config: checkout_worker::config::Config,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Check PostgreSQL and Redis against the system's invariants and print a report; changes nothing.
    /// Exit status 0 when consistent, 1 when something disagrees, 2 when the audit could not run.
    Audit,
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    telemetry::init_tracing(cli.config.process.log_format());
    cli.config.validate()?;
    match cli.command {
        None => {
            checkout_worker::run(cli.config, telemetry::shutdown_token()).await.map(|()| ExitCode::SUCCESS)
        }
        Some(Command::Audit) => Ok(match checkout_worker::audit_command(&cli.config).await {
            Ok(report) => {
                println!("{report}");
                if report.is_consistent() { ExitCode::SUCCESS } else { ExitCode::from(1) }
            }
            Err(e) => {
                eprintln!("the audit could not run: {e:#}");
                ExitCode::from(2)
            }
        }),
    }
}
