//! Outbound webhooks for moltbot-saas, pure foundation: no IO, no async.
//!
//! - [`signing`] implements [Standard Webhooks](https://www.standardwebhooks.com): the `whsec_`
//!   [`SigningSecret`], the `v1` HMAC-SHA256 [`sign`]ature over `{msg_id}.{timestamp}.{body}`, a
//!   multi-signature [`signature_header`] for secret rotation, and [`verify`] with a timestamp
//!   tolerance and constant-time comparison.
//! - [`retry`] decides when a failed delivery is retried: a [`RetrySchedule`] of steps (by default
//!   immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h) with bounded jitter, lengthened by the
//!   receiver's `Retry-After` up to a cap.
//!
//! The HTTP client and the dispatcher build on these; time and randomness are always passed in, so
//! everything here is deterministic under test.

pub mod retry;
pub mod signing;

pub use retry::{RetrySchedule, ScheduleError, parse_retry_after};
pub use signing::{
    DEFAULT_TOLERANCE, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, SecretError, SigningSecret,
    VerifyError, WebhookHeaders, sign, signature_header, verify,
};
