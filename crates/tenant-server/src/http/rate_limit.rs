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
            let addr = req.peer_addr().map(|a| a.ip());
            state.control.rate_limit_address(addr).await
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

/// The longest header value written: two policies of `"tenant";q=4294967295;w=60` and their
/// separator, with room to spare.
const HEADER_CAP: usize = 128;

/// A header value written on the stack (no heap string per answer).
struct HeaderBuf {
    buf: [u8; HEADER_CAP],
    len: usize,
}

impl HeaderBuf {
    const fn new() -> Self {
        Self {
            buf: [0; HEADER_CAP],
            len: 0,
        }
    }

    fn value(&self) -> Option<HeaderValue> {
        HeaderValue::from_bytes(&self.buf[..self.len]).ok()
    }
}

impl std::fmt::Write for HeaderBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(std::fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Adds `RateLimit-Policy` and `RateLimit` for each policy checked (none when nothing was).
fn add_headers(headers: &mut actix_web::http::header::HeaderMap, outcome: &Outcome) {
    if outcome.decisions.is_empty() {
        return;
    }
    let (mut policy, mut state) = (HeaderBuf::new(), HeaderBuf::new());
    let mut written = Ok(());
    for (k, (name, d)) in outcome.decisions.iter().enumerate() {
        let sep = if k == 0 { "" } else { ", " };
        written = written
            .and_then(|()| write!(policy, "{sep}\"{name}\";q={};w=60", d.quota.per_minute))
            .and_then(|()| {
                write!(
                    state,
                    "{sep}\"{name}\";r={};t={}",
                    d.remaining, d.reset_secs
                )
            });
    }
    if let (Ok(()), Some(p), Some(s)) = (written, policy.value(), state.value()) {
        headers.insert(POLICY, p);
        headers.insert(RATE_LIMIT, s);
    }
}
