//! Integration tests: the store on both backends and the HTTP API through a real server.
//! Run on SQLite by default; with `TEST_DATABASE_URL=postgres://…` on PostgreSQL.

mod api_tenants;
