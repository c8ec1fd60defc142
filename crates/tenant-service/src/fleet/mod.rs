//! The gateway fleet: gateways as a resource ([`gateways`]: create with a token shown once,
//! list with load and health, change, drain, rotate, delete), placement of tenants on them and
//! the move protocol ([`placement`]), and gateway tokens ([`auth`]).
//!
//! The built-in gateway `default` is the server's `SAAS_GATEWAY_TOKEN`; it holds every tenant
//! without a placement row, so a single-gateway setup writes no fleet row at all. The design,
//! the guarantees and what is not built yet are in `docs/fleet.md`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tenant_core::Plan;

pub use crate::error::FleetConflict;

pub mod auth;
pub mod gateways;
pub mod metrics;
pub mod placement;

/// How the fleet behaves.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// A gateway that sent no heartbeat for this long is `down` (`SAAS_GATEWAY_LEASE_SECS`).
    pub lease: Duration,
    /// Tenants of these plans get a dedicated gateway (`SAAS_DEDICATED_PLANS`).
    pub dedicated_plans: Vec<Plan>,
}

impl Default for FleetConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(60),
            dedicated_plans: Vec::new(),
        }
    }
}

impl FleetConfig {
    /// The lease, as a time span.
    pub fn lease_span(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.lease).unwrap_or(chrono::Duration::MAX)
    }

    /// Whether a gateway whose last heartbeat was at `last` is down at `now` (never heartbeated:
    /// not down, its health is unknown).
    pub fn is_down(&self, last: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
        last.is_some_and(|at| now - at > self.lease_span())
    }
}
