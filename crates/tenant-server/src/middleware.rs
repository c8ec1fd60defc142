//! Middleware: a request id and a tracing span on every request, then authentication (service
//! tokens, API keys) and authorization ([`crate::access`]).

use std::time::Instant;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{AUTHORIZATION, HeaderName, HeaderValue, USER_AGENT};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError, web};
use tracing::Instrument;

use tenant_store::access_tokens::TokenScope;

use crate::access::authorize;
use crate::auth::{API_KEY_PREFIX, bearer_token};
use crate::error::ApiError;
use crate::identity::Identity;
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

/// Paths anyone may call: liveness and readiness probes, and the login flows (which
/// authenticate by their body).
fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/health" | "/ready" | "/auth/login" | "/auth/refresh" | "/auth/accept-invite"
    )
}

/// Requests a gateway token may make: reading the combined or one tenant's config, and posting
/// events.
pub fn gateway_may(method: &Method, path: &str) -> bool {
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

/// Who presents `token`: each credential source in turn — service tokens (operators, gateways),
/// tenant API keys, then JWTs (the server's own access tokens, or the external issuer's).
/// `Ok(None)`: nobody (401).
pub async fn authenticate(
    state: &AppState,
    identity: Option<&Identity>,
    token: &str,
) -> Result<Option<Principal>, ApiError> {
    match state.auth.scope_of(token) {
        Some(TokenScope::Operator) => {
            return Ok(Some(Principal::Operator {
                actor: ActorRef::ServiceToken(None),
            }));
        }
        Some(TokenScope::Gateway) => {
            return Ok(Some(Principal::Gateway {
                actor: ActorRef::ServiceToken(None),
            }));
        }
        None => {}
    }
    if token.starts_with(API_KEY_PREFIX) {
        return crate::api_keys::authenticate(state, token).await;
    }
    match identity {
        // A refused JWT is a 401 like any unknown token; why is logged by the verifier.
        Some(identity) => Ok(identity
            .principal_from_bearer_jwt(token)
            .await
            .ok()
            .flatten()),
        None => Ok(None),
    }
}

/// Requires a valid credential on every path but the public ones, and applies
/// [`crate::access::authorize`] to the matched route before any handler runs.
pub async fn require_auth(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if is_public(req.path()) {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    }
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let identity = req.app_data::<web::Data<Identity>>().cloned();
    let token = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(bearer_token)
        .map(str::to_owned);
    let found = match (state, token) {
        (Some(state), Some(token)) => {
            authenticate(&state, identity.as_ref().map(|i| i.get_ref()), &token).await
        }
        _ => Ok(None),
    };
    let principal = match found {
        Ok(Some(p)) => p,
        Ok(None) => {
            let res = ApiError::Unauthorized.error_response();
            return Ok(req.into_response(res).map_into_right_body());
        }
        Err(e) => {
            let res = e.error_response();
            return Ok(req.into_response(res).map_into_right_body());
        }
    };
    let pattern = req.match_pattern();
    if let Err(e) = authorize(&principal, req.method(), pattern.as_deref(), req.path()) {
        let res = e.error_response();
        return Ok(req.into_response(res).map_into_right_body());
    }
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
