# lib.sh - shared by the scripts in scripts/contract: a pinned PyPI tool in a cached virtualenv,
# the workspace server on a temporary SQLite file with an operator token, its OpenAPI document,
# and requests to seed it. Source it (bash, after `set -euo pipefail` and `cd` to the repository
# root); it only defines variables and functions.
#
#   . scripts/contract/lib.sh
#   contract_venv DIR COMMAND VERSION PACKAGE...  # DIR/bin/COMMAND --version shows VERSION, or
#                                                 # pip installs the packages (DIR created once)
#   contract_start [NAME=VALUE...]  # builds the server unless CONTRACT_SERVER_BIN names one,
#                                   # starts it with these settings added, waits until ready; sets
#                                   # CONTRACT_DIR, CONTRACT_API, CONTRACT_TOKEN, CONTRACT_GATEWAY_TOKEN;
#                                   # stops it and removes the directory on exit
#   contract_document               # writes $CONTRACT_DIR/openapi.json (fetched as the operator)
#   contract_post PATH JSON         # POST as the operator; prints the answer, fails on an error
#   contract_field NAME             # prints a field of the JSON object on standard input
#
# The server: rate limits per plan as configured, no outbound webhook deliveries
# (SAAS_WEBHOOK_DISPATCHER=false), JSON logs in $CONTRACT_DIR/server.log (printed if it does not
# become ready).

CONTRACT_ROOT="$PWD"
CONTRACT_DIR=""
CONTRACT_PID=""

contract_cleanup() {
  if [ -n "$CONTRACT_PID" ]; then
    kill "$CONTRACT_PID" 2>/dev/null || true
    wait "$CONTRACT_PID" 2>/dev/null || true
  fi
  if [ -n "$CONTRACT_DIR" ]; then rm -rf "$CONTRACT_DIR"; fi
}

contract_venv() { # DIR COMMAND VERSION PACKAGE...
  local venv="$1" command="$2" version="$3"
  shift 3
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
  fi
  "$venv/bin/$command" --version 2>/dev/null | grep -q "$version" \
    || "$venv/bin/pip" install --quiet --disable-pip-version-check "$@"
}

contract_random() { python3 -c 'import secrets; print(secrets.token_hex(16))'; }

contract_start() { # [NAME=VALUE...]
  local bin="${CONTRACT_SERVER_BIN:-}"
  if [ -z "$bin" ]; then
    cargo build --locked -q -p tenant-server --bin moltbot-saas
    bin="${CARGO_TARGET_DIR:-$CONTRACT_ROOT/target}/debug/moltbot-saas"
  fi
  CONTRACT_DIR="$(mktemp -d -t contract.XXXXXX)"
  trap contract_cleanup EXIT
  local port
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  CONTRACT_TOKEN="ci-operator-token-$(contract_random)"
  CONTRACT_GATEWAY_TOKEN="ci-gateway-token-$(contract_random)"
  env DATABASE_URL="sqlite://$CONTRACT_DIR/db.sqlite" SAAS_DATA_DIR="$CONTRACT_DIR" \
    SAAS_API_PORT="$port" SAAS_ADMIN_TOKEN="$CONTRACT_TOKEN" \
    SAAS_GATEWAY_TOKEN="$CONTRACT_GATEWAY_TOKEN" SAAS_WEBHOOK_DISPATCHER=false \
    SAAS_LOG_FORMAT=json "$@" "$bin" >"$CONTRACT_DIR/server.log" 2>&1 &
  CONTRACT_PID=$!
  CONTRACT_API="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do
    curl -sf "$CONTRACT_API/ready" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  curl -sf "$CONTRACT_API/ready" >/dev/null || { cat "$CONTRACT_DIR/server.log"; exit 1; }
}

contract_document() {
  curl -sf -H "Authorization: Bearer $CONTRACT_TOKEN" "$CONTRACT_API/openapi.json" \
    >"$CONTRACT_DIR/openapi.json"
}

contract_post() { # PATH JSON
  curl -sf -H "Authorization: Bearer $CONTRACT_TOKEN" -H 'Content-Type: application/json' \
    -X POST "$CONTRACT_API$1" -d "$2"
}

contract_field() { # NAME
  python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}
