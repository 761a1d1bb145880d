//! Field rules shared by the admin forms: trimmed bounded text, money, counts, ordered time windows, and
//! the "absent / null / value" distinction of PATCH bodies.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};

use crate::error::ApiError;
pub use crate::http::text::{text, text_schema};

/// Largest price accepted, in rupiah (one billion): far above any ticket, far below overflow.
pub const MAX_PRICE: i64 = 1_000_000_000;
/// Largest quota or stock of one category or item.
pub const MAX_QUANTITY: i32 = 10_000_000;

/// For PATCH: a missing field is `None`, an explicit `null` is `Some(None)`.
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

pub fn price(value: i64) -> Result<i64, ApiError> {
    if !(0..=MAX_PRICE).contains(&value) {
        return Err(ApiError::validation(format!(
            "price must be a whole number of rupiah between 0 and {MAX_PRICE}"
        )));
    }
    Ok(value)
}

pub fn quantity(field: &str, value: i32) -> Result<i32, ApiError> {
    if !(0..=MAX_QUANTITY).contains(&value) {
        return Err(ApiError::validation(format!("{field} must be between 0 and {MAX_QUANTITY}")));
    }
    Ok(value)
}

pub fn max_per_order(value: i32) -> Result<i32, ApiError> {
    if !(1..=100).contains(&value) {
        return Err(ApiError::validation("max_per_order must be between 1 and 100"));
    }
    Ok(value)
}

pub fn sort_order(value: i32) -> Result<i32, ApiError> {
    if !(-10_000..=10_000).contains(&value) {
        return Err(ApiError::validation("sort_order must be between -10000 and 10000"));
    }
    Ok(value)
}

/// `start` must come before `end` when both are set.
pub fn ordered(what: &str, start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>) -> Result<(), ApiError> {
    if let (Some(s), Some(e)) = (start, end)
        && e <= s
    {
        return Err(ApiError::validation(format!("{what} must end after it starts")));
    }
    Ok(())
}

/// For a PATCH of a time window: out of order in what was sent is the request's fault (422); in order as
/// sent but out of order with the stored end it keeps, the change conflicts with the resource's current
/// state (409): send both ends.
pub fn window_after_change(
    what: &str,
    sent: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    after: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
) -> Result<(), ApiError> {
    ordered(what, sent.0, sent.1)?;
    ordered(what, after.0, after.1).map_err(|_| {
        ApiError::conflict(
            "window_conflict",
            format!("{what} would end before it starts with its stored times; send both ends"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_and_counts_are_bounded() {
        assert!(price(-1).is_err());
        assert!(price(MAX_PRICE + 1).is_err());
        assert!(price(0).is_ok());
        assert!(quantity("quota", -5).is_err());
        assert!(max_per_order(0).is_err());
        assert!(max_per_order(101).is_err());
    }

    #[test]
    fn windows_must_be_ordered() {
        let a = DateTime::from_timestamp(1_000, 0);
        let b = DateTime::from_timestamp(2_000, 0);
        assert!(ordered("sale", a, b).is_ok());
        assert!(ordered("sale", b, a).is_err());
        assert!(ordered("sale", a, a).is_err());
        assert!(ordered("sale", None, a).is_ok());
        let sent_alone = window_after_change("sale", (b, None), (b, a)).unwrap_err();
        assert_eq!(sent_alone.status(), axum::http::StatusCode::CONFLICT);
        let sent_both = window_after_change("sale", (b, a), (b, a)).unwrap_err();
        assert_eq!(sent_both.status(), axum::http::StatusCode::UNPROCESSABLE_ENTITY);
    }
}
