//! `SAAS_METRICS*`, `SAAS_READY_TIMEOUT_MS` and `SENTRY_*`.

use std::net::SocketAddr;
use std::time::Duration;

use tenant_core::Secret;

use super::error::SettingsError;
use super::parse::{parse, parse_in};
use crate::monitoring::MetricsSettings;
use crate::monitoring::sentry::SentrySettings;

/// Reads the metrics settings.
pub(super) fn metrics(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<MetricsSettings, SettingsError> {
    Ok(MetricsSettings {
        enabled: parse(get, "SAAS_METRICS", true)?,
        listen: get("SAAS_METRICS_ADDR")
            .map(|_| parse::<SocketAddr>(get, "SAAS_METRICS_ADDR", ([127, 0, 0, 1], 0).into()))
            .transpose()?,
        refresh: Duration::from_secs(parse_in(get, "SAAS_METRICS_REFRESH_SECS", 15, 1..=3600)?),
    })
}

/// How long `/ready` waits for each dependency.
pub(super) fn ready_timeout(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Duration, SettingsError> {
    Ok(Duration::from_millis(parse_in(
        get,
        "SAAS_READY_TIMEOUT_MS",
        2000,
        10..=60_000,
    )?))
}

/// Reads Sentry's settings; the DSN is checked here (the error never quotes it: it holds the
/// project's key).
pub(super) fn sentry(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<SentrySettings, SettingsError> {
    let dsn = get("SENTRY_DSN").map(|v| v.trim().to_owned());
    if let Some(dsn) = &dsn
        && let Err(e) = dsn.parse::<sentry::types::Dsn>()
    {
        return Err(SettingsError {
            var: "SENTRY_DSN",
            message: format!("not a Sentry DSN ({e})"),
        });
    }
    Ok(SentrySettings {
        dsn: dsn.map(Secret::new),
        environment: get("SENTRY_ENVIRONMENT").map(|v| v.trim().to_owned()),
        release: get("SENTRY_RELEASE").map(|v| v.trim().to_owned()),
    })
}
