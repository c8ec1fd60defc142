//! Authentication (service tokens, API keys, JWTs) and authorization (the route table
//! [`crate::http::route_table`] and the access policy) of every request but the public ones.
//! (Request ids, spans and the access log are [`crate::http::request_log`].)

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::AUTHORIZATION;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError, web};

use crate::http::error::ApiError;
use crate::http::request_log::RequestMeta;
use crate::http::route_table::{PUBLIC_ROUTES, ROUTES, allowed_methods, authorize_at, route_index};
use crate::state::AppState;
use tenant_service::principal::Principal;

/// Paths anyone may call ([`PUBLIC_ROUTES`]): liveness and readiness probes, the login flows
/// (which authenticate by their body) and Stripe's webhook (authenticated by its signature).
fn is_public(path: &str) -> bool {
    PUBLIC_ROUTES.iter().any(|(_, p)| *p == path)
}

/// Paths of the dashboard and the portal ([`crate::ui`]), which authenticate by their session
/// cookie in their own layer, and `/` asked for by a browser (sent on to its login page).
pub fn is_ui_path(path: &str, accept: Option<&str>) -> bool {
    let under = |prefix: &str| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    under("/admin")
        || under("/portal")
        || matches!(
            path,
            "/login" | "/logout" | "/invite" | "/ui/app.css" | "/ui/app.js" | "/ui/icon.svg"
        )
        || (path == "/" && accept.is_some_and(|a| a.contains("text/html")))
}

/// Requires a valid credential on every path but the public ones, and applies
/// [`crate::http::route_table::authorize`] to the matched route before any handler runs.
pub async fn require_auth(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let accept = req
        .headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    if is_public(req.path()) || is_ui_path(req.path(), accept) {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    }
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let token = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(bearer_token)
        .map(str::to_owned);
    let found = match (state, token) {
        (Some(state), Some(token)) => state.control.authenticate(&token).await,
        _ => Ok(None),
    };
    let principal = match found {
        Ok(Some(p)) => p,
        Ok(None) => {
            let res = ApiError::Unauthorized.error_response();
            return Ok(req.into_response(res).map_into_right_body());
        }
        Err(e) => {
            let res = ApiError::from(e).error_response();
            return Ok(req.into_response(res).map_into_right_body());
        }
    };
    let known = req.extensions().get::<RequestMeta>().and_then(|m| m.route);
    let route = match known {
        Some(i) => Some(i).filter(|i| *i < ROUTES.len()),
        None => route_index(req.method().as_str(), req.path()),
    };
    // A known path asked with a method it does not take: 405, whoever asks (but a gateway,
    // whose token is no credential off its own routes: 401 below). Decided here, not by the
    // router, which would hand a literal path's other methods to a parameter's route
    // (`PATCH /gateways/place-pending` to `PATCH /gateways/{gid}`).
    if route.is_none()
        && !matches!(principal, Principal::Gateway { .. })
        && let Some(allow) = allowed_methods(req.path())
    {
        let res = ApiError::MethodNotAllowed { allow }.error_response();
        return Ok(req.into_response(res).map_into_right_body());
    }
    if let Err(e) = authorize_at(&principal, req.method(), req.path(), route) {
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
