#!/usr/bin/env bash
# A client generated from GET /openapi.json runs the README's quick start: PyPI's
# openapi-python-client generates a typed Python package from the document (any mismatch it
# cannot model fails here), and scripts/contract/quick_start.py drives a real server (the
# workspace binary on a temporary SQLite file) through it: create a tenant, add a Telegram
# channel, give it its bot token, read the gateway config, and check a refusal comes back as
# the documented error body.
#
# The setup it shares with schemathesis.sh is scripts/contract/lib.sh. Self-installing: a
# virtualenv (default ~/.cache/moltbot-saas/openapi-client-venv) with a pinned
# openapi-python-client. Knobs: CLIENT_VENV, CONTRACT_SERVER_BIN.
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"

. scripts/contract/lib.sh

GENERATOR_VERSION=0.29.1
venv="${CLIENT_VENV:-$HOME/.cache/moltbot-saas/openapi-client-venv}"
contract_venv "$venv" openapi-python-client "$GENERATOR_VERSION" \
  "openapi-python-client==$GENERATOR_VERSION" python-dateutil

contract_start
contract_document
# --fail-on-warning: a schema the generator cannot model is a contract failure.
(cd "$CONTRACT_DIR" && "$venv/bin/openapi-python-client" generate --path openapi.json \
  --meta none --output-path moltbot_client --fail-on-warning \
  --config "$root/scripts/contract/openapi-python-client.yaml")
PYTHONPATH="$CONTRACT_DIR" SAAS_URL="$CONTRACT_API" SAAS_TOKEN="$CONTRACT_TOKEN" \
  "$venv/bin/python" "$root/scripts/contract/quick_start.py"
