//! Rate limiting of requests ([`tenant_service::rate_limit`]): after authentication, a tenant
//! principal's request is checked per API key and per tenant (and metered); a login-flow request
//! (login, refresh, accepting an invite) per client address. Every answer of a limited request
//! carries the IETF `RateLimit-Policy` and `RateLimit` fields
//! (draft-ietf-httpapi-ratelimit-headers: `"key";q=120;w=60` and `"key";r=119;t=1`); a request
//! over a limit is answered `429` with `Retry-After` and nothing else runs.

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

/// The longest `RateLimit` value written: two policies of `"tenant";r=4294967295;t=` and a
/// reset of up to 20 digits, with their separator, with room to spare.
const HEADER_CAP: usize = 128;

/// The `RateLimit` value, written on the stack without `core::fmt` (no heap string per answer).
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

    /// Appends `bytes`; `false` (and nothing written) when they do not fit.
    fn push(&mut self, bytes: &[u8]) -> bool {
        let end = self.len + bytes.len();
        match self.buf.get_mut(self.len..end) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                self.len = end;
                true
            }
            None => false,
        }
    }

    /// Appends `n` in decimal.
    fn push_u64(&mut self, mut n: u64) -> bool {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push(&digits[at..])
    }

    fn value(&self) -> Option<HeaderValue> {
        HeaderValue::from_bytes(&self.buf[..self.len]).ok()
    }
}

/// Adds `RateLimit-Policy` (built once per tenant's limits, shared) and `RateLimit` for each
/// policy checked (none when nothing was).
fn add_headers(headers: &mut actix_web::http::header::HeaderMap, outcome: &Outcome) {
    if outcome.decisions.is_empty() {
        return;
    }
    let mut state = HeaderBuf::new();
    let mut written = true;
    for (k, (name, d)) in outcome.decisions.iter().enumerate() {
        if k > 0 {
            written &= state.push(b", ");
        }
        written &= state.push(b"\"")
            && state.push(name.as_bytes())
            && state.push(b"\";r=")
            && state.push_u64(u64::from(d.remaining))
            && state.push(b";t=")
            && state.push_u64(d.reset_secs);
    }
    let policy = HeaderValue::from_maybe_shared(outcome.policy.clone()).ok();
    if let (true, Some(p), Some(s)) = (written, policy, state.value()) {
        headers.insert(POLICY, p);
        headers.insert(RATE_LIMIT, s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenant_service::rate_limit::{Decision, Quota, RequestQuotas};

    #[test]
    fn the_fields_read_as_the_draft_spells_them() {
        let quotas = RequestQuotas::new(120, 600, 10);
        let decision = |quota: Quota, debt_us| Decision::from_debt(true, quota, debt_us);
        let outcome = Outcome {
            decisions: [
                ("key", decision(quotas.key, 1_500_000)),
                ("tenant", decision(quotas.tenant, 0)),
            ]
            .into_iter()
            .collect(),
            policy: quotas.key_policy.clone(),
        };
        let mut headers = actix_web::http::header::HeaderMap::new();
        add_headers(&mut headers, &outcome);
        let field = |name| headers.get(name).and_then(|v| v.to_str().ok());
        assert_eq!(
            field(POLICY),
            Some("\"key\";q=120;w=60, \"tenant\";q=600;w=60")
        );
        assert_eq!(
            field(RATE_LIMIT),
            Some("\"key\";r=7;t=2, \"tenant\";r=10;t=0")
        );
        let mut none = actix_web::http::header::HeaderMap::new();
        add_headers(&mut none, &Outcome::default());
        assert!(none.is_empty());
    }

    #[test]
    fn numbers_are_written_whole() {
        let mut b = HeaderBuf::new();
        assert!(b.push_u64(0) && b.push(b",") && b.push_u64(u64::MAX));
        assert_eq!(&b.buf[..b.len], b"0,18446744073709551615");
    }
}
