//! Opening a [`ControlPlane`] for an embedder: `ControlPlane::open("sqlite://…")` (or
//! `postgres://…`) connects, migrates the schema, loads or generates the secrets and starts the
//! batched write paths — the server's defaults, without HTTP.
//!
//! With the defaults ([`OpenOptions::default`]) this is a development deployment: a secret not
//! given (the key ring sealing credentials, the API key secret, the JWT signing key) is
//! generated once into the data directory (by default beside the SQLite file) and read back on
//! later opens, exactly as the server does without configuration, so the server and an
//! embedder can share a database. A production embedder gives every secret and sets
//! [`Environment::Production`], which refuses to generate any.
//!
//! No background work is started: webhook deliveries wait in the store's outbox for a
//! dispatcher (`tenant_webhooks::Dispatcher`, or `moltbot-saas webhooks dispatch`), and the
//! tenant read cache is off (it needs the background sync to be safe across processes).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tenant_configgen::RenderOptions;
use tenant_core::Secret;
use tenant_store::crypto::KeyRing;
use tenant_store::{DatabaseUrl, StoreError};
use tenant_webhooks::delivery::AddressPolicy;

use super::{ControlPlane, Parts};
use crate::api_keys::{self, ApiKeyAuth, ApiKeyCache, ApiKeyHasher};
use crate::deployment::{Deployment, Environment, default_data_dir};
use crate::fleet::FleetConfig;
use crate::group_commit::GroupCommitConfig;
use crate::group_commit::write_paths::WritePaths;
use crate::identity::{Identity, IdentityError, IdentitySettings};
use crate::sealing::{self, KeysError};
use crate::tenant_cache::TenantCache;
use crate::tokens::ServiceAuth;
use crate::webhooks::endpoints::{UrlRules, WebhookState};

/// How [`ControlPlane::open_with`] opens the control plane.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Development (the default: missing secrets are generated into the data directory) or
    /// production (every secret must be given).
    pub environment: Environment,
    /// Where development secrets are kept; by default the SQLite file's directory, or `data`
    /// for PostgreSQL.
    pub data_dir: Option<PathBuf>,
    /// The key ring sealing channel credentials and webhook secrets.
    pub key_ring: Option<Arc<KeyRing>>,
    /// The secret API keys are hashed with (at least 32 bytes).
    pub api_key_secret: Option<Secret>,
    /// JWT signing secret, token lifetimes, external identity provider.
    pub identity: IdentitySettings,
    /// How the gateway config is rendered.
    pub render: RenderOptions,
    /// Most database connections open at once.
    pub pool_size: u32,
    /// Group commit of tenant creates and event ingest.
    pub writes: GroupCommitConfig,
    /// How long `Idempotency-Key`s are kept (24 h by default).
    pub idempotency_ttl: Duration,
    /// How long a tenant's old slug redirects after a change (30 days by default).
    pub slug_redirect_ttl: Duration,
    /// The gateway fleet's lease and dedicated plans.
    pub fleet: FleetConfig,
    /// Which webhook URLs may be saved.
    pub url_rules: UrlRules,
    /// How long a rotated webhook secret keeps signing.
    pub secret_overlap: Duration,
    /// How long an authenticated API key is trusted without asking the database.
    pub api_key_cache_ttl: Duration,
    /// Stripe billing (off by default).
    pub billing: Option<crate::billing::BillingConfig>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            environment: Environment::Development,
            data_dir: None,
            key_ring: None,
            api_key_secret: None,
            identity: IdentitySettings::default(),
            render: RenderOptions::default(),
            pool_size: 8,
            writes: GroupCommitConfig::default(),
            idempotency_ttl: crate::idempotency::DEFAULT_TTL,
            slug_redirect_ttl: crate::tenants::DEFAULT_SLUG_REDIRECT_TTL,
            fleet: FleetConfig::default(),
            url_rules: UrlRules {
                policy: AddressPolicy::default(),
                require_https: false,
            },
            secret_overlap: Duration::from_secs(86_400),
            api_key_cache_ttl: Duration::from_secs(30),
            billing: None,
        }
    }
}

/// Why a control plane could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The database URL is not `sqlite://…` or `postgres://…`, or a store call failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Database(#[from] crate::db::OpenError),
    /// No key ring (production without one, or an unusable development key file).
    #[error(transparent)]
    Keys(#[from] KeysError),
    /// No API key secret (production without one, or an unusable development key file).
    #[error("{0}")]
    ApiKeySecret(String),
    /// User authentication could not be set up.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The Stripe client could not be built.
    #[error("{0}")]
    Billing(String),
    /// The write paths' threads could not be started.
    #[error("cannot start the writer threads: {0}")]
    Writers(#[from] std::io::Error),
}

impl ControlPlane {
    /// Opens the control plane on `url` (`sqlite://PATH` or `postgres://…`) with the defaults
    /// of [`OpenOptions`]: a development deployment whose secrets live beside the database.
    pub fn open(url: &str) -> Result<Self, OpenError> {
        Self::open_with(url, OpenOptions::default())
    }

    /// Opens the control plane on `url` with `options`: connects, applies pending migrations
    /// (on both backends), seals credentials older versions left in plaintext, and starts the
    /// batched write paths (their threads end when the last clone is dropped).
    pub fn open_with(url: &str, options: OpenOptions) -> Result<Self, OpenError> {
        let url = DatabaseUrl::parse(url)?;
        let deployment = Deployment {
            environment: options.environment,
            data_dir: options
                .data_dir
                .clone()
                .unwrap_or_else(|| default_data_dir(&url)),
        };
        let db = crate::db::open(
            &url,
            &tenant_store::PoolConfig {
                max_size: options.pool_size,
                ..tenant_store::PoolConfig::default()
            },
            true,
        )?;
        let keys = sealing::key_ring(options.key_ring.as_ref(), &deployment)?;
        sealing::seal_plaintext_rows(&mut *db.get()?, &keys)?;
        let (secret, _) = api_keys::load_secret(options.api_key_secret.as_ref(), &deployment)
            .map_err(OpenError::ApiKeySecret)?;
        let hasher = ApiKeyHasher::new(&secret);
        let identity = Identity::build(&options.identity, &deployment)?;
        let billing = match &options.billing {
            Some(config) => Some(Arc::new(
                crate::billing::Billing::from_config(config).map_err(OpenError::Billing)?,
            )),
            None => None,
        };
        let limits = super::LimitParts::default();
        let fleet = Arc::new(options.fleet.clone());
        let writes = WritePaths::start(
            &db,
            &options.writes,
            hasher.clone(),
            Arc::clone(&limits.plans),
            Arc::clone(&keys),
            Arc::clone(&fleet),
        )?;
        Ok(Self::from_parts(Parts {
            db,
            keys,
            render: options.render,
            service_auth: ServiceAuth::default(),
            api_keys: ApiKeyAuth {
                hasher,
                cache: ApiKeyCache::new(options.api_key_cache_ttl),
            },
            identity,
            tenant_cache: Arc::new(TenantCache::new(0, Duration::from_secs(1), |_| Vec::new())),
            webhooks: Arc::new(WebhookState {
                rules: options.url_rules,
                secret_overlap: options.secret_overlap,
                wake: Arc::default(),
            }),
            writes,
            limits,
            idempotency_ttl: options.idempotency_ttl,
            slug_redirect_ttl: options.slug_redirect_ttl,
            fleet,
            billing,
        }))
    }
}
