//! The clock, at the precision both databases keep.

use chrono::{DateTime, SubsecRound, Utc};

/// The current time in UTC, truncated to microseconds: PostgreSQL keeps microseconds, so a value
/// read back compares equal to the value written (which keyset pagination relies on).
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}
