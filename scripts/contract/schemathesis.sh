#!/usr/bin/env bash
# The API contract checked by an independent tool: schemathesis (PyPI) generates requests from
# GET /openapi.json and checks every answer against it (all checks: status codes, content types,
# headers and bodies against their schemas, schema-valid data accepted and schema-invalid data
# refused, 405 + Allow for undeclared methods, auth not ignored, stateful links), against a real
# server (the workspace binary on a temporary SQLite file) seeded with a tenant, a channel, a
# user, an API key and a webhook endpoint with a delivery. Then the access matrix
# (docs/security.md): the same operations with no credential (401 wherever security is
# declared) and with another tenant's API key (404 under /tenants/{id}, 403 on operator routes).
#
# The setup it shares with generated-client.sh is scripts/contract/lib.sh. Self-installing: a
# virtualenv (default ~/.cache/moltbot-saas/schemathesis-venv) with a pinned schemathesis.
# Knobs: CONTRACT_VENV, CONTRACT_SERVER_BIN, CONTRACT_MAX_EXAMPLES (default 15),
# CONTRACT_WORKERS (default 1: schemathesis's generation in threads trips a CPython 3.11 parser bug).
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"

. scripts/contract/lib.sh

SCHEMATHESIS_VERSION=4.32.5
venv="${CONTRACT_VENV:-$HOME/.cache/moltbot-saas/schemathesis-venv}"
contract_venv "$venv" schemathesis "$SCHEMATHESIS_VERSION" "schemathesis==$SCHEMATHESIS_VERSION"

# The rate limits are off (429 is documented on every operation; generating requests is a
# burst no plan allows); only failed requests are logged.
contract_start SAAS_RATE_LIMIT=false SAAS_ACCESS_LOG=errors
api="$CONTRACT_API"

# The seed: two tenants (the second one's key is the foreign key), a channel, a user, an API key,
# a webhook endpoint and a delivery.
post() { contract_post "$@"; }
field() { contract_field "$@"; }
tenant="$(post /tenants '{"name": "Contract Check", "plan": "enterprise"}')"
export CONTRACT_TENANT_ID="$(printf '%s' "$tenant" | field id)"
foreign_key="$(post /tenants '{"name": "Foreign Tenant"}' | field apiKey)"
post "/tenants/$CONTRACT_TENANT_ID/channels" '{"channel": "telegram", "credentials": {"botToken": "123456:contract-check-token"}}' >/dev/null
export CONTRACT_USER_ID="$(post "/tenants/$CONTRACT_TENANT_ID/users" '{"email": "owner@contract.test", "role": "owner", "password": "a long contract passphrase"}' | field id)"
export CONTRACT_KEY_ID="$(post "/tenants/$CONTRACT_TENANT_ID/api-keys" '{"name": "contract"}' | field id)"
export CONTRACT_WEBHOOK_ID="$(post "/tenants/$CONTRACT_TENANT_ID/webhooks" '{"url": "https://example.com/contract"}' | field id)"
export CONTRACT_DELIVERY_ID="$(post "/tenants/$CONTRACT_TENANT_ID/webhooks/$CONTRACT_WEBHOOK_ID/test" '{}' | field deliveryId)"
contract_document

st() {
  PYTHONPATH="$root/scripts/contract" SCHEMATHESIS_HOOKS=contract_checks \
    "$venv/bin/schemathesis" --config-file "$root/scripts/contract/schemathesis.toml" run "$CONTRACT_DIR/openapi.json" \
    --url "$api" --max-examples "${CONTRACT_MAX_EXAMPLES:-15}" --workers "${CONTRACT_WORKERS:-1}" \
    --seed "${CONTRACT_SEED:-20}" --generation-database none --no-color --output-sanitize false "$@"
}

echo "== every operation but DELETE, as an operator, all checks"
st -H "Authorization: Bearer $CONTRACT_TOKEN" --checks all --exclude-method DELETE
echo "== DELETE operations last (they remove the seeded rows), as an operator, all checks"
st -H "Authorization: Bearer $CONTRACT_TOKEN" --checks all --include-method DELETE

# The access matrix on fresh rows: the operator run deleted them.
tenant="$(post /tenants '{"name": "Contract Check Again"}')"
export CONTRACT_TENANT_ID="$(printf '%s' "$tenant" | field id)"
echo "== no credential: 401 wherever security is declared"
CONTRACT_EXPECT=unauthenticated st --checks access_matrix,not_a_server_error,status_code_conformance,response_schema_conformance \
  --phases examples,coverage,fuzzing
echo "== another tenant's API key: 404 under /tenants/{id}, 403 on operator routes"
CONTRACT_EXPECT=foreign st -H "Authorization: Bearer $foreign_key" \
  --checks access_matrix,not_a_server_error,status_code_conformance,response_schema_conformance \
  --phases examples,coverage,fuzzing
echo "contract: schemathesis found no failures"
