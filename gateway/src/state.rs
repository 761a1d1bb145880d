//! What every request handler can reach. Built once in [`crate::Application::build`].

use std::sync::Arc;

use fred::clients::Pool as RedisPool;
use keyspace::Keyspace;
use sqlx::PgPool;

use signing::Signer;
use tokio_util::sync::CancellationToken;
use waiting_room::queue::Queue;

use crate::{
    accounts::{password::PasswordHasherPool, sessions::Sessions, token::TokenKeys},
    catalog::cache::CatalogCache,
    config::Config,
    queue::hub::Hub,
    ratelimit::{RateLimiter, Rule},
};

#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub redis: RedisPool,
    pub keys: Keyspace,
    pub tokens: TokenKeys,
    /// Whether an access token's session still stands (role and session version in PostgreSQL).
    pub sessions: Sessions,
    pub passwords: PasswordHasherPool,
    pub limits: RateLimiter,
    pub rules: Rules,
    /// The public catalog's short-lived in-memory cache; admin writes clear it.
    pub catalog_cache: CatalogCache,
    pub config: Arc<Config>,
    /// The waiting rooms in Redis.
    pub queue: Queue,
    /// Signs and checks visitor and admission tokens.
    pub signer: Signer,
    /// This gateway's push connections.
    pub hub: Hub,
    /// Per-event sale rules for the order intake, kept for a second.
    pub sale_rules: crate::catalog::sale_rules::SaleRulesCache,
    /// Undecided checkout requests, refreshed twice a second from the order stream.
    pub order_backlog: Arc<std::sync::atomic::AtomicI64>,
    /// Records accepted order requests (`ORDER_INTAKE`: one commit each, or many to one).
    pub recorder: crate::orders::record::Recorder,
    /// Midtrans, when a server key is configured (payments answer 503 otherwise).
    pub midtrans: Option<midtrans::Client>,
    /// Cancelled when the gateway begins shutting down, so long-lived sockets close and let it finish.
    pub shutdown: CancellationToken,
}

impl AppState {
    /// Call after any change to events or products: drops this gateway's cached views of the catalog
    /// (the public pages and the order intake's sale rules) so the change shows at once.
    pub fn catalog_changed(&self) {
        self.catalog_cache.clear();
        self.sale_rules.clear();
    }
}

/// The rate-limit rules in force, built from configuration.
#[derive(Clone, Copy, Debug)]
pub struct Rules {
    pub login_account_address: Rule,
    pub login_email: Rule,
    pub login_ip: Rule,
    pub register_ip: Rule,
    pub join_ip: Rule,
    pub status_ip: Rule,
    pub status_visitor: Rule,
    pub order_user: Rule,
    pub order_ip: Rule,
    pub payment_user: Rule,
    pub checkin_user: Rule,
}

impl Rules {
    pub fn from_config(c: &Config) -> Self {
        Rules {
            login_account_address: Rule::per_minute("login-account-ip", c.login_per_account_address_per_min),
            login_email: Rule::per_minute("login-email", c.login_per_email_per_min),
            login_ip: Rule::per_minute("login-ip", c.login_per_ip_per_min),
            register_ip: Rule::per_minute("register-ip", c.register_per_ip_per_min),
            join_ip: Rule::per_minute("join-ip", c.join_per_ip_per_min),
            status_ip: Rule::per_minute("status-ip", c.status_per_ip_per_min),
            status_visitor: Rule::per_minute("status-visitor", c.status_per_visitor_per_min),
            // A generous burst: a storm of double clicks (same Idempotency-Key, all arriving before the
            // first is recorded) must get the one answer, not 429s; the sustained rate stays tight.
            order_user: Rule {
                burst: c.orders_per_user_per_min.saturating_mul(3),
                ..Rule::per_minute("order-user", c.orders_per_user_per_min)
            },
            order_ip: Rule::per_minute("order-ip", c.orders_per_ip_per_min),
            payment_user: Rule::per_minute("payment-user", c.payments_per_user_per_min),
            checkin_user: Rule::per_minute("checkin-user", c.checkins_per_user_per_min),
        }
    }

    pub fn all(&self) -> [Rule; 11] {
        [
            self.login_account_address,
            self.login_email,
            self.login_ip,
            self.register_ip,
            self.join_ip,
            self.status_ip,
            self.status_visitor,
            self.order_user,
            self.order_ip,
            self.payment_user,
            self.checkin_user,
        ]
    }
}
