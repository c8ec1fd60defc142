//! Assembling and starting the server: database, migrations, operator tokens, HTTP listener.

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::json;
use tenant_store::{Database, DatabaseUrl, PoolConfig, StoreError, migrations};
use utoipa::OpenApi;
use utoipa_actix_web::AppExt;

use crate::auth::{self, GeneratedToken};
use crate::extract::BodyLimit;
use crate::middleware::{require_service_token, trace_requests};
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
    /// The listener could not be bound.
    #[error("cannot listen: {0}")]
    Io(#[from] std::io::Error),
    /// The webhook dispatcher could not be built.
    #[error(transparent)]
    Dispatcher(#[from] tenant_webhooks::delivery::DispatchError),
}

/// Opens the database and brings its schema up to date: SQLite always migrates on start;
/// PostgreSQL only when asked, else it refuses to run on an old schema.
pub fn open_database(settings: &Settings) -> Result<Database, StartupError> {
    let db = Database::connect(
        &settings.database_url,
        &PoolConfig {
            max_size: settings.db_pool_size,
            ..PoolConfig::default()
        },
    )?;
    let mut conn = db.get()?;
    let sqlite = matches!(settings.database_url, DatabaseUrl::Sqlite(_));
    if sqlite || settings.migrate_on_start {
        let applied = migrations::run_pending(&mut conn)?;
        if !applied.is_empty() {
            tracing::info!(migrations.applied = applied.len(), "database migrated");
        }
    } else {
        let pending = migrations::pending(&mut conn)?;
        if !pending.is_empty() {
            return Err(StartupError::PendingMigrations(pending.len()));
        }
    }
    Ok(db)
}

/// A bound, ready-to-run server.
pub struct Application {
    port: u16,
    server: Server,
    generated_tokens: Vec<GeneratedToken>,
    background: crate::background::Background,
}

impl Application {
    /// Opens the database, loads operator tokens and binds the listener (port 0 picks a free one).
    pub fn build(settings: &Settings) -> Result<Self, StartupError> {
        let db = open_database(settings)?;
        let (auth, generated_tokens) = auth::bootstrap(
            &db,
            settings.admin_token.as_ref(),
            settings.gateway_token.as_ref(),
        )?;
        let listener = TcpListener::bind((settings.bind_address, settings.port))?;
        let port = listener.local_addr()?.port();
        tracing::info!(
            address = %settings.bind_address,
            port,
            database = %settings.database_url.redacted(),
            "listening"
        );
        let background = crate::background::Background::new(&db, &settings.webhooks)?;
        let state = web::Data::new(AppState {
            db,
            auth,
            render: settings.render.clone(),
            config_cache: Default::default(),
            webhooks: background.webhook_state(&settings.webhooks),
        });
        let limit = settings.max_body_bytes;
        let mut server = HttpServer::new(move || {
            let (app, api) = App::new()
                .into_utoipa_app()
                .openapi(ApiDoc::openapi())
                .configure(routes::configure)
                .split_for_parts();
            let doc = api
                .to_json()
                .unwrap_or_else(|e| format!(r#"{{"error":"{e}"}}"#));
            app.app_data(state.clone())
                .app_data(BodyLimit(limit))
                .app_data(web::PayloadConfig::new(limit))
                .app_data(web::Data::new(OpenApiJson(doc)))
                .default_service(web::to(not_found))
                .wrap(from_fn(require_service_token))
                .wrap(from_fn(trace_requests))
        })
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
        })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
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
    /// the server.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let mut tasks = self.background.spawn();
        let result = self.server.await;
        tasks.abort_all();
        result
    }
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(json!({
        "error": {"code": "not_found", "message": "no such route", "details": {}}
    }))
}
