//! The API's errors and their JSON shape, and the one place where the use cases' errors
//! ([`ServiceError`]) become HTTP statuses.
//!
//! Every error reaches the client as `{"error": {"code", "message", "details"}}` with a stable
//! `code`. Client errors (4xx) say what to fix and name the field. Server errors (5xx) are opaque
//! to the client: the cause is logged once, here, with the request id, and the client gets only
//! the request id to quote. No error message carries a credential: validation messages name
//! fields, never values.
//!
//! Faults of the database as a whole ([`DatabaseFault`]: unreachable, read-only, full) are
//! answered 503 `database_unavailable`, 503 `database_read_only` or 507 `storage_full`, with
//! `Retry-After`, and are not logged per request: the store logs when the database goes away and
//! comes back, and storage faults once a minute (an outage would otherwise write a line per
//! request refused). Every 503 carries `Retry-After`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::{Value, json};
use tenant_core::{ValidationError, ValidationErrors};
use tenant_service::ServiceError;
use tenant_service::fleet::FleetConflict;
use tenant_store::{DatabaseFault, StoreError};
use utoipa::ToSchema;

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `validation_failed`, `not_found`, `conflict`.
    pub code: String,
    /// A sentence for humans.
    pub message: String,
    /// Structured details; for validation errors `{"fields": [{"field", "code", "message"}]}`.
    #[schema(value_type = Object)]
    pub details: Value,
}

/// An error answered to a client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The input broke a rule.
    #[error("validation failed: {0}")]
    Validation(ValidationErrors),
    /// The request was malformed before validation (bad JSON, wrong content type, bad query).
    #[error("{message}")]
    BadRequest {
        /// Stable code.
        code: &'static str,
        /// Sentence.
        message: String,
        /// Details.
        details: Value,
    },
    /// No token, or a token that is not valid.
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// A login with a wrong email or password, or an unknown account: the same answer for all.
    #[error("invalid email or password")]
    InvalidCredentials,
    /// A refresh or invite token that is unknown, used, revoked or expired.
    #[error("invalid or expired token")]
    InvalidToken,
    /// Too many failed logins: try again later.
    #[error("too many failed attempts; retry later")]
    Throttled {
        /// Seconds to wait.
        retry_after_secs: u64,
    },
    /// Too many requests for a rate limit (per API key, tenant or client address).
    #[error("rate limit exceeded; retry later")]
    RateLimited {
        /// Seconds to wait.
        retry_after_secs: u64,
        /// The policy that refused (`key`, `tenant`, `address`).
        policy: &'static str,
    },
    /// The token is valid but may not make this request.
    #[error("this token may not make this request")]
    Forbidden,
    /// The tenant's plan allows no more of a resource.
    #[error("the plan allows at most {limit} {resource}; a larger plan or an override allows more")]
    PlanLimit {
        /// `channels` or `webhookEndpoints`.
        resource: &'static str,
        /// How many the plan allows.
        limit: i64,
    },
    /// The resource does not exist (or is not visible to the caller).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The path exists, but not with this method.
    #[error("this path does not take this method")]
    MethodNotAllowed {
        /// The methods it takes, for the `Allow` header (`GET, PATCH`).
        allow: String,
    },
    /// The request conflicts with existing data.
    #[error("{message}")]
    Conflict {
        /// The field at fault.
        field: &'static str,
        /// Sentence.
        message: String,
    },
    /// The gateway fleet's state refuses the change (409 with its own code and counts).
    #[error(transparent)]
    Fleet(FleetConflict),
    /// The `Idempotency-Key` was used by this caller for a request with another body.
    #[error("this Idempotency-Key was used for a different request")]
    IdempotencyKeyReused,
    /// A request with this `Idempotency-Key` is still running.
    #[error("a request with this Idempotency-Key is still being processed; retry shortly")]
    IdempotencyKeyInFlight,
    /// The body is larger than allowed.
    #[error("request body exceeds {limit} bytes")]
    PayloadTooLarge {
        /// The limit.
        limit: usize,
    },
    /// The body is not JSON.
    #[error("unsupported content type")]
    UnsupportedMediaType,
    /// A dependency is overloaded or stopped (e.g. the write queue is full).
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// Billing is off on this server (no Stripe secret key).
    #[error("billing is not enabled on this server")]
    BillingDisabled,
    /// Stripe could not be reached or failed; nothing was written.
    #[error("payment provider unavailable: {cause}")]
    BillingUnavailable {
        /// Seconds to wait.
        retry_after_secs: u64,
        /// What happened (logged, not shown).
        cause: String,
    },
    /// Stripe refused a request: the operator's configuration needs fixing.
    #[error("payment provider refused the request: {0}")]
    BillingRefused(String),
    /// The database as a whole cannot serve the request now; the cause is not shown.
    #[error("database fault ({0:?}): {1}")]
    Database(DatabaseFault, String),
    /// Anything else; the cause is logged, not shown.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Marks a response to a database fault, which the access log does not write per request in its
/// `errors` mode (see the module doc).
#[derive(Debug, Clone, Copy)]
pub struct QuietFault;

impl ApiError {
    /// Seconds a client should wait before retrying: the circuit probes the database about twice
    /// a second, so one second; a read-only or full database needs an operator, so longer.
    fn retry_after_secs(&self) -> Option<u64> {
        match self {
            ApiError::Throttled { retry_after_secs }
            | ApiError::RateLimited {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            ApiError::Unavailable(_)
            | ApiError::Database(DatabaseFault::Unavailable, _)
            | ApiError::IdempotencyKeyInFlight => Some(1),
            ApiError::BillingUnavailable {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            // A configuration change, not a passing fault: ask again much later.
            ApiError::BillingDisabled => Some(3600),
            ApiError::Database(..) => Some(30),
            _ => None,
        }
    }

    /// A validation error on one field.
    pub fn invalid(e: ValidationError) -> Self {
        ApiError::Validation(e.into())
    }

    /// The stable code of the error (`validation_failed`, `not_found`, …).
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Validation(_) => "validation_failed",
            ApiError::BadRequest { code, .. } => code,
            ApiError::Unauthorized => "unauthorized",
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::InvalidToken => "invalid_token",
            ApiError::Throttled { .. } => "too_many_attempts",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Forbidden => "forbidden",
            ApiError::PlanLimit { .. } => "plan_limit_reached",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::Conflict { .. } => "conflict",
            ApiError::Fleet(c) => c.code(),
            ApiError::IdempotencyKeyReused => "idempotency_key_reused",
            ApiError::IdempotencyKeyInFlight => "idempotency_key_in_flight",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::BillingDisabled => "billing_disabled",
            ApiError::BillingUnavailable { .. } => "billing_unavailable",
            ApiError::BillingRefused(_) => "billing_refused",
            ApiError::Database(DatabaseFault::Unavailable, _) => "database_unavailable",
            ApiError::Database(DatabaseFault::ReadOnly, _) => "database_read_only",
            ApiError::Database(DatabaseFault::StorageFull, _) => "storage_full",
            ApiError::Internal(_) => "internal",
        }
    }

    /// The JSON body of the error (the dashboard shows its message and fields).
    pub fn body(&self) -> ErrorBody {
        let (message, details) = match self {
            ApiError::Validation(errors) => {
                let fields: Vec<Value> = errors
                    .0
                    .iter()
                    .map(|e| json!({"field": e.field, "code": e.code, "message": e.message}))
                    .collect();
                (errors.to_string(), json!({ "fields": fields }))
            }
            ApiError::BadRequest {
                message, details, ..
            } => (message.clone(), details.clone()),
            ApiError::Conflict { field, message } => (message.clone(), json!({ "field": field })),
            ApiError::Fleet(c) => (c.to_string(), c.details()),
            ApiError::Throttled { retry_after_secs } => (
                self.to_string(),
                json!({ "retryAfterSecs": retry_after_secs }),
            ),
            ApiError::PayloadTooLarge { limit } => {
                (self.to_string(), json!({ "limitBytes": limit }))
            }
            ApiError::RateLimited {
                retry_after_secs,
                policy,
            } => (
                self.to_string(),
                json!({ "retryAfterSecs": retry_after_secs, "policy": policy }),
            ),
            ApiError::PlanLimit { resource, limit } => (
                self.to_string(),
                json!({ "resource": resource, "limit": limit }),
            ),
            ApiError::MethodNotAllowed { allow } => (self.to_string(), json!({ "allow": allow })),
            ApiError::UnsupportedMediaType => (
                "request bodies must be JSON (Content-Type: application/json)".into(),
                json!({}),
            ),
            ApiError::Unavailable(_) => {
                ("the service is temporarily unavailable".into(), json!({}))
            }
            ApiError::BillingDisabled => (
                "billing is not enabled on this server (no Stripe secret key is configured)"
                    .into(),
                json!({}),
            ),
            ApiError::BillingUnavailable {
                retry_after_secs, ..
            } => (
                "the payment provider is unavailable; nothing was changed, retry later".into(),
                json!({ "retryAfterSecs": retry_after_secs }),
            ),
            ApiError::BillingRefused(_) => (
                "the payment provider refused the request; quote the request id (x-request-id) to the operator".into(),
                json!({}),
            ),
            ApiError::Database(fault, _) => (
                match fault {
                    DatabaseFault::Unavailable => "the database is unavailable; retry later",
                    DatabaseFault::ReadOnly => "the database does not accept writes at the moment",
                    DatabaseFault::StorageFull => "the database has no space left to write",
                }
                .into(),
                json!({}),
            ),
            ApiError::Internal(_) => (
                "internal error; quote the request id (x-request-id) when reporting it".into(),
                json!({}),
            ),
            ApiError::Unauthorized
            | ApiError::InvalidCredentials
            | ApiError::InvalidToken
            | ApiError::Forbidden
            | ApiError::NotFound(_) => (self.to_string(), json!({})),
            ApiError::IdempotencyKeyReused | ApiError::IdempotencyKeyInFlight => {
                (self.to_string(), json!({ "header": "Idempotency-Key" }))
            }
        };
        ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message,
                details,
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized | ApiError::InvalidCredentials | ApiError::InvalidToken => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::Throttled { .. } | ApiError::RateLimited { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::Forbidden | ApiError::PlanLimit { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } | ApiError::Fleet(_) | ApiError::IdempotencyKeyInFlight => {
                StatusCode::CONFLICT
            }
            ApiError::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable(_)
            | ApiError::BillingDisabled
            | ApiError::BillingUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::BillingRefused(_) => StatusCode::BAD_GATEWAY,
            ApiError::Database(DatabaseFault::StorageFull, _) => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Database(..) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            // Logged once here; the request span carries the request id.
            ApiError::Internal(cause) => tracing::error!(error.cause = %cause, "request failed"),
            ApiError::Unavailable(cause) | ApiError::BillingUnavailable { cause, .. } => {
                tracing::warn!(error.cause = %cause, "dependency unavailable")
            }
            ApiError::BillingRefused(cause) => {
                tracing::error!(error.cause = %cause, "Stripe refused a request")
            }
            ApiError::Database(_, cause) => tracing::debug!(error.cause = %cause, "database fault"),
            _ => {}
        }
        let mut resp = HttpResponse::build(self.status_code());
        if matches!(self, ApiError::Unauthorized) {
            resp.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if let ApiError::MethodNotAllowed { allow } = self {
            resp.insert_header((actix_web::http::header::ALLOW, allow.as_str()));
        }
        if let Some(secs) = self.retry_after_secs() {
            resp.insert_header((actix_web::http::header::RETRY_AFTER, secs));
        }
        if matches!(self, ApiError::Database(..)) {
            resp.extensions_mut().insert(QuietFault);
        }
        resp.json(self.body())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::NotFound(what),
            StoreError::Conflict { field, message } => ApiError::Conflict { field, message },
            other => match other.fault() {
                Some(fault) => ApiError::Database(fault, other.to_string()),
                None => ApiError::Internal(other.to_string()),
            },
        }
    }
}

/// The one mapping of the use cases' errors to HTTP.
impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Validation(errors) => ApiError::Validation(errors),
            ServiceError::NotFound(what) => ApiError::NotFound(what),
            ServiceError::Forbidden => ApiError::Forbidden,
            ServiceError::Fleet(c) => ApiError::Fleet(c),
            ServiceError::PlanLimit { resource, limit } => ApiError::PlanLimit { resource, limit },
            ServiceError::Unauthenticated => ApiError::Unauthorized,
            ServiceError::InvalidCredentials => ApiError::InvalidCredentials,
            ServiceError::InvalidToken => ApiError::InvalidToken,
            ServiceError::Throttled { retry_after_secs } => {
                ApiError::Throttled { retry_after_secs }
            }
            ServiceError::Store(e) => e.into(),
            ServiceError::Config(e) => e.into(),
            ServiceError::Overloaded(cause) => ApiError::Unavailable(cause),
            ServiceError::InvalidIdempotencyKey(message) => ApiError::BadRequest {
                code: "invalid_idempotency_key",
                message,
                details: json!({ "header": "Idempotency-Key" }),
            },
            ServiceError::IdempotencyKeyReused => ApiError::IdempotencyKeyReused,
            ServiceError::IdempotencyKeyInFlight => ApiError::IdempotencyKeyInFlight,
            ServiceError::BillingDisabled => ApiError::BillingDisabled,
            ServiceError::BillingUnavailable {
                retry_after_secs,
                cause,
            } => ApiError::BillingUnavailable {
                retry_after_secs,
                cause,
            },
            ServiceError::BillingRefused(cause) => ApiError::BillingRefused(cause),
            ServiceError::InvalidWebhook { code, message } => ApiError::BadRequest {
                code,
                message,
                details: json!({ "header": "Stripe-Signature" }),
            },
            ServiceError::Internal(cause) => ApiError::Internal(cause),
        }
    }
}

impl From<tenant_configgen::ConfigError> for ApiError {
    fn from(e: tenant_configgen::ConfigError) -> Self {
        // The data cannot make a config the gateway would accept; the message names the tenant.
        ApiError::Conflict {
            field: "config",
            message: format!("the gateway config cannot be rendered: {e}"),
        }
    }
}

impl From<ValidationErrors> for ApiError {
    fn from(e: ValidationErrors) -> Self {
        ApiError::Validation(e)
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        ApiError::invalid(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Store errors as the database gives them, and the answers they get.
    #[test]
    fn database_faults_are_503_or_507_with_retry_after_never_500() {
        use tenant_store::DatabaseErrorKind as kind;
        use tenant_store::DieselError;
        let cases = [
            (
                DieselError::DatabaseError(kind::ClosedConnection, Box::new("closed".to_owned())),
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                "1",
            ),
            (
                DieselError::DatabaseError(
                    kind::Unknown,
                    Box::new("attempt to write a readonly database".to_owned()),
                ),
                StatusCode::SERVICE_UNAVAILABLE,
                "database_read_only",
                "30",
            ),
            (
                DieselError::DatabaseError(
                    kind::Unknown,
                    Box::new("database or disk is full".to_owned()),
                ),
                StatusCode::INSUFFICIENT_STORAGE,
                "storage_full",
                "30",
            ),
        ];
        for (diesel, status, code, retry) in cases {
            let e = ApiError::from(StoreError::from(diesel));
            assert_eq!(e.status_code(), status, "{e}");
            let resp = e.error_response();
            assert_eq!(resp.status(), status);
            assert_eq!(resp.headers().get("retry-after").unwrap(), retry);
            assert!(resp.extensions().contains::<QuietFault>());
            assert_eq!(e.body().error.code, code);
            assert!(
                !e.body().error.message.contains("readonly"),
                "the cause is not shown"
            );
        }
        let e = ApiError::from(StoreError::Unavailable("circuit open".into()));
        assert_eq!(e.body().error.code, "database_unavailable");
        let e = ApiError::from(StoreError::Pool("connection refused".into()));
        assert_eq!(e.status_code(), StatusCode::SERVICE_UNAVAILABLE);
        // Any other database error is still a 500.
        let e = ApiError::from(StoreError::Database(DieselError::NotFound));
        assert_eq!(e.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(e.error_response().headers().get("retry-after").is_none());
    }
}
