//! What every request handler can reach. Built once in [`crate::Application::build`].

use std::sync::Arc;

use fred::clients::Pool as RedisPool;
use keyspace::Keyspace;
use sqlx::PgPool;

use crate::{
    accounts::{password::PasswordHasherPool, token::TokenKeys},
    catalog::cache::CatalogCache,
    config::Config,
    ratelimit::{RateLimiter, Rule},
};

#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub redis: RedisPool,
    pub keys: Keyspace,
    pub tokens: TokenKeys,
    pub passwords: PasswordHasherPool,
    pub limits: RateLimiter,
    pub rules: Rules,
    /// The public catalog's short-lived in-memory cache; admin writes clear it.
    pub catalog_cache: CatalogCache,
    pub config: Arc<Config>,
}

/// The rate-limit rules in force, built from configuration.
#[derive(Clone, Copy, Debug)]
pub struct Rules {
    pub login_email: Rule,
    pub login_ip: Rule,
    pub register_ip: Rule,
}

impl Rules {
    pub fn from_config(c: &Config) -> Self {
        Rules {
            login_email: Rule {
                scope: "login-email",
                per_minute: c.login_per_email_per_min,
                burst: c.login_per_email_per_min,
            },
            login_ip: Rule {
                scope: "login-ip",
                per_minute: c.login_per_ip_per_min,
                burst: c.login_per_ip_per_min,
            },
            register_ip: Rule {
                scope: "register-ip",
                per_minute: c.register_per_ip_per_min,
                burst: c.register_per_ip_per_min,
            },
        }
    }

    pub fn all(&self) -> [Rule; 3] {
        [self.login_email, self.login_ip, self.register_ip]
    }
}
