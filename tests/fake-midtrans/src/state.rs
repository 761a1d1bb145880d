//! The fake's memory: transactions and their indexes, the idempotency store, call counters and
//! injected failures, delivery settings and log. Also the status transitions (as the payer, the
//! bank or Midtrans' scheduler would make them) and the notification-style body of a transaction.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Map, Value, json};
use tokio::sync::{oneshot, watch};

use crate::Delivery;
use crate::model::{
    DeliveryAttempt, MERCHANT_ID, Transaction, amount_string, midtrans_time, notification_status_code,
    signature_key,
};

/// Everything the server, the background tasks and the handles share.
pub(crate) struct Shared {
    pub server_key: String,
    /// Base of every URL the fake hands out (`redirect_url`, QR actions), without trailing `/`.
    pub public_url: String,
    pub retry_delays: Vec<Duration>,
    pub retry_jitter: bool,
    pub http: reqwest::Client,
    /// Turns `true`, or closes, when the fake shuts down.
    pub stop: watch::Receiver<bool>,
    state: Mutex<State>,
}

/// A stored answer for an `Idempotency-Key`.
pub(crate) enum Stored {
    /// The first call with this key is still running.
    InFlight,
    Done {
        status: u16,
        content_type: Option<String>,
        body: Vec<u8>,
        until: Instant,
    },
}

/// `fail_next` rule.
pub(crate) struct FailRule {
    pub prefix: String,
    pub remaining: u32,
    pub http_status: u16,
}

/// A notification waiting to be delivered.
#[derive(Clone)]
pub(crate) struct Outgoing {
    pub order_id: String,
    pub transaction_status: String,
    pub body: Value,
}

#[derive(Default)]
pub(crate) struct State {
    pub txs: HashMap<String, Transaction>,
    pub by_transaction_id: HashMap<String, String>,
    pub by_token: HashMap<String, String>,
    pub idempotency: HashMap<String, Stored>,
    pub replays: u64,
    pub api_calls: HashMap<String, u64>,
    pub failures: Vec<FailRule>,
    pub notification_url: Option<String>,
    pub delivery: Delivery,
    pub held: Vec<Outgoing>,
    pub deliveries: Vec<DeliveryAttempt>,
    /// Per order, a signal fired once the latest queued notification had its first attempt, so the
    /// next one for the same order waits for it and notifications arrive in order.
    pub tails: HashMap<String, oneshot::Receiver<()>>,
    /// Answers of accepted refunds by (order_id, refund_key), replayed for a repeated key.
    pub refund_answers: HashMap<(String, String), Value>,
    pub last_chargeback_id: u64,
}

impl State {
    /// The order id of a transaction given its order id or transaction id.
    pub fn resolve(&self, id: &str) -> Option<String> {
        if self.txs.contains_key(id) {
            return Some(id.to_owned());
        }
        self.by_transaction_id.get(id).cloned()
    }

    pub fn find(&self, id: &str) -> Option<&Transaction> {
        self.resolve(id).and_then(|order_id| self.txs.get(&order_id))
    }

    pub fn insert(&mut self, tx: Transaction) {
        if let Some(old) = self.txs.remove(&tx.order_id) {
            self.by_transaction_id.remove(&old.transaction_id);
            if let Some(token) = &old.snap_token {
                self.by_token.remove(token);
            }
        }
        self.by_transaction_id.insert(tx.transaction_id.clone(), tx.order_id.clone());
        if let Some(token) = &tx.snap_token {
            self.by_token.insert(token.clone(), tx.order_id.clone());
        }
        self.txs.insert(tx.order_id.clone(), tx);
    }

    /// Where notifications for this order go.
    pub fn targets(&self, order_id: &str) -> Vec<String> {
        let configured = self.notification_url.iter().cloned();
        match self.txs.get(order_id) {
            Some(tx) if !tx.notification_urls.is_empty() => tx.notification_urls.clone(),
            Some(tx) => configured.chain(tx.append_notification_urls.iter().cloned()).collect(),
            None => configured.collect(),
        }
    }
}

/// How to render a transaction as a Midtrans JSON body.
pub(crate) struct View<'a> {
    pub status: &'a str,
    pub fraud: &'a str,
    pub status_code: &'a str,
    pub status_message: &'a str,
    /// Sign the body with this server key (notifications and GET status do, API answers don't).
    pub sign_with: Option<&'a str>,
}

/// The notification-style body of a transaction in a given status.
pub(crate) fn describe(tx: &Transaction, view: &View<'_>) -> Value {
    let gross = amount_string(tx.gross_amount);
    let payment_type = tx.payment_type.as_deref().unwrap_or("qris");
    let mut m = Map::new();
    m.insert("transaction_time".into(), midtrans_time(tx.transaction_time).into());
    m.insert("transaction_status".into(), view.status.into());
    m.insert("transaction_id".into(), tx.transaction_id.clone().into());
    m.insert("status_message".into(), view.status_message.into());
    m.insert("status_code".into(), view.status_code.into());
    if let Some(key) = view.sign_with {
        m.insert("signature_key".into(), signature_key(&tx.order_id, view.status_code, &gross, key).into());
    }
    m.insert("payment_type".into(), payment_type.into());
    m.insert("order_id".into(), tx.order_id.clone().into());
    m.insert("merchant_id".into(), MERCHANT_ID.into());
    m.insert("gross_amount".into(), gross.into());
    m.insert("fraud_status".into(), view.fraud.into());
    m.insert("currency".into(), "IDR".into());
    m.insert("expiry_time".into(), midtrans_time(tx.expires_at).into());
    let settled = matches!(view.status, "settlement" | "refund" | "partial_refund");
    if settled {
        let at = tx.settlement_time.unwrap_or_else(Utc::now);
        m.insert("settlement_time".into(), midtrans_time(at).into());
    }
    match payment_type {
        "qris" => {
            m.insert("acquirer".into(), "gopay".into());
            if !matches!(view.status, "pending" | "expire" | "cancel") {
                m.insert("issuer".into(), "gopay".into());
                m.insert("transaction_type".into(), "on-us".into());
            }
        }
        "credit_card" => {
            m.insert("masked_card".into(), "48111111-1114".into());
            m.insert("bank".into(), "bni".into());
            m.insert("card_type".into(), "credit".into());
            m.insert("eci".into(), "05".into());
            m.insert("three_ds_version".into(), "2".into());
            if view.status != "pending" {
                let approval: String =
                    tx.transaction_id.chars().filter(char::is_ascii_digit).take(6).collect();
                m.insert("approval_code".into(), format!("{approval:0>6}").into());
                m.insert("channel_response_code".into(), "00".into());
                m.insert("channel_response_message".into(), "Approved".into());
            }
        }
        _ => {}
    }
    for (k, v) in &tx.custom_fields {
        m.insert(k.clone(), v.clone().into());
    }
    if matches!(view.status, "refund" | "partial_refund") || !tx.refunds.is_empty() {
        m.insert("refund_amount".into(), amount_string(tx.refunded).into());
        let refunds: Vec<Value> = tx
            .refunds
            .iter()
            .map(|r| {
                let mut e = json!({
                    "refund_chargeback_id": r.refund_chargeback_id,
                    "refund_key": r.refund_key,
                    "refund_amount": amount_string(r.amount),
                    "reason": r.reason.clone().unwrap_or_default(),
                    "created_at": midtrans_time(r.created_at),
                });
                if let Some(at) = r.bank_confirmed_at {
                    e["bank_confirmed_at"] = midtrans_time(at).into();
                }
                e
            })
            .collect();
        m.insert("refunds".into(), refunds.into());
    }
    Value::Object(m)
}

/// What the payer, the bank or Midtrans' scheduler can do to a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    Pay,
    Challenge,
    AcceptChallenge,
    Deny,
    Expire,
    Reverse,
}

impl Action {
    pub fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "pay" => Action::Pay,
            "challenge" => Action::Challenge,
            "accept" | "accept_challenge" | "accept-challenge" => Action::AcceptChallenge,
            "deny" => Action::Deny,
            "expire" => Action::Expire,
            "reverse" => Action::Reverse,
            _ => return None,
        })
    }

    fn verb(self) -> &'static str {
        match self {
            Action::Pay => "pay",
            Action::Challenge => "challenge",
            Action::AcceptChallenge => "accept the challenge of",
            Action::Deny => "deny",
            Action::Expire => "expire",
            Action::Reverse => "reverse",
        }
    }
}

#[derive(Debug)]
pub(crate) enum ActError {
    NotFound(String),
    Invalid(String),
}

impl std::fmt::Display for ActError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ActError::NotFound(id) => write!(f, "no transaction with order_id or transaction_id {id:?}"),
            ActError::Invalid(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for ActError {}

/// One status change: new status, new fraud status, and the payment type it sets (if any).
type Step = (&'static str, &'static str, Option<&'static str>);

impl Shared {
    pub fn new(
        server_key: String,
        public_url: String,
        retry_delays: Vec<Duration>,
        retry_jitter: bool,
        notification_url: Option<String>,
        http: reqwest::Client,
        stop: watch::Receiver<bool>,
    ) -> Shared {
        let state = State { notification_url, ..State::default() };
        Shared { server_key, public_url, retry_delays, retry_jitter, http, stop, state: Mutex::new(state) }
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// True once the fake is shutting down.
    pub fn stopping(&self) -> bool {
        *self.stop.borrow() || self.stop.has_changed().is_err()
    }

    /// Sleeps until `deadline`; false if the fake shut down meanwhile.
    pub async fn pause_until(&self, deadline: tokio::time::Instant) -> bool {
        if self.stopping() {
            return false;
        }
        let mut stop = self.stop.clone();
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => true,
            _ = stop.wait_for(|s| *s) => false,
        }
    }

    /// Moves a transaction to `status` and queues its notification.
    pub fn set_status(self: &Arc<Self>, st: &mut State, order_id: &str, (status, fraud, payment_type): Step) {
        let now = Utc::now();
        let Some(tx) = st.txs.get_mut(order_id) else { return };
        if tx.status.is_none() {
            tx.transaction_time = now;
        }
        if let Some(pt) = payment_type {
            tx.payment_type = Some(pt.to_owned());
        }
        tx.status = Some(status.to_owned());
        tx.fraud_status = Some(fraud.to_owned());
        tx.history.push(status.to_owned());
        if status == "settlement" {
            tx.settlement_time = Some(now);
        }
        tracing::info!(order_id, status, fraud, "transaction status changed");
        let view = View {
            status,
            fraud,
            status_code: notification_status_code(status, Some(fraud)),
            status_message: "midtrans payment notification",
            sign_with: Some(&self.server_key),
        };
        let body = describe(tx, &view);
        self.dispatch(
            st,
            Outgoing { order_id: order_id.to_owned(), transaction_status: status.to_owned(), body },
        );
    }

    /// Acts on a transaction (by order id or transaction id) and sends the notifications the
    /// real Midtrans would; returns the transaction afterwards.
    pub fn act(self: &Arc<Self>, id: &str, action: Action) -> Result<Transaction, ActError> {
        let mut st = self.lock();
        let order_id = st.resolve(id).ok_or_else(|| ActError::NotFound(id.to_owned()))?;
        let tx = &st.txs[&order_id];
        let status = tx.status.as_deref();
        let fraud = tx.fraud_status.as_deref().unwrap_or("accept");
        let link_expired = status.is_none() && tx.expires_at <= Utc::now();
        if link_expired && action != Action::Expire {
            return Err(ActError::Invalid(format!("the payment link of {order_id} has expired")));
        }
        const QRIS_PENDING: Step = ("pending", "accept", Some("qris"));
        let steps: Vec<Step> = match (action, status, fraud) {
            (Action::Pay, None, _) => vec![QRIS_PENDING, ("settlement", "accept", None)],
            (Action::Pay, Some("pending"), _) | (Action::Pay, Some("capture"), "accept") => {
                vec![("settlement", "accept", None)]
            }
            (Action::Challenge, None | Some("pending"), _) => {
                vec![("capture", "challenge", Some("credit_card"))]
            }
            (Action::AcceptChallenge, Some("capture"), "challenge") => vec![("capture", "accept", None)],
            (Action::AcceptChallenge, None | Some("pending"), _) => {
                vec![("capture", "accept", Some("credit_card"))]
            }
            (Action::Deny, None, _) => vec![QRIS_PENDING, ("deny", "accept", None)],
            (Action::Deny, Some("pending"), _) => vec![("deny", "accept", None)],
            (Action::Deny, Some("capture"), "challenge") => vec![("deny", "deny", None)],
            (Action::Expire, None, _) => vec![QRIS_PENDING, ("expire", "accept", None)],
            (Action::Expire, Some("pending"), _) => vec![("expire", "accept", None)],
            (Action::Reverse, Some("settlement"), _) => vec![("deny", "accept", None)],
            (action, status, fraud) => {
                let shown = match status {
                    None => "none (no payment method chosen yet)".to_owned(),
                    Some("capture") => format!("capture/{fraud}"),
                    Some(s) => s.to_owned(),
                };
                return Err(ActError::Invalid(format!(
                    "cannot {} {order_id}: its status is {shown}",
                    action.verb()
                )));
            }
        };
        for step in steps {
            self.set_status(&mut st, &order_id, step);
        }
        Ok(st.txs[&order_id].clone())
    }

    /// Expires pending transactions whose expiry time has passed, as Midtrans' scheduler does.
    pub async fn expire_overdue(self: Arc<Self>) {
        let mut next = tokio::time::Instant::now();
        loop {
            next += Duration::from_millis(500);
            if !self.pause_until(next).await {
                return;
            }
            let now = Utc::now();
            let mut st = self.lock();
            let due: Vec<String> = st
                .txs
                .values()
                .filter(|tx| tx.status.as_deref() == Some("pending") && tx.expires_at <= now)
                .map(|tx| tx.order_id.clone())
                .collect();
            for order_id in due {
                tracing::info!(order_id, "pending transaction reached its expiry time");
                self.set_status(&mut st, &order_id, ("expire", "accept", None));
            }
        }
    }
}
