//! Every request's id, tracing span and access-log line.
//!
//! The id is the client's `x-request-id` when it is sane, else a new one (a random per-process
//! prefix and a counter: unique across replicas without a system call per request); it is echoed
//! in the response and carried by the request's span, so every line logged while serving the
//! request — and its audit entries — name it.
//!
//! The access log (`SAAS_ACCESS_LOG`) is a line per request with method, path, status and
//! latency: `all` logs every request, `errors` (the default) only those answered with a 4xx or
//! 5xx or slower than `SAAS_ACCESS_LOG_SLOW_MS` (but not the 503/507 answers to a database
//! fault, which the store's outage lines count), `off` none (5xx are still logged by the error
//! handler). Formatting and writing a JSON line costs about as much CPU as serving a cached read
//! (see docs/benchmarks.md), which is why the happy path is not logged by default.
//!
//! The same place counts each request in the HTTP metrics (by route template, method and status
//! class: [`crate::http::metrics`]), catches a panic of the request's handling (answered
//! 500 with the request id, instead of the connection dropping), and reports panics and 5xx
//! answers to Sentry when it is configured ([`crate::monitoring::sentry`]).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue, USER_AGENT};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest};
use rand::RngCore;
use tenant_store::audit::AuditContext;
use tracing::Instrument;

use crate::http::error::{ApiError, QuietFault};
use crate::http::metrics::{HTTP_PANICS, record_request, route_slot, slot_route};
use crate::monitoring::sentry::{self, Reporter, RequestTags};

/// The header carrying the request id, in both directions.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Which requests get an access-log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLog {
    /// Every request.
    All,
    /// Requests answered with a 4xx or 5xx, or slower than the threshold.
    Errors,
    /// None.
    Off,
}

impl std::str::FromStr for AccessLog {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "all" => Ok(Self::All),
            "errors" => Ok(Self::Errors),
            "off" => Ok(Self::Off),
            _ => Err("must be `all`, `errors` or `off`".into()),
        }
    }
}

/// The access log's settings.
#[derive(Debug, Clone, Copy)]
pub struct AccessLogSettings {
    /// Which requests are logged.
    pub mode: AccessLog,
    /// Requests slower than this are logged in `errors` mode.
    pub slow: Duration,
}

impl Default for AccessLogSettings {
    fn default() -> Self {
        Self {
            mode: AccessLog::Errors,
            slow: Duration::from_secs(1),
        }
    }
}

/// Makes request ids: this process's random prefix and a counter.
#[derive(Debug)]
pub struct RequestIds {
    prefix: u32,
    next: AtomicU64,
}

impl Default for RequestIds {
    fn default() -> Self {
        Self {
            prefix: rand::rng().next_u32(),
            next: AtomicU64::new(0),
        }
    }
}

impl RequestIds {
    /// A new id, `pppppppp-cccccccccccc` in lowercase hex.
    pub fn next_id(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut out = [0u8; 21];
        hex_into(&mut out[..8], u64::from(self.prefix));
        out[8] = b'-';
        hex_into(&mut out[9..], n);
        out.iter().map(|&b| char::from(b)).collect()
    }
}

/// Writes the low `4 * out.len()` bits of `v` as lowercase hex into `out`.
fn hex_into(out: &mut [u8], mut v: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(v & 0xf) as usize];
        v >>= 4;
    }
}

/// The request's id, in the request's extensions for handlers and the audit log.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    /// The request id.
    pub request_id: String,
    /// The route's slot in the HTTP series (see [`crate::http::metrics::route_slot`]), when it
    /// was looked up (metrics or Sentry on): authorization then need not look it up again.
    pub route: Option<usize>,
}

/// The audit context of a request made by `actor_type` (`actor_id`): its id, client address and
/// user agent (truncated), read from the request only when something is audited.
pub fn audit_context(
    req: &HttpRequest,
    actor_type: &str,
    actor_id: Option<String>,
) -> AuditContext {
    AuditContext {
        actor_type: actor_type.to_owned(),
        actor_id,
        request_id: req
            .extensions()
            .get::<RequestMeta>()
            .map(|m| m.request_id.clone()),
        client_addr: req.peer_addr().map(|a| a.ip().to_string()),
        user_agent: req
            .headers()
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(256).collect()),
    }
}

fn sane_request_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    ok.then(|| s.to_owned())
}

/// The request log's shared state: settings, the id generator, metrics and error reporting.
#[derive(Debug, Default)]
pub struct RequestLog {
    /// What is logged.
    pub settings: AccessLogSettings,
    /// Where new ids come from.
    pub ids: RequestIds,
    /// Whether requests are counted in the HTTP metrics.
    pub metrics: bool,
    /// Where panics and 5xx answers are reported, when Sentry is configured.
    pub sentry: Option<Arc<Reporter>>,
}

/// Gives every request an id and a span, writes its access-log line as configured, counts it in
/// the metrics, turns a panic into a 500 and reports panics and 5xx answers to Sentry.
pub async fn trace_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let log = req.app_data::<actix_web::web::Data<RequestLog>>().cloned();
    let request_id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(sane_request_id)
        .unwrap_or_else(|| log.as_ref().map_or_else(String::new, |l| l.ids.next_id()));
    let settings = log.as_ref().map(|l| l.settings).unwrap_or_default();
    let metrics = log.as_ref().is_some_and(|l| l.metrics);
    let reporter = log.as_ref().and_then(|l| l.sentry.clone());
    let span = tracing::info_span!("http.request", request.id = request_id.as_str());
    let method = req.method().clone();
    let path = (settings.mode != AccessLog::Off).then(|| req.path().to_owned());
    // The route template (an index into a static table): for the metrics and Sentry only.
    let slot = (metrics || reporter.is_some()).then(|| route_slot(method.as_str(), req.path()));
    let header = HeaderValue::from_str(&request_id).ok();
    let reported_id = reporter.as_ref().map(|_| request_id.clone());
    req.extensions_mut().insert(RequestMeta {
        request_id,
        route: slot,
    });
    let started = Instant::now();
    let mut handling = std::pin::pin!(next.call(req).instrument(span.clone()));
    // A panic while handling the request is caught here: the client gets a 500 (with its
    // request id) rather than a dropped connection, and it is counted and reported.
    let result = std::future::poll_fn(|cx| {
        match catch_unwind(AssertUnwindSafe(|| {
            sentry::in_request(|| handling.as_mut().poll(cx))
        })) {
            Ok(Poll::Ready(r)) => Poll::Ready(Ok(r)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(payload)),
        }
    })
    .await;
    let elapsed = started.elapsed();
    let _entered = span.enter();
    let latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    let route = slot.map_or("", slot_route);
    let result = match result {
        Ok(r) => r,
        Err(payload) => {
            let message = sentry::panic_message(&*payload);
            let location = sentry::take_panic_location();
            tracing::error!(
                http.method = method.as_str(),
                http.route = route,
                panic.location = location.as_deref().unwrap_or(""),
                "request handler panicked"
            );
            if metrics {
                ::metrics::counter!(HTTP_PANICS).increment(1);
            }
            if let (Some(r), Some(id)) = (&reporter, &reported_id) {
                let tags = RequestTags {
                    request_id: id,
                    method: method.as_str(),
                    route,
                    status: 500,
                };
                r.report_panic(tags, &message, location.as_deref());
            }
            if let Some(slot) = slot.filter(|_| metrics) {
                record_request(slot, 500, elapsed);
            }
            let mut res = actix_web::ResponseError::error_response(&ApiError::Internal(
                "the request handler panicked".into(),
            ));
            if let Some(v) = header {
                res.headers_mut()
                    .insert(HeaderName::from_static(REQUEST_ID_HEADER), v);
            }
            return Err(actix_web::error::InternalError::from_response("panic", res).into());
        }
    };
    match result {
        Ok(mut res) => {
            if let Some(v) = header {
                res.headers_mut()
                    .insert(HeaderName::from_static(REQUEST_ID_HEADER), v);
            }
            let status = res.status().as_u16();
            // The route may have been looked up again for a rewritten path (a tenant host's
            // `/tenant/…`).
            let slot = match slot {
                Some(_) => res
                    .request()
                    .extensions()
                    .get::<RequestMeta>()
                    .and_then(|m| m.route)
                    .or(slot),
                None => None,
            };
            let route = slot.map_or(route, slot_route);
            if let Some(slot) = slot.filter(|_| metrics) {
                record_request(slot, status, elapsed);
            }
            if status >= 500
                && let (Some(r), Some(id)) = (&reporter, &reported_id)
            {
                report_error(r, &res, id, method.as_str(), route, status);
            }
            let logged = match settings.mode {
                AccessLog::All => true,
                // Answers to a database fault are counted by the store's outage lines instead:
                // an outage would otherwise write one line per request refused.
                AccessLog::Errors => {
                    (status >= 400 || elapsed > settings.slow)
                        && !res.response().extensions().contains::<QuietFault>()
                }
                AccessLog::Off => false,
            };
            if let (true, Some(path)) = (logged, path.as_deref()) {
                if status >= 500 {
                    tracing::warn!(
                        http.method = method.as_str(),
                        http.path = path,
                        http.status = status,
                        latency_us,
                        "request finished"
                    );
                } else {
                    tracing::info!(
                        http.method = method.as_str(),
                        http.path = path,
                        http.status = status,
                        latency_us,
                        "request finished"
                    );
                }
            }
            Ok(res)
        }
        Err(e) => {
            let status = e.as_response_error().status_code().as_u16();
            if let Some(slot) = slot.filter(|_| metrics) {
                record_request(slot, status, elapsed);
            }
            tracing::warn!(error = %e, http.method = method.as_str(), latency_us, "request failed");
            Err(e)
        }
    }
}

/// Reports a 5xx answer: its error code, and for an internal error its cause (scrubbed by the
/// reporter). Answers to a database fault (503/507, counted by the store's outage lines and
/// the metrics) are not reported: an outage would send one event per request refused.
fn report_error<B>(
    reporter: &Reporter,
    res: &ServiceResponse<B>,
    request_id: &str,
    method: &str,
    route: &'static str,
    status: u16,
) {
    if res.response().extensions().contains::<QuietFault>() {
        return;
    }
    let error = res.response().error();
    let api = error.and_then(|e| e.as_error::<ApiError>());
    let (code, cause) = match api {
        Some(ApiError::Internal(cause)) => ("internal", Some(cause.as_str())),
        Some(ApiError::Unavailable(cause)) => ("unavailable", Some(cause.as_str())),
        Some(other) => (other.code(), None),
        None => ("http_error", None),
    };
    let tags = RequestTags {
        request_id,
        method,
        route,
        status,
    };
    reporter.report_error(tags, code, cause);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_sane_and_share_the_process_prefix() {
        let ids = RequestIds::default();
        let a = ids.next_id();
        let b = ids.next_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 21);
        assert_eq!(a[..9], b[..9]);
        assert!(a.ends_with("-000000000000"), "{a}");
        assert!(b.ends_with("-000000000001"), "{b}");
        let header = HeaderValue::from_str(&a).unwrap();
        assert_eq!(sane_request_id(&header).as_deref(), Some(a.as_str()));
    }

    #[test]
    fn unsafe_client_ids_are_replaced() {
        for bad in ["", "a b", "x\u{7f}", &"y".repeat(65)] {
            if let Ok(v) = HeaderValue::from_str(bad) {
                assert_eq!(sane_request_id(&v), None, "{bad:?}");
            }
        }
        assert_eq!(
            sane_request_id(&HeaderValue::from_static("abc-123_x.y")).as_deref(),
            Some("abc-123_x.y")
        );
    }

    #[test]
    fn access_log_modes_parse() {
        assert_eq!("all".parse::<AccessLog>(), Ok(AccessLog::All));
        assert_eq!("errors".parse::<AccessLog>(), Ok(AccessLog::Errors));
        assert_eq!("off".parse::<AccessLog>(), Ok(AccessLog::Off));
        assert!("some".parse::<AccessLog>().is_err());
    }
}
