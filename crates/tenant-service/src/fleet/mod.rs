//! The gateway fleet: gateways as a resource ([`gateways`]: create with a token shown once,
//! list with load and health, change, drain, rotate, delete), placement of tenants on them and
//! the move protocol ([`placement`]), tenants waiting for room placed once there is some
//! ([`pending`]), leases and failover ([`leases`]), gateway tokens ([`auth`]), and the events
//! announced to the operator's webhooks ([`events`]).
//!
//! The built-in gateway `default` is the server's `SAAS_GATEWAY_TOKEN`; it holds every tenant
//! without a placement row, so a single-gateway setup writes no fleet row at all. The design,
//! the guarantees and what is not built yet are in `docs/fleet.md`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tenant_core::Plan;

pub use crate::error::FleetConflict;

pub mod auth;
pub mod events;
pub mod gateways;
pub mod leases;
pub mod metrics;
pub mod pending;
pub mod placement;
mod shared;

/// How the fleet behaves.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// A gateway that sent no heartbeat for this long is `down` (`SAAS_GATEWAY_LEASE_SECS`).
    pub lease: Duration,
    /// Tenants of these plans get a dedicated gateway (`SAAS_DEDICATED_PLANS`).
    pub dedicated_plans: Vec<Plan>,
    /// Whether a down shared gateway's tenants are re-placed on healthy ones
    /// (`SAAS_GATEWAY_FAILOVER`, default off).
    pub failover: bool,
    /// How long past the lease the control plane waits before it acts on an expired lease
    /// (`SAAS_GATEWAY_LEASE_MARGIN_SECS`, default `max(10 s, lease / 6)`): it covers the
    /// fenced gateway's reload, its sync's clock running slow and clock offsets between hosts.
    pub margin: Duration,
}

impl Default for FleetConfig {
    fn default() -> Self {
        let lease = Duration::from_secs(60);
        Self {
            lease,
            dedicated_plans: Vec::new(),
            failover: false,
            margin: default_margin(lease),
        }
    }
}

/// The safety margin for a lease: `max(10 s, lease / 6)`.
pub fn default_margin(lease: Duration) -> Duration {
    (lease / 6).max(Duration::from_secs(10))
}

impl FleetConfig {
    /// How often every replica sweeps expired leases and looks for tenants waiting for room:
    /// a fifth of the lease, between 1 and 10 seconds.
    pub fn sweep_every(&self) -> Duration {
        (self.lease / 5).clamp(Duration::from_secs(1), Duration::from_secs(10))
    }

    /// The lease, as a time span.
    pub fn lease_span(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.lease).unwrap_or(chrono::Duration::MAX)
    }

    /// Whether a gateway whose last heartbeat was at `last` is down at `now` (never heartbeated:
    /// not down, its health is unknown).
    pub fn is_down(&self, last: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
        last.is_some_and(|at| now - at > self.lease_span())
    }

    /// Whether the control plane may act on a gateway's expired lease at `now`: its last
    /// heartbeat declared fencing and is older than the lease plus the margin, so the gateway
    /// has stopped serving (it fenced itself after one lease without renewal).
    pub fn lease_expired(
        &self,
        last: Option<DateTime<Utc>>,
        fencing: bool,
        now: DateTime<Utc>,
    ) -> bool {
        let wait =
            chrono::Duration::from_std(self.lease + self.margin).unwrap_or(chrono::Duration::MAX);
        fencing && last.is_some_and(|at| now - at > wait)
    }
}
