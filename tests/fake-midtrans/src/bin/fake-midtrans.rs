//! `fake-midtrans`: runs the stand-in Midtrans server for the local demo until SIGINT or SIGTERM.
//! Prints one line, `fake-midtrans listening on http://IP:PORT`, to stdout once it accepts
//! connections; logs go to stderr.

use std::io::Write;
use std::net::SocketAddr;

use clap::Parser;
use fake_midtrans::{Config, FakeMidtrans};
use tracing_subscriber::EnvFilter;

#[derive(Parser, Debug)]
#[command(
    name = "fake-midtrans",
    about = "A stand-in Midtrans server (Snap, QRIS, notifications) for local use"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "FAKE_MIDTRANS_ADDR", default_value = "127.0.0.1:8090")]
    addr: SocketAddr,
    /// Server key that API calls must use and that notifications are signed with.
    #[arg(long, env = "MIDTRANS_SERVER_KEY", hide_env_values = true)]
    server_key: String,
    /// Where to POST payment notifications.
    #[arg(long, env = "FAKE_MIDTRANS_NOTIFICATION_URL")]
    notification_url: Option<String>,
    /// Base URL for links given to payers (default: http://ADDR).
    #[arg(long, env = "FAKE_MIDTRANS_PUBLIC_URL")]
    public_url: Option<String>,
    /// Retry failed notifications after 50 ms .. 800 ms instead of minutes.
    #[arg(long)]
    fast_retries: bool,
}

async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    let mut config = Config::new(args.server_key);
    if args.fast_retries {
        config = config.fast_retries();
    }
    config.notification_url = args.notification_url;
    config.public_url = args.public_url;

    let fake = FakeMidtrans::start(args.addr, config).await?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "fake-midtrans listening on http://{}", fake.local_addr())?;
    stdout.flush()?;
    drop(stdout);

    terminated().await;
    tracing::info!("shutting down");
    fake.shutdown();
    Ok(())
}
