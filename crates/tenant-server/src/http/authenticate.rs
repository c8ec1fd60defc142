//! Authentication (service tokens, API keys, JWTs) and authorization ([`crate::access`]) of
//! every request but the public ones. (Request ids, spans and the access log are
//! [`crate::request_log`].)

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::AUTHORIZATION;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError, web};
use tenant_store::access_tokens::TokenScope;

use crate::access::authorize;
use crate::auth::{API_KEY_PREFIX, bearer_token};
use crate::error::ApiError;
use crate::identity::Identity;
use crate::principal::{ActorRef, Principal};
use crate::state::AppState;

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
    if let Err(e) = authorize(&principal, req.method(), req.path()) {
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
