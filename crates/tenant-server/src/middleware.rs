//! Middleware: a request id and a tracing span on every request, and service-token
//! authentication.

use std::time::Instant;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{AUTHORIZATION, HeaderName, HeaderValue, USER_AGENT};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError, web};
use tracing::Instrument;

use crate::auth::bearer_token;
use tenant_store::access_tokens::TokenScope;

use crate::error::ApiError;
use crate::principal::{ActorRef, Principal};
use crate::state::AppState;

/// The header carrying the request id, in both directions.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Where a request came from, for logs and the audit log.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    /// The request id: the client's `x-request-id` when it is sane, else a new one.
    pub request_id: String,
    /// The peer address.
    pub client_addr: Option<String>,
    /// The client's user agent (truncated).
    pub user_agent: Option<String>,
}

fn sane_request_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    ok.then(|| s.to_owned())
}

/// Gives every request an id and a span, and logs its outcome once.
pub async fn trace_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let request_id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(sane_request_id)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let meta = RequestMeta {
        request_id: request_id.clone(),
        client_addr: req.peer_addr().map(|a| a.ip().to_string()),
        user_agent: req
            .headers()
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(256).collect()),
    };
    let span = tracing::info_span!(
        "http.request",
        request.id = %request_id,
        http.method = %req.method(),
        http.path = %req.path(),
    );
    req.extensions_mut().insert(meta);
    let started = Instant::now();
    let result = next.call(req).instrument(span.clone()).await;
    let _entered = span.enter();
    let latency_us = started.elapsed().as_micros() as u64;
    match result {
        Ok(mut res) => {
            if let Ok(v) = HeaderValue::from_str(&request_id) {
                res.headers_mut()
                    .insert(HeaderName::from_static(REQUEST_ID_HEADER), v);
            }
            let status = res.status().as_u16();
            if status >= 500 {
                tracing::warn!(http.status = status, latency_us, "request finished");
            } else {
                tracing::info!(http.status = status, latency_us, "request finished");
            }
            Ok(res)
        }
        Err(e) => {
            tracing::warn!(error = %e, latency_us, "request failed");
            Err(e)
        }
    }
}

/// Paths anyone may call: liveness and readiness probes.
fn is_public(path: &str) -> bool {
    matches!(path, "/health" | "/ready")
}

/// Requests a gateway token may make: reading the combined or one tenant's config, and posting
/// events.
fn gateway_may(method: &Method, path: &str) -> bool {
    if method == Method::POST && matches!(path, "/events" | "/webhooks/message") {
        return true;
    }
    if method != Method::GET {
        return false;
    }
    path == "/config"
        || path
            .strip_prefix("/tenants/")
            .and_then(|rest| rest.strip_suffix("/config"))
            .is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

/// Requires a service token on every path but the public ones: an operator token anywhere, a
/// gateway token only where [`gateway_may`] allows.
pub async fn require_service_token(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if is_public(req.path()) {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    }
    let scope = match (
        req.app_data::<web::Data<AppState>>(),
        req.headers().get(AUTHORIZATION),
    ) {
        (Some(state), Some(header)) => header
            .to_str()
            .ok()
            .and_then(bearer_token)
            .and_then(|t| state.auth.scope_of(t)),
        _ => None,
    };
    let principal = match scope {
        Some(TokenScope::Operator) => Principal::Operator {
            actor: ActorRef::ServiceToken(None),
        },
        Some(TokenScope::Gateway) if gateway_may(req.method(), req.path()) => Principal::Gateway {
            actor: ActorRef::ServiceToken(None),
        },
        Some(TokenScope::Gateway) => {
            let res = ApiError::Forbidden.error_response();
            return Ok(req.into_response(res).map_into_right_body());
        }
        None => {
            let res = ApiError::Unauthorized.error_response();
            return Ok(req.into_response(res).map_into_right_body());
        }
    };
    req.extensions_mut().insert(principal);
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_reads_only_config() {
        assert!(gateway_may(&Method::GET, "/config"));
        assert!(gateway_may(&Method::GET, "/tenants/abc/config"));
        assert!(!gateway_may(&Method::POST, "/config"));
        assert!(!gateway_may(&Method::GET, "/tenants"));
        assert!(!gateway_may(&Method::GET, "/tenants/abc/channels/config"));
        assert!(!gateway_may(&Method::GET, "/tenants//config"));
        assert!(gateway_may(&Method::POST, "/events"));
        assert!(gateway_may(&Method::POST, "/webhooks/message"));
        assert!(!gateway_may(&Method::GET, "/events"));
        assert!(!gateway_may(&Method::POST, "/tenants/abc/webhooks"));
    }
}
