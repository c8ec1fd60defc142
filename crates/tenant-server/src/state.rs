//! The state every request handler shares.

use std::sync::Arc;

use tenant_configgen::RenderOptions;
use tenant_service::api_keys::ApiKeyAuth;
use tenant_service::gateway_config::ConfigCache;
use tenant_service::group_commit::WritePaths;
use tenant_service::tenant_cache::TenantCache;
use tenant_service::tokens::ServiceAuth;
use tenant_service::webhooks::endpoints::WebhookState;
use tenant_store::crypto::KeyRing;
use tenant_store::{AnyConnection, Database};

use crate::http::error::ApiError;

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
    pub tenants: Arc<TenantCache>,
    /// Rendered gateway configs, by variant and revision.
    pub config_cache: Arc<ConfigCache>,
    /// The key ring sealing channel credentials at rest.
    pub keys: Arc<KeyRing>,
    /// Events and webhooks: URL rules, rotation overlap, the dispatcher's wake-up.
    pub webhooks: Arc<WebhookState>,
    /// The batched (group-commit) write paths: ingest and tenant creates.
    pub writers: Arc<WritePaths>,
}

impl AppState {
    /// Runs blocking database work with a pooled connection (see [`tenant_service::db::run`],
    /// the one place where async code crosses into synchronous Diesel).
    pub async fn run<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        tenant_service::db::run(&self.db, work).await
    }
}
