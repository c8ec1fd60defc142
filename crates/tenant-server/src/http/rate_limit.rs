//! Rate limiting of requests ([`tenant_service::rate_limit`]): after authentication, a tenant
//! principal's request is checked per API key and per tenant (and metered); a login-flow request
//! (login, refresh, accepting an invite) per client address. Every answer of a limited request
//! carries the IETF `RateLimit-Policy` and `RateLimit` fields
//! (draft-ietf-httpapi-ratelimit-headers: `"key";q=120;w=60` and `"key";r=119;t=1`); a request
//! over a limit is answered `429` with `Retry-After` and nothing else runs.

use std::fmt::Write as _;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError, web};
use tenant_service::principal::Principal;
use tenant_service::rate_limit::Outcome;

use crate::http::error::ApiError;
use crate::state::AppState;

/// `RateLimit-Policy`.
pub const POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit`.
pub const RATE_LIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// The routes limited per client address.
fn is_login_flow(method: &Method, path: &str) -> bool {
    method == Method::POST
        && matches!(
            path,
            "/auth/login" | "/auth/refresh" | "/auth/accept-invite"
        )
}

/// Checks the request's limits; see the module documentation.
pub async fn rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let principal = req.extensions().get::<Principal>().cloned();
    let outcome = match (state, principal) {
        (Some(state), Some(principal)) => match state.control.rate_limit(&principal).await {
            Ok(o) => o,
            Err(e) => {
                let res = ApiError::from(e).error_response();
                return Ok(req.into_response(res).map_into_right_body());
            }
        },
        (Some(state), None) if is_login_flow(req.method(), req.path()) => {
            let addr = req
                .peer_addr()
                .map_or_else(|| "unknown".to_owned(), |a| a.ip().to_string());
            state.control.rate_limit_address(&addr).await
        }
        _ => {
            return next
                .call(req)
                .await
                .map(ServiceResponse::map_into_left_body);
        }
    };
    if let Some((policy, retry_after_secs)) = outcome.refused_by() {
        let mut res = ApiError::RateLimited {
            retry_after_secs,
            policy,
        }
        .error_response();
        add_headers(res.headers_mut(), &outcome);
        return Ok(req.into_response(res).map_into_right_body());
    }
    let mut res = next.call(req).await?;
    add_headers(res.headers_mut(), &outcome);
    Ok(res.map_into_left_body())
}

/// Adds `RateLimit-Policy` and `RateLimit` for each policy checked (none when nothing was).
fn add_headers(headers: &mut actix_web::http::header::HeaderMap, outcome: &Outcome) {
    if outcome.decisions.is_empty() {
        return;
    }
    let (mut policy, mut state) = (String::new(), String::new());
    for (name, d) in &outcome.decisions {
        let sep = if policy.is_empty() { "" } else { ", " };
        let _ = write!(policy, "{sep}\"{name}\";q={};w=60", d.quota.per_minute);
        let _ = write!(
            state,
            "{sep}\"{name}\";r={};t={}",
            d.remaining, d.reset_secs
        );
    }
    if let (Ok(p), Ok(s)) = (
        HeaderValue::from_str(&policy),
        HeaderValue::from_str(&state),
    ) {
        headers.insert(POLICY, p);
        headers.insert(RATE_LIMIT, s);
    }
}
