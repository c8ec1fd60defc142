//! Monitoring: the Prometheus exposition of `GET /metrics` ([`prometheus`], with the process
//! figures of [`process`]), error reporting to Sentry ([`sentry`]), and the settings of both.
//! The series are listed in `docs/monitoring.md`.

pub mod process;
pub mod prometheus;
pub mod sentry;

use std::net::SocketAddr;
use std::time::Duration;

/// `SAAS_METRICS*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSettings {
    /// Whether series are recorded and `GET /metrics` is served.
    pub enabled: bool,
    /// A second listener serving only `GET /metrics`, without authentication (for a scraper on
    /// a private network).
    pub listen: Option<SocketAddr>,
    /// How often the gauges read from the store (tenants, webhook queue) are refreshed.
    pub refresh: Duration,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: None,
            refresh: Duration::from_secs(15),
        }
    }
}
