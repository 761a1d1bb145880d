//! Checks on create requests shared by Snap and the Core API charge: `order_id` shape, integer
//! `gross_amount`, `item_details` lines summing to the gross amount, and the two expiry objects.

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use crate::model::parse_midtrans_time;

/// The order fields both create endpoints need.
pub(crate) struct Order {
    pub order_id: String,
    pub gross_amount: i64,
    pub items: Value,
    pub customer: Value,
}

/// A JSON number without a fractional part. `10000.5` is not one; `10000.0` is accepted since it
/// carries no decimals.
fn integer(v: &Value) -> Option<i64> {
    if let Some(n) = v.as_i64() {
        return Some(n);
    }
    let f = v.as_f64()?;
    (f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
}

fn order_id_char_ok(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '~' | '.')
}

/// Validates `transaction_details` and `item_details`, pushing one message per problem.
pub(crate) fn order(body: &Value, errors: &mut Vec<String>) -> Option<Order> {
    let Some(details) = body.get("transaction_details").filter(|d| d.is_object()) else {
        errors.push("transaction_details is required".into());
        return None;
    };

    let order_id = match details.get("order_id") {
        None | Some(Value::Null) => {
            errors.push("transaction_details.order_id is required".into());
            None
        }
        Some(Value::String(id)) if id.is_empty() => {
            errors.push("transaction_details.order_id is required".into());
            None
        }
        Some(Value::String(id)) if id.chars().count() > 50 => {
            errors.push("transaction_details.order_id must be at most 50 characters".into());
            None
        }
        Some(Value::String(id)) if !id.chars().all(order_id_char_ok) => {
            errors.push(
                "transaction_details.order_id may only contain letters, digits and the symbols - _ ~ ."
                    .into(),
            );
            None
        }
        Some(Value::String(id)) => Some(id.clone()),
        Some(_) => {
            errors.push("transaction_details.order_id must be a string".into());
            None
        }
    };

    let gross_amount = match details.get("gross_amount") {
        None | Some(Value::Null) => {
            errors.push("transaction_details.gross_amount is required".into());
            None
        }
        Some(v) => match integer(v) {
            None => {
                errors.push("transaction_details.gross_amount must be an integer without decimals".into());
                None
            }
            Some(n) if n < 1 => {
                errors.push("transaction_details.gross_amount must be greater than or equal to 1".into());
                None
            }
            Some(n) => Some(n),
        },
    };

    let items = match body.get("item_details") {
        None | Some(Value::Null) => Value::Array(Vec::new()),
        Some(Value::Array(lines)) => {
            let mut sum: Option<i128> = Some(0);
            for (i, line) in lines.iter().enumerate() {
                let price = line.get("price").and_then(integer);
                if price.is_none() {
                    errors.push(format!("item_details[{i}].price must be an integer without decimals"));
                }
                let quantity = line.get("quantity").and_then(integer).filter(|q| *q >= 1);
                if quantity.is_none() {
                    errors.push(format!("item_details[{i}].quantity must be an integer of at least 1"));
                }
                match line.get("name") {
                    Some(Value::String(n)) if n.is_empty() => {
                        errors.push(format!("item_details[{i}].name is required"))
                    }
                    Some(Value::String(n)) if n.chars().count() > 50 => {
                        errors.push(format!("item_details[{i}].name must be at most 50 characters"))
                    }
                    Some(Value::String(_)) => {}
                    _ => errors.push(format!("item_details[{i}].name is required")),
                }
                match line.get("id") {
                    None | Some(Value::Null) => {}
                    Some(Value::String(id)) if id.chars().count() <= 50 => {}
                    Some(Value::String(_)) => {
                        errors.push(format!("item_details[{i}].id must be at most 50 characters"))
                    }
                    Some(_) => errors.push(format!("item_details[{i}].id must be a string")),
                }
                sum = match (sum, price, quantity) {
                    (Some(s), Some(p), Some(q)) => Some(s + i128::from(p) * i128::from(q)),
                    _ => None,
                };
            }
            if let (Some(sum), Some(gross)) = (sum, gross_amount)
                && sum != i128::from(gross)
            {
                errors
                    .push("transaction_details.gross_amount is not equal to the sum of item_details".into());
            }
            Value::Array(lines.clone())
        }
        Some(_) => {
            errors.push("item_details must be an array".into());
            Value::Null
        }
    };

    let customer = match body.get("customer_details") {
        None | Some(Value::Null) => Value::Null,
        Some(c @ Value::Object(_)) => c.clone(),
        Some(_) => {
            errors.push("customer_details must be an object".into());
            Value::Null
        }
    };

    Some(Order { order_id: order_id?, gross_amount: gross_amount?, items, customer })
}

/// Maps a Midtrans expiry unit (singular or plural) to its length.
fn unit_length(unit: &str, allow_seconds: bool) -> Option<Duration> {
    match unit.to_ascii_lowercase().trim_end_matches('s') {
        "second" if allow_seconds => Some(Duration::seconds(1)),
        "minute" => Some(Duration::minutes(1)),
        "hour" => Some(Duration::hours(1)),
        "day" => Some(Duration::days(1)),
        _ => None,
    }
}

fn positive_duration(v: Option<&Value>) -> Option<i64> {
    v.and_then(integer).filter(|d| (1..=100_000_000).contains(d))
}

/// Snap's `expiry{start_time?, unit, duration}`; 24 hours from `now` when absent.
pub(crate) fn snap_expiry(body: &Value, now: DateTime<Utc>, errors: &mut Vec<String>) -> DateTime<Utc> {
    let default = now + Duration::hours(24);
    let Some(expiry) = body.get("expiry").filter(|e| !e.is_null()) else { return default };
    let unit = expiry.get("unit").and_then(Value::as_str).and_then(|u| unit_length(u, false));
    if unit.is_none() {
        errors.push("expiry.unit must be one of minute, hour or day".into());
    }
    let duration = positive_duration(expiry.get("duration"));
    if duration.is_none() {
        errors.push("expiry.duration must be a positive integer".into());
    }
    let start = match expiry.get("start_time") {
        None | Some(Value::Null) => Some(now),
        Some(v) => {
            let parsed = v.as_str().and_then(parse_midtrans_time);
            if parsed.is_none() {
                errors.push("expiry.start_time must look like 2018-12-13 18:11:08 +0700".into());
            }
            parsed
        }
    };
    match (unit, duration, start) {
        (Some(unit), Some(duration), Some(start)) => {
            start + unit * i32::try_from(duration).unwrap_or(i32::MAX)
        }
        _ => default,
    }
}

/// Core API's `custom_expiry{order_time?, expiry_duration, unit}` (unit defaults to minute); 15
/// minutes from `now` when absent.
pub(crate) fn custom_expiry(body: &Value, now: DateTime<Utc>, errors: &mut Vec<String>) -> DateTime<Utc> {
    let default = now + Duration::minutes(15);
    let Some(expiry) = body.get("custom_expiry").filter(|e| !e.is_null()) else { return default };
    let unit = match expiry.get("unit") {
        None | Some(Value::Null) => Some(Duration::minutes(1)),
        Some(v) => v.as_str().and_then(|u| unit_length(u, true)),
    };
    if unit.is_none() {
        errors.push("custom_expiry.unit must be one of second, minute, hour or day".into());
    }
    let duration = positive_duration(expiry.get("expiry_duration"));
    if duration.is_none() {
        errors.push("custom_expiry.expiry_duration must be a positive integer".into());
    }
    let start = match expiry.get("order_time") {
        None | Some(Value::Null) => Some(now),
        Some(v) => {
            let parsed = v.as_str().and_then(parse_midtrans_time);
            if parsed.is_none() {
                errors.push("custom_expiry.order_time must look like 2016-12-07 11:54:12 +0700".into());
            }
            parsed
        }
    };
    match (unit, duration, start) {
        (Some(unit), Some(duration), Some(start)) => {
            start + unit * i32::try_from(duration).unwrap_or(i32::MAX)
        }
        _ => default,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(body: Value) -> Vec<String> {
        let mut errors = Vec::new();
        order(&body, &mut errors);
        errors
    }

    #[test]
    fn accepts_a_minimal_order() {
        assert!(
            check(json!({"transaction_details":{"order_id":"ORDER-101","gross_amount":10000}})).is_empty()
        );
    }

    #[test]
    fn rejects_bad_order_ids_and_amounts() {
        assert_eq!(check(json!({"transaction_details":{"order_id":"a#b","gross_amount":1}})).len(), 1);
        assert_eq!(
            check(json!({"transaction_details":{"order_id":"x".repeat(51),"gross_amount":1}})).len(),
            1
        );
        assert!(
            check(json!({"transaction_details":{"order_id":"x".repeat(50),"gross_amount":1}})).is_empty()
        );
        assert_eq!(check(json!({"transaction_details":{"order_id":"a","gross_amount":10000.5}})).len(), 1);
        assert_eq!(check(json!({"transaction_details":{"order_id":"a","gross_amount":0}})).len(), 1);
        assert_eq!(check(json!({"transaction_details":{"order_id":"a","gross_amount":"100"}})).len(), 1);
        assert_eq!(check(json!({})).len(), 1);
    }

    #[test]
    fn items_must_sum_to_gross() {
        let items =
            json!([{"price":100,"quantity":2,"name":"A"},{"price":-50,"quantity":1,"name":"Discount"}]);
        let ok = json!({"transaction_details":{"order_id":"a","gross_amount":150},"item_details":items});
        assert!(check(ok).is_empty());
        let bad = json!({"transaction_details":{"order_id":"a","gross_amount":151},"item_details":items});
        assert_eq!(
            check(bad),
            vec!["transaction_details.gross_amount is not equal to the sum of item_details"]
        );
        let zero_qty = json!({"transaction_details":{"order_id":"a","gross_amount":0},
            "item_details":[{"price":100,"quantity":0,"name":"A"}]});
        assert_eq!(check(zero_qty).len(), 2);
    }

    #[test]
    fn expiry_units() {
        let now = Utc::now();
        let mut errors = Vec::new();
        let e = snap_expiry(&json!({"expiry":{"unit":"minutes","duration":30}}), now, &mut errors);
        assert_eq!(e, now + Duration::minutes(30));
        let e = snap_expiry(&json!({}), now, &mut errors);
        assert_eq!(e, now + Duration::hours(24));
        let e =
            custom_expiry(&json!({"custom_expiry":{"expiry_duration":90,"unit":"second"}}), now, &mut errors);
        assert_eq!(e, now + Duration::seconds(90));
        let e = custom_expiry(&json!({"custom_expiry":{"expiry_duration":5}}), now, &mut errors);
        assert_eq!(e, now + Duration::minutes(5));
        assert!(errors.is_empty());
        snap_expiry(&json!({"expiry":{"unit":"second","duration":30}}), now, &mut errors);
        assert_eq!(errors.len(), 1);
    }
}
