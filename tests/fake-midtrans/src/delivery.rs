//! Notification delivery, in background tasks: one job per notification (all targets, all
//! duplicate copies), chained per order so that first attempts go out in the order the statuses
//! changed, each failed copy then retried on its own with Midtrans' retry counts.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use reqwest::header::{CONTENT_TYPE, USER_AGENT};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::model::DeliveryAttempt;
use crate::state::{Outgoing, Shared, State};

/// At most this many retries after the first attempt, whatever the answers.
const MAX_RETRIES: u32 = 5;

/// How many retries Midtrans makes after an answer with this HTTP status.
fn retries_after(status: u16) -> u32 {
    match status {
        200..=299 | 301..=303 => 0,
        500 => 1,
        503 => 4,
        400 | 404 => 2,
        _ => 5,
    }
}

/// A client that posts like Midtrans' sender: follows 307/308 (keeping the POST, up to 5 times),
/// treats 301/302/303 as final, gives up after 15 s.
pub(crate) fn client() -> anyhow::Result<reqwest::Client> {
    // The workspace builds reqwest's rustls without a default provider: bring ring (harmless if set).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let policy = reqwest::redirect::Policy::custom(|attempt| {
        let code = attempt.status().as_u16();
        if matches!(code, 307 | 308) && attempt.previous().len() <= 5 {
            attempt.follow()
        } else {
            attempt.stop()
        }
    });
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .redirect(policy)
        .no_proxy()
        .user_agent("Veritrans")
        .build()?)
}

impl Shared {
    /// Queues a notification: held while `Delivery::hold` is on, otherwise sent in the background.
    pub fn dispatch(self: &Arc<Self>, st: &mut State, out: Outgoing) -> Option<JoinHandle<()>> {
        if st.delivery.hold {
            tracing::debug!(order_id = out.order_id, status = out.transaction_status, "notification held");
            st.held.push(out);
            return None;
        }
        self.start_job(st, out)
    }

    /// Sends a notification now (after the configured delay), bypassing `hold`.
    pub fn start_job(self: &Arc<Self>, st: &mut State, out: Outgoing) -> Option<JoinHandle<()>> {
        let targets = st.targets(&out.order_id);
        if targets.is_empty() {
            tracing::info!(order_id = out.order_id, status = out.transaction_status, "no notification URL");
            st.deliveries.push(DeliveryAttempt {
                order_id: out.order_id,
                transaction_status: out.transaction_status,
                url: None,
                body: out.body,
                http_status: None,
                error: Some("not sent: no notification URL configured".into()),
                attempt: 0,
                copy: 0,
                at: Utc::now(),
            });
            return None;
        }
        let (done, done_rx) = oneshot::channel::<()>();
        let previous = st.tails.insert(out.order_id.clone(), done_rx);
        let copies = st.delivery.duplicates.saturating_add(1);
        let not_before = tokio::time::Instant::now() + st.delivery.delay;
        let shared = Arc::clone(self);
        Some(tokio::spawn(async move {
            if let Some(previous) = previous {
                // An error only means the previous job ended early; go on either way.
                let _ = previous.await;
            }
            if !shared.pause_until(not_before).await {
                return;
            }
            let out = Arc::new(out);
            let payload = Arc::new(serde_json::to_vec(&out.body).unwrap_or_default());
            for url in targets {
                for copy in 0..copies {
                    if shared.stopping() {
                        return;
                    }
                    let retries = shared.attempt(&url, &out, &payload, 1, copy).await;
                    if retries > 0 {
                        let shared = Arc::clone(&shared);
                        let (url, out, payload) = (url.clone(), Arc::clone(&out), Arc::clone(&payload));
                        tokio::spawn(async move { shared.retry(url, out, payload, copy, retries).await });
                    }
                }
            }
            drop(done);
        }))
    }

    /// Sends every held notification, newest first; returns how many there were once each had its
    /// first attempt.
    pub async fn release_held(self: &Arc<Self>) -> usize {
        let (count, jobs) = {
            let mut st = self.lock();
            let held = std::mem::take(&mut st.held);
            let count = held.len();
            let jobs: Vec<JoinHandle<()>> =
                held.into_iter().rev().filter_map(|out| self.start_job(&mut st, out)).collect();
            (count, jobs)
        };
        tracing::info!(count, "released held notifications in reverse order");
        for job in jobs {
            // A failed join only means the fake is shutting down.
            let _ = job.await;
        }
        count
    }

    /// The delay before retry number `n` (1-based).
    fn retry_delay(&self, n: u32) -> Duration {
        let index = usize::try_from(n.saturating_sub(1)).unwrap_or(usize::MAX);
        let Some(base) = self.retry_delays.get(index).or(self.retry_delays.last()) else {
            return Duration::ZERO;
        };
        if self.retry_jitter { base.mul_f64(1.0 + rand::random_range(0.0..0.5)) } else { *base }
    }

    async fn retry(
        self: Arc<Self>,
        url: String,
        out: Arc<Outgoing>,
        payload: Arc<Vec<u8>>,
        copy: u32,
        mut allowed: u32,
    ) {
        let mut made = 0;
        while made < allowed.min(MAX_RETRIES) {
            made += 1;
            let deadline = tokio::time::Instant::now() + self.retry_delay(made);
            if !self.pause_until(deadline).await {
                return;
            }
            allowed = self.attempt(&url, &out, &payload, made + 1, copy).await;
        }
    }

    /// One POST; logs it and returns how many retries its outcome calls for.
    async fn attempt(&self, url: &str, out: &Outgoing, payload: &[u8], attempt: u32, copy: u32) -> u32 {
        let result = self
            .http
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, "Veritrans")
            .body(payload.to_vec())
            .send()
            .await;
        let (http_status, error, retries) = match result {
            Ok(response) => {
                let status = response.status().as_u16();
                (Some(status), None, retries_after(status))
            }
            Err(e) => {
                let what = if e.is_timeout() { "timed out" } else { "failed" };
                (None, Some(format!("request {what}: {e}")), MAX_RETRIES)
            }
        };
        tracing::info!(
            order_id = out.order_id,
            status = out.transaction_status,
            url,
            attempt,
            copy,
            ?http_status,
            error,
            "notification attempt"
        );
        self.lock().deliveries.push(DeliveryAttempt {
            order_id: out.order_id.clone(),
            transaction_status: out.transaction_status.clone(),
            url: Some(url.to_owned()),
            body: out.body.clone(),
            http_status,
            error,
            attempt,
            copy,
            at: Utc::now(),
        });
        retries
    }
}

#[cfg(test)]
mod tests {
    use super::retries_after;

    #[test]
    fn retry_counts_follow_midtrans() {
        assert_eq!(retries_after(200), 0);
        assert_eq!(retries_after(204), 0);
        assert_eq!(retries_after(500), 1);
        assert_eq!(retries_after(503), 4);
        assert_eq!(retries_after(400), 2);
        assert_eq!(retries_after(404), 2);
        assert_eq!(retries_after(302), 0);
        assert_eq!(retries_after(401), 5);
        assert_eq!(retries_after(502), 5);
    }
}
