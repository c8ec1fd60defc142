//! `GET /tenants/{id}/export`: everything a tenant owns as NDJSON, streamed (see
//! `tenant_service::lifecycle::export`).

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::http::header;
use actix_web::{HttpResponse, get, web};
use tenant_service::ServiceResult;
use tokio::sync::mpsc::Receiver;

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::parse_tenant_id;
use crate::state::AppState;

/// The export's chunks as a response body; an error midway cuts the response short (the
/// client sees an incomplete body, never a well-formed partial export).
struct Chunks(Receiver<ServiceResult<String>>);

impl futures_core::Stream for Chunks {
    type Item = Result<web::Bytes, actix_web::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|chunk| {
            chunk.map(|c| {
                c.map(web::Bytes::from)
                    .map_err(|_| actix_web::error::ErrorInternalServerError("export failed"))
            })
        })
    }
}

/// Everything the tenant owns, one JSON record a line (`application/x-ndjson`), each with a
/// `type`: `tenant`, `channel` (credential status, never values), `user` (no password),
/// `api_key` (metadata), `webhook_endpoint` (no secret), `event` then its `delivery` records
/// (with their attempts), `session`, `audit`. Streamed in constant memory; the portability
/// answer (docs/operations.md).
#[utoipa::path(tag = "tenants", params(("id" = String, Path, description = "Tenant id (UUID)")), security(("bearer" = [])), responses(
    (status = 200, description = "NDJSON, one record a line", content_type = "application/x-ndjson", body = String),
    (status = 400, description = "Malformed id", body = ErrorBody),
    (status = 401, description = "No valid token", body = ErrorBody),
    (status = 403, description = "Not the tenant's owner", body = ErrorBody),
    (status = 404, description = "No such tenant", body = ErrorBody),
))]
#[get("/tenants/{id}/export")]
pub async fn export_tenant(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_tenant_id(&id)?;
    let chunks = state.control.export_tenant(id).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"tenant-{id}.ndjson\""),
        ))
        .streaming(Chunks(chunks)))
}
