//! Rate limits shared by every gateway process (GCRA in Redis, one Lua script), with an in-process
//! `governor` limiter that takes over if Redis cannot be reached, so a Redis outage neither opens the
//! gates completely nor turns every request into an error.

use std::{collections::HashMap, num::NonZeroU32, sync::Arc, time::Duration};

use fred::{
    clients::{Client, Pipeline, Pool},
    interfaces::ClientLike,
    types::{ClusterHash, CustomCommand, Value, scripts::Script},
};
use governor::{DefaultKeyedRateLimiter, Quota};
use keyspace::Keyspace;

use crate::error::ApiError;

/// One named limit: `per_minute` sustained, `burst` at once.
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    /// Appears in the Redis key and in metrics, e.g. `login-email`.
    pub scope: &'static str,
    pub per_minute: u32,
    pub burst: u32,
}

impl Rule {
    /// `per_minute` sustained with a burst of the same size.
    pub fn per_minute(scope: &'static str, per_minute: u32) -> Self {
        Rule { scope, per_minute, burst: per_minute }
    }
}

#[derive(Clone)]
pub struct RateLimiter {
    redis: Pool,
    keys: Keyspace,
    script: Arc<Script>,
    /// Fallback limiters, one per scope, used only while Redis is failing.
    local: Arc<HashMap<&'static str, DefaultKeyedRateLimiter<String>>>,
}

impl RateLimiter {
    pub fn new(redis: Pool, keys: Keyspace, rules: &[Rule]) -> Self {
        let local = rules
            .iter()
            .map(|r| {
                let quota = Quota::per_minute(NonZeroU32::new(r.per_minute.max(1)).expect("non-zero"))
                    .allow_burst(NonZeroU32::new(r.burst.max(1)).expect("non-zero"));
                (r.scope, DefaultKeyedRateLimiter::keyed(quota))
            })
            .collect();
        Self {
            redis,
            keys,
            script: Arc::new(Script::from_lua(include_str!("gcra.lua"))),
            local: Arc::new(local),
        }
    }

    /// Counts one request of `subject` against `rule`; `Err(RateLimited)` when over the limit.
    pub async fn check(&self, rule: Rule, subject: &str) -> Result<(), ApiError> {
        let key = self.keys.rate_limit(rule.scope, subject);
        let result: Result<(i64, i64), fred::error::Error> =
            self.script.evalsha_with_reload(self.redis.next(), vec![key], script_args(rule).to_vec()).await;
        self.verdict(rule, subject, result)
    }

    /// [`check`](Self::check) for many subjects of one rule in one Redis round trip (a pipeline);
    /// one answer per subject, in order.
    pub async fn check_many(&self, rule: Rule, subjects: &[String]) -> Vec<Result<(), ApiError>> {
        if subjects.is_empty() {
            return Vec::new();
        }
        let pipe = self.redis.next().pipeline();
        for subject in subjects {
            self.queue_check(&pipe, rule, subject).await;
        }
        let results: Vec<Result<Value, fred::error::Error>> = pipe.try_all().await;
        let mut answers = Vec::with_capacity(subjects.len());
        for (result, subject) in results.into_iter().zip(subjects) {
            answers.push(self.answer(rule, subject, result).await);
        }
        answers
    }

    /// Puts the check of `subject` against `rule` on `pipe`, so that it shares a round trip with other
    /// commands; [`answer`](Self::answer) reads its reply.
    pub async fn queue_check(&self, pipe: &Pipeline<Client>, rule: Rule, subject: &str) {
        let key = self.keys.rate_limit(rule.scope, subject);
        let [interval_ms, burst] = script_args(rule);
        // EVALSHA sha 1 key interval burst, routed by the key (fred's pipeline has no typed script call).
        let args = vec![self.script.sha1().to_string(), "1".into(), key, interval_ms, burst];
        let _: Result<(), _> =
            pipe.custom(CustomCommand::new_static("EVALSHA", ClusterHash::Offset(2), false), args).await;
    }

    /// The verdict of a check queued with [`queue_check`](Self::queue_check). When Redis had forgotten
    /// the script (a restart, `SCRIPT FLUSH`), the check is made again on its own, which loads it.
    pub async fn answer(
        &self,
        rule: Rule,
        subject: &str,
        reply: Result<Value, fred::error::Error>,
    ) -> Result<(), ApiError> {
        match reply {
            Err(e) if e.details().starts_with("NOSCRIPT") => self.check(rule, subject).await,
            reply => self.verdict(rule, subject, reply.and_then(|v| v.convert())),
        }
    }

    fn verdict(
        &self,
        rule: Rule,
        subject: &str,
        result: Result<(i64, i64), fred::error::Error>,
    ) -> Result<(), ApiError> {
        match result {
            Ok((1, _)) => Ok(()),
            Ok((_, retry_ms)) => {
                metrics::counter!("rate_limited_total", "scope" => rule.scope).increment(1);
                Err(ApiError::RateLimited { retry_after: Duration::from_millis(retry_ms.max(0) as u64) })
            }
            Err(e) => {
                tracing::warn!(error = %e, scope = rule.scope, "redis rate limit unavailable, using local limit");
                self.check_local(rule, subject)
            }
        }
    }

    fn check_local(&self, rule: Rule, subject: &str) -> Result<(), ApiError> {
        let Some(limiter) = self.local.get(rule.scope) else {
            return Ok(());
        };
        limiter.check_key(&subject.to_owned()).map_err(|not_until| ApiError::RateLimited {
            retry_after: not_until
                .wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default())),
        })
    }

    /// Drops idle fallback state so the maps do not grow without bound.
    pub fn forget_idle(&self) {
        for limiter in self.local.values() {
            limiter.retain_recent();
        }
    }

    pub fn redis(&self) -> &Pool {
        &self.redis
    }
}

/// The GCRA script's arguments for `rule`: the emission interval in milliseconds and the burst.
fn script_args(rule: Rule) -> [String; 2] {
    [(60_000 / u64::from(rule.per_minute.max(1))).max(1).to_string(), rule.burst.max(1).to_string()]
}

/// Is Redis reachable right now (used by readiness)?
pub async fn redis_ready(pool: &Pool) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_millis(500), pool.next().ping::<String>(None)).await,
        Ok(Ok(_))
    )
}
