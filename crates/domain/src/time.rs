//! Timestamps: the database keeps `timestamp` values holding UTC; the API
//! shows them as RFC 3339 with a `Z`.

use chrono::NaiveDateTime;

/// `2026-11-25T20:45:58.123456Z` (microseconds, Postgres' precision).
pub fn rfc3339(value: NaiveDateTime) -> String {
    value.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn formats_with_microseconds_and_zulu() {
        let at = NaiveDate::from_ymd_opt(2026, 1, 2)
            .unwrap()
            .and_hms_nano_opt(3, 4, 5, 6_789_000)
            .unwrap();
        assert_eq!(rfc3339(at), "2026-01-02T03:04:05.006789Z");
        let before_epoch = NaiveDate::from_ymd_opt(1969, 12, 31)
            .unwrap()
            .and_hms_opt(23, 59, 59)
            .unwrap();
        assert_eq!(rfc3339(before_epoch), "1969-12-31T23:59:59.000000Z");
    }
}
