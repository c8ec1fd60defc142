//! Outbound webhooks for moltbot-saas: ingest of gateway events, and their durable, signed
//! delivery to tenants' endpoints.
//!
//! - [`signing`] implements [Standard Webhooks](https://www.standardwebhooks.com): the `whsec_`
//!   [`SigningSecret`], the `v1` HMAC-SHA256 [`sign`]ature over `{msg_id}.{timestamp}.{body}`, a
//!   multi-signature [`signature_header`] for secret rotation, and [`verify`] with a timestamp
//!   tolerance and constant-time comparison.
//! - [`retry`] decides when a failed delivery is retried: a [`RetrySchedule`] of steps (by default
//!   immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h) with bounded jitter, lengthened by the
//!   receiver's `Retry-After` up to a cap.
//!
//! - [`ingest`] attributes a gateway event to a tenant and stores it with one delivery per
//!   subscribed endpoint (the outbox), in one transaction.
//! - [`delivery`] drains the outbox: an SSRF-guarded HTTP client and a [`Dispatcher`] that claims
//!   due deliveries under a lease, signs and sends them, and records every attempt.
//!
//! Signing and retry are pure: time and randomness are passed in, so they are deterministic under
//! test; so is [`Dispatcher::dispatch_due`], which takes the time of the round.

pub mod delivery;
pub mod ingest;
pub mod retry;
pub mod signing;

pub use delivery::{Dispatcher, DispatcherConfig, Outcome};
pub use retry::{RetrySchedule, ScheduleError, parse_retry_after};
pub use signing::{
    DEFAULT_TOLERANCE, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, SecretError, SigningSecret,
    VerifyError, WebhookHeaders, sign, signature_header, verify,
};
