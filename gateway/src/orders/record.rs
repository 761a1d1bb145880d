//! Recording checked order requests and putting them on the order stream, one commit for many buyers.
//!
//! A request that passed every check is a [`Job`]. [`Recorder::queue`] takes it through the same steps
//! whichever intake design is configured (`ORDER_INTAKE`):
//!
//! 1. one insert for the batch (`on conflict do nothing`: a key seen before, or an admission already
//!    recorded with another request, is a conflict, and the handler answers from the record). The insert
//!    is its own commit, so every request in it is durable before any buyer hears 202;
//! 2. the per-buyer limit for each newly recorded request; a refused one is marked rejected
//!    (`rate_limited`) in one update for the batch and gives its admission back;
//! 3. the appends to the order stream, sent together.
//!
//! `single` runs this for each request on its own (one PostgreSQL commit per buyer, the design before
//! this module). `batched` is group commit ([`crate::batch`]): the jobs that arrive while earlier batches
//! are being written are written together, a few batches at once. A batch whose insert fails (an event deleted a moment ago, say) is retried
//! one request at a time, so one bad row answers only for itself.

use std::collections::{HashMap, HashSet};

use clap::ValueEnum;
use fred::clients::Pool;
use keyspace::Keyspace;
use pipeline::{
    orders::CheckoutRequest,
    states::{Reason, RequestStatus},
};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    batch::Grouped,
    error::{ApiError, on_constraint},
    ratelimit::{RateLimiter, Rule},
};

/// How accepted order requests reach PostgreSQL.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum IntakeDesign {
    /// One insert and commit per request.
    Single,
    /// Requests arriving together share one insert and commit (group commit).
    #[default]
    Batched,
}

/// Most requests in one batch.
const MAX_BATCH: usize = 256;
/// Batches being written at once by one gateway.
const BATCHES_IN_FLIGHT: usize = 4;

/// A request that passed every check, with what it is recorded with.
pub struct Job {
    pub request: CheckoutRequest,
    pub key: String,
    pub body_hash: String,
    pub visitor: Uuid,
    pub admission_jti: String,
}

/// How a job ended.
pub enum Outcome {
    /// Recorded and on the stream: answer 202.
    Queued,
    /// Not recorded: its key, or its admission, is already recorded with a request.
    Conflict,
    /// Recorded, then refused (the per-buyer limit); the record says so.
    Refused(ApiError),
    /// Nothing durable, or recorded but not yet on the stream (the workers' orphan pass queues it).
    Failed(ApiError),
}

/// What writing a batch needs.
#[derive(Clone)]
pub struct Writer {
    pub db: PgPool,
    pub redis: Pool,
    pub keys: Keyspace,
    pub limits: RateLimiter,
    /// The per-buyer order limit.
    pub order_user: Rule,
}

#[derive(Clone)]
pub enum Recorder {
    Single(Writer),
    Batched(Grouped<Job, Outcome>),
}

impl Recorder {
    /// A recorder for `design`; a batched one starts its serving task (see [`crate::batch`]).
    pub fn start(design: IntakeDesign, writer: Writer) -> Self {
        match design {
            IntakeDesign::Single => Recorder::Single(writer),
            IntakeDesign::Batched => {
                Recorder::Batched(Grouped::start("order_intake", MAX_BATCH, BATCHES_IN_FLIGHT, move |jobs| {
                    let writer = writer.clone();
                    async move { write_batch(&writer, jobs).await }
                }))
            }
        }
    }

    pub async fn queue(&self, job: Job) -> Outcome {
        match self {
            Recorder::Single(w) => write_batch(w, vec![job]).await.pop().expect("one outcome per job"),
            Recorder::Batched(group) => {
                group.call(job).await.unwrap_or_else(|| Outcome::Failed(checkout_down()))
            }
        }
    }
}

/// The three steps for `jobs`; one outcome per job, in order.
async fn write_batch(w: &Writer, jobs: Vec<Job>) -> Vec<Outcome> {
    let inserted = match insert(w, &jobs).await {
        Ok(ids) => ids,
        Err(_) if jobs.len() > 1 => return one_by_one(w, jobs).await,
        Err(e) => return vec![Outcome::Failed(event_gone_or(e))],
    };
    let recorded: Vec<&Job> = jobs.iter().filter(|j| inserted.contains(&j.request.request_id)).collect();
    // The tight limit is per buyer (a whole campus may share one address), on new requests only.
    let buyers: Vec<String> = recorded.iter().map(|j| j.request.user_id.to_string()).collect();
    let limits = w.limits.check_many(w.order_user, &buyers).await;
    let (passed, refused): (Vec<_>, Vec<_>) = recorded.into_iter().zip(limits).partition(|(_, l)| l.is_ok());
    let refused_ids: Vec<Uuid> = refused.iter().map(|(j, _)| j.request.request_id).collect();
    let gave_back = refused_ids.is_empty() || give_back(w, &refused_ids).await.is_ok();
    let mut outcomes: HashMap<Uuid, Outcome> = refused
        .into_iter()
        .map(|(job, limit)| {
            let outcome = match limit {
                Err(e) if gave_back => Outcome::Refused(e),
                _ => Outcome::Failed(checkout_down()),
            };
            (job.request.request_id, outcome)
        })
        .collect();
    let passed: Vec<&Job> = passed.into_iter().map(|(job, _)| job).collect();
    let requests: Vec<&CheckoutRequest> = passed.iter().map(|j| &j.request).collect();
    let appended = pipeline::orders::append_many(&w.redis, &w.keys, &requests).await;
    for (job, appended) in passed.into_iter().zip(appended) {
        let id = job.request.request_id;
        let outcome = match appended {
            Ok(_) => {
                metrics::counter!("orders_accepted_total").increment(1);
                Outcome::Queued
            }
            Err(e) => {
                // Recorded but not on the stream: the workers' orphan pass will queue it; a retry with the
                // same key gets this request.
                tracing::warn!(error = %e, request_id = %id, "order stream unavailable; request will be re-queued");
                Outcome::Failed(checkout_down())
            }
        };
        outcomes.insert(id, outcome);
    }
    jobs.iter().map(|j| outcomes.remove(&j.request.request_id).unwrap_or(Outcome::Conflict)).collect()
}

fn checkout_down() -> ApiError {
    ApiError::Unavailable { message: CHECKOUT_DOWN, retry_after: std::time::Duration::from_secs(1) }
}

const CHECKOUT_DOWN: &str = "checkout is briefly unavailable, retry shortly";

/// A batch whose insert failed, written again one request at a time.
async fn one_by_one(w: &Writer, jobs: Vec<Job>) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(jobs.len());
    for job in jobs {
        outcomes.extend(Box::pin(write_batch(w, vec![job])).await);
    }
    outcomes
}

/// The event was deleted a moment ago (the sale rules are cached for a second).
fn event_gone_or(e: sqlx::Error) -> ApiError {
    on_constraint(e, |c| (c == "order_requests_event_id_fkey").then_some(ApiError::NotFound("event")))
}

/// One insert for the batch; the ids it recorded.
async fn insert(w: &Writer, jobs: &[Job]) -> Result<HashSet<Uuid>, sqlx::Error> {
    let ids: Vec<Uuid> = jobs.iter().map(|j| j.request.request_id).collect();
    let users: Vec<Uuid> = jobs.iter().map(|j| j.request.user_id).collect();
    let events: Vec<Uuid> = jobs.iter().map(|j| j.request.event_id).collect();
    let keys: Vec<&str> = jobs.iter().map(|j| j.key.as_str()).collect();
    let hashes: Vec<&str> = jobs.iter().map(|j| j.body_hash.as_str()).collect();
    let visitors: Vec<Uuid> = jobs.iter().map(|j| j.visitor).collect();
    let items: Vec<serde_json::Value> =
        jobs.iter().map(|j| serde_json::to_value(&j.request.items).expect("carts serialise")).collect();
    let jtis: Vec<&str> = jobs.iter().map(|j| j.admission_jti.as_str()).collect();
    let recorded = sqlx::query_scalar!(
        r#"insert into order_requests
               (id, user_id, event_id, idempotency_key, body_hash, visitor_id, items, admission_jti)
           select * from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::uuid[],
                                $7::jsonb[], $8::text[])
           on conflict do nothing
           returning id"#,
        &ids,
        &users,
        &events,
        &keys as &[&str],
        &hashes as &[&str],
        &visitors,
        &items,
        &jtis as &[&str]
    )
    .fetch_all(&w.db)
    .await?;
    Ok(recorded.into_iter().collect())
}

/// New requests refused by the per-buyer limit are recorded as rejected (not deleted: a double click with
/// the same key may already have been told 202 for one, and must get a definitive answer); they were never
/// queued, so they give their admissions back.
async fn give_back(w: &Writer, requests: &[Uuid]) -> Result<(), ApiError> {
    sqlx::query!(
        r#"update order_requests
           set status = $2, reason = $3, decided_at = now(), admission_jti = null
           where id = any($1) and status = 'queued'"#,
        requests,
        RequestStatus::Rejected as _,
        Reason::RateLimited as _
    )
    .execute(&w.db)
    .await?;
    Ok(())
}
