//! Typed configuration, read once from the environment (or flags) and validated before anything starts.
//!
//! Every variable is documented in `.env.example`. A bad value stops the process with the variable's name
//! in the message; secrets are wrapped in [`Secret`] so that they never appear in `Debug` output or logs.

use std::{net::SocketAddr, time::Duration};

use anyhow::{Context, bail};
use clap::Args;

/// Development-only fallback so that a fresh checkout runs without any setup. Production refuses it.
const DEV_JWT_SECRET: &str = "development-only-jwt-secret-change-me-0123456789";

pub use settings::{AppEnv, LogFormat, ProcessArgs, Secret};

/// Settings of the gateway process. Field docs are the `--help` text.
#[derive(Clone, Debug, Args)]
pub struct Config {
    /// Environment, connections, Redis namespace, log format, order backlog limit.
    #[command(flatten)]
    pub process: ProcessArgs,

    /// Where the gateway listens.
    #[arg(long, env = "HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,

    /// HMAC secret for access tokens (at least 32 bytes in production).
    #[arg(long, env = "JWT_SECRET")]
    pub jwt_secret: Option<Secret>,

    /// Lifetime of an access token, in seconds.
    #[arg(long, env = "ACCESS_TOKEN_TTL_SECS", default_value_t = 8 * 3600)]
    pub access_token_ttl_secs: u64,

    /// Comma-separated browser origins allowed by CORS; `*` only in development.
    #[arg(long, env = "CORS_ORIGINS", default_value = "http://127.0.0.1:8080,http://localhost:8080")]
    pub cors_origins: String,

    /// Admin account ensured at start (created if absent, promoted to admin if it exists).
    #[arg(long, env = "BOOTSTRAP_ADMIN_EMAIL")]
    pub bootstrap_admin_email: Option<String>,

    /// Password for a bootstrap admin that does not exist yet.
    #[arg(long, env = "BOOTSTRAP_ADMIN_PASSWORD")]
    pub bootstrap_admin_password: Option<Secret>,

    /// Connections in the PostgreSQL pool (MR-3: enough for a spike, bounded so PostgreSQL is not swamped).
    #[arg(long, env = "DB_MAX_CONNECTIONS", default_value_t = 20)]
    pub db_max_connections: u32,

    /// How long a request waits for a pooled connection before it is answered 503.
    #[arg(long, env = "DB_ACQUIRE_TIMEOUT_MS", default_value_t = 2000)]
    pub db_acquire_timeout_ms: u64,

    /// PostgreSQL `statement_timeout` for every connection, so no query holds locks for long.
    #[arg(long, env = "DB_STATEMENT_TIMEOUT_MS", default_value_t = 5000)]
    pub db_statement_timeout_ms: u64,

    /// Every request is answered within this time (503 otherwise).
    #[arg(long, env = "REQUEST_TIMEOUT_MS", default_value_t = 10_000)]
    pub request_timeout_ms: u64,

    /// Requests served at once by this process; beyond it the answer is an immediate 503 (load shedding).
    #[arg(long, env = "MAX_IN_FLIGHT_REQUESTS", default_value_t = 8192)]
    pub max_in_flight_requests: usize,

    /// A connection must deliver a request's headers within this time, or it is closed (slowloris).
    #[arg(long, env = "HEADER_READ_TIMEOUT_MS", default_value_t = 10_000)]
    pub header_read_timeout_ms: u64,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "BODY_LIMIT_BYTES", default_value_t = 64 * 1024)]
    pub body_limit_bytes: usize,

    /// How long the public catalog may be served from this process's memory, in milliseconds.
    #[arg(long, env = "CATALOG_CACHE_TTL_MS", default_value_t = 1000)]
    pub catalog_cache_ttl_ms: u64,

    /// Login attempts on one account from one address group per minute (guessing protection). Per
    /// address, so that someone else's wrong guesses cannot lock the owner out from their own address.
    #[arg(long, env = "LOGIN_PER_ACCOUNT_ADDRESS_PER_MIN", default_value_t = 10)]
    pub login_per_account_address_per_min: u32,

    /// Login attempts on one account from all addresses together per minute: far higher, against
    /// guessing spread over many addresses.
    #[arg(long, env = "LOGIN_PER_EMAIL_PER_MIN", default_value_t = 200)]
    pub login_per_email_per_min: u32,

    /// Login attempts per client IP per minute; generous because a campus shares one NAT address.
    #[arg(long, env = "LOGIN_PER_IP_PER_MIN", default_value_t = 600)]
    pub login_per_ip_per_min: u32,

    /// Registrations per client IP per minute.
    #[arg(long, env = "REGISTER_PER_IP_PER_MIN", default_value_t = 300)]
    pub register_per_ip_per_min: u32,

    /// New visitors (joins without a visitor credential, each of which takes a place) per address group
    /// (IPv4 address, IPv6 /64) per minute. Generous because a whole campus may share one NAT address; a
    /// rejoin with a credential keeps its place and counts as a status call instead.
    #[arg(long, env = "JOIN_PER_IP_PER_MIN", default_value_t = 1200)]
    pub join_per_ip_per_min: u32,

    /// Queue status polls (and rejoins) per address group per minute.
    #[arg(long, env = "STATUS_PER_IP_PER_MIN", default_value_t = 12000)]
    pub status_per_ip_per_min: u32,

    /// Queue status polls per visitor per minute (the widget polls every few seconds at most).
    #[arg(long, env = "STATUS_PER_VISITOR_PER_MIN", default_value_t = 120)]
    pub status_per_visitor_per_min: u32,

    /// Push connections (WebSocket and SSE) one visitor may hold on one gateway: a few tabs.
    #[arg(long, env = "PUSH_PER_VISITOR", default_value_t = 3)]
    pub push_per_visitor: usize,

    /// Push connections one address group may hold on one gateway (a campus NAT shares one).
    #[arg(long, env = "PUSH_PER_ADDRESS", default_value_t = 5000)]
    pub push_per_address: usize,

    /// Push connections one gateway holds at most; kept under the process's open-file limit so that
    /// ordinary requests still get sockets. More connections: more gateways.
    #[arg(long, env = "MAX_PUSH_CONNECTIONS", default_value_t = 15000)]
    pub max_push_connections: usize,

    /// How accepted order requests are written: `batched` (requests arriving together share one insert
    /// and commit) or `single` (one commit per request).
    #[arg(long, env = "ORDER_INTAKE", value_enum, default_value_t = crate::orders::record::IntakeDesign::Batched)]
    pub order_intake: crate::orders::record::IntakeDesign,

    /// Order submissions per buyer per minute (the tight limit: retries reuse their Idempotency-Key).
    #[arg(long, env = "ORDERS_PER_USER_PER_MIN", default_value_t = 20)]
    pub orders_per_user_per_min: u32,

    /// Order submissions per client IP per minute; generous because of campus NAT.
    #[arg(long, env = "ORDERS_PER_IP_PER_MIN", default_value_t = 6000)]
    pub orders_per_ip_per_min: u32,

    /// Payment starts per buyer per minute (`POST /api/orders/{id}/payment`).
    #[arg(long, env = "PAYMENTS_PER_USER_PER_MIN", default_value_t = 10)]
    pub payments_per_user_per_min: u32,

    /// Ticket scans per staff member per minute.
    #[arg(long, env = "CHECKINS_PER_USER_PER_MIN", default_value_t = 120)]
    pub checkins_per_user_per_min: u32,

    /// Where buyers reach the storefront (Midtrans sends them back to `{PUBLIC_BASE_URL}/order.html`).
    /// Unset in development: taken from the request's Host.
    #[arg(long, env = "PUBLIC_BASE_URL")]
    pub public_base_url: Option<String>,

    /// Midtrans keys and endpoints.
    #[command(flatten)]
    pub midtrans: midtrans::MidtransArgs,

    /// Take the client IP from `X-Forwarded-For` (only behind a trusted proxy).
    #[arg(long, env = "TRUST_FORWARDED_FOR", default_value_t = false)]
    pub trust_forwarded_for: bool,

    /// Apply database migrations at start.
    #[arg(long, env = "MIGRATE_ON_START", default_value_t = true, action = clap::ArgAction::Set)]
    pub migrate_on_start: bool,

    /// Load the demo event when the database holds no event yet.
    #[arg(long, env = "DEMO_DATA", default_value_t = false, action = clap::ArgAction::Set)]
    pub demo_data: bool,

    /// Directory with the storefront and widget files served at `/`.
    #[arg(long, env = "WEB_DIR", default_value = "web-widget")]
    pub web_dir: String,
}

impl Config {
    /// Checks that need more than one field, and the production rules. Returns the first problem found.
    pub fn validate(&self) -> anyhow::Result<()> {
        let built_in_secret = self.jwt_secret.as_ref().is_none_or(|s| s.expose() == DEV_JWT_SECRET);
        if self.process.app_env == AppEnv::Development
            && built_in_secret
            && !self.http_addr.ip().is_loopback()
        {
            // The development secret is in the source: anyone could sign an admin token for a gateway
            // that others can reach (an image started without APP_ENV, say).
            bail!(
                "HTTP_ADDR {} is reachable from other machines, but APP_ENV=development signs tokens with the \
                 built-in JWT secret that anyone can read: set APP_ENV=production and a JWT_SECRET of at least \
                 32 bytes, or listen on a loopback address (127.0.0.1)",
                self.http_addr
            );
        }
        if self.process.app_env == AppEnv::Production {
            match &self.jwt_secret {
                None => bail!("JWT_SECRET must be set in production"),
                Some(s) if s.expose().len() < 32 => {
                    bail!("JWT_SECRET must be at least 32 bytes in production")
                }
                Some(s) if s.expose() == DEV_JWT_SECRET => {
                    bail!("JWT_SECRET must not be the development default in production")
                }
                Some(_) => {}
            }
            if self.cors_origin_list()?.iter().any(|o| o == "*") {
                bail!("CORS_ORIGINS must not contain the wildcard `*` in production");
            }
            self.midtrans.validate_production()?;
            if self.public_base_url.as_deref().is_none_or(|u| !u.starts_with("https://")) {
                bail!("PUBLIC_BASE_URL must be set to the storefront's https:// address in production");
            }
        }
        self.cors_origin_list()?;
        if let Some(s) = &self.jwt_secret
            && s.expose().is_empty()
        {
            bail!("JWT_SECRET must not be empty");
        }
        if self.db_max_connections == 0 {
            bail!("DB_MAX_CONNECTIONS must be at least 1");
        }
        if self.body_limit_bytes < 1024 {
            bail!("BODY_LIMIT_BYTES must be at least 1024");
        }
        if self.push_per_visitor == 0 || self.push_per_address == 0 || self.max_push_connections == 0 {
            bail!("PUSH_PER_VISITOR, PUSH_PER_ADDRESS and MAX_PUSH_CONNECTIONS must be at least 1");
        }
        if self.max_in_flight_requests == 0 {
            bail!("MAX_IN_FLIGHT_REQUESTS must be at least 1");
        }
        if self.access_token_ttl_secs < 60 {
            bail!("ACCESS_TOKEN_TTL_SECS must be at least 60");
        }
        for (name, v) in [
            ("LOGIN_PER_ACCOUNT_ADDRESS_PER_MIN", self.login_per_account_address_per_min),
            ("LOGIN_PER_EMAIL_PER_MIN", self.login_per_email_per_min),
            ("LOGIN_PER_IP_PER_MIN", self.login_per_ip_per_min),
            ("REGISTER_PER_IP_PER_MIN", self.register_per_ip_per_min),
            ("JOIN_PER_IP_PER_MIN", self.join_per_ip_per_min),
            ("STATUS_PER_IP_PER_MIN", self.status_per_ip_per_min),
            ("STATUS_PER_VISITOR_PER_MIN", self.status_per_visitor_per_min),
            ("ORDERS_PER_USER_PER_MIN", self.orders_per_user_per_min),
            ("PAYMENTS_PER_USER_PER_MIN", self.payments_per_user_per_min),
            ("CHECKINS_PER_USER_PER_MIN", self.checkins_per_user_per_min),
            ("ORDERS_PER_IP_PER_MIN", self.orders_per_ip_per_min),
        ] {
            if v == 0 {
                bail!("{name} must be at least 1");
            }
        }
        if self.bootstrap_admin_email.is_some() != self.bootstrap_admin_password.is_some() {
            bail!("BOOTSTRAP_ADMIN_EMAIL and BOOTSTRAP_ADMIN_PASSWORD must be set together");
        }
        Ok(())
    }

    /// The secret used to sign tokens: the configured one, or the development default.
    pub fn jwt_secret(&self) -> &str {
        self.jwt_secret.as_ref().map(Secret::expose).unwrap_or(DEV_JWT_SECRET)
    }

    pub fn cors_origin_list(&self) -> anyhow::Result<Vec<String>> {
        let mut out = Vec::new();
        for raw in self.cors_origins.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if raw != "*" && !(raw.starts_with("http://") || raw.starts_with("https://")) {
                bail!("CORS_ORIGINS entry `{raw}` must start with http:// or https://");
            }
            out.push(raw.trim_end_matches('/').to_owned());
        }
        Ok(out)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// Parses the configuration from the process environment alone (used by tests and tools).
    pub fn from_env() -> anyhow::Result<Self> {
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            config: Config,
        }
        let only = <Only as clap::Parser>::try_parse_from(["gateway"])
            .context("reading configuration from the environment")?;
        Ok(only.config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    fn parse(args: &[&str]) -> Config {
        let mut all = vec!["gateway"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).expect("parses").config
    }

    #[test]
    fn production_refuses_a_short_jwt_secret() {
        let c =
            parse(&["--app-env", "production", "--jwt-secret", "short", "--cors-origins", "https://a.id"]);
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("JWT_SECRET"), "{err}");
    }

    #[test]
    fn development_with_the_built_in_secret_listens_on_loopback_only() {
        let c = parse(&["--http-addr", "0.0.0.0:8080"]);
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("APP_ENV=production"), "{err}");
        let c = parse(&["--http-addr", "[::]:8080", "--jwt-secret", DEV_JWT_SECRET]);
        assert!(c.validate().is_err());
        assert!(parse(&["--http-addr", "127.0.0.1:8080"]).validate().is_ok());
        assert!(parse(&["--http-addr", "[::1]:8080"]).validate().is_ok());
        let own = "a-secret-of-our-own-0123456789abcdef";
        assert!(parse(&["--http-addr", "0.0.0.0:8080", "--jwt-secret", own]).validate().is_ok());
    }

    #[test]
    fn production_refuses_a_missing_jwt_secret() {
        let c = parse(&["--app-env", "production", "--cors-origins", "https://a.id"]);
        assert!(c.validate().unwrap_err().to_string().contains("JWT_SECRET"));
    }

    #[test]
    fn production_refuses_a_wildcard_cors_origin() {
        let secret = "x".repeat(40);
        let c =
            parse(&["--app-env", "production", "--jwt-secret", &secret, "--cors-origins", "https://a.id,*"]);
        assert!(c.validate().unwrap_err().to_string().contains("CORS_ORIGINS"));
    }

    #[test]
    fn production_accepts_a_strict_configuration() {
        let secret = "x".repeat(32);
        let c = parse(&[
            "--app-env",
            "production",
            "--jwt-secret",
            &secret,
            "--cors-origins",
            "https://tiket.kampus.id",
            "--midtrans-server-key",
            "Mid-server-production-key",
            "--public-base-url",
            "https://tiket.kampus.id",
        ]);
        c.validate().expect("valid");
        assert_eq!(c.process.log_format(), LogFormat::Json);
    }

    #[test]
    fn production_needs_midtrans_and_a_public_https_address() {
        let secret = "x".repeat(32);
        let base =
            ["--app-env", "production", "--jwt-secret", &secret, "--cors-origins", "https://tiket.kampus.id"];
        let no_key = parse(&[&base[..], &["--public-base-url", "https://tiket.kampus.id"]].concat());
        assert!(no_key.validate().unwrap_err().to_string().contains("MIDTRANS_SERVER_KEY"));
        let plain_http = parse(
            &[
                &base[..],
                &["--public-base-url", "https://tiket.kampus.id", "--midtrans-server-key", "k"],
                &["--midtrans-api-base-url", "http://api.midtrans.com"],
            ]
            .concat(),
        );
        assert!(plain_http.validate().unwrap_err().to_string().contains("https"));
        let no_public = parse(&[&base[..], &["--midtrans-server-key", "k"]].concat());
        assert!(no_public.validate().unwrap_err().to_string().contains("PUBLIC_BASE_URL"));
    }

    #[test]
    fn the_midtrans_server_key_never_prints() {
        let c = parse(&["--midtrans-server-key", "SB-Mid-server-very-secret"]);
        assert!(!format!("{c:?}").contains("very-secret"));
    }

    #[test]
    fn development_allows_defaults() {
        let c = parse(&[]);
        c.validate().expect("valid");
        assert_eq!(c.process.log_format(), LogFormat::Pretty);
    }

    #[test]
    fn secrets_never_print() {
        let c = parse(&["--jwt-secret", "super-secret-value-that-must-not-leak"]);
        let shown = format!("{c:?}");
        assert!(!shown.contains("super-secret-value"), "{shown}");
    }

    #[test]
    fn a_cors_origin_without_scheme_is_refused() {
        let c = parse(&["--cors-origins", "tiket.kampus.id"]);
        assert!(c.validate().is_err());
    }
}
