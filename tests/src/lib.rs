//! The integration test harness: a test database per test on either backend, a real server on
//! 127.0.0.1 port 0, and an HTTP client that speaks to it.
//!
//! Without `TEST_DATABASE_URL` every test gets a fresh SQLite file. With
//! `TEST_DATABASE_URL=postgres://…/postgres` every test gets a fresh PostgreSQL database cloned
//! from a migrated template (built once per migration set, under an advisory lock, so parallel
//! test processes never race), dropped when the test ends.

// A harness stops the test on any setup failure; panicking with a message is the right outcome.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod app;
mod db;
mod keys;
pub mod proxy;
pub mod receiver;
pub mod stripe;

pub use app::{
    TestApp, TestResponse, capture_logs, captured_logs, spawn_app, spawn_app_with,
    spawn_app_with_routes, test_settings,
};
pub use db::{RowCounts, TestDb, pg_hosts, with_database, with_hosts};
pub use keys::{TEST_ENCRYPTION_KEYS, test_keys};
pub use proxy::FaultProxy;
pub use receiver::{Captured, Reply, WebhookReceiver};
pub use stripe::FakeStripe;
