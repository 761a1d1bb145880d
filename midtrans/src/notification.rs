//! HTTP notifications (and GET-status answers, which have the same shape): lenient parsing, the
//! signature, and what a `transaction_status` / `fraud_status` / `status_code` triple means for an order.

use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

/// The fields this system reads. Unknown fields are accepted and ignored (Midtrans adds fields over
/// time); the raw body is kept by the caller for the record.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Notification {
    #[serde(default, deserialize_with = "text")]
    pub order_id: String,
    #[serde(default, deserialize_with = "text")]
    pub status_code: String,
    #[serde(default, deserialize_with = "text")]
    pub gross_amount: String,
    #[serde(default, deserialize_with = "text")]
    pub signature_key: String,
    #[serde(default, deserialize_with = "text")]
    pub transaction_status: String,
    #[serde(default, deserialize_with = "opt_text")]
    pub transaction_id: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub fraud_status: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub payment_type: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub transaction_time: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub settlement_time: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub status_message: Option<String>,
    /// Cumulative refunded amount on refund notifications (`"50000.00"`).
    #[serde(default, deserialize_with = "opt_text")]
    pub refund_amount: Option<String>,
    #[serde(default)]
    pub refunds: Option<Vec<Refund>>,
    /// With automatic fee imposition, the original amount hides in
    /// `metadata.extra_info.gross_amount_info.original_amount`.
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Refund {
    #[serde(default, deserialize_with = "opt_text")]
    pub refund_key: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub refund_amount: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub bank_confirmed_at: Option<String>,
}

/// A string field that some senders write as a number: the exact text either way (the signature is over
/// the exact strings).
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(opt_text(d)?.unwrap_or_default())
}

fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s),
        other => Some(other.to_string()),
    })
}

/// `hex(SHA512(order_id + status_code + gross_amount + server_key))`, lowercase.
pub fn signature(order_id: &str, status_code: &str, gross_amount: &str, server_key: &str) -> String {
    let mut h = Sha512::new();
    for part in [order_id, status_code, gross_amount, server_key] {
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Checks `given` against the signature of the exact strings, in constant time.
pub fn verify_signature(
    order_id: &str,
    status_code: &str,
    gross_amount: &str,
    server_key: &str,
    given: &str,
) -> bool {
    let expected = signature(order_id, status_code, gross_amount, server_key);
    let given = given.trim().to_ascii_lowercase();
    expected.len() == given.len() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

impl Notification {
    pub fn verify(&self, server_key: &str) -> bool {
        !self.order_id.is_empty()
            && verify_signature(
                &self.order_id,
                &self.status_code,
                &self.gross_amount,
                server_key,
                &self.signature_key,
            )
    }

    /// The amount to compare with what we asked for: the original amount when Midtrans added a fee.
    pub fn charged_amount(&self) -> Option<i64> {
        let original = self
            .metadata
            .as_ref()
            .and_then(|m| m.pointer("/extra_info/gross_amount_info/original_amount"))
            .and_then(|v| match v {
                serde_json::Value::String(s) => parse_amount(s),
                serde_json::Value::Number(n) => n.as_i64(),
                _ => None,
            });
        original.or_else(|| parse_amount(&self.gross_amount))
    }

    pub fn outcome(&self) -> Outcome {
        let fraud = self.fraud_status.as_deref();
        match self.transaction_status.as_str() {
            "settlement" | "capture" if fraud == Some("challenge") => Outcome::Challenge,
            // Refused by fraud detection at capture: never paid (unlike a `deny` after a settlement).
            "settlement" | "capture" if fraud == Some("deny") => Outcome::Failed,
            "settlement" | "capture" if self.status_code == "200" => Outcome::Paid,
            "settlement" | "capture" => Outcome::Unknown,
            "pending" | "authorize" => Outcome::Pending,
            "deny" => Outcome::Denied,
            "cancel" => Outcome::Cancelled,
            "failure" => Outcome::Failed,
            "expire" => Outcome::Expired,
            "refund" | "chargeback" => Outcome::Refunded { amount: self.refunded_amount() },
            "partial_refund" | "partial_chargeback" => {
                Outcome::PartiallyRefunded { amount: self.refunded_amount() }
            }
            _ => Outcome::Unknown,
        }
    }

    /// The cumulative refunded amount a refund notification reports.
    fn refunded_amount(&self) -> Option<i64> {
        self.refund_amount.as_deref().and_then(parse_amount).or_else(|| {
            let refunds = self.refunds.as_ref()?;
            refunds.iter().map(|r| r.refund_amount.as_deref().and_then(parse_amount)).sum()
        })
    }

    /// Whether a payment Midtrans last reported as `status` was a captured card payment (which a `cancel`
    /// voids, taking the money back).
    pub fn was_card_capture(status: Option<&str>) -> bool {
        status == Some("capture")
    }

    /// Refund notifications come twice; the one to act on carries the bank's confirmation.
    pub fn refund_confirmed(&self) -> bool {
        self.refunds.as_ref().is_none_or(|r| r.iter().all(|r| r.bank_confirmed_at.is_some()))
    }
}

/// What a notification means for the order it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Waiting for the payer (or card 3DS / pre-authorisation).
    Pending,
    /// Card captured but held by fraud detection: hold the order for review.
    Challenge,
    /// Money received: settlement, or capture with fraud `accept`, with `status_code` 200.
    Paid,
    /// Denied by the bank or by fraud detection: not paid. After a settlement, a reversal.
    Denied,
    /// Cancelled (by the merchant, or a captured card payment voided): not paid.
    Cancelled,
    /// Failed: not paid.
    Failed,
    /// Not paid in time.
    Expired,
    Refunded {
        amount: Option<i64>,
    },
    PartiallyRefunded {
        amount: Option<i64>,
    },
    /// A status this system does not know; recorded, changes nothing.
    Unknown,
}

/// `"275000.00"` or `"275000"` → 275000. A non-zero fraction (rupiah has none) is not an amount.
pub fn parse_amount(s: &str) -> Option<i64> {
    let s = s.trim();
    let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !fraction.bytes().all(|b| b == b'0') {
        return None;
    }
    whole.parse().ok()
}

/// `150000` → `"150000.00"`, the way Midtrans writes amounts.
pub fn format_amount(amount: i64) -> String {
    format!("{amount}.00")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_documented_example() {
        let sig = signature("ORDER-0001", "200", "150000.00", "SB-Mid-server-EXAMPLEKEY123");
        assert_eq!(
            sig,
            "3408e0c47f28482ea3e78fe19c8bfa7c9db211888819f3ac16cf38d3bee28bce197376e63d9a2fcd5a27eddf2feac6cae09a44396308acac7d1375d06738e94c"
        );
        assert!(verify_signature("ORDER-0001", "200", "150000.00", "SB-Mid-server-EXAMPLEKEY123", &sig));
        assert!(verify_signature(
            "ORDER-0001",
            "200",
            "150000.00",
            "SB-Mid-server-EXAMPLEKEY123",
            &sig.to_uppercase()
        ));
        // The exact strings matter: no ".00", another hash.
        assert!(!verify_signature("ORDER-0001", "200", "150000", "SB-Mid-server-EXAMPLEKEY123", &sig));
        assert!(!verify_signature("ORDER-0001", "200", "150000.00", "SB-Mid-server-OTHER", &sig));
        assert!(!verify_signature("ORDER-0001", "200", "150000.00", "SB-Mid-server-EXAMPLEKEY123", ""));
    }

    #[test]
    fn parses_leniently() {
        let n: Notification = serde_json::from_str(
            r#"{"order_id":"A-1","status_code":200,"gross_amount":"275000.00","signature_key":"x",
                "transaction_status":"settlement","fraud_status":"accept","brand_new_field":{"a":1}}"#,
        )
        .unwrap();
        assert_eq!(n.status_code, "200");
        assert_eq!(n.outcome(), Outcome::Paid);
        assert_eq!(n.charged_amount(), Some(275000));
    }

    #[test]
    fn outcomes() {
        let n = |status: &str, fraud: Option<&str>, code: &str| Notification {
            transaction_status: status.into(),
            fraud_status: fraud.map(Into::into),
            status_code: code.into(),
            ..Default::default()
        };
        assert_eq!(n("capture", Some("accept"), "200").outcome(), Outcome::Paid);
        assert_eq!(n("capture", Some("challenge"), "201").outcome(), Outcome::Challenge);
        assert_eq!(n("settlement", None, "200").outcome(), Outcome::Paid);
        assert_eq!(n("settlement", Some("deny"), "202").outcome(), Outcome::Failed);
        assert_eq!(n("pending", Some("accept"), "201").outcome(), Outcome::Pending);
        assert_eq!(n("deny", None, "202").outcome(), Outcome::Denied);
        assert_eq!(n("expire", None, "202").outcome(), Outcome::Expired);
        assert_eq!(n("something_new", None, "200").outcome(), Outcome::Unknown);
    }

    #[test]
    fn amounts() {
        assert_eq!(parse_amount("275000.00"), Some(275000));
        assert_eq!(parse_amount("275000"), Some(275000));
        assert_eq!(parse_amount("275000.50"), None);
        assert_eq!(parse_amount("-5.00"), None);
        assert_eq!(parse_amount(""), None);
        assert_eq!(format_amount(150000), "150000.00");
    }
}
