//! The Midtrans HTTP client. Base URLs come from configuration (sandbox, production, or the fake server
//! in tests and the local demo).
//!
//! Errors are read from the HTTP status *and* from the body: the Core API reports failures in the JSON
//! `status_code` string, sometimes under HTTP 200 (407 is the normal answer for an expired transaction,
//! not an error). Calls are retried with backoff only where a repeat cannot do harm: status reads, and
//! POSTs that carry an `Idempotency-Key` (or a `refund_key`), which Midtrans answers with the stored
//! result.

use std::time::Duration;

use base64::Engine;
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::notification::Notification;

#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub server_key: String,
    /// Core API base, e.g. `https://api.sandbox.midtrans.com`.
    pub api_base_url: String,
    /// Snap base, e.g. `https://app.sandbox.midtrans.com/snap/v1`.
    pub snap_base_url: String,
    /// Per attempt.
    pub timeout: Duration,
    /// Attempts for calls that are safe to repeat (1 = no retry).
    pub attempts: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No answer (connection refused, timeout): for a POST the outcome is unknown.
    #[error("midtrans unreachable: {0}")]
    Transport(String),
    /// Midtrans answered with an error (HTTP status or body `status_code`).
    #[error("midtrans error {code}: {message}")]
    Api { http_status: u16, code: String, message: String },
    #[error("unreadable midtrans answer: {0}")]
    Decode(String),
}

impl Error {
    /// Worth trying again later with the same idempotency key.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Transport(_) => true,
            Error::Api { http_status, code, .. } => {
                *http_status >= 500 || *http_status == 429 || code == "429" || code.starts_with('5')
            }
            // An answer we cannot read (e.g. HTTP 202 "still processing" for a repeated idempotent call):
            // the outcome is unknown, so it is asked again rather than taken as a refusal.
            Error::Decode(_) => true,
        }
    }

    /// The body `status_code` (or HTTP status) of an API error.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    config: ClientConfig,
    authorization: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The server key never reaches logs.
        f.debug_struct("Client")
            .field("api_base_url", &self.config.api_base_url)
            .field("snap_base_url", &self.config.snap_base_url)
            .finish_non_exhaustive()
    }
}

// ---- request and answer bodies ----

#[derive(Clone, Debug, Serialize)]
pub struct TransactionDetails {
    pub order_id: String,
    pub gross_amount: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ItemDetail {
    pub id: String,
    pub price: i64,
    pub quantity: i64,
    /// At most 50 characters.
    pub name: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct CustomerDetails {
    pub first_name: String,
    pub email: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct SnapExpiry {
    pub start_time: String,
    pub unit: &'static str,
    pub duration: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Callbacks {
    pub finish: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct SnapRequest {
    pub transaction_details: TransactionDetails,
    pub item_details: Vec<ItemDetail>,
    pub customer_details: CustomerDetails,
    pub expiry: SnapExpiry,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callbacks: Option<Callbacks>,
    /// Our own order id, for people reading the Midtrans dashboard.
    pub custom_field1: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct SnapResponse {
    pub token: String,
    pub redirect_url: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct CustomExpiry {
    pub order_time: String,
    pub expiry_duration: i64,
    pub unit: &'static str,
}

#[derive(Clone, Debug, Serialize)]
pub struct QrisRequest {
    pub transaction_details: TransactionDetails,
    pub item_details: Vec<ItemDetail>,
    pub customer_details: CustomerDetails,
    pub custom_expiry: CustomExpiry,
    pub custom_field1: String,
}

#[derive(Serialize)]
struct QrisCharge<'a> {
    payment_type: &'static str,
    #[serde(flatten)]
    request: &'a QrisRequest,
    qris: QrisAcquirer,
}

#[derive(Serialize)]
struct QrisAcquirer {
    acquirer: &'static str,
}

#[derive(Clone, Debug, Deserialize)]
pub struct QrisResponse {
    pub transaction_id: Option<String>,
    pub qr_string: String,
    /// Not in every answer: fall back to the transaction time plus 15 minutes.
    pub expiry_time: Option<String>,
    pub transaction_time: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct RefundResponse {
    pub status_code: Option<String>,
    pub transaction_status: Option<String>,
    pub refund_amount: Option<String>,
}

#[derive(Serialize)]
struct RefundBody<'a> {
    refund_key: &'a str,
    amount: i64,
    reason: &'a str,
}

impl Client {
    /// Builds the client. The process must have called [`crate::install_crypto_provider`].
    pub fn new(config: ClientConfig) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            .user_agent("queue-checkout")
            .build()
            .map_err(|e| Error::Transport(e.to_string()))?;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{}:", config.server_key));
        Ok(Client { http, authorization: format!("Basic {token}"), config })
    }

    pub fn server_key(&self) -> &str {
        &self.config.server_key
    }

    /// Snap: a payment page for the order (`POST {snap}/transactions`).
    pub async fn snap_create(
        &self,
        request: &SnapRequest,
        idempotency_key: &str,
    ) -> Result<SnapResponse, Error> {
        let url = format!("{}/transactions", self.config.snap_base_url.trim_end_matches('/'));
        self.call(
            Method::POST,
            url,
            Some(serde_json::to_value(request).expect("serialises")),
            Some(idempotency_key),
        )
        .await
    }

    /// Core API QRIS charge (`POST {core}/v2/charge`); the answer's `qr_string` is rendered by us.
    pub async fn qris_charge(
        &self,
        request: &QrisRequest,
        idempotency_key: &str,
    ) -> Result<QrisResponse, Error> {
        let body = QrisCharge { payment_type: "qris", request, qris: QrisAcquirer { acquirer: "gopay" } };
        let url = format!("{}/v2/charge", self.api_base());
        self.call(
            Method::POST,
            url,
            Some(serde_json::to_value(&body).expect("serialises")),
            Some(idempotency_key),
        )
        .await
    }

    /// `GET /v2/{order_id}/status`. `None` when Midtrans does not know the transaction (a Snap order
    /// whose payer has not chosen a method yet).
    pub async fn status(&self, order_id: &str) -> Result<Option<Notification>, Error> {
        let url = format!("{}/v2/{}/status", self.api_base(), order_id);
        match self.call::<Notification>(Method::GET, url, None, None).await {
            Ok(n) => Ok(Some(n)),
            Err(Error::Api { code, .. }) if code == "404" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST /v2/{order_id}/cancel`.
    pub async fn cancel(&self, order_id: &str, idempotency_key: &str) -> Result<Notification, Error> {
        let url = format!("{}/v2/{}/cancel", self.api_base(), order_id);
        self.call(Method::POST, url, None, Some(idempotency_key)).await
    }

    /// `POST /v2/{order_id}/expire` (only for pending transactions; answers body code 407).
    pub async fn expire(&self, order_id: &str, idempotency_key: &str) -> Result<Notification, Error> {
        let url = format!("{}/v2/{}/expire", self.api_base(), order_id);
        self.call(Method::POST, url, None, Some(idempotency_key)).await
    }

    /// `POST /v2/{order_id}/refund`; repeating with the same `refund_key` is safe.
    pub async fn refund(
        &self,
        order_id: &str,
        refund_key: &str,
        amount: i64,
        reason: &str,
    ) -> Result<RefundResponse, Error> {
        let url = format!("{}/v2/{}/refund", self.api_base(), order_id);
        let body = serde_json::to_value(RefundBody { refund_key, amount, reason }).expect("serialises");
        self.call(Method::POST, url, Some(body), Some(refund_key)).await
    }

    fn api_base(&self) -> &str {
        self.config.api_base_url.trim_end_matches('/')
    }

    /// One logical call: attempts with backoff while the failure is transient. Every call here is either a
    /// read or carries an idempotency key, so a repeat cannot double an effect.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        url: String,
        body: Option<Value>,
        idempotency_key: Option<&str>,
    ) -> Result<T, Error> {
        let attempts = self.config.attempts.max(1);
        let mut delay = Duration::from_millis(200);
        let mut attempt = 1;
        loop {
            match self.once(method.clone(), &url, body.as_ref(), idempotency_key).await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_transient() && attempt < attempts => {
                    tracing::warn!(error = %e, attempt, %url, "midtrans call failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn once<T: DeserializeOwned>(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<T, Error> {
        let mut request = self
            .http
            .request(method, url)
            .header("Accept", "application/json")
            .header("Authorization", &self.authorization);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        request = match body {
            Some(b) => request.json(b),
            None => request.header("Content-Type", "application/json"),
        };
        let response = request.send().await.map_err(transport)?;
        let http_status = response.status();
        let bytes = response.bytes().await.map_err(transport)?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|_| {
            if http_status.is_success() {
                Error::Decode(format!("HTTP {http_status}, not JSON"))
            } else {
                Error::Api {
                    http_status: http_status.as_u16(),
                    code: http_status.as_u16().to_string(),
                    message: "non-JSON error body".into(),
                }
            }
        })?;
        if let Some(e) = api_error(http_status, &value) {
            return Err(e);
        }
        serde_json::from_value(value).map_err(|e| Error::Decode(e.to_string()))
    }
}

/// A transport failure with its causes (without the URL, which is configuration, not news).
fn transport(e: reqwest::Error) -> Error {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    Error::Transport(text)
}

/// An error in the HTTP status or in the body (`status_code` ≥ 400 except 407, or Snap's
/// `error_messages`).
fn api_error(http_status: StatusCode, body: &Value) -> Option<Error> {
    let body_code = body.get("status_code").and_then(|c| match c {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    });
    let message = body
        .get("status_message")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| {
            body.get("error_messages")
                .and_then(Value::as_array)
                .map(|m| m.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; "))
        })
        .unwrap_or_default();
    let body_failed =
        body_code.as_deref().and_then(|c| c.parse::<u16>().ok()).is_some_and(|c| c >= 400 && c != 407);
    if http_status.is_success() && !body_failed {
        return None;
    }
    Some(Error::Api {
        http_status: http_status.as_u16(),
        code: if body_failed { body_code.unwrap_or_default() } else { http_status.as_u16().to_string() },
        message,
    })
}

/// A Midtrans item name: at most 50 characters.
pub fn item_name(name: &str) -> String {
    name.chars().take(50).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn errors_come_from_the_body_too() {
        assert!(api_error(StatusCode::OK, &json!({"status_code":"201","qr_string":"x"})).is_none());
        assert!(
            api_error(StatusCode::OK, &json!({"status_code":"407","transaction_status":"expire"})).is_none()
        );
        let e =
            api_error(StatusCode::OK, &json!({"status_code":"406","status_message":"duplicate"})).unwrap();
        assert_eq!(e.code(), Some("406"));
        assert!(!e.is_transient());
        let e = api_error(StatusCode::BAD_REQUEST, &json!({"error_messages":["a","b"]})).unwrap();
        assert!(matches!(&e, Error::Api { message, code, .. } if message == "a; b" && code == "400"));
        let e = api_error(StatusCode::OK, &json!({"status_code":"429"})).unwrap();
        assert!(e.is_transient());
        assert!(api_error(StatusCode::INTERNAL_SERVER_ERROR, &json!({})).unwrap().is_transient());
    }

    #[test]
    fn names_fit() {
        assert_eq!(item_name(&"x".repeat(80)).len(), 50);
    }
}
