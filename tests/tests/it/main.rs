//! Integration tests: the store on both backends and the HTTP API through a real server.
//! Run on SQLite by default; with `TEST_DATABASE_URL=postgres://…` on PostgreSQL.

mod access_matrix;
mod api_audit;
mod api_auth;
mod api_channels;
mod api_config;
mod api_errors;
mod api_keys;
mod api_login;
mod api_oidc;
mod api_openapi;
mod api_tenants;
mod api_users;
mod cli;
mod cli_users;
mod config_incremental;
mod config_sync;
mod control_plane;
mod credentials_at_rest;
mod gateway_bridge;
mod group_commit;
mod leaks;
mod migrations;
mod restart;
mod store_batches;
mod store_channels;
mod store_tenants;
mod store_users;
mod tenant_cache;
mod users_support;
mod webhook_secrets_at_rest;
mod webhooks_api;
mod webhooks_delivery;
mod webhooks_processes;
mod webhooks_support;
