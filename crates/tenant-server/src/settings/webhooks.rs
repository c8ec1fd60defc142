//! Settings of events and webhooks (`SAAS_WEBHOOK_*`, `SAAS_SESSION_TTL_SECS`), read with the
//! rest of [`crate::settings`] and documented in its table; they make the dispatcher's
//! configuration (`tenant_webhooks`) and the webhook use cases' ([`WebhookConfig`]).

use std::time::Duration;

use tenant_service::webhooks::WebhookConfig;
use tenant_service::webhooks::endpoints::UrlRules;
use tenant_webhooks::delivery::{AddressPolicy, Cidr, CircuitPolicy, ClientConfig};
use tenant_webhooks::{DispatcherConfig, RetrySchedule};

use super::error::SettingsError;
use super::parse::parse_in;

/// Events, sessions and webhook delivery.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Whether `serve` runs the dispatcher.
    pub dispatcher: bool,
    /// With `batch_size`: deliveries in flight at most (`workers × batch_size`).
    pub workers: usize,
    /// Deliveries claimed at most at once.
    pub batch_size: i64,
    /// Deliveries in flight at once per endpoint (per dispatcher process).
    pub endpoint_concurrency: usize,
    /// When an endpoint's circuit opens, and for how long.
    pub circuit: CircuitPolicy,
    /// Claim lease.
    pub lease: Duration,
    /// Whole-request timeout.
    pub request_timeout: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Retry schedule (with jitter).
    pub schedule: RetrySchedule,
    /// Failing this long continuously disables an endpoint.
    pub failure_grace: Duration,
    /// Idle poll interval.
    pub poll_interval: Duration,
    /// Metrics log interval.
    pub metrics_interval: Duration,
    /// Networks deliveries may reach although their class is forbidden.
    pub allowed_networks: Vec<Cidr>,
    /// Refuse `http://` endpoints.
    pub require_https: bool,
    /// How long the previous secret keeps signing after a rotation.
    pub secret_overlap: Duration,
    /// Sessions inactive this long are purged.
    pub session_ttl: Duration,
}

impl WebhookSettings {
    /// The address policy.
    pub fn policy(&self) -> AddressPolicy {
        AddressPolicy {
            allowed: self.allowed_networks.clone(),
        }
    }

    /// The dispatcher's configuration.
    pub fn dispatcher_config(&self) -> DispatcherConfig {
        DispatcherConfig {
            workers: self.workers,
            batch_size: self.batch_size,
            endpoint_concurrency: self.endpoint_concurrency,
            circuit: self.circuit,
            lease: self.lease,
            schedule: self.schedule.clone(),
            failure_grace: self.failure_grace,
            poll_interval: self.poll_interval,
            metrics_interval: self.metrics_interval,
            client: ClientConfig {
                request_timeout: self.request_timeout,
                connect_timeout: self.connect_timeout,
                policy: self.policy(),
                require_https: self.require_https,
            },
        }
    }

    /// What the webhook use cases and the background tasks take.
    pub fn service_config(&self) -> WebhookConfig {
        WebhookConfig {
            dispatcher: self.dispatcher.then(|| self.dispatcher_config()),
            rules: UrlRules {
                policy: self.policy(),
                require_https: self.require_https,
            },
            secret_overlap: self.secret_overlap,
            session_ttl: self.session_ttl,
        }
    }
}

fn err(var: &'static str, message: impl Into<String>) -> SettingsError {
    SettingsError {
        var,
        message: message.into(),
    }
}

fn flag(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: bool,
) -> Result<bool, SettingsError> {
    match get(var).as_deref().map(str::trim) {
        None => Ok(default),
        Some("true" | "1" | "yes") => Ok(true),
        Some("false" | "0" | "no") => Ok(false),
        Some(_) => Err(err(var, "must be `true` or `false`")),
    }
}

/// Reads the webhook settings through `get`.
pub fn from_lookup(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<WebhookSettings, SettingsError> {
    let schedule: RetrySchedule = match get("SAAS_WEBHOOK_RETRY_SCHEDULE") {
        None => RetrySchedule::default(),
        Some(s) => s
            .trim()
            .parse()
            .map_err(|e| err("SAAS_WEBHOOK_RETRY_SCHEDULE", format!("{e}")))?,
    };
    let jitter = parse_in::<u64>(get, "SAAS_WEBHOOK_JITTER_PERCENT", 20, 0..=100)?;
    let schedule = schedule
        .with_jitter_percent(u8::try_from(jitter).unwrap_or(100))
        .map_err(|e| err("SAAS_WEBHOOK_JITTER_PERCENT", format!("{e}")))?;
    let allowed_networks =
        AddressPolicy::parse_allowed(&get("SAAS_WEBHOOK_ALLOWED_NETWORKS").unwrap_or_default())
            .map_err(|e| err("SAAS_WEBHOOK_ALLOWED_NETWORKS", e))?;
    let secs = Duration::from_secs;
    let ms = Duration::from_millis;
    let settings = WebhookSettings {
        dispatcher: flag(get, "SAAS_WEBHOOK_DISPATCHER", true)?,
        workers: parse_in::<u64>(get, "SAAS_WEBHOOK_WORKERS", 4, 1..=64)? as usize,
        batch_size: parse_in::<u64>(get, "SAAS_WEBHOOK_BATCH_SIZE", 64, 1..=1000)? as i64,
        endpoint_concurrency: parse_in::<u64>(get, "SAAS_WEBHOOK_ENDPOINT_CONCURRENCY", 4, 1..=256)?
            as usize,
        circuit: CircuitPolicy {
            failures: parse_in::<u64>(get, "SAAS_WEBHOOK_CIRCUIT_FAILURES", 5, 1..=10_000)? as u32,
            open_for: secs(parse_in::<u64>(
                get,
                "SAAS_WEBHOOK_CIRCUIT_OPEN_SECS",
                30,
                1..=86_400,
            )?),
            open_max: secs(parse_in::<u64>(
                get,
                "SAAS_WEBHOOK_CIRCUIT_OPEN_MAX_SECS",
                600,
                1..=86_400,
            )?),
        },
        lease: secs(parse_in::<u64>(
            get,
            "SAAS_WEBHOOK_LEASE_SECS",
            60,
            1..=3600,
        )?),
        request_timeout: ms(parse_in::<u64>(
            get,
            "SAAS_WEBHOOK_TIMEOUT_MS",
            10_000,
            100..=120_000,
        )?),
        connect_timeout: ms(parse_in::<u64>(
            get,
            "SAAS_WEBHOOK_CONNECT_TIMEOUT_MS",
            5_000,
            100..=60_000,
        )?),
        schedule,
        failure_grace: secs(parse_in::<u64>(
            get,
            "SAAS_WEBHOOK_FAILURE_GRACE_SECS",
            5 * 86_400,
            0..=365 * 86_400,
        )?),
        poll_interval: ms(parse_in::<u64>(
            get,
            "SAAS_WEBHOOK_POLL_INTERVAL_MS",
            1_000,
            10..=60_000,
        )?),
        metrics_interval: secs(parse_in::<u64>(
            get,
            "SAAS_WEBHOOK_METRICS_INTERVAL_SECS",
            60,
            1..=86_400,
        )?),
        allowed_networks,
        require_https: flag(get, "SAAS_WEBHOOK_REQUIRE_HTTPS", false)?,
        secret_overlap: secs(parse_in::<u64>(
            get,
            "SAAS_WEBHOOK_SECRET_OVERLAP_SECS",
            86_400,
            0..=30 * 86_400,
        )?),
        session_ttl: secs(parse_in::<u64>(
            get,
            "SAAS_SESSION_TTL_SECS",
            30 * 86_400,
            60..=3650 * 86_400,
        )?),
    };
    if settings.circuit.open_max < settings.circuit.open_for {
        return Err(err(
            "SAAS_WEBHOOK_CIRCUIT_OPEN_MAX_SECS",
            "must not be shorter than SAAS_WEBHOOK_CIRCUIT_OPEN_SECS",
        ));
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<WebhookSettings, SettingsError> {
        let map: HashMap<&str, &str> = vars.iter().copied().collect();
        from_lookup(&|k: &str| map.get(k).map(|v| (*v).to_owned()))
    }

    #[test]
    fn defaults_and_errors() {
        let s = read(&[]).unwrap();
        assert!(s.dispatcher);
        assert_eq!(s.schedule, RetrySchedule::default());
        assert_eq!(s.failure_grace, Duration::from_secs(432_000));
        assert!(s.allowed_networks.is_empty());
        assert_eq!(s.endpoint_concurrency, 4);
        assert_eq!(s.circuit, CircuitPolicy::default());
        let s = read(&[
            ("SAAS_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.1/32,10.0.0.0/8"),
            ("SAAS_WEBHOOK_RETRY_SCHEDULE", "0s,1s"),
        ])
        .unwrap();
        assert_eq!(s.allowed_networks.len(), 2);
        assert_eq!(s.schedule.max_attempts(), 2);
        for (var, value) in [
            ("SAAS_WEBHOOK_ALLOWED_NETWORKS", "10.0.0.0/40"),
            ("SAAS_WEBHOOK_RETRY_SCHEDULE", "soon"),
            ("SAAS_WEBHOOK_WORKERS", "0"),
            ("SAAS_WEBHOOK_REQUIRE_HTTPS", "maybe"),
            ("SAAS_WEBHOOK_ENDPOINT_CONCURRENCY", "0"),
            ("SAAS_WEBHOOK_CIRCUIT_OPEN_MAX_SECS", "5"),
        ] {
            assert_eq!(read(&[(var, value)]).unwrap_err().var, var);
        }
    }
}
