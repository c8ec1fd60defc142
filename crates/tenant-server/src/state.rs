//! The state every request handler shares.

use actix_web::web;
use tenant_store::crypto::KeyRing;
use tenant_store::{AnyConnection, Database};

use std::sync::Arc;

use tenant_configgen::RenderOptions;

use crate::api_keys::ApiKeyAuth;
use crate::auth::ServiceAuth;
use crate::error::ApiError;
use crate::gateway::ConfigCache;

/// Shared by all workers.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The database pool.
    pub db: Database,
    /// The service tokens accepted.
    pub auth: ServiceAuth,
    /// Default rendering options of the gateway config.
    pub render: RenderOptions,
    /// API key hashing and the authenticated-key cache.
    pub api_keys: Arc<ApiKeyAuth>,
    /// The read cache of `GET /tenants/{id}`.
    pub tenants: Arc<crate::tenant_cache::TenantCache>,
    /// Rendered gateway configs, by variant and revision.
    pub config_cache: Arc<ConfigCache>,
    /// The key ring sealing channel credentials at rest.
    pub keys: Arc<KeyRing>,
    /// Events and webhooks: URL rules, rotation overlap, the dispatcher's wake-up.
    pub webhooks: Arc<crate::webhook_service::WebhookState>,
    /// The batched (group-commit) write paths: ingest and tenant creates.
    pub writers: Arc<crate::writers::Writers>,
}

impl AppState {
    /// Runs blocking database work on actix's blocking pool with a pooled connection: the one
    /// place where async handlers cross into synchronous Diesel.
    pub async fn run<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let db = self.db.clone();
        web::block(move || {
            let mut conn = db.get()?;
            work(&mut conn)
        })
        .await
        .map_err(|e| ApiError::Internal(format!("blocking task failed: {e}")))?
    }
}
