//! Liveness and readiness probes; the only routes without authentication.

use actix_web::{HttpResponse, get, web};

use crate::dto::StatusResponse;
use crate::error::QuietFault;
use crate::state::AppState;

/// The process is up.
#[utoipa::path(tag = "health", responses((status = 200, description = "Alive", body = StatusResponse)))]
#[get("/health")]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(StatusResponse {
        status: "ok".into(),
        database: None,
    })
}

/// The database answers; load balancers should route traffic only while this is 200. While the
/// database is known to be away the answer is immediate (no wait for a connection), and it is
/// 200 again as soon as the store's circuit saw the database back.
#[utoipa::path(tag = "health", responses(
    (status = 200, description = "Ready", body = StatusResponse),
    (status = 503, description = "Database unreachable", body = StatusResponse),
))]
#[get("/ready")]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let db = state.db.clone();
    let backend = db.backend().to_owned();
    let ok = db.is_available() && matches!(web::block(move || db.ping()).await, Ok(Ok(())));
    if ok {
        HttpResponse::Ok().json(StatusResponse {
            status: "ok".into(),
            database: Some(backend),
        })
    } else {
        // Not logged, nor in the access log: the store says once when the database goes away
        // and when it is back, and probes come every few seconds.
        let mut resp = HttpResponse::ServiceUnavailable();
        resp.extensions_mut().insert(QuietFault);
        resp.insert_header((actix_web::http::header::RETRY_AFTER, 1))
            .json(StatusResponse {
                status: "unavailable".into(),
                database: Some(backend),
            })
    }
}
