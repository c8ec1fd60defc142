//! The one error type of the use cases.
//!
//! A [`ServiceError`] says what went wrong in the terms of the use case (the input broke a rule,
//! something does not exist or is taken, the caller may not do this, a credential was refused,
//! the store or the write queue failed) and nothing about how a transport reports it: the HTTP
//! server maps every variant to a status and its JSON error body in one place
//! (`tenant_server::http::error`), an embedder matches on the variants. Store and renderer
//! errors are kept whole ([`ServiceError::Store`], [`ServiceError::Config`]), so a caller can
//! still tell an unreachable database from a corrupt row. (It depends on no module of this crate,
//! so every module can use it.) Messages name fields, never values:
//! no error carries a credential.

use tenant_core::{Refusal, ValidationError, ValidationErrors};
use tenant_store::{DieselError, StoreError};
use tenant_webhooks::ingest::IngestError;

/// What a use case answers when it did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The input broke a rule; every field at fault is named.
    #[error("validation failed: {0}")]
    Validation(ValidationErrors),
    /// The thing does not exist (or is not visible to the caller).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The caller is known but may not do this.
    #[error("this caller may not do this")]
    Forbidden,
    /// The caller's own account is gone or disabled (a self-service flow of a deleted user).
    #[error("not authenticated")]
    Unauthenticated,
    /// Wrong email or password, or an unknown account: the same answer for all.
    #[error("invalid email or password")]
    InvalidCredentials,
    /// A refresh or invite token that is unknown, used, revoked or expired.
    #[error("invalid or expired token")]
    InvalidToken,
    /// Too many failed attempts: try again later.
    #[error("too many failed attempts; retry later")]
    Throttled {
        /// Seconds to wait.
        retry_after_secs: u64,
    },
    /// The tenant's plan allows no more of this resource (channels, webhook endpoints).
    #[error("the plan allows at most {limit} {resource}")]
    PlanLimit {
        /// What is counted: `channels` or `webhookEndpoints`.
        resource: &'static str,
        /// How many the plan allows.
        limit: i64,
    },
    /// A fleet change the fleet's state refuses (a full, draining or down gateway, a capacity
    /// below what a gateway holds, …).
    #[error(transparent)]
    Fleet(#[from] FleetConflict),
    /// The store failed or refused (not found, taken, unreachable, corrupt…).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The tenants' data cannot make a gateway config the gateway would accept.
    #[error(transparent)]
    Config(#[from] tenant_configgen::ConfigError),
    /// An `Idempotency-Key` header that is not 1–255 printable ASCII characters; says why.
    #[error("{0}")]
    InvalidIdempotencyKey(String),
    /// The `Idempotency-Key` was used before by this caller for a request with another body.
    #[error("this Idempotency-Key was used for a different request")]
    IdempotencyKeyReused,
    /// A request with this `Idempotency-Key` is still running: retry shortly to get its answer.
    #[error("a request with this Idempotency-Key is still being processed; retry shortly")]
    IdempotencyKeyInFlight,
    /// Too much work is queued (a batched write path's queue is full): retry later; the caller
    /// is not at fault.
    #[error("{0}")]
    Overloaded(String),
    /// Billing is off: no Stripe secret key is configured.
    #[error("billing is not enabled on this server")]
    BillingDisabled,
    /// Stripe could not be reached, timed out or failed: retry later (nothing was written).
    #[error("the payment provider is unavailable: {cause}")]
    BillingUnavailable {
        /// Seconds to wait.
        retry_after_secs: u64,
        /// What happened (no secret in it).
        cause: String,
    },
    /// Stripe refused a request: a configuration to fix (an unknown price, a deleted customer).
    #[error("the payment provider refused the request: {0}")]
    BillingRefused(String),
    /// A webhook request that is not a valid signed event: refused, nothing stored.
    #[error("{message}")]
    InvalidWebhook {
        /// `invalid_signature` or `invalid_event`.
        code: &'static str,
        /// What is wrong (never a secret or a signature value).
        message: String,
    },
    /// Anything else (a hashing or signing failure, a task that died); not the caller's fault.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The result of a use case.
pub type ServiceResult<T> = Result<T, ServiceError>;

impl From<ValidationErrors> for ServiceError {
    fn from(e: ValidationErrors) -> Self {
        ServiceError::Validation(e)
    }
}

impl From<ValidationError> for ServiceError {
    fn from(e: ValidationError) -> Self {
        ServiceError::Validation(e.into())
    }
}

impl From<DieselError> for ServiceError {
    fn from(e: DieselError) -> Self {
        ServiceError::Store(e.into())
    }
}

impl From<IngestError> for ServiceError {
    /// An event that cannot be accepted is the caller's input error: the field at fault, or the
    /// identifiers that named no tenant.
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Invalid { field, message } => {
                ValidationError::new(field, "invalid", message).into()
            }
            IngestError::Unresolved { fields, message } => {
                let errors = fields
                    .iter()
                    .map(|f| ValidationError::new(*f, "unresolved", message.clone()))
                    .collect();
                ServiceError::Validation(ValidationErrors(errors))
            }
            IngestError::Store(e) => e.into(),
        }
    }
}

/// A fleet change refused because of the fleet's state (the HTTP answer is 409 with `code`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FleetConflict {
    /// The gateway holds as many tenants as it may.
    #[error("the gateway is full: it holds {held} of {capacity} tenants")]
    GatewayFull {
        /// Tenants it holds or is receiving.
        held: i64,
        /// Its capacity.
        capacity: i64,
    },
    /// The gateway is draining: it takes no new tenants.
    #[error("the gateway is draining; reopen it with PATCH {{\"draining\": false}} first")]
    GatewayDraining,
    /// The gateway's lease expired.
    #[error("the gateway is down: no heartbeat within the lease")]
    GatewayDown,
    /// A capacity below what the gateway holds.
    #[error("the gateway holds {held} tenants: its capacity cannot be set to {capacity}")]
    CapacityBelowHeld {
        /// Tenants it holds or is receiving.
        held: i64,
        /// The capacity asked for.
        capacity: i64,
    },
    /// A gateway that still holds (or is receiving, or releasing) tenants cannot be deleted.
    #[error("the gateway still holds {held} tenants; drain it first")]
    GatewayNotEmpty {
        /// Tenants placed on, moving from or to it.
        held: i64,
    },
    /// The built-in gateway cannot be deleted, renamed, or given a token here.
    #[error("the built-in gateway `default` cannot {0}")]
    BuiltIn(&'static str),
    /// No gateway of the kind wanted has room.
    #[error(
        "no {kind} gateway has room ({gateways} gateways, {full} full, {unavailable} draining or down)"
    )]
    NoRoom {
        /// `shared` or `dedicated`.
        kind: &'static str,
        /// Gateways of that kind.
        gateways: usize,
        /// Of those, full.
        full: usize,
        /// Of those, draining or down.
        unavailable: usize,
    },
}

impl FleetConflict {
    /// The machine-readable code of the answer.
    pub fn code(&self) -> &'static str {
        match self {
            FleetConflict::GatewayFull { .. } => "gateway_full",
            FleetConflict::GatewayDraining => "gateway_draining",
            FleetConflict::GatewayDown => "gateway_down",
            FleetConflict::CapacityBelowHeld { .. } => "capacity_below_held",
            FleetConflict::GatewayNotEmpty { .. } => "gateway_not_empty",
            FleetConflict::BuiltIn(_) => "builtin_gateway",
            FleetConflict::NoRoom { .. } => "no_room",
        }
    }

    /// The counts behind the refusal, as JSON details.
    pub fn details(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            FleetConflict::GatewayFull { held, capacity }
            | FleetConflict::CapacityBelowHeld { held, capacity } => {
                json!({"held": held, "capacity": capacity})
            }
            FleetConflict::GatewayNotEmpty { held } => json!({"held": held}),
            FleetConflict::NoRoom {
                kind,
                gateways,
                full,
                unavailable,
            } => {
                json!({"kind": kind, "gateways": gateways, "full": full, "unavailable": unavailable})
            }
            _ => json!({}),
        }
    }
}

impl From<Refusal> for FleetConflict {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Full { held, capacity } => FleetConflict::GatewayFull { held, capacity },
            Refusal::Draining => FleetConflict::GatewayDraining,
            Refusal::Down => FleetConflict::GatewayDown,
        }
    }
}
