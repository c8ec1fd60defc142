//! Authentication (service tokens, API keys, JWTs) and authorization (the route table
//! [`crate::http::route_table`] and the access policy) of every request but the public ones.
//! (Request ids, spans and the access log are [`crate::http::request_log`].)

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::AUTHORIZATION;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError, web};
use tenant_service::identity::Identity;
use tenant_service::principal::{ActorRef, Principal};
use tenant_service::tokens::API_KEY_PREFIX;
use tenant_store::access_tokens::TokenScope;

use crate::http::error::ApiError;
use crate::http::route_table::authorize;
use crate::state::AppState;

/// Paths anyone may call: liveness and readiness probes, and the login flows (which
/// authenticate by their body).
fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/health" | "/ready" | "/auth/login" | "/auth/refresh" | "/auth/accept-invite"
    )
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
        return Ok(state.api_keys.authenticate(&state.db, token).await?);
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
/// [`crate::http::route_table::authorize`] to the matched route before any handler runs.
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
        let res = ApiError::from(e).error_response();
        return Ok(req.into_response(res).map_into_right_body());
    }
    req.extensions_mut().insert(principal);
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// The bearer token of an `Authorization` header value.
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
    }
}
