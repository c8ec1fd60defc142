//! `GET /metrics`: the Prometheus text exposition (operator token; or without authentication on
//! the separate `SAAS_METRICS_ADDR` listener). The series are listed in `docs/monitoring.md`.

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpResponse, get, web};

use crate::http::error::{ApiError, ErrorBody};
use crate::monitoring::prometheus;
use crate::state::AppState;

/// The content type of the text exposition format.
pub const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every series, in the Prometheus text format (404 when `SAAS_METRICS=false`).
#[utoipa::path(tag = "health", security(("bearer" = [])), responses(
    (status = 200, description = "Prometheus text exposition format 0.0.4", body = String, content_type = "text/plain"),
    (status = 401, description = "No valid credential", body = ErrorBody),
    (status = 403, description = "Not an operator", body = ErrorBody),
    (status = 404, description = "Metrics are off (SAAS_METRICS=false)", body = ErrorBody),
))]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    exposition(&state)
}

/// The exposition of `state`'s process, or 404 when metrics are off.
pub fn exposition(state: &AppState) -> Result<HttpResponse, ApiError> {
    let handle = match (&state.metrics, prometheus::handle()) {
        (true, Some(h)) => h,
        _ => return Err(ApiError::NotFound("route")),
    };
    let body = prometheus::render(&handle, state.control.db());
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, CONTENT_TYPE_TEXT))
        .body(body))
}
