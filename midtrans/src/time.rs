//! Midtrans' clock: Western Indonesian Time (UTC+7), written `YYYY-MM-DD HH:MM:SS`, with ` +0700` where a
//! request field asks for the offset.

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};

fn wib() -> FixedOffset {
    FixedOffset::east_opt(7 * 3600).expect("UTC+7 is a valid offset")
}

/// `2026-11-25 18:11:08 +0700`: Snap's `expiry.start_time` and Core API's `custom_expiry.order_time`.
pub fn request_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&wib()).format("%Y-%m-%d %H:%M:%S %z").to_string()
}

/// `2026-11-25 18:11:08` (WIB, no suffix), as in notifications and API answers.
pub fn plain_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&wib()).format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Reads a Midtrans timestamp (`YYYY-MM-DD HH:MM:SS`, WIB).
pub fn parse_plain_time(s: &str) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%d %H:%M:%S").ok()?;
    wib().from_local_datetime(&naive).single().map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_reads_wib() {
        let t = Utc.with_ymd_and_hms(2026, 11, 25, 11, 0, 5).unwrap();
        assert_eq!(request_time(t), "2026-11-25 18:00:05 +0700");
        assert_eq!(plain_time(t), "2026-11-25 18:00:05");
        assert_eq!(parse_plain_time("2026-11-25 18:00:05"), Some(t));
        assert_eq!(parse_plain_time("25/11/2026"), None);
    }
}
