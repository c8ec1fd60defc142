//! `GET /config` and `GET /tenants/{id}/config`: the gateway's configuration, for gateways
//! (gateway token) and operators.
//!
//! The combined document is kept per variant and revision (see `tenant_service::gateway_config`), streamed
//! from shared chunks, carries a strong `ETag`, and answers `If-None-Match` with 304, so a
//! gateway polling every second costs one small query per poll.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, MessageBody};
use actix_web::http::header::{CACHE_CONTROL, ETAG, IF_NONE_MATCH};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, get, web};
use serde::Deserialize;
use serde_json::json;
use tenant_configgen::{Dialect, Mode, RenderOptions};
use tenant_core::GatewayId;
use tenant_service::gateway_config::{ServedConfig, Variant};
use utoipa::IntoParams;

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{ApiQuery, Caller, parse_tenant_id, parse_uuid};
use crate::state::AppState;

/// The header carrying the config revision a document was rendered from.
pub const REVISION_HEADER: &str = "x-config-revision";

/// Query of the config endpoints.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConfigQuery {
    /// `current` (openclaw ≥ 2026.8) or `legacy`; default from `SAAS_CONFIG_DIALECT`.
    pub dialect: Option<String>,
    /// `combined` (default: one document for a shared gateway) or `per-tenant` (an object mapping
    /// each account id to its own document).
    pub mode: Option<String>,
    /// Operators only: the gateway whose document to read (its id; default: the built-in
    /// gateway). A gateway's token always reads its own.
    pub gateway: Option<String>,
    /// `true`: the document the gateway serves when **fenced** — the same settings with no
    /// tenant — which `config sync --url` writes when it cannot renew its lease (no `ETag`).
    pub fenced: Option<bool>,
}

/// Query of `GET /tenants/{id}/config`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TenantConfigQuery {
    /// `current` (openclaw ≥ 2026.8) or `legacy`; default from `SAAS_CONFIG_DIALECT`.
    pub dialect: Option<String>,
}

fn options_error(field: &'static str, e: tenant_configgen::ParseOptionError) -> ApiError {
    ApiError::BadRequest {
        code: "invalid_query",
        message: e.to_string(),
        details: json!({ "field": field }),
    }
}

/// The options for a requested dialect; a dialect the configured secrets mode cannot be written
/// in (`legacy` with `secret-ref`) is the query's fault.
fn options_for(dialect: Option<&str>, defaults: &RenderOptions) -> Result<RenderOptions, ApiError> {
    let dialect: Dialect = dialect
        .map_or(Ok(defaults.dialect), str::parse)
        .map_err(|e| options_error("dialect", e))?;
    let opts = RenderOptions {
        dialect,
        ..defaults.clone()
    };
    opts.validate().map_err(|e| ApiError::BadRequest {
        code: "invalid_query",
        message: e.to_string(),
        details: json!({ "field": "dialect" }),
    })?;
    Ok(opts)
}

fn respond(req: &HttpRequest, doc: &Arc<ServedConfig>) -> HttpResponse {
    let matches = req
        .headers()
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| doc.matches(v));
    let mut resp = if matches {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    resp.insert_header((ETAG, doc.etag.clone()))
        .insert_header((CACHE_CONTROL, "private, no-cache"))
        .insert_header((REVISION_HEADER, doc.revision.to_string()));
    // Static names, no labels: a no-op without a recorder, no allocation with one.
    if matches {
        metrics::counter!(crate::monitoring::prometheus::CONFIG_NOT_MODIFIED).increment(1);
        resp.finish()
    } else {
        metrics::counter!(crate::monitoring::prometheus::CONFIG_SERVED_BYTES)
            .increment(doc.len() as u64);
        resp.content_type("application/json")
            .body(ChunkBody::new(Arc::clone(doc)))
    }
}

/// The gateway configuration: with a gateway's token, that gateway's own tenants (with
/// `SAAS_GATEWAY_TOKEN`, the built-in gateway's: every tenant until other gateways exist).
#[utoipa::path(tag = "config", params(ConfigQuery), security(("bearer" = [])), responses(
    (status = 200, description = "The gateway configuration (OpenClaw JSON)", content_type = "application/json"),
    (status = 304, description = "Unchanged since the ETag given in If-None-Match"),
    (status = 400, description = "Bad query parameter", body = ErrorBody),
    (status = 401, description = "No valid gateway or operator token", body = ErrorBody),
    (status = 409, description = "The tenants' data cannot make a valid config", body = ErrorBody),
))]
#[get("/config")]
pub async fn get_config(
    req: HttpRequest,
    state: web::Data<AppState>,
    Caller(principal): Caller,
    ApiQuery(query): ApiQuery<ConfigQuery>,
) -> Result<HttpResponse, ApiError> {
    let gateway = match (principal.gateway(), query.gateway.as_deref()) {
        (Some(own), None) => own,
        (Some(_), Some(_)) => {
            return Err(ApiError::BadRequest {
                code: "invalid_query",
                message: "gateway: a gateway reads its own document".into(),
                details: json!({ "field": "gateway" }),
            });
        }
        (None, Some(raw)) => GatewayId::from(parse_uuid("gateway", raw)?),
        (None, None) => GatewayId::DEFAULT,
    };
    let variant = variant_for(
        state.control.render_options(),
        query.dialect.as_deref(),
        query.mode.as_deref(),
        gateway,
    )?;
    if query.fenced == Some(true) {
        let opts = options_for(query.dialect.as_deref(), state.control.render_options())?;
        let (json, _) = tenant_service::gateway_config::file_sync::fenced_document(&opts)
            .map_err(tenant_service::error::ServiceError::from)?;
        return Ok(HttpResponse::Ok()
            .insert_header((CACHE_CONTROL, "private, no-cache"))
            .content_type("application/json")
            .body(json));
    }
    let doc = state.control.combined_config(variant).await?;
    Ok(respond(&req, &doc))
}

/// The document variant asked for: the dialect (default and rules from `render`), the mode
/// (`combined` by default) and the gateway whose tenants it holds.
pub fn variant_for(
    render: &RenderOptions,
    dialect: Option<&str>,
    mode: Option<&str>,
    gateway: GatewayId,
) -> Result<Variant, ApiError> {
    let dialect = options_for(dialect, render)?.dialect;
    let mode: Mode = mode
        .map_or(Ok(Mode::Combined), str::parse)
        .map_err(|e| options_error("mode", e))?;
    Ok(Variant {
        gateway,
        dialect,
        secrets: render.secrets,
        per_tenant: mode == Mode::PerTenant,
    })
}

/// One tenant's own gateway configuration (for a gateway per tenant). A suspended tenant's
/// document has no agent, so its gateway stops serving it. Read by the tenant itself, the
/// document withholds the gateway token the bridge plugin uses (it is not the tenant's).
#[utoipa::path(tag = "config", params(("id" = String, Path, description = "Tenant id (UUID)"), TenantConfigQuery), security(("bearer" = [])), responses(
    (status = 200, description = "The tenant's gateway configuration", content_type = "application/json"),
    (status = 304, description = "Unchanged since the ETag given in If-None-Match"),
    (status = 400, description = "Malformed id or query", body = ErrorBody),
    (status = 401, description = "No valid gateway or operator token", body = ErrorBody),
    (status = 404, description = "No such tenant", body = ErrorBody),
    (status = 409, description = "The tenant's data cannot make a valid config", body = ErrorBody),
))]
#[get("/tenants/{id}/config")]
pub async fn get_tenant_config(
    req: HttpRequest,
    state: web::Data<AppState>,
    Caller(principal): Caller,
    id: web::Path<String>,
    ApiQuery(query): ApiQuery<TenantConfigQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_tenant_id(&id)?;
    let opts = options_for(query.dialect.as_deref(), state.control.render_options())?;
    let doc = state.control.tenant_config(&principal, id, opts).await?;
    Ok(respond(&req, &doc))
}

/// A response body streaming a [`ServedConfig`]'s chunks, sharing them (sized: `Content-Length`
/// is set).
#[derive(Debug)]
pub struct ChunkBody {
    doc: Arc<ServedConfig>,
    next: usize,
}

impl ChunkBody {
    /// A body streaming `doc`.
    pub fn new(doc: Arc<ServedConfig>) -> Self {
        Self { doc, next: 0 }
    }
}

impl MessageBody for ChunkBody {
    type Error = Infallible;

    fn size(&self) -> BodySize {
        BodySize::Sized(self.doc.len() as u64)
    }

    fn poll_next(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        let chunk = this.doc.chunks().get(this.next).cloned();
        this.next += 1;
        Poll::Ready(chunk.map(Ok))
    }
}
