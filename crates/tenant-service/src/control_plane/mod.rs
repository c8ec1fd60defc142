//! [`ControlPlane`]: every use case of the control plane on one value, async, over SQLite or
//! PostgreSQL — what the HTTP server's handlers call, and what another Rust service embeds.
//!
//! It holds what the use cases share: the database pool, the key ring sealing credentials, the
//! default render options, the service tokens, API key hashing with its cache, the user
//! authentication machinery, the tenant read cache, the gateway config cache, the webhook rules
//! and the dispatcher's wake-up, and the batched write paths (group commit). Each method runs
//! its transactional use case (the synchronous functions of the area modules, e.g.
//! [`crate::tenants::update_tenant`]) on the blocking pool through [`crate::db::run`], and keeps
//! the caches coherent with what it changed.
//!
//! An embedder opens one with [`ControlPlane::open`] (see [`open`]); the server assembles one
//! from its settings with [`ControlPlane::from_parts`].

use std::sync::Arc;
use std::time::Duration;

use tenant_configgen::RenderOptions;
use tenant_store::access_tokens::TokenScope;
use tenant_store::crypto::KeyRing;
use tenant_store::{AnyConnection, Database};

use crate::api_keys::ApiKeyAuth;
use crate::error::{ServiceError, ServiceResult};
use crate::fleet::FleetConfig;
use crate::fleet::auth::GatewayAuth;
use crate::gateway_config::ConfigCache;
use crate::group_commit::write_paths::WritePaths;
use crate::idempotency::{Begin, Idempotency, OnceRequest, Render};
use crate::identity::Identity;
use crate::plans::Plans;
use crate::principal::{ActorRef, Principal};
use crate::rate_limit::RateLimiter;
use crate::tenant_cache::TenantCache;
use crate::tokens::{API_KEY_PREFIX, GATEWAY_TOKEN_PREFIX, ServiceAuth};
use crate::usage::meter::UsageMeter;
use crate::webhooks::endpoints::WebhookState;

mod billing;
mod config;
pub mod fleet;
mod identity;
mod keys;
mod limits;
pub mod open;
mod operator_webhooks;
mod tenants;
mod webhooks;

/// Everything a [`ControlPlane`] is made of, built by its owner (the server, from its
/// settings; [`ControlPlane::open`] for an embedder).
#[derive(Debug)]
pub struct Parts {
    /// The database pool (migrated).
    pub db: Database,
    /// The key ring sealing channel credentials and webhook secrets.
    pub keys: Arc<KeyRing>,
    /// How the gateway config is rendered by default.
    pub render: RenderOptions,
    /// The operator and gateway tokens accepted.
    pub service_auth: ServiceAuth,
    /// API key hashing and the authenticated-key cache.
    pub api_keys: ApiKeyAuth,
    /// JWTs, OIDC, token lifetimes.
    pub identity: Identity,
    /// The read cache of single tenants (kept in sync by [`crate::background`]).
    pub tenant_cache: Arc<TenantCache>,
    /// Webhook URL rules, secret overlap, the dispatcher's wake-up.
    pub webhooks: Arc<WebhookState>,
    /// The batched write paths (ingest, tenant creates).
    pub writes: WritePaths,
    /// Plans, rate limits and usage metering.
    pub limits: LimitParts,
    /// How long `Idempotency-Key`s are kept ([`crate::idempotency::DEFAULT_TTL`]: 24 h).
    pub idempotency_ttl: Duration,
    /// How long a tenant's old slug redirects after a change
    /// ([`crate::tenants::DEFAULT_SLUG_REDIRECT_TTL`]: 30 days).
    pub slug_redirect_ttl: Duration,
    /// The gateway fleet's lease and dedicated plans.
    pub fleet: Arc<FleetConfig>,
    /// Stripe billing; `None`: off (every billing use case answers `BillingDisabled`).
    pub billing: Option<Arc<crate::billing::Billing>>,
}

/// Plans, rate limits and the usage meter of a [`ControlPlane`] (the defaults: built-in plans,
/// rate limits in memory).
#[derive(Debug, Clone, Default)]
pub struct LimitParts {
    /// The plans, the tenants' limits cache and the quota rules (shared with the ingest path).
    pub plans: Arc<Plans>,
    /// The rate limiter.
    pub limiter: Arc<RateLimiter>,
    /// API requests counted, to be flushed.
    pub meter: Arc<UsageMeter>,
}

/// The control plane's use cases, sharing one database and its caches. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ControlPlane {
    db: Database,
    keys: Arc<KeyRing>,
    render: RenderOptions,
    service_auth: Arc<ServiceAuth>,
    api_keys: Arc<ApiKeyAuth>,
    identity: Arc<Identity>,
    tenant_cache: Arc<TenantCache>,
    config_cache: Arc<ConfigCache>,
    webhooks: Arc<WebhookState>,
    writes: Arc<WritePaths>,
    limits: LimitParts,
    idempotency: Arc<Idempotency>,
    slug_redirect_ttl: Duration,
    fleet: Arc<FleetConfig>,
    gateway_auth: Arc<GatewayAuth>,
    /// Expired gateways whose stranded tenants were logged (once per down spell).
    fleet_announced: Arc<std::sync::Mutex<std::collections::HashSet<tenant_core::GatewayId>>>,
    /// Wakes the automatic placing of tenants waiting for room.
    room: Arc<crate::fleet::pending::RoomSignal>,
    billing: Option<Arc<crate::billing::Billing>>,
}

impl ControlPlane {
    /// Assembles a control plane from its parts.
    pub fn from_parts(parts: Parts) -> Self {
        Self {
            db: parts.db,
            keys: parts.keys,
            render: parts.render,
            service_auth: Arc::new(parts.service_auth),
            api_keys: Arc::new(parts.api_keys),
            identity: Arc::new(parts.identity),
            tenant_cache: parts.tenant_cache,
            config_cache: Arc::default(),
            webhooks: parts.webhooks,
            writes: Arc::new(parts.writes),
            limits: parts.limits,
            idempotency: Arc::new(Idempotency::new(parts.idempotency_ttl)),
            slug_redirect_ttl: parts.slug_redirect_ttl,
            fleet: parts.fleet,
            gateway_auth: Arc::default(),
            fleet_announced: Arc::default(),
            room: Arc::default(),
            billing: parts.billing,
        }
    }

    /// The database pool.
    pub fn db(&self) -> &Database {
        &self.db
    }

    /// The key ring sealing credentials at rest.
    pub fn keys(&self) -> &Arc<KeyRing> {
        &self.keys
    }

    /// The default render options of the gateway config.
    pub fn render_options(&self) -> &RenderOptions {
        &self.render
    }

    /// Runs synchronous database work (a use case, or a composition of several in one
    /// transaction) on the blocking pool with a pooled connection.
    pub async fn run<T, F>(&self, work: F) -> ServiceResult<T>
    where
        F: FnOnce(&mut AnyConnection) -> ServiceResult<T> + Send + 'static,
        T: Send + 'static,
    {
        crate::db::run(&self.db, work).await
    }

    /// The first step of a creating request that may carry an `Idempotency-Key` (see
    /// [`crate::idempotency`]): without a key, run it; with one, replay the answer stored for
    /// it, refuse it (reused for another body, or still running here), or run it with the
    /// [`crate::idempotency::Ticket`] that the creating method then takes. `render` makes the
    /// answer stored from the use case's result.
    pub async fn begin_once<T: 'static>(
        &self,
        request: Option<OnceRequest>,
        render: Render<T>,
    ) -> ServiceResult<Begin<T>> {
        match request {
            None => Ok(Begin::Run(None)),
            Some(request) => {
                self.idempotency
                    .begin(&self.db, &self.keys, request, render)
                    .await
            }
        }
    }

    /// How long `Idempotency-Key`s are kept.
    pub fn idempotency_ttl(&self) -> Duration {
        self.idempotency.ttl()
    }

    /// Whether the database answers (the readiness probe).
    pub async fn ping(&self) -> ServiceResult<()> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.ping())
            .await
            .map_err(|e| ServiceError::Internal(format!("blocking task failed: {e}")))??;
        Ok(())
    }

    /// Who presents `token`: each credential source in turn — service tokens (operators,
    /// gateways), tenant API keys, then JWTs (the server's own access tokens, or the external
    /// issuer's). `Ok(None)`: nobody.
    pub async fn authenticate(&self, token: &str) -> ServiceResult<Option<Principal>> {
        match self.service_auth.scope_of(token) {
            Some(TokenScope::Operator) => {
                return Ok(Some(Principal::Operator {
                    actor: ActorRef::ServiceToken(None),
                }));
            }
            Some(TokenScope::Gateway) => {
                return Ok(Some(Principal::Gateway {
                    actor: ActorRef::ServiceToken(None),
                }));
            }
            None => {}
        }
        if token.starts_with(GATEWAY_TOKEN_PREFIX) {
            let found = self
                .gateway_auth
                .authenticate(&self.db, &self.api_keys.hasher, token)
                .await?;
            return Ok(found.map(|id| Principal::Gateway {
                actor: ActorRef::Gateway(*id.as_uuid()),
            }));
        }
        if token.starts_with(API_KEY_PREFIX) {
            return self.api_keys.authenticate(&self.db, token).await;
        }
        // A refused JWT is nobody, like any unknown token; why is logged by the verifier.
        Ok(self
            .identity
            .principal_from_bearer_jwt(token)
            .await
            .ok()
            .flatten())
    }
}
