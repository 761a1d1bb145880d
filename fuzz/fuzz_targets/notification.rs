//! A Midtrans notification body, as `POST /api/webhooks/midtrans` receives it: parsing, the signature
//! check, the outcome and the amount never panic; amounts read back as they were written; every order id
//! has a partition of the webhook stream.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(n) = serde_json::from_slice::<midtrans::Notification>(data) {
        let _ = n.verify("SB-Mid-server-fuzz");
        let _ = n.outcome();
        let _ = n.refund_confirmed();
        if let Some(amount) = n.charged_amount() {
            assert!(amount >= 0, "a charged amount is never negative: {amount}");
        }
        assert!(pipeline::webhooks::partition(&n.order_id) < keyspace::STREAM_PARTITIONS);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(amount) = midtrans::parse_amount(text) {
            assert_eq!(midtrans::parse_amount(&midtrans::format_amount(amount)), Some(amount), "{text:?}");
        }
        let _ = midtrans::verify_signature(text, "200", text, "SB-Mid-server-fuzz", text);
    }
});
