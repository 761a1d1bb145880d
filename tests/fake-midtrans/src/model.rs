//! Public record types (transactions, refunds, delivery log entries) and the small string formats
//! Midtrans uses: amounts as `"150000.00"`, timestamps in Western Indonesia Time without a zone
//! suffix, the SHA-512 `signature_key`, rupiah display and a plausible QRIS payload.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha512};

/// The merchant id the fake reports in every answer and notification.
pub const MERCHANT_ID: &str = "G-FAKE-001";

/// One transaction as the fake holds it. A Snap transaction has `status == None` until the payer
/// picks a payment method on the payment page.
#[derive(Clone, Debug, Serialize)]
pub struct Transaction {
    pub order_id: String,
    pub transaction_id: String,
    /// `"snap"` (created through `/snap/v1/transactions`) or `"core"` (through `/v2/charge`).
    pub channel: String,
    /// Midtrans `transaction_status`, `None` while a Snap payer has not chosen a method yet.
    pub status: Option<String>,
    /// `"accept"`, `"challenge"` or `"deny"`; `None` while `status` is `None`.
    pub fraud_status: Option<String>,
    /// `"qris"` or `"credit_card"`; `None` while `status` is `None`.
    pub payment_type: Option<String>,
    pub gross_amount: i64,
    /// Total refunded so far.
    pub refunded: i64,
    /// The `refund_key` of each accepted refund, oldest first.
    pub refund_keys: Vec<String>,
    pub refunds: Vec<Refund>,
    /// The request's `item_details` (an empty array when none were sent).
    pub items: Value,
    /// The request's `customer_details` (`null` when none were sent).
    pub customer: Value,
    pub enabled_payments: Value,
    /// `custom_field1..3` as sent.
    pub custom_fields: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    /// When the payment method was chosen (Snap) or the charge was made (Core API).
    pub transaction_time: DateTime<Utc>,
    pub settlement_time: Option<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
    pub snap_token: Option<String>,
    /// URLs from the create request's `X-Override-Notification` header; when non-empty they replace
    /// the configured notification URL for this transaction.
    pub notification_urls: Vec<String>,
    /// URLs from the create request's `X-Append-Notification` header, notified besides the
    /// configured URL (ignored when `notification_urls` is non-empty).
    pub append_notification_urls: Vec<String>,
    /// `callbacks.finish` of a Snap request.
    pub finish_url: Option<String>,
    /// Every `transaction_status` this transaction has had, in order.
    pub history: Vec<String>,
}

impl Transaction {
    /// True once the transaction can no longer be paid, denied or expired by the payer.
    pub fn is_final(&self) -> bool {
        matches!(
            self.status.as_deref(),
            Some(
                "settlement"
                    | "capture"
                    | "deny"
                    | "cancel"
                    | "expire"
                    | "refund"
                    | "partial_refund"
                    | "failure"
            )
        )
    }
}

/// One accepted refund.
#[derive(Clone, Debug, Serialize)]
pub struct Refund {
    pub refund_key: String,
    pub amount: i64,
    pub reason: Option<String>,
    pub refund_chargeback_id: u64,
    pub created_at: DateTime<Utc>,
    pub bank_confirmed_at: Option<DateTime<Utc>>,
}

/// One entry of the delivery log: a notification POST attempt, or a notification that had nowhere
/// to go (`url == None`, `attempt == 0`, `error == Some("not sent: ...")`).
#[derive(Clone, Debug, Serialize)]
pub struct DeliveryAttempt {
    pub order_id: String,
    pub transaction_status: String,
    pub url: Option<String>,
    pub body: Value,
    /// The HTTP status the receiver answered, if it answered at all.
    pub http_status: Option<u16>,
    /// A connection error, a timeout, or the reason nothing was sent.
    pub error: Option<String>,
    /// 1 for the first try, 2 for the first retry, ...
    pub attempt: u32,
    /// Which copy this is when `Delivery::duplicates` > 0 (0 for the original).
    pub copy: u32,
    pub at: DateTime<Utc>,
}

impl DeliveryAttempt {
    /// True when the receiver acknowledged this attempt with a 2xx status.
    pub fn acknowledged(&self) -> bool {
        self.http_status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// `hex(SHA512(order_id + status_code + gross_amount + server_key))`, lowercase.
pub fn signature_key(order_id: &str, status_code: &str, gross_amount: &str, server_key: &str) -> String {
    let mut hasher = Sha512::new();
    hasher.update(order_id.as_bytes());
    hasher.update(status_code.as_bytes());
    hasher.update(gross_amount.as_bytes());
    hasher.update(server_key.as_bytes());
    hex::encode(hasher.finalize())
}

/// An amount as Midtrans writes it in JSON strings: `150000` → `"150000.00"`.
pub fn amount_string(amount: i64) -> String {
    format!("{amount}.00")
}

/// UTC+7, the zone of every Midtrans timestamp.
pub(crate) fn jakarta() -> FixedOffset {
    FixedOffset::east_opt(7 * 3600).expect("UTC+7 is a valid offset")
}

/// `YYYY-MM-DD HH:MM:SS` in Asia/Jakarta, no zone suffix.
pub fn midtrans_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&jakarta()).format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Parses `2018-12-13 18:11:08 +0700`; without an offset the time is taken as UTC+7.
pub(crate) fn parse_midtrans_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S %z") {
        return Some(t.with_timezone(&Utc));
    }
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").ok()?;
    jakarta().from_local_datetime(&naive).single().map(|t| t.with_timezone(&Utc))
}

/// `150000` → `"Rp 150.000"`.
pub fn rupiah(amount: i64) -> String {
    let digits = amount.unsigned_abs().to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push('.');
        }
        grouped.push(c);
    }
    let sign = if amount < 0 { "-" } else { "" };
    format!("Rp {sign}{grouped}")
}

/// One EMV tag-length-value element.
fn tlv(tag: &str, value: &str) -> String {
    format!("{tag}{:02}{value}", value.len())
}

/// CRC-16/CCITT-FALSE, the checksum EMV QR codes end with.
fn crc16_ccitt(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &byte in data {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc
}

/// A QRIS payload shaped like GoPay's: dynamic EMV QR with the amount, the order id as bill number
/// and a valid CRC at the end.
pub(crate) fn qr_string(order_id: &str, gross_amount: i64, transaction_id: &str) -> String {
    let nmid: String = transaction_id.chars().filter(char::is_ascii_hexdigit).take(12).collect();
    let account = [
        tlv("00", "COM.GO-JEK.WWW"),
        tlv("01", &format!("93600914{nmid}")),
        tlv("02", MERCHANT_ID),
        tlv("03", "UMI"),
    ]
    .concat();
    let mut qr = [
        "000201010212".to_owned(),
        tlv("26", &account),
        tlv("52", "5812"),
        tlv("53", "360"),
        tlv("54", &gross_amount.to_string()),
        tlv("58", "ID"),
        tlv("59", "FAKE MIDTRANS"),
        tlv("60", "JAKARTA"),
        tlv("61", "12190"),
        tlv("62", &[tlv("01", order_id), tlv("07", "A01")].concat()),
        "6304".to_owned(),
    ]
    .concat();
    let crc = crc16_ccitt(qr.as_bytes());
    qr.push_str(&format!("{crc:04X}"));
    qr
}

/// The `status_code` Midtrans puts in a notification for a status.
pub(crate) fn notification_status_code(status: &str, fraud_status: Option<&str>) -> &'static str {
    match status {
        "capture" if fraud_status == Some("challenge") => "201",
        "settlement" | "capture" | "refund" | "partial_refund" | "chargeback" | "partial_chargeback" => "200",
        "pending" | "authorize" => "201",
        _ => "202",
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub(crate) fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_worked_example() {
        assert_eq!(
            signature_key("ORDER-0001", "200", "150000.00", "SB-Mid-server-EXAMPLEKEY123"),
            "3408e0c47f28482ea3e78fe19c8bfa7c9db211888819f3ac16cf38d3bee28bce\
             197376e63d9a2fcd5a27eddf2feac6cae09a44396308acac7d1375d06738e94c"
        );
        assert_ne!(
            signature_key("ORDER-0001", "200", "150000", "SB-Mid-server-EXAMPLEKEY123"),
            signature_key("ORDER-0001", "200", "150000.00", "SB-Mid-server-EXAMPLEKEY123")
        );
    }

    #[test]
    fn rupiah_groups_thousands() {
        assert_eq!(rupiah(150_000), "Rp 150.000");
        assert_eq!(rupiah(1_234_567), "Rp 1.234.567");
        assert_eq!(rupiah(999), "Rp 999");
        assert_eq!(rupiah(0), "Rp 0");
        assert_eq!(rupiah(-5_000), "Rp -5.000");
    }

    #[test]
    fn times_are_in_jakarta_without_suffix() {
        let t = Utc.with_ymd_and_hms(2021, 6, 23, 8, 25, 24).unwrap();
        assert_eq!(midtrans_time(t), "2021-06-23 15:25:24");
        assert_eq!(parse_midtrans_time("2021-06-23 15:25:24 +0700"), Some(t));
        assert_eq!(parse_midtrans_time("2021-06-23 15:25:24"), Some(t));
        assert_eq!(parse_midtrans_time("2021-06-23T15:25:24"), None);
    }

    #[test]
    fn qr_string_is_emv_shaped_with_valid_crc() {
        let qr = qr_string("order-102", 789_000, "1015a919-b03f-450a-bc85-b38202a79a96");
        assert!(qr.starts_with("000201010212"));
        assert!(qr.contains("order-102"));
        assert!(qr.contains("5406789000"));
        let (payload, crc) = qr.split_at(qr.len() - 4);
        assert!(payload.ends_with("6304"));
        assert_eq!(crc, format!("{:04X}", crc16_ccitt(payload.as_bytes())));
        // The standard check value of CRC-16/CCITT-FALSE.
        assert_eq!(crc16_ccitt(b"123456789"), 0x29B1);
    }

    #[test]
    fn status_codes_follow_the_table() {
        assert_eq!(notification_status_code("settlement", Some("accept")), "200");
        assert_eq!(notification_status_code("capture", Some("accept")), "200");
        assert_eq!(notification_status_code("capture", Some("challenge")), "201");
        assert_eq!(notification_status_code("pending", Some("accept")), "201");
        for s in ["deny", "expire", "cancel"] {
            assert_eq!(notification_status_code(s, Some("accept")), "202");
        }
        assert_eq!(notification_status_code("partial_refund", None), "200");
    }

    #[test]
    fn url_encoding_keeps_unreserved() {
        assert_eq!(url_encode("A-b_c.d~9"), "A-b_c.d~9");
        assert_eq!(url_encode("a b&c"), "a%20b%26c");
    }
}
