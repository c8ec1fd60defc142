# syntax=docker/dockerfile:1
# The moltbot-saas container image: the control plane's one binary on Debian bookworm-slim, as a
# non-root user. Build: `docker build -t moltbot-saas .` (BuildKit). The same image runs every
# mode: `serve` (default), `migrate`, `webhooks dispatch`, `config sync`, the operator CLI.
# Secrets are never baked in: pass them at run time (environment, a Kubernetes Secret, compose's
# env file). What CI checks of it (hadolint) and what it cannot (a build): docs/deployment.md.

# ---- build: the same Rust as CI ----------------------------------------------------------------
ARG RUST_VERSION=1.95.0
FROM rust:${RUST_VERSION}-slim-bookworm AS build
# libpq-dev: the PostgreSQL client library the binary links (SQLite is built in).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p tenant-server --bin moltbot-saas \
    && install -D -m 0755 target/release/moltbot-saas /out/moltbot-saas

# ---- runtime: the binary, libpq, tini ---------------------------------------------------------
FROM debian:bookworm-slim AS runtime
# libpq5: PostgreSQL; ca-certificates: libpq's TLS (sslrootcert=system); tini: PID 1 that
# forwards signals (as PID 1 a command without a SIGTERM handler of its own, `config sync`,
# would ignore it).
# The user is numeric and fixed (10001) for Kubernetes' runAsNonRoot and shared volumes.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libpq5 tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 moltbot-saas \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/moltbot-saas \
        --no-create-home --shell /usr/sbin/nologin moltbot-saas \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/moltbot-saas /var/lib/moltbot-saas-gateway
COPY --from=build /out/moltbot-saas /usr/local/bin/moltbot-saas

LABEL org.opencontainers.image.title="moltbot-saas" \
      org.opencontainers.image.description="Control plane for the OpenClaw AI gateway, multi-tenant" \
      org.opencontainers.image.licenses="Apache-2.0"

# Defaults only; nothing secret. SQLite in the volume unless DATABASE_URL says PostgreSQL.
# SAAS_ENV=production: the server refuses to start until its secrets are given.
ENV SAAS_ENV=production \
    SAAS_BIND_ADDRESS=0.0.0.0 \
    SAAS_API_PORT=3000 \
    SAAS_LOG_FORMAT=json \
    DATABASE_URL=sqlite:///var/lib/moltbot-saas/moltbot-saas.db

USER 10001:10001
WORKDIR /var/lib/moltbot-saas
VOLUME ["/var/lib/moltbot-saas"]
EXPOSE 3000

# /health with bash alone (no curl in the image): the status line must say 200.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${SAAS_API_PORT:-3000} && printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]

ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/moltbot-saas"]
CMD ["serve"]
