//! Field rules shared by the admin forms: trimmed bounded text, money, counts, ordered time windows, and
//! the "absent / null / value" distinction of PATCH bodies.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};

use crate::error::ApiError;

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

/// Trimmed text of `min..=max` characters without control characters (newlines allowed if `multiline`).
pub fn text(field: &str, value: &str, min: usize, max: usize, multiline: bool) -> Result<String, ApiError> {
    let v = value.trim();
    let n = v.chars().count();
    if n < min {
        return Err(ApiError::validation(if min == 1 {
            format!("{field} must not be empty")
        } else {
            format!("{field} must be at least {min} characters")
        }));
    }
    if n > max {
        return Err(ApiError::validation(format!("{field} must be at most {max} characters")));
    }
    if v.chars().any(|c| c.is_control() && !(multiline && (c == '\n' || c == '\r' || c == '\t'))) {
        return Err(ApiError::validation(format!("{field} must not contain control characters")));
    }
    Ok(v.to_owned())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert_eq!(text("name", "  Konser ", 1, 10, false).unwrap(), "Konser");
        assert!(text("name", "   ", 1, 10, false).is_err());
        assert!(text("name", "abcdefghijk", 1, 10, false).is_err());
        assert!(text("name", "a\nb", 1, 10, false).is_err());
        assert!(text("description", "a\nb", 0, 10, true).is_ok());
    }

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
    }
}
