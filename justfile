# Tasks for moltbot-saas (https://just.systems). Each is also a plain cargo command.

pg_url := env_var_or_default("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")

# Run the server on the embedded SQLite default (127.0.0.1:3000).
run:
    cargo run --release -p tenant-server --bin moltbot-saas

# Run every test on SQLite.
test:
    cargo test --workspace

# Run every test on PostgreSQL (one fresh database per test).
test-pg:
    TEST_DATABASE_URL={{pg_url}} cargo test --workspace

# Formatting and lints, as CI runs them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Format the code.
fmt:
    cargo fmt --all

# Everything CI runs.
ci:
    bash .ci/run
