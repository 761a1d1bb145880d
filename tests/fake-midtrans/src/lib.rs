//! A stand-in Midtrans server for integration tests (as a library) and the local demo (as the
//! `fake-midtrans` binary).
//!
//! It speaks the parts of Midtrans the checkout uses, with the real paths, field names, string
//! formats and status codes: Snap `POST /snap/v1/transactions` with a payment page at
//! `/snap/v3/redirection/{token}`, Core API QRIS `POST /v2/charge`, `GET /v2/{id}/status`,
//! `POST /v2/{id}/cancel`, `/expire` and `/refund`, Basic auth with the server key, and
//! `Idempotency-Key` replay. Status changes are reported by signed HTTP notifications, delivered
//! in the background with Midtrans' retry rules; tests can duplicate, delay, hold and reorder them.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use fake_midtrans::{Config, FakeMidtrans};
//! let fake = FakeMidtrans::start(([127, 0, 0, 1], 0).into(), Config::new("SB-Mid-server-test").fast_retries())
//!     .await?;
//! fake.set_notification_url("http://127.0.0.1:9000/midtrans/notification");
//! // ... let the code under test create a transaction at fake.snap_base_url() ...
//! fake.pay("ORDER-1").await?;
//! # Ok(()) }
//! ```

mod api;
mod control;
mod delivery;
mod model;
mod page;
mod state;
mod validate;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;
use tokio::sync::watch;

pub use model::{
    DeliveryAttempt, MERCHANT_ID, Refund, Transaction, amount_string, midtrans_time, rupiah, signature_key,
};

use state::{Action, Outgoing, Shared};

/// How the fake is set up.
#[derive(Clone, Debug)]
pub struct Config {
    /// The server key API calls must authenticate with, and that notifications are signed with.
    pub server_key: String,
    /// Base URL put in `redirect_url` and QR actions (e.g. when behind a proxy); default `url()`.
    pub public_url: Option<String>,
    /// Where notifications go unless a transaction overrides it.
    pub notification_url: Option<String>,
    /// Waits before retry 1, 2, ...; the last one is reused if there are more retries than entries.
    pub retry_delays: Vec<Duration>,
    /// Add up to +50 % random jitter to each retry delay.
    pub retry_jitter: bool,
}

impl Config {
    /// Midtrans' own retry schedule (2 min, 10 min, 30 min, 90 min, 210 min, with jitter).
    pub fn new(server_key: impl Into<String>) -> Self {
        Config {
            server_key: server_key.into(),
            public_url: None,
            notification_url: None,
            retry_delays: [2, 10, 30, 90, 210].into_iter().map(|m| Duration::from_secs(m * 60)).collect(),
            retry_jitter: true,
        }
    }

    /// Retries after 50, 100, 200, 400 and 800 ms, no jitter: for tests.
    pub fn fast_retries(self) -> Self {
        Config {
            retry_delays: [50, 100, 200, 400, 800].into_iter().map(Duration::from_millis).collect(),
            retry_jitter: false,
            ..self
        }
    }
}

/// Delivery controls for tests. The default delivers each notification once, right away.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Send every notification `1 + duplicates` times.
    pub duplicates: u32,
    /// Wait this long before the first attempt of each notification.
    pub delay: Duration,
    /// Keep notifications unsent until [`FakeMidtrans::release_held`].
    pub hold: bool,
}

/// A handle on a running fake. Clones share the same server; it stops when the last handle is
/// dropped or on [`FakeMidtrans::shutdown`].
#[derive(Clone)]
pub struct FakeMidtrans {
    inner: Arc<Handle>,
}

struct Handle {
    shared: Arc<Shared>,
    /// Dropping it (with the last handle) stops the server and all background tasks.
    stop: watch::Sender<bool>,
    addr: SocketAddr,
    url: String,
}

impl std::fmt::Debug for FakeMidtrans {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeMidtrans").field("url", &self.inner.url).finish_non_exhaustive()
    }
}

impl FakeMidtrans {
    /// Binds `addr` (port 0 picks a free port) and serves in a background task.
    pub async fn start(addr: SocketAddr, config: Config) -> anyhow::Result<FakeMidtrans> {
        let listener =
            tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
        let bound = listener.local_addr().context("reading the bound address")?;
        let reachable = match bound.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::from((Ipv4Addr::LOCALHOST, bound.port())),
            IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::from((Ipv6Addr::LOCALHOST, bound.port())),
            _ => bound,
        };
        let url = format!("http://{reachable}");
        let public_url = config
            .public_url
            .as_deref()
            .map(|u| u.trim().trim_end_matches('/').to_owned())
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| url.clone());
        let (stop, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared::new(
            config.server_key,
            public_url,
            config.retry_delays,
            config.retry_jitter,
            config.notification_url.filter(|u| !u.trim().is_empty()),
            delivery::client()?,
            stop_rx.clone(),
        ));
        let app = api::router(Arc::clone(&shared));
        let mut server_stop = stop_rx;
        tokio::spawn(async move {
            let shutdown = async move {
                // Resolves on `shutdown()` and when the last handle (the sender) is dropped.
                let _ = server_stop.wait_for(|stopped| *stopped).await;
            };
            if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
                tracing::error!(error = %e, "fake-midtrans server failed");
            }
            tracing::debug!("fake-midtrans server stopped");
        });
        tokio::spawn(Arc::clone(&shared).expire_overdue());
        tracing::info!(%bound, "fake-midtrans started");
        Ok(FakeMidtrans { inner: Arc::new(Handle { shared, stop, addr: bound, url }) })
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }

    /// `http://127.0.0.1:PORT`: the Core API base URL.
    pub fn url(&self) -> String {
        self.inner.url.clone()
    }

    /// `url() + "/snap/v1"`.
    pub fn snap_base_url(&self) -> String {
        format!("{}/snap/v1", self.inner.url)
    }

    /// The address the server is bound to (may be `0.0.0.0:PORT`).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// The base of URLs handed out to payers (`Config::public_url`, else `url()`).
    pub fn public_url(&self) -> String {
        self.shared().public_url.clone()
    }

    /// Sets where notifications go (an empty string clears it).
    pub fn set_notification_url(&self, url: impl Into<String>) {
        let url = url.into();
        self.shared().lock().notification_url = Some(url).filter(|u| !u.trim().is_empty());
    }

    pub fn set_delivery(&self, d: Delivery) {
        self.shared().lock().delivery = d;
    }

    pub fn delivery(&self) -> Delivery {
        self.shared().lock().delivery.clone()
    }

    /// Sends all held notifications, newest first (to simulate out-of-order delivery); returns
    /// once each had its first attempt. Retries go on in the background.
    pub async fn release_held(&self) {
        self.shared().release_held().await;
    }

    /// The payer pays by QRIS: `pending` (if the transaction had no status yet) then `settlement`;
    /// from card `capture`/`accept` it settles. Notifications go out in the background.
    pub async fn pay(&self, order_id: &str) -> anyhow::Result<()> {
        self.shared().act(order_id, Action::Pay)?;
        Ok(())
    }

    /// A card payment captured but held by fraud detection: `capture` with `challenge`.
    pub async fn challenge(&self, order_id: &str) -> anyhow::Result<()> {
        self.shared().act(order_id, Action::Challenge)?;
        Ok(())
    }

    /// The merchant approves a challenged card payment (or the card is captured without a
    /// challenge): `capture` with `accept`.
    pub async fn accept_challenge(&self, order_id: &str) -> anyhow::Result<()> {
        self.shared().act(order_id, Action::AcceptChallenge)?;
        Ok(())
    }

    /// The provider declines: `deny` (through `pending` if no method was chosen yet).
    pub async fn deny(&self, order_id: &str) -> anyhow::Result<()> {
        self.shared().act(order_id, Action::Deny)?;
        Ok(())
    }

    /// Midtrans' scheduler expires it: `expire` (through `pending` if no method was chosen yet).
    pub async fn expire(&self, order_id: &str) -> anyhow::Result<()> {
        self.shared().act(order_id, Action::Expire)?;
        Ok(())
    }

    /// A settlement reversed by the bank: `settlement` becomes `deny`.
    pub async fn reverse(&self, order_id: &str) -> anyhow::Result<()> {
        self.shared().act(order_id, Action::Reverse)?;
        Ok(())
    }

    /// A transaction by order id or transaction id.
    pub fn transaction(&self, order_id: &str) -> Option<Transaction> {
        self.shared().lock().find(order_id).cloned()
    }

    /// All transactions, oldest first.
    pub fn transactions(&self) -> Vec<Transaction> {
        control::sorted(self.shared().lock().txs.values().cloned().collect())
    }

    /// Every delivery attempt so far, in the order they finished.
    pub fn deliveries(&self) -> Vec<DeliveryAttempt> {
        self.shared().lock().deliveries.clone()
    }

    /// How many answers were replayed for a repeated `Idempotency-Key`.
    pub fn idempotent_replays(&self) -> u64 {
        self.shared().lock().replays
    }

    /// How many API calls (answered or not, authorised or not) hit paths starting with the prefix.
    pub fn api_calls(&self, path_prefix: &str) -> u64 {
        self.shared()
            .lock()
            .api_calls
            .iter()
            .filter(|(path, _)| path.starts_with(path_prefix))
            .map(|(_, n)| n)
            .sum()
    }

    /// The next `times` API calls to paths starting with `path_prefix` answer `http_status` with a
    /// Midtrans-style error body (Snap: `error_messages`, Core API: `status_code`/`status_message`).
    pub fn fail_next(&self, path_prefix: &str, times: u32, http_status: u16) {
        if times == 0 {
            return;
        }
        self.shared().lock().failures.push(state::FailRule {
            prefix: path_prefix.to_owned(),
            remaining: times,
            http_status,
        });
    }

    /// A correctly signed notification body for the transaction in the given status (fraud status
    /// default `accept`), without sending or changing anything.
    pub fn notification(
        &self,
        order_id: &str,
        transaction_status: &str,
        fraud_status: Option<&str>,
    ) -> Option<Value> {
        let shared = self.shared();
        let mut tx = shared.lock().find(order_id).cloned()?;
        if tx.payment_type.is_none() {
            let card = transaction_status == "capture" || fraud_status == Some("challenge");
            tx.payment_type = Some(if card { "credit_card" } else { "qris" }.to_owned());
        }
        let fraud = fraud_status.unwrap_or("accept");
        let view = state::View {
            status: transaction_status,
            fraud,
            status_code: model::notification_status_code(transaction_status, Some(fraud)),
            status_message: "midtrans payment notification",
            sign_with: Some(&shared.server_key),
        };
        Some(state::describe(&tx, &view))
    }

    /// Delivers an arbitrary body through the normal path (targets of its `order_id`, delivery
    /// controls, retries, log), in the background.
    pub async fn send(&self, body: Value) {
        let text = |field: &str| body.get(field).and_then(Value::as_str).unwrap_or_default().to_owned();
        let out =
            Outgoing { order_id: text("order_id"), transaction_status: text("transaction_status"), body };
        let shared = self.shared();
        let mut st = shared.lock();
        shared.dispatch(&mut st, out);
    }

    /// Stops the server and the background deliveries (also done when the last handle drops).
    pub fn shutdown(&self) {
        self.inner.stop.send_replace(true);
    }
}
