//! The Midtrans settings every process reads the same way (see `.env.example`).

use std::time::Duration;

use crate::client::{Client, ClientConfig, Error};

#[derive(Clone, clap::Args)]
pub struct MidtransArgs {
    /// Server key (`SB-Mid-server-…` in the sandbox). Without it payments are switched off.
    #[arg(long, env = "MIDTRANS_SERVER_KEY", hide_env_values = true)]
    pub midtrans_server_key: Option<String>,

    /// Client key, for Snap's browser script.
    #[arg(long, env = "MIDTRANS_CLIENT_KEY", hide_env_values = true)]
    pub midtrans_client_key: Option<String>,

    /// Core API base URL.
    #[arg(long, env = "MIDTRANS_API_BASE_URL", default_value = "https://api.sandbox.midtrans.com")]
    pub midtrans_api_base_url: String,

    /// Snap base URL.
    #[arg(long, env = "MIDTRANS_SNAP_BASE_URL", default_value = "https://app.sandbox.midtrans.com/snap/v1")]
    pub midtrans_snap_base_url: String,

    /// Timeout of one call to Midtrans.
    #[arg(long, env = "MIDTRANS_TIMEOUT_MS", default_value_t = 10_000)]
    pub midtrans_timeout_ms: u64,

    /// Attempts for calls that are safe to repeat.
    #[arg(long, env = "MIDTRANS_ATTEMPTS", default_value_t = 3)]
    pub midtrans_attempts: u32,
}

impl std::fmt::Debug for MidtransArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MidtransArgs")
            .field("midtrans_server_key", &self.midtrans_server_key.as_ref().map(|_| "<redacted>"))
            .field("midtrans_client_key", &self.midtrans_client_key.as_ref().map(|_| "<redacted>"))
            .field("midtrans_api_base_url", &self.midtrans_api_base_url)
            .field("midtrans_snap_base_url", &self.midtrans_snap_base_url)
            .finish_non_exhaustive()
    }
}

impl MidtransArgs {
    /// The client, or `None` when no server key is configured.
    pub fn client(&self) -> Result<Option<Client>, Error> {
        let Some(key) = self.midtrans_server_key.clone().filter(|k| !k.trim().is_empty()) else {
            return Ok(None);
        };
        crate::install_crypto_provider();
        Client::new(ClientConfig {
            server_key: key,
            api_base_url: self.midtrans_api_base_url.clone(),
            snap_base_url: self.midtrans_snap_base_url.clone(),
            timeout: Duration::from_millis(self.midtrans_timeout_ms.max(100)),
            attempts: self.midtrans_attempts.max(1),
        })
        .map(Some)
    }

    /// Production needs a real key and HTTPS endpoints.
    pub fn validate_production(&self) -> anyhow::Result<()> {
        if self.midtrans_server_key.as_deref().is_none_or(|k| k.trim().is_empty()) {
            anyhow::bail!("MIDTRANS_SERVER_KEY is required in production");
        }
        for url in [&self.midtrans_api_base_url, &self.midtrans_snap_base_url] {
            if !url.starts_with("https://") {
                anyhow::bail!("Midtrans URLs must use https in production (got {url})");
            }
        }
        Ok(())
    }
}
