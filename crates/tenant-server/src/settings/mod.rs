//! Typed settings, read from the environment and validated at start.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `SAAS_API_PORT` | `3000` | TCP port of the HTTP API (`0` picks a free port) |
//! | `SAAS_BIND_ADDRESS` | `127.0.0.1` | address to listen on; `0.0.0.0` to accept remote clients |
//! | `DATABASE_URL` | `sqlite://data/moltbot-saas.db` | `sqlite://PATH` or `postgres://…` |
//! | `SAAS_ADMIN_TOKEN` | generated on first start | operator bearer token (≥ 32 characters) |
//! | `SAAS_GATEWAY_TOKEN` | generated on first start | the gateway's bearer token for `GET /config` (≥ 32 characters) |
//! | `SAAS_DB_POOL_SIZE` | `16` | most database connections open at once |
//! | `SAAS_DB_ACQUIRE_TIMEOUT_MS` | `5000` | how long a request waits for a free database connection before 503 |
//! | `SAAS_DB_RECONNECT_MAX_MS` | `500` | longest wait between attempts to reach a database that is away |
//! | `SAAS_DB_CONNECT_TIMEOUT_SECS` | `5` | PostgreSQL connect timeout per host when `DATABASE_URL` sets no `connect_timeout` (`0`: none) |
//! | `SAAS_MAX_BODY_BYTES` | `65536` | largest request body accepted |
//! | `SAAS_WORKERS` | number of CPUs | HTTP worker threads |
//! | `SAAS_SHUTDOWN_TIMEOUT_SECS` | `30` | how long in-flight requests may finish on shutdown |
//! | `SAAS_MIGRATE_ON_START` | `false` | run PostgreSQL migrations on start (SQLite always migrates) |
//! | `SAAS_CONFIG_DIALECT` | `current` | gateway config dialect: `current` (openclaw ≥ 2026.8) or `legacy` |
//! | `SAAS_CONFIG_SECRETS` | `inline` | credentials in the config: `inline`, `env` or `secret-ref` |
//! | `SAAS_GATEWAY_WORKSPACE_ROOT` | `/var/lib/openclaw/workspaces` | agents' workspaces on the gateway host |
//! | `SAAS_GATEWAY_AGENT_DIR_ROOT` | `/var/lib/openclaw/agents` | agents' state directories on the gateway host |
//! | `SAAS_GATEWAY_WHATSAPP_ROOT` | `/var/lib/openclaw/whatsapp` | WhatsApp link state on the gateway host |
//! | `SAAS_GATEWAY_BASE_CONFIG` | none | JSON/JSON5 file merged under the generated config (gateway, models, plugins) |
//! | `SAAS_GATEWAY_BRIDGE_PATH` | none | where the bridge plugin is installed on the gateway host (`moltbot-saas gateway install-bridge DIR`); with `SAAS_PUBLIC_URL`, the rendered config loads and enables it |
//! | `SAAS_PUBLIC_URL` | none | the control plane's base URL as the gateway reaches it (the bridge posts to `{url}/events`); needs `SAAS_GATEWAY_TOKEN`, which the bridge sends |
//! | `SAAS_ENV` | `development` | `development` or `production`; production refuses to start without configured secrets instead of generating them |
//! | `SAAS_DATA_DIR` | the SQLite file's directory, else `data` | where development secrets are generated and kept (mode 0600) |
//! | `SAAS_ENCRYPTION_KEYS` | generated into the data directory (development only) | `id:base64key,id2:base64key`: 32-byte keys sealing channel credentials at rest; the first is active |
//! | `SAAS_JWT_SECRET` | generated into `SAAS_DATA_DIR/jwt.key` in development; required in production | HS256 key of user access tokens (≥ 32 bytes) |
//! | `SAAS_ACCESS_TOKEN_TTL_SECS` | `900` | lifetime of user access tokens (60–86400) |
//! | `SAAS_REFRESH_TOKEN_TTL_SECS` | `2592000` (30 days) | lifetime of refresh tokens (300–31536000) |
//! | `SAAS_OIDC_ISSUER` | none | accept bearer JWTs of this OpenID Connect issuer (exact `iss`) |
//! | `SAAS_OIDC_AUDIENCE` | required with the issuer | the `aud` those tokens must carry |
//! | `SAAS_OIDC_JWKS_URL` | required with the issuer | the issuer's JSON Web Key Set (RS256/ES256 keys) |
//! | `SAAS_OIDC_TENANT_CLAIM` | `tenant_id` | claim holding the tenant id (UUID) |
//! | `SAAS_OIDC_ROLE_CLAIM` | `role` | claim holding the role (a string or a list) |
//! | `SAAS_OIDC_ROLE_MAP` | identity (`owner`, `admin`, `member`, `operator`) | `idp-value=role,…` mapping claim values to roles |
//! | `SAAS_API_KEY_SECRET` | generated into `SAAS_DATA_DIR/api-key-hmac.key` (development only) | server secret API keys are hashed with (HMAC-SHA256, ≥ 32 characters); required in production; changing it invalidates every API key |
//! | `SAAS_API_KEY_CACHE_TTL_SECS` | `30` | how long a replica trusts an authenticated API key without asking the database (`0` disables); the most a revocation takes to reach other replicas |
//! | `SAAS_WEBHOOK_DISPATCHER` | `true` | whether `serve` runs the webhook dispatcher |
//! | `SAAS_WEBHOOK_WORKERS` | `4` | with the batch size, deliveries in flight at most per process (`workers × batch`) |
//! | `SAAS_WEBHOOK_BATCH_SIZE` | `64` | deliveries claimed at most at once |
//! | `SAAS_WEBHOOK_ENDPOINT_CONCURRENCY` | `4` | deliveries of one endpoint in flight at once per process |
//! | `SAAS_WEBHOOK_CIRCUIT_FAILURES` | `5` | consecutive timeouts or connection failures that open an endpoint's circuit |
//! | `SAAS_WEBHOOK_CIRCUIT_OPEN_SECS` | `30` | how long a circuit stays open before a probe; doubles on each opening in a row |
//! | `SAAS_WEBHOOK_CIRCUIT_OPEN_MAX_SECS` | `600` | the longest a circuit stays open before a probe |
//! | `SAAS_WEBHOOK_LEASE_SECS` | `60` | how long a claimed delivery is held before another process may retry it |
//! | `SAAS_WEBHOOK_TIMEOUT_MS` | `10000` | delivery request timeout |
//! | `SAAS_WEBHOOK_CONNECT_TIMEOUT_MS` | `5000` | delivery connect timeout |
//! | `SAAS_WEBHOOK_RETRY_SCHEDULE` | `0s,5s,5m,30m,2h,5h,10h,10h` | wait before each attempt |
//! | `SAAS_WEBHOOK_JITTER_PERCENT` | `20` | each wait moves by up to ± this percentage |
//! | `SAAS_WEBHOOK_FAILURE_GRACE_SECS` | `432000` (5 days) | an endpoint failing continuously this long is disabled |
//! | `SAAS_WEBHOOK_POLL_INTERVAL_MS` | `1000` | how often an idle dispatcher looks for due deliveries |
//! | `SAAS_WEBHOOK_METRICS_INTERVAL_SECS` | `60` | how often delivery counters and queue depth are logged |
//! | `SAAS_WEBHOOK_ALLOWED_NETWORKS` | none | comma-separated CIDRs deliveries may reach although private/loopback/… |
//! | `SAAS_WEBHOOK_REQUIRE_HTTPS` | `false` | refuse `http://` endpoint URLs |
//! | `SAAS_WEBHOOK_SECRET_OVERLAP_SECS` | `86400` | how long the previous secret keeps signing after a rotation |
//! | `SAAS_SESSION_TTL_SECS` | `2592000` (30 days) | sessions inactive this long are purged |
//! | `SAAS_RETENTION_EVENTS` | `30d` | gateway events are kept this long (`ms`, `s`, `m`, `h`, `d`, as the retry schedule); an event with a delivery left is kept |
//! | `SAAS_RETENTION_EVENTS_BY_PLAN` | none | longer (or shorter) event history per plan: `enterprise=365d,pro=90d` |
//! | `SAAS_RETENTION_DELIVERIES` | `30d` | delivered webhook deliveries and their attempts are kept this long after delivery; a pending one is never purged |
//! | `SAAS_RETENTION_DEAD_LETTERS` | `90d` | dead letters and their attempts are kept this long after they died |
//! | `SAAS_RETENTION_AUDIT` | `365d` | audit entries are kept this long; `forever` keeps them all |
//! | `SAAS_PURGE_INTERVAL` | `1m` | time between purge rounds (retention and deleted tenants' rows), 100ms–1d |
//! | `SAAS_PURGE_BATCH` | `500` | rows per purge transaction at most (fewer while a batch takes over 50 ms) |
//! | `SAAS_PURGE_SHARE` | `25` | the share of the time (percent, 1–100) the purge may hold the database: it pauses after each batch accordingly |
//! | `SAAS_IDEMPOTENCY_TTL_SECS` | `86400` (24 h) | how long a creating request's `Idempotency-Key` and answer are kept for retries (60–2592000) |
//! | `SAAS_GATEWAY_LEASE_SECS` | `60` | a gateway without a heartbeat this long is `down` (5–3600); see docs/fleet.md |
//! | `SAAS_GATEWAY_LEASE_MARGIN_SECS` | `max(10, lease/6)` | how long past an expired lease the control plane waits before acting on it (1–3600); see docs/fleet.md |
//! | `SAAS_GATEWAY_FAILOVER` | `off` | `on`: a down shared gateway's tenants are re-placed on healthy ones after the lease and margin |
//! | `SAAS_DEDICATED_PLANS` | none | comma-separated plans whose new tenants get a dedicated gateway |
//! | `SAAS_SLUG_REDIRECT_TTL_SECS` | `2592000` (30 days) | how long a tenant's old slug host redirects (308) to its new one after a slug change (0–31536000; 0: no redirect) |
//! | `SAAS_WRITE_BATCH_MAX` | `256` | most requests of one write path (event ingests, tenant creates, channel, webhook endpoint or API key writes) written in one batch (one transaction); `1` turns group commit off |
//! | `SAAS_WRITE_BATCH_LINGER_US` | `250` | a batch stays open while each wait this long brings more requests (0: only those already queued) |
//! | `SAAS_WRITE_BATCH_MAX_WAIT_US` | `5000` | the longest a batch stays open after its first request |
//! | `SAAS_WRITE_WRITERS` | `1` | writer threads per batched write path (ingest, tenant creates, API key issues; channel and webhook endpoint writes always have one, since their plan limits are counted in the batch) |
//! | `SAAS_WRITE_QUEUE` | `8192` | requests queued per path at most; past it they are answered 503 |
//! | `SAAS_LOG_FORMAT` | `pretty` | `pretty` (or `text`) or `json` (one JSON object a line) |
//! | `SAAS_METRICS` | `true` | record metrics and serve `GET /metrics` (operator token) |
//! | `SAAS_METRICS_ADDR` | none | also serve `GET /metrics` without authentication on this `ip:port` (a private network's scraper); `webhooks dispatch` serves its `/health`, `/ready` and `/metrics` there |
//! | `SAAS_METRICS_REFRESH_SECS` | `15` | how often the gauges read from the database (tenants, webhook queue) are refreshed |
//! | `SAAS_READY_TIMEOUT_MS` | `2000` | how long `/ready` waits for the database before answering 503 |
//! | `SENTRY_DSN` | none | report panics and 5xx answers to this Sentry project (off when unset) |
//! | `SENTRY_ENVIRONMENT` | `SAAS_ENV`'s value | the environment reported to Sentry |
//! | `SENTRY_RELEASE` | `moltbot-saas@<version>` | the release reported to Sentry |
//! | `SAAS_ACCESS_LOG` | `errors` | access-log lines: `all` requests, `errors` (4xx, 5xx, slow ones) or `off` |
//! | `SAAS_ACCESS_LOG_SLOW_MS` | `1000` | with `errors`, also log requests slower than this |
//! | `SAAS_TENANT_CACHE_SIZE` | `10000` | tenants kept in the read cache of `GET /tenants/{id}` (`0` disables it) |
//! | `SAAS_TENANT_CACHE_SYNC_MS` | `1000` | how often that cache checks for other replicas' changes: the most they take to show |
//! | `SAAS_RATE_LIMIT` | `true` | rate-limit tenants' requests (per API key and tenant, from the plan) and the login flows (per client address) |
//! | `SAAS_REDIS_URL` | none | `redis://…`: the rate-limit state shared by every replica; without it each process limits on its own |
//! | `SAAS_REDIS_KEY_PREFIX` | `moltbot:rl:` | prefix of every Redis key |
//! | `SAAS_PLANS_FILE` | none | JSON file changing the plans' limits (`{"free": {"maxChannels": 5}}`), read at start |
//! | `SAAS_USAGE_SOFT_LIMIT_PERCENT` | `80` | a month's messages at which `usage.threshold` is sent (1–100) |
//! | `SAAS_USAGE_FLUSH_MS` | `10000` | how often metered API requests are added to the database |
//! | `SAAS_LIMITS_CACHE_TTL_MS` | `5000` | how long a tenant's limits are trusted without reading them again: the most a plan change takes to reach other replicas' rate limits |
//! | `SAAS_RATE_LIMIT_LOGIN_PER_MINUTE` | `30` | login, refresh and invite-acceptance requests per minute per client address |
//! | `SAAS_RATE_LIMIT_LOGIN_BURST` | `20` | of those, how many may come at once |
//! | `SAAS_BASE_DOMAIN` | none | `{slug}.DOMAIN` serves tenant `slug`'s portal; `DOMAIN` and `admin.DOMAIN` the operators' dashboard |
//! | `SAAS_TRUSTED_PROXIES` | none | comma-separated IPs of reverse proxies whose `X-Forwarded-Host` is believed |
//! | `SAAS_UI_SECURE_COOKIES` | `true` | mark the dashboard's cookies `Secure` (browsers keep them on `http://localhost` too) |
//! | `SAAS_STRIPE_SECRET_KEY` | none (billing off) | Stripe API secret key (`sk_…`/`rk_…`); without it every billing route answers 503 `billing_disabled` |
//! | `SAAS_STRIPE_WEBHOOK_SECRET` | required with the key | the Stripe webhook endpoint's signing secret (`whsec_…`) |
//! | `SAAS_STRIPE_PRICES` | required with the key | `price_id=plan,…`: which Stripe price grants which plan; Checkout sells a plan's first price |
//! | `SAAS_STRIPE_API_BASE` | `https://api.stripe.com` | where Stripe's API is (tests point it at a local fake) |
//! | `SAAS_STRIPE_TIMEOUT_MS` | `10000` | how long a call to Stripe may take before 503 |
//! | `SAAS_BILLING_GRACE_DAYS` | `7` | how long a tenant whose payment failed keeps its plan before it is suspended (0–90) |
//! | `SAAS_BILLING_GRACE_SECS` | none | the grace period in seconds instead (wins over the days) |
//! | `SAAS_BILLING_SWEEP_SECS` | `60` | how often each process looks for tenants whose grace period ran out |
//! | `RUST_LOG` | `info` | log filter (tracing `EnvFilter` syntax) |

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tenant_configgen::RenderOptions;
use tenant_core::Secret;
use tenant_service::deployment::{Deployment, default_data_dir};
use tenant_service::group_commit::GroupCommitConfig;
use tenant_service::identity::IdentitySettings;
use tenant_store::DatabaseUrl;
use tenant_store::crypto::KeyRing;

use self::billing::BillingSettings;
use self::limits::LimitSettings;
use self::parse::{parse, parse_in};
use self::render::render_options;
use self::ui::UiSettings;
use self::webhooks::WebhookSettings;
use crate::http::request_log::{AccessLog, AccessLogSettings};

pub use self::error::SettingsError;
pub use tenant_service::deployment::Environment;

pub mod billing;
mod bridge;
mod error;
mod fleet;
pub mod identity;
pub mod limits;
mod monitoring;
mod parse;
mod render;
pub mod retention;
pub mod ui;
pub mod webhooks;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Everything the server needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to listen on.
    pub bind_address: IpAddr,
    /// Port to listen on.
    pub port: u16,
    /// The database.
    pub database_url: DatabaseUrl,
    /// The operator token given by configuration, if any.
    pub admin_token: Option<Secret>,
    /// The gateway token given by configuration, if any.
    pub gateway_token: Option<Secret>,
    /// Database pool size.
    pub db_pool_size: u32,
    /// How long a request waits for a free database connection.
    pub db_acquire_timeout: std::time::Duration,
    /// The longest wait between attempts to reach a database that is away.
    pub db_reconnect_max: std::time::Duration,
    /// libpq's `connect_timeout` when the URL sets none (0: none).
    pub db_connect_timeout_secs: u64,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// HTTP worker threads (`None`: one per CPU).
    pub workers: Option<usize>,
    /// Grace period for in-flight requests on shutdown, in seconds.
    pub shutdown_timeout_secs: u64,
    /// Whether to run PostgreSQL migrations on start.
    pub migrate_on_start: bool,
    /// Development or production.
    pub environment: Environment,
    /// Where development secrets are generated and kept.
    pub data_dir: PathBuf,
    /// The secret API keys are hashed with, if configured.
    pub api_key_secret: Option<Secret>,
    /// How long an authenticated API key is trusted without a database lookup, in seconds.
    pub api_key_cache_ttl_secs: u64,
    /// Log output format.
    pub log_format: LogFormat,
    /// Which requests get an access-log line.
    pub access_log: AccessLogSettings,
    /// Most tenants kept in the read cache of `GET /tenants/{id}` (0: no cache).
    pub tenant_cache_size: usize,
    /// How often the read cache checks the store for other processes' changes.
    pub tenant_cache_sync: std::time::Duration,
    /// How the gateway config is rendered by default.
    pub render: RenderOptions,
    /// The key ring sealing channel credentials, if configured (`Debug` shows only key ids).
    pub encryption_keys: Option<Arc<KeyRing>>,
    /// User authentication: JWT secret, token lifetimes, external identity provider.
    pub identity: IdentitySettings,
    /// Events, sessions and webhook delivery.
    pub webhooks: WebhookSettings,
    /// Plans, usage metering, rate limits.
    pub limits: LimitSettings,
    /// How long history is kept, how often and in what batches it is purged.
    pub retention: tenant_service::lifecycle::RetentionPolicy,
    /// Stripe billing (off without a secret key).
    pub billing: BillingSettings,
    /// Group commit of the batched write paths (ingest, tenant creates).
    pub writes: GroupCommitConfig,
    /// Metrics: on or off, a separate listener, the store gauges' refresh.
    pub metrics: crate::monitoring::MetricsSettings,
    /// Error reporting to Sentry.
    pub sentry: crate::monitoring::sentry::SentrySettings,
    /// How long `/ready` waits for each dependency.
    pub ready_timeout: std::time::Duration,
    /// How long `Idempotency-Key`s and their answers are kept.
    pub idempotency_ttl: std::time::Duration,
    /// How long a tenant's old slug keeps redirecting after a change.
    pub slug_redirect_ttl: std::time::Duration,
    /// The gateway fleet: heartbeat lease, dedicated plans.
    pub fleet: tenant_service::fleet::FleetConfig,
    /// The dashboard and the tenant portal: hosts, trusted proxies, cookies.
    pub ui: UiSettings,
}

/// The default database when `DATABASE_URL` is unset.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/moltbot-saas.db";

impl Settings {
    /// Reads settings from the process environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// The deployment's kind and data directory, as the use cases take them.
    pub fn deployment(&self) -> Deployment {
        Deployment {
            environment: self.environment,
            data_dir: self.data_dir.clone(),
        }
    }

    /// Reads settings through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        let database_url = get("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.into());
        let database_url = DatabaseUrl::parse(&database_url).map_err(|e| SettingsError {
            var: "DATABASE_URL",
            message: e.to_string(),
        })?;
        let admin_token = token(&get, "SAAS_ADMIN_TOKEN")?;
        let gateway_token = token(&get, "SAAS_GATEWAY_TOKEN")?;
        let render = render_options(&get, gateway_token.as_ref())?;
        let log_format = match get("SAAS_LOG_FORMAT").as_deref() {
            None | Some("pretty" | "text") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(_) => {
                return Err(SettingsError {
                    var: "SAAS_LOG_FORMAT",
                    message: "must be `pretty` (or `text`) or `json`".into(),
                });
            }
        };
        let data_dir = match get("SAAS_DATA_DIR") {
            Some(dir) => PathBuf::from(dir.trim()),
            None => default_data_dir(&database_url),
        };
        Ok(Self {
            environment: parse(&get, "SAAS_ENV", Environment::Development)?,
            data_dir,
            bind_address: parse(&get, "SAAS_BIND_ADDRESS", IpAddr::from([127, 0, 0, 1]))?,
            port: parse(&get, "SAAS_API_PORT", 3000)?,
            database_url,
            admin_token,
            gateway_token,
            db_pool_size: parse_in(&get, "SAAS_DB_POOL_SIZE", 16, 1..=1000)?,
            db_acquire_timeout: std::time::Duration::from_millis(parse_in(
                &get,
                "SAAS_DB_ACQUIRE_TIMEOUT_MS",
                5000,
                10..=600_000,
            )?),
            db_reconnect_max: std::time::Duration::from_millis(parse_in(
                &get,
                "SAAS_DB_RECONNECT_MAX_MS",
                500,
                10..=60_000,
            )?),
            db_connect_timeout_secs: parse_in(&get, "SAAS_DB_CONNECT_TIMEOUT_SECS", 5, 0..=3600)?,
            max_body_bytes: parse_in(
                &get,
                "SAAS_MAX_BODY_BYTES",
                64 * 1024,
                1024..=64 * 1024 * 1024,
            )?,
            workers: get("SAAS_WORKERS")
                .map(|_| parse_in(&get, "SAAS_WORKERS", 1, 1..=256))
                .transpose()?,
            shutdown_timeout_secs: parse_in(&get, "SAAS_SHUTDOWN_TIMEOUT_SECS", 30, 0..=3600)?,
            migrate_on_start: parse(&get, "SAAS_MIGRATE_ON_START", false)?,
            api_key_secret: token(&get, "SAAS_API_KEY_SECRET")?,
            api_key_cache_ttl_secs: parse_in(&get, "SAAS_API_KEY_CACHE_TTL_SECS", 30, 0..=3600)?,
            log_format,
            access_log: AccessLogSettings {
                mode: parse(&get, "SAAS_ACCESS_LOG", AccessLog::Errors)?,
                slow: std::time::Duration::from_millis(parse_in(
                    &get,
                    "SAAS_ACCESS_LOG_SLOW_MS",
                    1000,
                    0..=3_600_000,
                )?),
            },
            tenant_cache_size: parse_in(&get, "SAAS_TENANT_CACHE_SIZE", 10_000, 0..=10_000_000)?,
            idempotency_ttl: std::time::Duration::from_secs(parse_in(
                &get,
                "SAAS_IDEMPOTENCY_TTL_SECS",
                86_400,
                60..=2_592_000,
            )?),
            slug_redirect_ttl: std::time::Duration::from_secs(parse_in(
                &get,
                "SAAS_SLUG_REDIRECT_TTL_SECS",
                2_592_000,
                0..=31_536_000,
            )?),
            fleet: fleet::fleet(&get)?,
            tenant_cache_sync: std::time::Duration::from_millis(parse_in(
                &get,
                "SAAS_TENANT_CACHE_SYNC_MS",
                1000,
                10..=600_000,
            )?),
            render,
            encryption_keys: get("SAAS_ENCRYPTION_KEYS")
                .map(|spec| {
                    KeyRing::parse(&spec)
                        .map(Arc::new)
                        .map_err(|e| SettingsError {
                            var: "SAAS_ENCRYPTION_KEYS",
                            message: e.to_string(),
                        })
                })
                .transpose()?,
            identity: identity::from_lookup(&get)?,
            webhooks: webhooks::from_lookup(&get)?,
            limits: limits::from_lookup(&get)?,
            retention: retention::from_lookup(&get)?,
            billing: billing::from_lookup(&get)?,
            ui: ui::from_lookup(&get)?,
            writes: GroupCommitConfig {
                max_batch: parse_in(&get, "SAAS_WRITE_BATCH_MAX", 256, 1..=10_000)?,
                linger: std::time::Duration::from_micros(parse_in(
                    &get,
                    "SAAS_WRITE_BATCH_LINGER_US",
                    250,
                    0..=100_000,
                )?),
                max_wait: std::time::Duration::from_micros(parse_in(
                    &get,
                    "SAAS_WRITE_BATCH_MAX_WAIT_US",
                    5_000,
                    0..=1_000_000,
                )?),
                writers: parse_in(&get, "SAAS_WRITE_WRITERS", 1, 1..=16)?,
                queue: parse_in(&get, "SAAS_WRITE_QUEUE", 8192, 1..=1_000_000)?,
            },
            metrics: monitoring::metrics(&get)?,
            sentry: monitoring::sentry(&get)?,
            ready_timeout: monitoring::ready_timeout(&get)?,
        })
    }
}

impl Settings {
    /// The connection pool's settings, with at most `max_size` connections.
    pub fn pool_config(&self, max_size: u32) -> tenant_store::PoolConfig {
        tenant_store::PoolConfig {
            max_size,
            connection_timeout: self.db_acquire_timeout,
            reconnect_max: self.db_reconnect_max,
            connect_timeout_secs: self.db_connect_timeout_secs,
            ..tenant_store::PoolConfig::default()
        }
    }
}

fn token(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
) -> Result<Option<Secret>, SettingsError> {
    match get(var) {
        Some(t) if t.len() < 32 || t.chars().any(char::is_whitespace) => Err(SettingsError {
            var,
            message: "must be at least 32 characters without whitespace".into(),
        }),
        other => Ok(other.map(Secret::new)),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_match_the_documentation() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.port, 3000);
        assert_eq!(s.bind_address.to_string(), "127.0.0.1");
        assert_eq!(
            s.database_url,
            DatabaseUrl::Sqlite("data/moltbot-saas.db".into())
        );
        assert!(s.admin_token.is_none());
        assert_eq!(s.max_body_bytes, 65536);
        assert_eq!(s.environment, Environment::Development);
        assert_eq!(s.data_dir, PathBuf::from("data"));
    }

    #[test]
    fn data_dir_follows_the_sqlite_file_unless_set() {
        let s = settings(&[("DATABASE_URL", "sqlite:///var/lib/saas/db.sqlite")]).unwrap();
        assert_eq!(s.data_dir, PathBuf::from("/var/lib/saas"));
        let s = settings(&[("DATABASE_URL", "sqlite://x.db")]).unwrap();
        assert_eq!(s.data_dir, PathBuf::from("."));
        let s = settings(&[("SAAS_DATA_DIR", "/srv/keys")]).unwrap();
        assert_eq!(s.data_dir, PathBuf::from("/srv/keys"));
        let s = settings(&[("SAAS_ENV", "production")]).unwrap();
        assert_eq!(s.environment, Environment::Production);
        assert_eq!(
            settings(&[("SAAS_ENV", "staging")]).unwrap_err().var,
            "SAAS_ENV"
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        assert_eq!(
            settings(&[("SAAS_API_PORT", "http")]).unwrap_err().var,
            "SAAS_API_PORT"
        );
        assert_eq!(
            settings(&[("SAAS_API_PORT", "70000")]).unwrap_err().var,
            "SAAS_API_PORT"
        );
        assert_eq!(
            settings(&[("DATABASE_URL", "mysql://x")]).unwrap_err().var,
            "DATABASE_URL"
        );
        assert_eq!(
            settings(&[("SAAS_ADMIN_TOKEN", "short")]).unwrap_err().var,
            "SAAS_ADMIN_TOKEN"
        );
        assert_eq!(
            settings(&[("SAAS_DB_POOL_SIZE", "0")]).unwrap_err().var,
            "SAAS_DB_POOL_SIZE"
        );
        for (var, bad) in [
            ("SAAS_DB_ACQUIRE_TIMEOUT_MS", "0"),
            ("SAAS_DB_RECONNECT_MAX_MS", "soon"),
            ("SAAS_DB_RECONNECT_MAX_MS", "120000"),
            ("SAAS_DB_CONNECT_TIMEOUT_SECS", "-1"),
        ] {
            assert_eq!(settings(&[(var, bad)]).unwrap_err().var, var, "{var}={bad}");
        }
        assert_eq!(
            settings(&[("SAAS_LOG_FORMAT", "xml")]).unwrap_err().var,
            "SAAS_LOG_FORMAT"
        );
    }

    #[test]
    fn database_resilience_settings() {
        let s = settings(&[]).unwrap();
        let pool = s.pool_config(3);
        assert_eq!(pool.max_size, 3);
        assert_eq!(pool.connection_timeout, std::time::Duration::from_secs(5));
        assert_eq!(pool.reconnect_max, std::time::Duration::from_millis(500));
        assert_eq!(pool.connect_timeout_secs, 5);
        let s = settings(&[
            ("SAAS_DB_ACQUIRE_TIMEOUT_MS", "250"),
            ("SAAS_DB_RECONNECT_MAX_MS", "2000"),
            ("SAAS_DB_CONNECT_TIMEOUT_SECS", "0"),
        ])
        .unwrap();
        let pool = s.pool_config(1);
        assert_eq!(
            pool.connection_timeout,
            std::time::Duration::from_millis(250)
        );
        assert_eq!(pool.reconnect_max, std::time::Duration::from_secs(2));
        assert_eq!(pool.connect_timeout_secs, 0);
    }

    #[test]
    fn encryption_keys_are_parsed_and_never_echoed() {
        let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let s = settings(&[("SAAS_ENCRYPTION_KEYS", &format!("k2:{key},k1:{key}"))]).unwrap();
        let ring = s.encryption_keys.as_deref().unwrap();
        assert_eq!(ring.ids().collect::<Vec<_>>(), ["k2", "k1"]);
        assert!(!format!("{s:?}").contains(key));
        for bad in [
            format!("k1:{}", &key[..20]),
            format!("k 1:{key}"),
            key.to_owned(),
        ] {
            let e = settings(&[("SAAS_ENCRYPTION_KEYS", &bad)]).unwrap_err();
            assert_eq!(e.var, "SAAS_ENCRYPTION_KEYS");
            assert!(!e.to_string().contains(&key[..20]), "{e}");
        }
    }

    #[test]
    fn admin_token_is_not_printed_by_debug() {
        let token = "an-operator-token-that-is-long-enough-1234";
        let s = settings(&[("SAAS_ADMIN_TOKEN", token)]).unwrap();
        assert!(!format!("{s:?}").contains(token));
    }

    #[test]
    fn api_key_settings() {
        let s = settings(&[]).unwrap();
        assert!(s.api_key_secret.is_none());
        assert_eq!(s.api_key_cache_ttl_secs, 30);
        let secret = "an-api-key-hmac-secret-that-is-long-enough";
        let s = settings(&[("SAAS_API_KEY_SECRET", secret)]).unwrap();
        assert!(!format!("{s:?}").contains(secret));
        assert_eq!(
            settings(&[("SAAS_API_KEY_SECRET", "short")])
                .unwrap_err()
                .var,
            "SAAS_API_KEY_SECRET"
        );
        assert_eq!(
            settings(&[("SAAS_API_KEY_CACHE_TTL_SECS", "99999")])
                .unwrap_err()
                .var,
            "SAAS_API_KEY_CACHE_TTL_SECS"
        );
    }

    #[test]
    fn idempotency_keys_are_kept_a_day_by_default() {
        let day = std::time::Duration::from_secs(86_400);
        assert_eq!(settings(&[]).unwrap().idempotency_ttl, day);
        let s = settings(&[("SAAS_IDEMPOTENCY_TTL_SECS", "3600")]).unwrap();
        assert_eq!(s.idempotency_ttl, std::time::Duration::from_secs(3600));
        for bad in ["59", "2592001", "1h"] {
            assert_eq!(
                settings(&[("SAAS_IDEMPOTENCY_TTL_SECS", bad)])
                    .unwrap_err()
                    .var,
                "SAAS_IDEMPOTENCY_TTL_SECS"
            );
        }
    }

    #[test]
    fn old_slugs_redirect_thirty_days_by_default() {
        let days = std::time::Duration::from_secs(30 * 86_400);
        assert_eq!(settings(&[]).unwrap().slug_redirect_ttl, days);
        let s = settings(&[("SAAS_SLUG_REDIRECT_TTL_SECS", "0")]).unwrap();
        assert_eq!(s.slug_redirect_ttl, std::time::Duration::ZERO);
        for bad in ["-1", "31536001", "30d"] {
            assert_eq!(
                settings(&[("SAAS_SLUG_REDIRECT_TTL_SECS", bad)])
                    .unwrap_err()
                    .var,
                "SAAS_SLUG_REDIRECT_TTL_SECS"
            );
        }
    }
}
