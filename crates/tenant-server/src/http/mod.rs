//! HTTP plumbing shared by every route: the error shape and the mapping of the use cases'
//! errors to statuses ([`error`]), body and query extractors ([`extract`]), request ids and the
//! access log ([`request_log`]), the HTTP series of the metrics ([`metrics`]), the
//! `Idempotency-Key` of creating requests ([`idempotency`]), authentication ([`authenticate`]),
//! rate limits ([`rate_limit`]) and the route table that authorization looks requests up in
//! ([`route_table`]).

pub mod authenticate;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod metrics;
pub mod rate_limit;
pub mod request_log;
pub mod route_table;
