//! The state every request handler shares: the control plane (`tenant-service`'s use cases,
//! with the database, caches and batched write paths they share).

use tenant_service::ControlPlane;

/// Shared by all workers.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The use cases.
    pub control: ControlPlane,
}
