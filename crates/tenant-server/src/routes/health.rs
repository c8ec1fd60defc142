//! Liveness and readiness probes; the only routes without authentication.

use actix_web::{HttpResponse, get, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::state::AppState;

/// `GET /health` and `GET /ready`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StatusResponse {
    /// `ok`, or `unavailable`.
    pub status: String,
    /// The database backend (`/ready` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
}

/// The process is up.
#[utoipa::path(tag = "health", responses((status = 200, description = "Alive", body = StatusResponse)))]
#[get("/health")]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(StatusResponse {
        status: "ok".into(),
        database: None,
    })
}

/// The database answers; load balancers should route traffic only while this is 200.
#[utoipa::path(tag = "health", responses(
    (status = 200, description = "Ready", body = StatusResponse),
    (status = 503, description = "Database unreachable", body = StatusResponse),
))]
#[get("/ready")]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let backend = state.control.db().backend().to_owned();
    let ok = state.control.ping().await.is_ok();
    if ok {
        HttpResponse::Ok().json(StatusResponse {
            status: "ok".into(),
            database: Some(backend),
        })
    } else {
        tracing::warn!("readiness check failed: database unreachable");
        HttpResponse::ServiceUnavailable().json(StatusResponse {
            status: "unavailable".into(),
            database: Some(backend),
        })
    }
}
