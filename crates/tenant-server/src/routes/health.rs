//! Liveness and readiness probes; the only routes without authentication.

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::{HttpResponse, get, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use tenant_service::rate_limit::{RedisState, Store};

use crate::http::error::QuietFault;
use crate::state::AppState;

/// `GET /health` and `GET /ready`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StatusResponse {
    /// `ok`, or `unavailable` (`/ready` while a dependency cannot be reached).
    pub status: String,
    /// The database backend (`/ready` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// Each dependency checked and its state: `ok`, `unavailable` or `timeout` (`/ready` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<BTreeMap<String, String>>,
    /// The dependencies that failed (`/ready` answering 503 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<Vec<String>>,
    /// Where the rate-limit state lives (`/ready` only).
    #[serde(rename = "rateLimits", skip_serializing_if = "Option::is_none")]
    pub rate_limits: Option<RateLimitStatus>,
}

/// The rate limiter's state in `/ready`: Redis being away does not make the process unready
/// (it limits on its own meanwhile), but it is reported here.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitStatus {
    /// `off`, `memory` or `redis`.
    pub store: String,
    /// With Redis: `ok`, or `unreachable` (limits are per process until it is back).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<String>,
}

/// The rate limiter's state for `/ready`, from one reading of the store (so `checks.redis` and
/// `rateLimits.redis` never disagree while Redis comes and goes).
fn rate_limit_status(store: Store) -> RateLimitStatus {
    let (store, redis) = match store {
        Store::Off => ("off", None),
        Store::Memory => ("memory", None),
        Store::Redis(RedisState::Reachable) => ("redis", Some("ok")),
        Store::Redis(RedisState::Unreachable) => ("redis", Some("unreachable")),
    };
    RateLimitStatus {
        store: store.into(),
        redis: redis.map(str::to_owned),
    }
}

/// The process is up.
#[utoipa::path(tag = "health", responses((status = 200, description = "Alive", body = StatusResponse)))]
#[get("/health")]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(StatusResponse {
        status: "ok".into(),
        database: None,
        rate_limits: None,
        checks: None,
        failed: None,
    })
}

/// The database answers within `SAAS_READY_TIMEOUT_MS`; load balancers should route traffic
/// only while this is 200. The answer names each dependency checked and, with 503, the ones that
/// failed. While the database is known to be away the answer is immediate (no wait for a
/// connection), and it is 200 again as soon as the store's circuit saw the database back.
#[utoipa::path(tag = "health", responses(
    (status = 200, description = "Ready", body = StatusResponse),
    (status = 503, description = "A dependency is unreachable; `failed` names it", body = StatusResponse),
))]
#[get("/ready")]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let database = database_check(state.control.ping(), state.ready_timeout).await;
    let mut checks = BTreeMap::from([("database".to_owned(), database.to_owned())]);
    // Redis, when the rate limits use it, is reported but does not fail readiness: without it
    // each process limits on its own (fail open) and the requests are still served.
    let rate_limits = rate_limit_status(state.control.rate_limit_store());
    if let Some(redis) = &rate_limits.redis {
        checks.insert("redis".to_owned(), redis.clone());
    }
    readiness(state.control.db().backend(), checks, Some(rate_limits))
}

/// The database's state for a readiness answer: `ok`, `unavailable`, or `timeout` when `ping`
/// did not answer within `timeout`.
pub async fn database_check<E>(
    ping: impl Future<Output = Result<(), E>>,
    timeout: Duration,
) -> &'static str {
    match tokio::time::timeout(timeout, ping).await {
        Ok(Ok(())) => "ok",
        Ok(Err(_)) => "unavailable",
        Err(_) => "timeout",
    }
}

/// The readiness answer for `checks` (each dependency and its state; only the database's fails
/// readiness): 200, or 503 with `Retry-After` naming the failed ones.
pub fn readiness(
    backend: &str,
    checks: BTreeMap<String, String>,
    rate_limits: Option<RateLimitStatus>,
) -> HttpResponse {
    let failed: Vec<String> = checks
        .get("database")
        .filter(|state| *state != "ok")
        .map(|_| "database".to_owned())
        .into_iter()
        .collect();
    let body = |status: &str, failed| StatusResponse {
        status: status.into(),
        database: Some(backend.to_owned()),
        rate_limits,
        checks: Some(checks),
        failed,
    };
    if failed.is_empty() {
        HttpResponse::Ok().json(body("ok", None))
    } else {
        // Not logged, nor in the access log: the store says once when the database goes away
        // and when it is back, and probes come every few seconds.
        let mut resp = HttpResponse::ServiceUnavailable();
        resp.extensions_mut().insert(QuietFault);
        resp.insert_header((actix_web::http::header::RETRY_AFTER, 1))
            .json(body("unavailable", Some(failed)))
    }
}
