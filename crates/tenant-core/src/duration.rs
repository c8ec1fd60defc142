//! Durations as operators write them: a whole number and a unit, `ms`, `s`, `m`, `h` or `d`
//! (`250ms`, `30d`) — the webhook retry schedule's steps and the retention settings.

use std::time::Duration;

/// Units, longest first.
const UNITS: [(&str, u64); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// Why a duration does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// It does not start with a whole number.
    #[error("must start with a whole number, e.g. `30d`")]
    InvalidNumber,
    /// The unit is missing or not one of `ms`, `s`, `m`, `h`, `d`.
    #[error("needs a unit: ms, s, m, h or d")]
    InvalidUnit,
    /// More milliseconds than a `u64` holds.
    #[error("is too long")]
    TooLong,
}

/// Parses a trimmed duration such as `30m` or `90d`.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if number.is_empty() {
        return Err(DurationError::InvalidNumber);
    }
    let Some(&(_, unit_ms)) = UNITS.iter().find(|(name, _)| *name == unit) else {
        return Err(DurationError::InvalidUnit);
    };
    let count: u64 = number.parse().map_err(|_| DurationError::TooLong)?;
    let millis = count.checked_mul(unit_ms).ok_or(DurationError::TooLong)?;
    Ok(Duration::from_millis(millis))
}

/// Writes a duration in its coarsest exact unit (`0s` for zero), the form [`parse_duration`] reads.
pub fn format_duration(d: Duration) -> String {
    let millis = d.as_millis();
    if millis == 0 {
        return "0s".into();
    }
    for (name, unit_ms) in UNITS {
        let unit_ms = u128::from(unit_ms);
        if millis.is_multiple_of(unit_ms) {
            return format!("{}{name}", millis / unit_ms);
        }
    }
    format!("{millis}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats_every_unit() {
        for (text, ms) in [
            ("250ms", 250),
            ("2s", 2_000),
            ("3m", 180_000),
            ("1d", 86_400_000),
        ] {
            assert_eq!(parse_duration(text), Ok(Duration::from_millis(ms)));
            assert_eq!(format_duration(Duration::from_millis(ms)), text);
        }
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(parse_duration("d"), Err(DurationError::InvalidNumber));
        assert_eq!(parse_duration("5"), Err(DurationError::InvalidUnit));
        assert_eq!(parse_duration("5w"), Err(DurationError::InvalidUnit));
        assert_eq!(
            parse_duration("99999999999999999999d"),
            Err(DurationError::TooLong)
        );
    }
}
