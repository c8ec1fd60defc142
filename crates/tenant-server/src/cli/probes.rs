//! The listener of a process without the HTTP API (`moltbot-saas webhooks dispatch`): `GET
//! /health`, `GET /ready` and `GET /metrics`, without authentication, on `SAAS_METRICS_ADDR`,
//! for an orchestrator's probes and a scraper on a private network.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{App, HttpResponse, HttpServer, web};
use metrics_exporter_prometheus::PrometheusHandle;
use tenant_store::Database;

use crate::monitoring::prometheus;
use crate::routes::health::{self, database_check, readiness};
use crate::routes::metrics::CONTENT_TYPE_TEXT;

/// What the probes read.
#[derive(Clone)]
struct Probed {
    db: Database,
    ready_timeout: Duration,
    /// The metrics recorder's handle; `None` with `SAAS_METRICS=false` (`/metrics` is 404).
    metrics: Option<PrometheusHandle>,
}

/// Binds `addr` (port 0: any free one, logged) and serves the probes of a process working on
/// `db` until the server is stopped. Metrics are recorded and served when `metrics` is on (the
/// process-wide Prometheus recorder is installed here).
pub fn start(
    addr: SocketAddr,
    db: Database,
    ready_timeout: Duration,
    metrics: bool,
) -> std::io::Result<Server> {
    let listener = TcpListener::bind(addr)?;
    let port = listener.local_addr()?.port();
    let probed = web::Data::new(Probed {
        db,
        ready_timeout,
        metrics: if metrics { prometheus::install() } else { None },
    });
    tracing::info!(address = %addr.ip(), port, "probes and metrics listening");
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(probed.clone())
            .service(health::health)
            .route("/ready", web::get().to(ready))
            .route("/metrics", web::get().to(metrics_exposition))
            .default_service(web::to(crate::startup::no_route))
    })
    .listen(listener)?
    .workers(1)
    .shutdown_timeout(1)
    .run())
}

/// Ready while the database answers: this process does nothing else.
async fn ready(probed: web::Data<Probed>) -> HttpResponse {
    let db = probed.db.clone();
    let ping = async move {
        let pinged = tokio::task::spawn_blocking(move || db.ping()).await;
        pinged.map_err(drop).and_then(|r| r.map_err(drop))
    };
    let database = database_check(ping, probed.ready_timeout).await;
    readiness(
        probed.db.backend(),
        BTreeMap::from([("database".to_owned(), database.to_owned())]),
        None,
    )
}

async fn metrics_exposition(probed: web::Data<Probed>) -> HttpResponse {
    match &probed.metrics {
        Some(handle) => HttpResponse::Ok()
            .insert_header((CONTENT_TYPE, CONTENT_TYPE_TEXT))
            .body(prometheus::render(handle, &probed.db)),
        None => crate::startup::no_route().await,
    }
}
