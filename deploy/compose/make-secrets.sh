#!/usr/bin/env bash
# Makes the secrets of the local stack (compose.yaml) in deploy/compose/secrets/ (git-ignored,
# mode 0600): stack.env for the control plane's containers, gateway.env for the gateway (its own
# auth token only), and the PostgreSQL password file. Run once before `docker compose up`; it never overwrites existing secrets.
set -euo pipefail
cd "$(dirname "$0")"

dir=secrets
if [ -e "$dir/stack.env" ]; then
  echo "make-secrets.sh: $dir/stack.env exists; keeping it" >&2
  exit 0
fi
umask 077
mkdir -p "$dir"

# random N: N random bytes in URL-safe base64, without padding.
random() { head -c "$1" /dev/urandom | base64 -w 0 | tr '+/' '-_' | tr -d '='; }

pg_password="$(random 24)"
printf '%s' "$pg_password" >"$dir/postgres_password"
cat >"$dir/stack.env" <<ENV
# The local stack's secrets, made by deploy/compose/make-secrets.sh. Not for production.
DATABASE_URL=postgres://saas:${pg_password}@postgres:5432/saas?sslmode=disable
SAAS_ENCRYPTION_KEYS=local1:$(head -c 32 /dev/urandom | base64 -w 0)
SAAS_JWT_SECRET=$(random 48)
SAAS_API_KEY_SECRET=$(random 48)
SAAS_ADMIN_TOKEN=msop_$(random 32)
SAAS_GATEWAY_TOKEN=msgw_$(random 32)
ENV
cat >"$dir/gateway.env" <<ENV
# The local gateway's own auth token (gateway-base.json5 refers to it).
OPENCLAW_GATEWAY_TOKEN=$(random 32)
ENV
echo "make-secrets.sh: wrote $dir/stack.env, $dir/gateway.env and $dir/postgres_password" >&2
echo "make-secrets.sh: the operator token is SAAS_ADMIN_TOKEN in $dir/stack.env" >&2
