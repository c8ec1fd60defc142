//! Settings of the data lifecycle (`SAAS_RETENTION_*`, `SAAS_PURGE_*`), read with the rest of
//! [`crate::settings`] and documented in its table; they make the purge's [`RetentionPolicy`].

use std::time::Duration;

use tenant_core::parse_duration;
use tenant_service::lifecycle::{Retention, RetentionPolicy};

use super::error::SettingsError;
use super::parse::parse_in;

fn retention(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: Retention,
    forever_allowed: bool,
) -> Result<Retention, SettingsError> {
    match get(var) {
        None => Ok(default),
        Some(v) => {
            Retention::parse(&v, forever_allowed).map_err(|message| SettingsError { var, message })
        }
    }
}

/// Reads the retention policy through `get`.
pub fn from_lookup(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<RetentionPolicy, SettingsError> {
    let d = RetentionPolicy::default();
    let interval = match get("SAAS_PURGE_INTERVAL") {
        None => d.interval,
        Some(v) => match parse_duration(v.trim()) {
            Ok(i) if (Duration::from_millis(100)..=Duration::from_secs(86_400)).contains(&i) => i,
            Ok(_) => {
                return Err(SettingsError {
                    var: "SAAS_PURGE_INTERVAL",
                    message: format!("`{}` is outside 100ms..=1d", v.trim()),
                });
            }
            Err(e) => {
                return Err(SettingsError {
                    var: "SAAS_PURGE_INTERVAL",
                    message: format!("`{}` {e}", v.trim()),
                });
            }
        },
    };
    Ok(RetentionPolicy {
        events: retention(get, "SAAS_RETENTION_EVENTS", d.events, false)?,
        events_by_plan: match get("SAAS_RETENTION_EVENTS_BY_PLAN") {
            None => Vec::new(),
            Some(v) => RetentionPolicy::parse_by_plan(&v).map_err(|message| SettingsError {
                var: "SAAS_RETENTION_EVENTS_BY_PLAN",
                message,
            })?,
        },
        deliveries: retention(get, "SAAS_RETENTION_DELIVERIES", d.deliveries, false)?,
        dead_letters: retention(get, "SAAS_RETENTION_DEAD_LETTERS", d.dead_letters, false)?,
        audit: retention(get, "SAAS_RETENTION_AUDIT", d.audit, true)?,
        interval,
        batch: parse_in::<i64>(get, "SAAS_PURGE_BATCH", d.batch, 10..=100_000)?,
        share: parse_in::<u8>(get, "SAAS_PURGE_SHARE", d.share, 1..=100)?,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<RetentionPolicy, SettingsError> {
        let map: HashMap<&str, &str> = vars.iter().copied().collect();
        from_lookup(&|k: &str| map.get(k).map(|v| (*v).to_owned()))
    }

    #[test]
    fn defaults_overrides_and_errors() {
        assert_eq!(read(&[]).unwrap(), RetentionPolicy::default());
        let p = read(&[
            ("SAAS_RETENTION_EVENTS", "2s"),
            ("SAAS_RETENTION_AUDIT", "forever"),
            ("SAAS_PURGE_INTERVAL", "500ms"),
            ("SAAS_RETENTION_EVENTS_BY_PLAN", "enterprise=365d"),
        ])
        .unwrap();
        assert_eq!(p.events, Retention::For(Duration::from_secs(2)));
        assert_eq!(p.audit, Retention::Forever);
        assert_eq!(p.interval, Duration::from_millis(500));
        assert_eq!(p.events_by_plan.len(), 1);
        for (var, value) in [
            ("SAAS_RETENTION_EVENTS", "forever"),
            ("SAAS_RETENTION_DELIVERIES", "30"),
            ("SAAS_RETENTION_DEAD_LETTERS", "0d"),
            ("SAAS_RETENTION_AUDIT", "a year"),
            ("SAAS_PURGE_INTERVAL", "1ms"),
            ("SAAS_PURGE_INTERVAL", "soon"),
            ("SAAS_PURGE_BATCH", "1"),
            ("SAAS_PURGE_SHARE", "0"),
            ("SAAS_PURGE_SHARE", "101"),
            ("SAAS_RETENTION_EVENTS_BY_PLAN", "gold=1d"),
        ] {
            assert_eq!(read(&[(var, value)]).unwrap_err().var, var);
        }
    }
}
