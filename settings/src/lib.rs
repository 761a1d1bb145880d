//! The settings every process (gateway, admission controller, checkout worker) reads the same way, with
//! the same names, types and defaults: the environment, where PostgreSQL and Redis are, the Redis
//! namespace the processes share, the log format, and the order backlog at which intake and admission
//! back off. Connection strings and keys are [`Secret`]s, so they never appear in `Debug` output or logs.
//! Each process flattens [`ProcessArgs`] into its own typed config and validates the whole once.

use std::{fmt, str::FromStr};

use clap::Args;

/// A value that must never be printed.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

/// Where the process runs: production enforces the strict checks of each process's config.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AppEnv {
    Development,
    Production,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// What every process reads the same way.
#[derive(Clone, Debug, Args)]
pub struct ProcessArgs {
    /// `development` or `production`; production enforces the strict checks of each process's config.
    #[arg(long, env = "APP_ENV", value_enum, default_value = "development")]
    pub app_env: AppEnv,

    /// PostgreSQL connection string.
    #[arg(long, env = "DATABASE_URL", default_value = "postgres://postgres@127.0.0.1:5432/queue_checkout")]
    pub database_url: Secret,

    /// Redis connection string.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: Secret,

    /// Namespace in front of every Redis key (the same in every process of a deployment), so deployments
    /// and tests can share a Redis.
    #[arg(long, env = "REDIS_KEY_PREFIX", default_value = "qc:")]
    pub redis_key_prefix: String,

    /// `pretty` or `json`; default: `json` in production, `pretty` otherwise.
    #[arg(long, env = "LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,

    /// Undecided checkout requests at which gateways refuse new submissions (503) and the admission
    /// controller stops admitting (it slows from half of this).
    #[arg(long, env = "ORDER_BACKLOG_LIMIT", default_value_t = 20_000)]
    pub order_backlog_limit: i64,
}

impl ProcessArgs {
    pub fn production(&self) -> bool {
        self.app_env == AppEnv::Production
    }

    pub fn log_format(&self) -> LogFormat {
        self.log_format.unwrap_or(match self.app_env {
            AppEnv::Production => LogFormat::Json,
            AppEnv::Development => LogFormat::Pretty,
        })
    }
}
