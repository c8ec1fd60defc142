//! The moltbot-saas server: the HTTP API over the tenant store, and the operator CLI.
//!
//! [`startup::Application`] assembles everything from [`settings::Settings`]; tests build one on
//! port 0 against their own database.

pub mod access;
pub mod api_keys;
pub mod auth;
pub mod background;
pub mod bridge_cli;
pub mod bridge_settings;
pub mod cli;
pub mod dto;
pub mod error;
pub mod extract;
pub mod files;
pub mod gateway;
pub mod group_commit;
pub mod identity;
pub mod keyfile;
pub mod keys;
pub mod middleware;
pub mod principal;
pub mod request_log;
pub mod routes;
pub mod service;
pub mod settings;
pub mod startup;
pub mod state;
pub mod sync;
pub mod telemetry;
pub mod tenant_cache;
pub mod users_cli;
pub mod webhook_cli;
pub mod webhook_dto;
pub mod webhook_service;
pub mod webhook_settings;
pub mod writers;
