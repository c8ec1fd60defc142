//! The application layer of moltbot-saas: every use case and policy, free of HTTP.
//!
//! Between the libraries (`tenant-core`'s domain, `tenant-store`'s Diesel store,
//! `tenant-configgen`'s renderer, `tenant-webhooks`' delivery) and the things that drive them (the
//! `tenant-server` binary's HTTP API and CLI, or another Rust service embedding the control
//! plane), this crate owns what the control plane *does*: creating tenants with their first API
//! key and audit row, channel changes, logins and sessions, API keys, the permission matrix,
//! group commit of writes, the tenant and gateway-config caches, webhook endpoints and replay,
//! key rotation. Use cases are synchronous functions on a `&mut AnyConnection` (so they compose
//! in one transaction) returning a typed [`ServiceError`]; async callers cross into them through
//! [`db::run`].
//!
//! It knows nothing of actix, HTTP status codes, clap or OpenAPI (`scripts/ci/check-layers.sh`
//! checks that none is in its dependency tree).

pub mod access;
pub mod api_keys;
pub mod audit;
pub mod background;
pub mod billing;
pub mod channel_writes;
pub mod channels;
pub mod control_plane;
pub mod db;
pub mod deployment;
pub mod dev_secrets;
pub mod error;
pub mod events;
pub mod fleet;
pub mod gateway_config;
pub mod group_commit;
pub mod idempotency;
pub mod identity;
pub mod lifecycle;
pub mod monitoring;
pub mod plans;
pub mod principal;
pub mod rate_limit;
pub mod sealing;
pub mod tenant_cache;
pub mod tenant_scope;
pub mod tenants;
pub mod tokens;
pub mod usage;
pub mod webhooks;
mod write_batch;

pub use control_plane::ControlPlane;
pub use error::{ServiceError, ServiceResult};
