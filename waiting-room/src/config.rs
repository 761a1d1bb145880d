//! Settings of the `waiting-room` process (the admission controller), read once from the environment.

use clap::Args;

#[derive(Clone, Debug, Args)]
pub struct Config {
    /// Connections and log format.
    #[command(flatten)]
    pub process: settings::ProcessArgs,

    /// How often the controller admits and publishes progress. Rate changes apply within one tick.
    #[arg(long, env = "ADMISSION_TICK_MS", default_value_t = 500)]
    pub admission_tick_ms: u64,
}

impl Config {
    pub fn validate(&self) -> anyhow::Result<()> {
        if !(50..=5_000).contains(&self.admission_tick_ms) {
            anyhow::bail!("ADMISSION_TICK_MS must be between 50 and 5000");
        }
        Ok(())
    }
}
