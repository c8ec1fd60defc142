//! Persistence for moltbot-saas, on SQLite (the embedded default) or PostgreSQL (production).
//!
//! One Diesel schema serves both backends through [`AnyConnection`], chosen by the URL scheme
//! (`sqlite://…` or `postgres://…`). Store functions are synchronous and take
//! `&mut AnyConnection`, so a caller composes several of them in one transaction; the server
//! crosses into async only at its handler boundary. Functions on tenant-owned rows take the
//! tenant id first, so a row is only ever reached through its tenant.

pub mod access_tokens;
pub mod api_keys;
pub mod audit;
pub mod backup;
mod batch_sql;
pub mod billing;
pub mod channel_batch;
pub mod channels;
mod circuit;
pub mod config_revision;
pub mod config_sources;
mod connection;
pub mod crypto;
mod database;
pub mod deliveries;
pub mod endpoint_batch;
pub mod endpoint_circuits;
mod error;
pub mod event_batch;
pub mod events;
pub mod export;
pub mod gateways;
pub mod idempotency;
pub mod key_batch;
pub mod key_rotation;
pub mod limits;
pub mod login_throttle;
pub mod migrations;
pub mod operator_users;
pub mod operator_webhooks;
mod paging;
mod pg_static;
pub mod purge;
pub mod refresh_tokens;
// The table DSL is macro-generated; the tables are documented in the migrations.
#[allow(missing_docs)]
pub mod schema;
pub mod sessions;
pub mod slug_redirects;
pub mod tenant_batch;
pub mod tenants;
pub mod unplaced;
pub mod usage;
pub mod users;
pub mod webhook_secrets;
pub mod webhooks;

pub use connection::{AnyConnection, DatabaseUrl, write_transaction};
pub use database::{ConnectionManager, Database, PoolConfig, PoolStats, PooledConn};
pub use error::{DatabaseFault, StoreError, StoreResult, fault_of};

/// Re-exported so callers can open transactions without depending on Diesel's prelude.
pub use diesel::Connection;
/// Re-exported with [`DieselError`], whose database errors carry one.
pub use diesel::result::DatabaseErrorKind;
/// Re-exported so callers' transaction error types can convert from it.
pub use diesel::result::Error as DieselError;
