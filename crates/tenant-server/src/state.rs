//! The state every request handler shares: the control plane (`tenant-service`'s use cases,
//! with the database, caches and batched write paths they share), and what the probes and
//! `GET /metrics` need.

use std::time::Duration;

use tenant_service::ControlPlane;

/// Shared by all workers.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The use cases.
    pub control: ControlPlane,
    /// Whether `GET /metrics` is served (`SAAS_METRICS`).
    pub metrics: bool,
    /// How long `/ready` waits for each dependency.
    pub ready_timeout: Duration,
}
