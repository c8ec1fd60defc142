//! Parsing the `Retry-After` response header (RFC 9110 §10.2.3).

use std::time::{Duration, SystemTime};

/// The wait a `Retry-After` value asks for, measured from `now`.
///
/// Accepts delta-seconds (`120`) or an HTTP-date (IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT`, and
/// the obsolete RFC 850 and asctime forms recipients must also accept). A date in the past means
/// no wait ([`Duration::ZERO`]); a delta too large for `u64` saturates. Returns `None` for anything
/// else. The result is uncapped; [`super::RetrySchedule::retry_after`] applies the cap.
pub fn parse_retry_after(header_value: &str, now: SystemTime) -> Option<Duration> {
    let value = header_value.trim_matches([' ', '\t']);
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Sun, 06 Nov 1994 08:49:37 GMT`.
    fn rfc_example() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777)
    }

    fn at(offset_secs: i64) -> SystemTime {
        let base = rfc_example();
        if offset_secs >= 0 {
            base + Duration::from_secs(offset_secs.unsigned_abs())
        } else {
            base - Duration::from_secs(offset_secs.unsigned_abs())
        }
    }

    #[test]
    fn parses_delta_seconds() {
        let now = rfc_example();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0\t", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn parses_all_three_http_date_forms_relative_to_now() {
        for form in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(
                parse_retry_after(form, at(-90)),
                Some(Duration::from_secs(90)),
                "{form}"
            );
        }
    }

    #[test]
    fn a_past_date_means_no_wait() {
        let value = "Sun, 06 Nov 1994 08:49:37 GMT";
        assert_eq!(parse_retry_after(value, at(3600)), Some(Duration::ZERO));
        assert_eq!(parse_retry_after(value, at(0)), Some(Duration::ZERO));
    }

    #[test]
    fn rejects_everything_else() {
        let now = rfc_example();
        for bad in [
            "",
            "   ",
            "-5",
            "+5",
            "1.5",
            "5s",
            "soon",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "2024-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }
}
