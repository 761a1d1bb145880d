//! Whether an access token's session still stands: the account exists, has the role the token names, and
//! its session version has not moved on (a role change or a password reset ends every session issued
//! before it). Tokens naming staff or admin are checked against PostgreSQL on every request, so a demotion
//! takes effect at once; buyer tokens through a short per-gateway cache, so a buyer polling a checkout costs
//! PostgreSQL one primary-key lookup every few seconds, not one per request. Lookups arriving together
//! (the minute a sale opens, thousands of buyers this gateway has not seen yet) are one query for the
//! group ([`crate::batch`]).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use sqlx::PgPool;
use uuid::Uuid;

use super::{Role, token::AccessClaims};
use crate::{batch::Grouped, error::ApiError};

/// (when read, the account's role and session version; `None`: no such account).
type Entry = (Instant, Option<(Role, i32)>);

/// Most accounts remembered at once; past it the cache starts again (bounded whatever tokens arrive).
const MAX_ENTRIES: usize = 200_000;

/// An account's role and session version, `None` when there is no such account; `Err` when PostgreSQL
/// did not answer.
type Lookup = Result<Option<(Role, i32)>, ()>;

/// Most accounts read by one query.
const MAX_GROUP: usize = 512;

#[derive(Clone)]
pub struct Sessions {
    /// How long a buyer's session state is trusted without asking PostgreSQL again.
    buyer_ttl: Duration,
    entries: Arc<Mutex<HashMap<Uuid, Entry>>>,
    lookups: Grouped<Uuid, Lookup>,
}

impl Sessions {
    pub fn new(db: PgPool, buyer_ttl: Duration) -> Self {
        let lookups = Grouped::start("session_lookup", MAX_GROUP, 4, move |ids: Vec<Uuid>| {
            let db = db.clone();
            async move { lookup(&db, ids).await }
        });
        Self { buyer_ttl, entries: Default::default(), lookups }
    }

    /// `Ok` when `claims` still describe the account; 401 when its session ended.
    pub async fn check(&self, claims: &AccessClaims) -> Result<(), ApiError> {
        let current = match self.cached(claims) {
            Some(current) => current,
            None => {
                let current = self.lookups.call(claims.sub).await.unwrap_or(Err(())).map_err(|()| {
                    ApiError::Unavailable {
                        message: "the service is busy, retry shortly",
                        retry_after: Duration::from_secs(1),
                    }
                })?;
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

/// One query for a group of accounts; one answer per id, in order.
async fn lookup(db: &PgPool, ids: Vec<Uuid>) -> Vec<Lookup> {
    let rows = match sqlx::query!(
        r#"select id, role as "role: Role", token_version from users where id = any($1)"#,
        &ids
    )
    .fetch_all(db)
    .await
    {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, accounts = ids.len(), "cannot read sessions");
            return vec![Err(()); ids.len()];
        }
    };
    let found: HashMap<Uuid, (Role, i32)> =
        rows.into_iter().map(|r| (r.id, (r.role, r.token_version))).collect();
    ids.iter().map(|id| Ok(found.get(id).copied())).collect()
}
