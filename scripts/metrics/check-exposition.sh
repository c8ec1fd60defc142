#!/usr/bin/env bash
# The independent check of GET /metrics: a real server (the debug binary, on a temporary SQLite
# file) serves some traffic, and its exposition — read through the API with the operator token
# and through the separate SAAS_METRICS_ADDR listener — is parsed by PyPI's `prometheus-client`
# (its text parser, not our code) and checked against Prometheus' naming conventions and
# docs/monitoring.md (scripts/metrics/check_exposition.py).
#
# Self-installing: a virtualenv (default ~/.cache/moltbot-saas/metrics-venv) with
# `pip install prometheus-client`. Knobs: METRICS_VENV, METRICS_SERVER_BIN.
set -euo pipefail
cd "$(dirname "$0")/../.."

venv="${METRICS_VENV:-$HOME/.cache/moltbot-saas/metrics-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -c 'import prometheus_client' 2>/dev/null \
  || "$venv/bin/pip" install --quiet --disable-pip-version-check prometheus-client

# METRICS_SERVER_BIN: a server binary to check instead of the tree's debug build.
bin="${METRICS_SERVER_BIN:-}"
if [ -z "$bin" ]; then
  cargo build --locked -q -p tenant-server --bin moltbot-saas
  bin="${CARGO_TARGET_DIR:-target}/debug/moltbot-saas"
fi

dir="$(mktemp -d -t metrics-check.XXXXXX)"
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
api_port="$(free_port)"
metrics_port="$(free_port)"
token="ci-operator-token-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
gateway="ci-gateway-token-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"

DATABASE_URL="sqlite://$dir/db.sqlite" SAAS_DATA_DIR="$dir" SAAS_API_PORT="$api_port" \
  SAAS_ADMIN_TOKEN="$token" SAAS_GATEWAY_TOKEN="$gateway" \
  SAAS_METRICS_ADDR="127.0.0.1:$metrics_port" SAAS_METRICS_REFRESH_SECS=1 \
  SAAS_LOG_FORMAT=json "$bin" >"$dir/server.log" 2>&1 &
pid=$!

api="http://127.0.0.1:$api_port"
for _ in $(seq 1 100); do
  curl -sf "$api/ready" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "$api/ready" >/dev/null || { cat "$dir/server.log"; exit 1; }

auth=(-H "Authorization: Bearer $token" -H 'Content-Type: application/json')
tenant="$(curl -sf "${auth[@]}" -X POST "$api/tenants" -d '{"name": "Metrics Check", "plan": "pro"}')"
id="$(printf '%s' "$tenant" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
account="$(printf '%s' "$tenant" | python3 -c 'import json,sys; print(json.load(sys.stdin)["accountId"])')"
curl -sf "${auth[@]}" "$api/tenants/$id" >/dev/null
curl -s "${auth[@]}" "$api/tenants/not-a-uuid" >/dev/null
curl -s "${auth[@]}" "$api/no/such/route" >/dev/null
curl -sf -H "Authorization: Bearer $gateway" -H 'Content-Type: application/json' -X POST "$api/events" \
  -d "{\"id\": \"ci-1\", \"type\": \"message.received\", \"accountId\": \"$account\", \"data\": {}}" >/dev/null
curl -sf -H "Authorization: Bearer $gateway" "$api/config" >/dev/null
# The store gauges are refreshed every second.
sleep 1.5

curl -sf -H "Authorization: Bearer $token" "$api/metrics" >"$dir/api.txt"
curl -sf "http://127.0.0.1:$metrics_port/metrics" >"$dir/listener.txt"
"$venv/bin/python" scripts/metrics/check_exposition.py docs/monitoring.md "$dir/api.txt" "$dir/listener.txt"
