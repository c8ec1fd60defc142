//! Assembling and starting the server: database, migrations, operator tokens, HTTP listener.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::json;
use tenant_service::ControlPlane;
use tenant_service::api_keys::{ApiKeyAuth, ApiKeyCache, ApiKeyHasher};
use tenant_service::background::Background;
use tenant_service::control_plane::{LimitParts, Parts};
use tenant_service::db::OpenError;
use tenant_service::group_commit::WritePaths;
use tenant_service::identity::Identity;
use tenant_service::tenant_cache::TenantCache;
use tenant_service::tokens::{self, GeneratedToken};
use tenant_store::crypto::KeyRing;
use tenant_store::{Database, StoreError};
use utoipa::OpenApi;
use utoipa_actix_web::AppExt;

use crate::http::authenticate::require_auth;
use crate::http::error::ApiError;
use crate::http::extract::BodyLimit;
use crate::http::rate_limit::rate_limit;
use crate::http::request_log::{RequestLog, trace_requests};
use crate::monitoring::sentry::Reporter;
use crate::routes::{self, openapi::ApiDoc, openapi::OpenApiJson};
use crate::settings::Settings;
use crate::state::AppState;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database could not be opened, migrated or read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// PostgreSQL has migrations the server may not apply by itself.
    #[error(
        "the database has {0} pending migration(s); run `moltbot-saas migrate` or start with SAAS_MIGRATE_ON_START=true"
    )]
    PendingMigrations(usize),
    /// No key ring for channel credentials (see [`tenant_service::sealing`]).
    #[error(transparent)]
    Keys(#[from] tenant_service::sealing::KeysError),
    /// User authentication could not be set up.
    #[error(transparent)]
    Identity(#[from] tenant_service::identity::IdentityError),
    /// The API key secret is missing (production) or its key file cannot be used.
    #[error("{0}")]
    ApiKeySecret(String),
    /// The listener could not be bound.
    #[error("cannot listen: {0}")]
    Io(#[from] std::io::Error),
    /// The webhook dispatcher could not be built.
    #[error(transparent)]
    Dispatcher(#[from] tenant_webhooks::delivery::DispatchError),
    /// The rate limiter could not be set up.
    #[error(transparent)]
    Settings(#[from] crate::settings::SettingsError),
    /// Error reporting could not be set up.
    #[error("{0}")]
    Sentry(String),
}

/// Opens the database and brings its schema up to date: SQLite always migrates on start;
/// PostgreSQL only when asked, else it refuses to run on an old schema.
pub fn open_database(settings: &Settings) -> Result<Database, StartupError> {
    let pool = settings.pool_config(settings.db_pool_size);
    tenant_service::db::open(&settings.database_url, &pool, settings.migrate_on_start).map_err(
        |e| match e {
            OpenError::Store(e) => StartupError::Store(e),
            OpenError::PendingMigrations(n) => StartupError::PendingMigrations(n),
        },
    )
}

/// The key ring sealing credentials at rest: `SAAS_ENCRYPTION_KEYS`, or in development the
/// generated one in the data directory.
pub fn key_ring(settings: &Settings) -> Result<Arc<KeyRing>, tenant_service::sealing::KeysError> {
    tenant_service::sealing::key_ring(settings.encryption_keys.as_ref(), &settings.deployment())
}

/// The API key hasher from the configured secret (or, in development, a generated key file) and
/// an empty cache.
pub fn api_key_auth(settings: &Settings) -> Result<ApiKeyAuth, StartupError> {
    let (secret, generated) = tenant_service::api_keys::load_secret(
        settings.api_key_secret.as_ref(),
        &settings.deployment(),
    )
    .map_err(StartupError::ApiKeySecret)?;
    if generated {
        tracing::warn!(
            path = %settings.data_dir.join(tenant_service::api_keys::DEV_SECRET_FILE).display(),
            "SAAS_API_KEY_SECRET is not set: generated a development API key secret; \
             configure one in production (losing it invalidates every API key)"
        );
    }
    Ok(ApiKeyAuth {
        hasher: ApiKeyHasher::new(&secret),
        cache: ApiKeyCache::new(Duration::from_secs(settings.api_key_cache_ttl_secs)),
    })
}

/// A bound, ready-to-run server.
pub struct Application {
    port: u16,
    server: Server,
    generated_tokens: Vec<GeneratedToken>,
    background: Background,
    control: ControlPlane,
    usage_flush: Duration,
    billing_sweep: Duration,
    monitoring: Monitoring,
}

/// What runs beside the server for monitoring: the separate metrics listener, the refresh of
/// the store gauges, the Sentry reporter (flushed on stop).
struct Monitoring {
    metrics_server: Option<Server>,
    metrics_port: Option<u16>,
    refresh: Option<(tenant_store::Database, Duration)>,
    reporter: Option<Arc<Reporter>>,
}

/// The metrics listener's only route: `GET /metrics`, without authentication.
async fn metrics_only(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    routes::metrics::exposition(&state)
}

impl Application {
    /// Opens the database, loads operator tokens and binds the listener (port 0 picks a free one).
    pub fn build(settings: &Settings) -> Result<Self, StartupError> {
        Self::build_with_routes(settings, |_| {})
    }

    /// [`Application::build`] with more routes (an embedder's, or a test's), registered after
    /// the API's behind the same middleware: authenticated, and for operators only (they are
    /// not in the route table, which tenant principals are held to).
    pub fn build_with_routes(
        settings: &Settings,
        extra_routes: fn(&mut web::ServiceConfig),
    ) -> Result<Self, StartupError> {
        let db = open_database(settings)?;
        let keys = key_ring(settings)?;
        tenant_service::sealing::seal_plaintext_rows(&mut *db.get()?, &keys)?;
        let (auth, generated_tokens) = tokens::bootstrap(
            &db,
            settings.admin_token.as_ref(),
            settings.gateway_token.as_ref(),
        )?;
        let identity = Identity::build(&settings.identity, &settings.deployment())?;
        // Made now rather than on the first unknown-email login, whose timing would stand out.
        let _ = identity.dummy_hash();
        let api_keys = api_key_auth(settings)?;
        let listener = TcpListener::bind((settings.bind_address, settings.port))?;
        let port = listener.local_addr()?.port();
        tracing::info!(
            address = %settings.bind_address,
            port,
            database = %settings.database_url.redacted(),
            "listening"
        );
        let tenant_cache = Arc::new(TenantCache::new(
            settings.tenant_cache_size,
            settings.tenant_cache_sync,
            routes::tenants::tenant_json,
        ));
        let webhooks = settings.webhooks.service_config();
        let background = Background::new(&db, &keys, &webhooks)?
            .with_tenant_cache(Arc::clone(&tenant_cache), settings.tenant_cache_sync)
            .with_retention(settings.retention.clone());
        let limits = LimitParts {
            plans: Arc::new(settings.limits.plans()),
            limiter: Arc::new(settings.limits.limiter()?),
            meter: Arc::default(),
        };
        let fleet = Arc::new(settings.fleet.clone());
        let writes = WritePaths::start(
            &db,
            &settings.writes,
            api_keys.hasher.clone(),
            Arc::clone(&limits.plans),
            Arc::clone(&keys),
            Arc::clone(&fleet),
        )?;
        let control = ControlPlane::from_parts(Parts {
            webhooks: background.webhook_state(&webhooks),
            db,
            keys,
            render: settings.render.clone(),
            service_auth: auth,
            api_keys,
            identity,
            tenant_cache,
            writes,
            limits,
            idempotency_ttl: settings.idempotency_ttl,
            slug_redirect_ttl: settings.slug_redirect_ttl,
            fleet,
            billing: match &settings.billing.config {
                Some(config) => Some(Arc::new(
                    tenant_service::billing::Billing::from_config(config).map_err(|message| {
                        crate::settings::SettingsError {
                            var: "SAAS_STRIPE_API_BASE",
                            message,
                        }
                    })?,
                )),
                None => None,
            },
        });
        let metrics =
            settings.metrics.enabled && crate::monitoring::prometheus::install().is_some();
        if metrics {
            crate::http::metrics::describe();
        }
        let reporter = Reporter::new(
            &settings.sentry,
            match settings.environment {
                tenant_service::deployment::Environment::Development => "development",
                tenant_service::deployment::Environment::Production => "production",
            },
        )
        .map_err(StartupError::Sentry)?;
        if let Some(r) = &reporter {
            crate::monitoring::sentry::report_background_panics(r);
            // For the tracing layer (the binary's: see `telemetry::init`); the first server's.
            let main = sentry::Hub::main();
            if main.client().is_none() {
                main.bind_client(Some(Arc::clone(r.client())));
            }
            tracing::info!("reporting panics and 5xx answers to Sentry");
        }
        let refresh = metrics.then(|| (control.db().clone(), settings.metrics.refresh));
        let state = web::Data::new(AppState {
            control: control.clone(),
            metrics,
            ready_timeout: settings.ready_timeout,
        });
        let request_log = web::Data::new(RequestLog {
            settings: settings.access_log,
            ids: Default::default(),
            metrics,
            sentry: reporter.clone(),
        });
        let ui_settings = web::Data::new(settings.ui.clone());
        let (metrics_server, metrics_port) = match settings.metrics.listen.filter(|_| metrics) {
            Some(addr) => {
                let listener = TcpListener::bind(addr)?;
                let port = listener.local_addr()?.port();
                tracing::info!(address = %addr.ip(), port, "metrics listening");
                let state = state.clone();
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(state.clone())
                        .route("/metrics", web::get().to(metrics_only))
                        .default_service(web::to(no_route))
                })
                .listen(listener)?
                .workers(1)
                .shutdown_timeout(1)
                .run();
                (Some(server), Some(port))
            }
            None => (None, None),
        };
        let limit = settings.max_body_bytes;
        let mut server = HttpServer::new(move || {
            let (app, api) = App::new()
                .into_utoipa_app()
                .openapi(ApiDoc::openapi())
                .configure(routes::configure)
                .split_for_parts();
            let doc = routes::openapi::document::render(&api);
            app.app_data(state.clone())
                .app_data(request_log.clone())
                .app_data(ui_settings.clone())
                .configure(crate::ui::configure)
                .app_data(BodyLimit(limit))
                .app_data(web::PayloadConfig::new(limit))
                .app_data(web::Data::new(OpenApiJson(doc)))
                .configure(extra_routes)
                .default_service(web::to(not_found))
                .wrap(from_fn(rate_limit))
                .wrap(from_fn(require_auth))
                .wrap(from_fn(crate::ui::host_api::tenant_host_api))
                .wrap(from_fn(trace_requests))
        })
        .on_connect(no_delay)
        .listen(listener)?
        .shutdown_timeout(settings.shutdown_timeout_secs);
        if let Some(workers) = settings.workers {
            server = server.workers(workers);
        }
        Ok(Self {
            port,
            server: server.run(),
            generated_tokens,
            background,
            control,
            usage_flush: settings.limits.usage_flush,
            billing_sweep: settings.billing.sweep,
            monitoring: Monitoring {
                metrics_server,
                metrics_port,
                refresh,
                reporter,
            },
        })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the separate metrics listener (`SAAS_METRICS_ADDR`), when there is one.
    pub fn metrics_port(&self) -> Option<u16> {
        self.monitoring.metrics_port
    }

    /// The tokens generated on this first start, to be shown once.
    pub fn generated_tokens(&self) -> &[GeneratedToken] {
        &self.generated_tokens
    }

    /// A handle to stop the server gracefully.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGINT/SIGTERM (or the handle's `stop`), letting in-flight requests finish.
    /// Background work (the webhook dispatcher, the session purge) runs alongside and stops with
    /// the server: the dispatcher gracefully (its unsent claims given back, its sends in flight
    /// finished and recorded), the rest aborted.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let mut background = self.background.spawn();
        let tasks = &mut background.tasks;
        let control = self.control.clone();
        tasks.spawn(flush_usage(control, self.usage_flush));
        if self.control.billing_enabled() {
            tasks.spawn(billing_sweep(self.control.clone(), self.billing_sweep));
        }
        tasks.spawn(lease_sweep(self.control.clone()));
        tasks.spawn(place_pending(self.control.clone()));
        let Monitoring {
            metrics_server,
            refresh,
            reporter,
            ..
        } = self.monitoring;
        let metrics_handle = metrics_server.as_ref().map(Server::handle);
        if let Some(server) = metrics_server {
            tasks.spawn(async move {
                if let Err(e) = server.await {
                    tracing::warn!(error = %e, "the metrics listener stopped");
                }
            });
        }
        if let Some((db, every)) = refresh {
            tasks.spawn(refresh_gauges(db, every));
        }
        let result = self.server.await;
        if let Some(h) = metrics_handle {
            h.stop(false).await;
        }
        // Stopped and awaited, so that when this returns no task holds the database any more.
        background.stop().await;
        // The requests metered since the last flush.
        if let Err(e) = self.control.flush_usage().await {
            tracing::warn!(error = %e, "metered API requests could not be stored on shutdown");
        }
        if let Some(r) = reporter {
            // What is queued goes before the process ends.
            let _ = tokio::task::spawn_blocking(move || r.flush(Duration::from_secs(2))).await;
        }
        result
    }
}

/// A background task's rounds: a failure is logged once, and again only after a round
/// succeeded in between (a database outage would otherwise log every round).
struct Rounds {
    /// What recovered, for the log: "the billing sweep works again".
    recovered: &'static str,
    /// What failed and what happens next: "billing sweep failed; retried next round".
    failed: &'static str,
    failing: bool,
}

impl Rounds {
    fn new(recovered: &'static str, failed: &'static str) -> Self {
        Self {
            recovered,
            failed,
            failing: false,
        }
    }

    /// Logs a round's result if it changes the task's state.
    fn note<T, E: std::fmt::Display>(&mut self, result: Result<T, E>) {
        match result {
            Ok(_) if self.failing => {
                self.failing = false;
                tracing::info!("{}", self.recovered);
            }
            Err(e) if !self.failing => {
                self.failing = true;
                tracing::warn!(error = %e, "{}", self.failed);
            }
            _ => {}
        }
    }
}

/// Adds the API requests metered by this process to the database every `interval`; a failure
/// keeps them for the next round (logged once until a flush succeeds again).
async fn flush_usage(control: ControlPlane, interval: Duration) {
    let mut rounds = Rounds::new(
        "metered API requests are stored again",
        "metered API requests could not be stored; kept for the next flush",
    );
    loop {
        tokio::time::sleep(interval).await;
        rounds.note(control.flush_usage().await);
    }
}

/// Suspends the tenants whose billing grace period ran out, every `interval`; a failed round is
/// logged once until one succeeds (the next round does what it missed).
async fn billing_sweep(control: ControlPlane, interval: Duration) {
    let mut rounds = Rounds::new(
        "the billing sweep works again",
        "billing sweep failed; retried next round",
    );
    loop {
        tokio::time::sleep(interval).await;
        rounds.note(control.suspend_overdue(tenant_core::now()).await);
    }
}

/// Acts on expired gateway leases (moves away from a fenced, silent gateway complete; with
/// failover on, a down shared gateway's tenants are re-placed) every fifth of the lease, between
/// 1 and 10 seconds. Every replica runs it; the fleet lock makes each change happen once.
async fn lease_sweep(control: ControlPlane) {
    let every = control.fleet_config().sweep_every();
    let mut rounds = Rounds::new(
        "the gateway lease sweep works again",
        "gateway lease sweep failed; retried next round",
    );
    loop {
        tokio::time::sleep(every).await;
        rounds.note(control.sweep_leases().await);
    }
}

/// Places tenants waiting for room (`unplaced`) once there is room: at once when a change on
/// this replica may have made some (a gateway created, its capacity changed, reopened or back
/// up; a tenant deleted or moved away), else every fifth of the lease (changes made by other
/// replicas or the CLI). One index probe when none waits; one replica at a time (a lease).
async fn place_pending(control: ControlPlane) {
    let every = control.fleet_config().sweep_every();
    let mut rounds = Rounds::new(
        "placing tenants waiting for room works again",
        "placing tenants waiting for room failed; retried next round",
    );
    loop {
        rounds.note(control.place_pending_when_room(every).await);
    }
}

/// Refreshes the gauges read from the store (tenants, webhook queue) every `every` (the first
/// time after one interval), and every 5 s lets the exporter fold the histogram samples recorded
/// since (its upkeep), so that their buffers stay small between scrapes.
async fn refresh_gauges(db: tenant_store::Database, every: Duration) {
    let upkeep = tokio::spawn(async {
        loop {
            tokio::time::sleep(UPKEEP_EVERY).await;
            if let Some(handle) = crate::monitoring::prometheus::handle() {
                handle.run_upkeep();
            }
        }
    });
    let _abort = AbortOnDrop(upkeep);
    let mut failing = false;
    loop {
        tokio::time::sleep(every).await;
        match tenant_service::monitoring::refresh_store_gauges(&db).await {
            Ok(_) => failing = false,
            // Once per failure spell: a database outage is the store's to report.
            Err(e) if !failing => {
                failing = true;
                tracing::debug!(error = %e, "metrics: store gauges not refreshed");
            }
            Err(_) => {}
        }
    }
}

/// How often the exporter's histogram buffers are folded.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Aborts a task when dropped (with the task that owns it).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Turns Nagle's algorithm off on each accepted connection. A response written in several
/// segments (a `GET /config` body streamed from its chunks) otherwise ends with a small segment
/// held back until the client acknowledges the previous one, and a client that delays its
/// acknowledgements (Linux does, up to 40 ms) stalls every such response on a kept-alive
/// connection: the load benchmark saw 44 ms for a 0.5 MB config that takes 1 ms on a fresh
/// connection.
fn no_delay(conn: &dyn std::any::Any, _: &mut actix_web::dev::Extensions) {
    if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>()
        && let Err(e) = tcp.set_nodelay(true)
    {
        tracing::debug!(error = %e, "could not set TCP_NODELAY on a connection");
    }
}

/// The metrics listener's answer to anything but `GET /metrics`.
pub(crate) async fn no_route() -> HttpResponse {
    HttpResponse::NotFound().json(json!({
        "error": {"code": "not_found", "message": "no such route", "details": {}}
    }))
}

/// No route matched: 405 with `Allow` for a known path asked with another method, else 404.
async fn not_found(req: actix_web::HttpRequest) -> HttpResponse {
    use actix_web::ResponseError;
    match crate::http::route_table::allowed_methods(req.path()) {
        Some(allow) => ApiError::MethodNotAllowed { allow }.error_response(),
        None => no_route().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn accepted_connections_do_not_delay_small_segments() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let _client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (accepted, _) = listener.accept().await.expect("accept");
        assert!(
            !accepted.nodelay().expect("nodelay"),
            "Nagle is on by default"
        );
        no_delay(&accepted, &mut actix_web::dev::Extensions::new());
        assert!(accepted.nodelay().expect("nodelay"));
    }
}
