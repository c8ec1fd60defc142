#!/usr/bin/env bash
# A client generated from GET /openapi.json runs the README's quick start: PyPI's
# openapi-python-client generates a typed Python package from the document (any mismatch it
# cannot model fails here), and scripts/contract/quick_start.py drives a real server (the
# workspace binary on a temporary SQLite file) through it: create a tenant, add a Telegram
# channel, give it its bot token, read the gateway config, and check a refusal comes back as
# the documented error body.
#
# Self-installing: a virtualenv (default ~/.cache/moltbot-saas/openapi-client-venv) with a pinned
# openapi-python-client. Knobs: CLIENT_VENV, CONTRACT_SERVER_BIN.
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"

GENERATOR_VERSION=0.29.1
venv="${CLIENT_VENV:-$HOME/.cache/moltbot-saas/openapi-client-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/openapi-python-client" --version 2>/dev/null | grep -q "$GENERATOR_VERSION" \
  || "$venv/bin/pip" install --quiet --disable-pip-version-check \
       "openapi-python-client==$GENERATOR_VERSION" python-dateutil

bin="${CONTRACT_SERVER_BIN:-}"
if [ -z "$bin" ]; then
  cargo build --locked -q -p tenant-server --bin moltbot-saas
  bin="${CARGO_TARGET_DIR:-target}/debug/moltbot-saas"
fi

dir="$(mktemp -d -t generated-client.XXXXXX)"
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
token="ci-operator-token-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
DATABASE_URL="sqlite://$dir/db.sqlite" SAAS_DATA_DIR="$dir" SAAS_API_PORT="$port" \
  SAAS_ADMIN_TOKEN="$token" SAAS_WEBHOOK_DISPATCHER=false SAAS_LOG_FORMAT=json \
  "$bin" >"$dir/server.log" 2>&1 &
pid=$!
api="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
  curl -sf "$api/ready" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "$api/ready" >/dev/null || { cat "$dir/server.log"; exit 1; }

curl -sf -H "Authorization: Bearer $token" "$api/openapi.json" >"$dir/openapi.json"
# --fail-on-warning: a schema the generator cannot model is a contract failure.
(cd "$dir" && "$venv/bin/openapi-python-client" generate --path openapi.json \
  --meta none --output-path moltbot_client --fail-on-warning \
  --config "$root/scripts/contract/openapi-python-client.yaml")
PYTHONPATH="$dir" SAAS_URL="$api" SAAS_TOKEN="$token" \
  "$venv/bin/python" "$root/scripts/contract/quick_start.py"
