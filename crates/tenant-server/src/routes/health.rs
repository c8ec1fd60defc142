//! Liveness and readiness probes; the only routes without authentication.

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
    pub checks: Option<std::collections::BTreeMap<String, String>>,
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

fn rate_limit_status(state: &AppState) -> RateLimitStatus {
    let (store, redis) = match state.control.rate_limit_store() {
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
    let backend = state.control.db().backend().to_owned();
    let database = match tokio::time::timeout(state.ready_timeout, state.control.ping()).await {
        Ok(Ok(())) => "ok",
        Ok(Err(_)) => "unavailable",
        Err(_) => "timeout",
    };
    let mut checks =
        std::collections::BTreeMap::from([("database".to_owned(), database.to_owned())]);
    // Redis, when the rate limits use it, is reported but does not fail readiness: without it
    // each process limits on its own (fail open) and the requests are still served.
    if let Store::Redis(redis) = state.control.rate_limit_store() {
        let redis = match redis {
            RedisState::Reachable => "ok",
            RedisState::Unreachable => "unreachable",
        };
        checks.insert("redis".to_owned(), redis.to_owned());
    }
    let failed: Vec<String> = (database != "ok")
        .then(|| "database".to_owned())
        .into_iter()
        .collect();
    if failed.is_empty() {
        HttpResponse::Ok().json(StatusResponse {
            status: "ok".into(),
            database: Some(backend),
            rate_limits: Some(rate_limit_status(&state)),
            checks: Some(checks),
            failed: None,
        })
    } else {
        // Not logged, nor in the access log: the store says once when the database goes away
        // and when it is back, and probes come every few seconds.
        let mut resp = HttpResponse::ServiceUnavailable();
        resp.extensions_mut().insert(QuietFault);
        resp.insert_header((actix_web::http::header::RETRY_AFTER, 1))
            .json(StatusResponse {
                status: "unavailable".into(),
                database: Some(backend),
                rate_limits: Some(rate_limit_status(&state)),
                checks: Some(checks),
                failed: Some(failed),
            })
    }
}
