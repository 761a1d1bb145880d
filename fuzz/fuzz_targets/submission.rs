//! A buyer's submission to `POST /api/orders`: the JSON body and the Idempotency-Key header. Parsing and
//! the cart rules never panic, and an accepted cart always has what the workers rely on.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use pipeline::submission::{self, MAX_KEY_LEN, MAX_LINES, MAX_QUANTITY, SubmitOrder};

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = submission::idempotency_key(data) {
        assert!((1..=MAX_KEY_LEN).contains(&key.len()));
        assert!(key.bytes().all(|b| b.is_ascii_graphic()));
    }
    let Ok(body) = serde_json::from_slice::<SubmitOrder>(data) else { return };
    let Ok(lines) = submission::cart(&body) else { return };
    assert!((1..=MAX_LINES).contains(&lines.len()));
    let mut seen = HashSet::new();
    for line in &lines {
        assert!(line.ticket_category_id.is_some() != line.merchandise_id.is_some(), "one product per line");
        assert!(line.quantity >= 1 && i64::from(line.quantity) <= MAX_QUANTITY * MAX_LINES as i64);
        assert!(seen.insert((line.ticket_category_id, line.merchandise_id)), "each product once");
    }
    let asked: i64 = body.items.iter().map(|i| i.quantity).sum();
    let carried: i64 = lines.iter().map(|l| i64::from(l.quantity)).sum();
    assert_eq!(asked, carried, "units neither lost nor added");
});
