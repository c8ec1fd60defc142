//! The data lifecycle's rules: how long each kind of history is kept ([`RetentionPolicy`]), the
//! purge that removes what has aged out and the rows of deleted tenants in small batches on one
//! replica at a time ([`purge`]), and the export of everything a tenant owns ([`export`]).

use std::time::Duration;

use tenant_core::{DurationError, Plan, format_duration, parse_duration};

pub mod export;
pub mod purge;

/// How long a kind of history is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// Kept this long after it was made (or, for deliveries, finished).
    For(Duration),
    /// Never purged.
    Forever,
}

impl Retention {
    /// Parses a duration in the retry schedule's syntax (`30d`, `12h`, `500ms`), or `forever`
    /// when `forever_allowed`.
    pub fn parse(text: &str, forever_allowed: bool) -> Result<Self, String> {
        let text = text.trim();
        if text == "forever" {
            return if forever_allowed {
                Ok(Self::Forever)
            } else {
                Err("`forever` is only allowed for the audit log".into())
            };
        }
        match parse_duration(text) {
            Ok(d) if d.is_zero() => Err("must be longer than 0".into()),
            Ok(d) => Ok(Self::For(d)),
            Err(DurationError::TooLong) => Err(format!("`{text}` is too long")),
            Err(e) => Err(format!("`{text}` {e}")),
        }
    }

    /// The oldest time kept at `now`, if anything is ever purged.
    pub fn cutoff(
        self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        match self {
            Self::Forever => None,
            Self::For(d) => {
                let d = chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
                Some(
                    now.checked_sub_signed(d)
                        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC),
                )
            }
        }
    }
}

impl std::fmt::Display for Retention {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Forever => f.write_str("forever"),
            Self::For(d) => f.write_str(&format_duration(*d)),
        }
    }
}

/// What the purge keeps, how often it runs and how large its batches are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Events (`SAAS_RETENTION_EVENTS`, 30 days), unless their tenant's plan says longer.
    pub events: Retention,
    /// Longer event history of some plans (`SAAS_RETENTION_EVENTS_BY_PLAN`, e.g.
    /// `enterprise=365d`).
    pub events_by_plan: Vec<(Plan, Retention)>,
    /// Delivered deliveries and their attempts, after delivery (`SAAS_RETENTION_DELIVERIES`, 30 days).
    pub deliveries: Retention,
    /// Dead letters and their attempts, after they died (`SAAS_RETENTION_DEAD_LETTERS`, 90 days).
    pub dead_letters: Retention,
    /// The audit log (`SAAS_RETENTION_AUDIT`, 365 days, or `forever`).
    pub audit: Retention,
    /// Time between purge rounds (`SAAS_PURGE_INTERVAL`, 1 minute).
    pub interval: Duration,
    /// Rows per batch at most (`SAAS_PURGE_BATCH`, 500); fewer while batches take longer than
    /// [`BATCH_TARGET`].
    pub batch: i64,
    /// The share of the time the purge may hold the database, in percent (`SAAS_PURGE_SHARE`,
    /// 25): after each batch it pauses until its batches make up at most this share.
    pub share: u8,
}

/// How long one purge batch should hold the database: a batch slower than this halves the next.
pub const BATCH_TARGET: Duration = Duration::from_millis(50);

impl Default for RetentionPolicy {
    fn default() -> Self {
        let days = |n: u64| Retention::For(Duration::from_secs(n * 86_400));
        Self {
            events: days(30),
            events_by_plan: Vec::new(),
            deliveries: days(30),
            dead_letters: days(90),
            audit: days(365),
            interval: Duration::from_secs(60),
            batch: 500,
            share: 25,
        }
    }
}

impl RetentionPolicy {
    /// Parses `SAAS_RETENTION_EVENTS_BY_PLAN`: comma-separated `plan=duration` pairs.
    pub fn parse_by_plan(text: &str) -> Result<Vec<(Plan, Retention)>, String> {
        let mut out: Vec<(Plan, Retention)> = Vec::new();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (plan, keep) = pair
                .split_once('=')
                .ok_or_else(|| format!("`{pair}` must be `plan=duration`"))?;
            let plan: Plan = plan.trim().parse().map_err(|e| format!("{e}"))?;
            if out.iter().any(|(p, _)| *p == plan) {
                return Err(format!("plan `{plan}` is given twice"));
            }
            out.push((plan, Retention::parse(keep, false)?));
        }
        Ok(out)
    }

    /// The pause after a batch that held the database for `took`: long enough that batches
    /// take at most [`share`](Self::share) percent of the time (at least 1 ms).
    pub fn pause_after(&self, took: Duration) -> Duration {
        let share = u32::from(self.share.clamp(1, 100));
        (took * (100 - share) / share).max(Duration::from_millis(1))
    }

    /// How long `plan`'s events are kept.
    pub fn events_of(&self, plan: Plan) -> Retention {
        self.events_by_plan
            .iter()
            .find(|(p, _)| *p == plan)
            .map_or(self.events, |(_, r)| *r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_retentions_and_plan_overrides() {
        assert_eq!(
            Retention::parse("30d", false),
            Ok(Retention::For(Duration::from_secs(2_592_000)))
        );
        assert_eq!(Retention::parse(" forever ", true), Ok(Retention::Forever));
        assert!(Retention::parse("forever", false).is_err());
        assert!(Retention::parse("0s", false).is_err());
        assert!(Retention::parse("soon", true).is_err());
        assert_eq!(Retention::For(Duration::from_secs(90)).to_string(), "90s");
        let p = RetentionPolicy::parse_by_plan("enterprise=365d, pro=90d").unwrap();
        assert_eq!(p.len(), 2);
        let policy = RetentionPolicy {
            events_by_plan: p,
            ..RetentionPolicy::default()
        };
        assert_eq!(
            policy.events_of(Plan::Pro),
            Retention::For(Duration::from_secs(90 * 86_400))
        );
        assert_eq!(policy.events_of(Plan::Free), policy.events);
        assert!(RetentionPolicy::parse_by_plan("gold=1d").is_err());
        let ms = Duration::from_millis;
        assert_eq!(RetentionPolicy::default().pause_after(ms(10)), ms(30));
        let half = RetentionPolicy {
            share: 50,
            ..RetentionPolicy::default()
        };
        assert_eq!(half.pause_after(ms(10)), ms(10));
        let all = RetentionPolicy {
            share: 100,
            ..RetentionPolicy::default()
        };
        assert_eq!(all.pause_after(ms(10)), ms(1));
        assert!(RetentionPolicy::parse_by_plan("pro=1d,pro=2d").is_err());
        assert!(RetentionPolicy::parse_by_plan("pro").is_err());
        let now = tenant_core::now();
        assert_eq!(Retention::Forever.cutoff(now), None);
    }
}
