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

# The load benchmark: every phase on SQLite and PostgreSQL, pgbench reference, growth to 100k
# tenants; results and a summary in bench/results/ (see docs/benchmarks.md). Knobs: RUNS, N, C,
# DURATION, BACKENDS, SIZES.
bench:
    bash scripts/bench/run.sh

# A quick smoke of the benchmark: one short run per backend, no growth.
bench-quick:
    RUNS=1 N=300 DURATION=2 SIZES= WEBHOOKS=0 bash scripts/bench/run.sh

# Webhook delivery alone: throughput, latency, and fairness beside 0, 1 and 10 hanging tenants.
bench-webhooks:
    bash scripts/bench/webhooks.sh

# The criterion micro-benchmarks (config rendering, webhook signing, API keys, credential sealing).
bench-micro:
    cargo bench -p tenant-configgen --bench render
    cargo bench -p tenant-webhooks --bench signing
    cargo bench -p tenant-service --bench api_keys
    cargo bench -p tenant-store --bench crypto

# The API contract: schemathesis against /openapi.json, then a generated client's quick start.
contract:
    bash scripts/contract/schemathesis.sh
    bash scripts/contract/generated-client.sh

# The cargo fuzz targets (nightly), FUZZ_SECONDS each (default 60), FUZZ_SANITIZER (default none;
# address for AddressSanitizer); e.g. `just fuzz session_key`, `FUZZ_SECONDS=600 just fuzz`.
fuzz *targets:
    bash scripts/fuzz/run.sh {{targets}}
