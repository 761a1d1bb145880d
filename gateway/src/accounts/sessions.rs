//! Whether an access token's session still stands: the account exists, has the role the token names, and
//! its session version has not moved on (a role change or a password reset ends every session issued
//! before it). Tokens naming staff or admin are checked against PostgreSQL on every request, so a demotion
//! takes effect at once; buyer tokens through a short per-gateway cache, so a buyer polling a checkout costs
//! PostgreSQL one primary-key lookup every few seconds, not one per request.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use sqlx::PgPool;
use uuid::Uuid;

use super::{Role, token::AccessClaims};
use crate::error::ApiError;

/// (when read, the account's role and session version; `None`: no such account).
type Entry = (Instant, Option<(Role, i32)>);

/// Most accounts remembered at once; past it the cache starts again (bounded whatever tokens arrive).
const MAX_ENTRIES: usize = 200_000;

#[derive(Clone)]
pub struct Sessions {
    /// How long a buyer's session state is trusted without asking PostgreSQL again.
    buyer_ttl: Duration,
    entries: Arc<Mutex<HashMap<Uuid, Entry>>>,
}

impl Sessions {
    pub fn new(buyer_ttl: Duration) -> Self {
        Self { buyer_ttl, entries: Default::default() }
    }

    /// `Ok` when `claims` still describe the account; 401 when its session ended.
    pub async fn check(&self, db: &PgPool, claims: &AccessClaims) -> Result<(), ApiError> {
        let current = match self.cached(claims) {
            Some(current) => current,
            None => {
                let current = sqlx::query!(
                    r#"select role as "role: Role", token_version from users where id = $1"#,
                    claims.sub
                )
                .fetch_optional(db)
                .await?
                .map(|r| (r.role, r.token_version));
                if claims.role == Role::Buyer {
                    // Only buyer sessions are read from the cache; staff and admin are always asked anew.
                    let mut entries = self.entries.lock().expect("sessions");
                    if entries.len() >= MAX_ENTRIES {
                        entries.clear();
                    }
                    entries.insert(claims.sub, (Instant::now(), current));
                }
                current
            }
        };
        match current {
            Some((role, version)) if role == claims.role && version == claims.ver => Ok(()),
            Some(_) => Err(ApiError::Unauthorized("this session has ended; sign in again")),
            None => Err(ApiError::Unauthorized("account no longer exists")),
        }
    }

    fn cached(&self, claims: &AccessClaims) -> Option<Option<(Role, i32)>> {
        if claims.role != Role::Buyer {
            return None;
        }
        let entries = self.entries.lock().expect("sessions");
        let (at, current) = entries.get(&claims.sub)?;
        (at.elapsed() < self.buyer_ttl).then_some(*current)
    }

    /// Forgets what this gateway remembers of `user` (after changing its role or password here).
    pub fn forget(&self, user: Uuid) {
        self.entries.lock().expect("sessions").remove(&user);
    }
}
