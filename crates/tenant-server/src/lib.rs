//! The moltbot-saas server: the HTTP API over the use cases of `tenant-service`, settings read
//! from the environment, and the operator CLI.
//!
//! The admin dashboard and the tenant portal ([`ui`]) are HTML pages over the same use cases.
//!
//! [`startup::Application`] assembles everything from [`settings::Settings`]; tests build one on
//! port 0 against their own database.

pub mod cli;
pub mod http;
pub mod monitoring;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod ui;
