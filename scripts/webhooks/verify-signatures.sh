#!/usr/bin/env bash
# The independent signature check: real deliveries from the dispatcher to a receiver on 127.0.0.1
# (the webhook delivery tests, which write what the receiver got to WEBHOOK_CAPTURE_FILE) are
# verified by the `standardwebhooks` package from PyPI, not by our own code.
#
# Self-installing: creates a virtualenv (default ~/.cache/moltbot-saas/webhooks-venv) with
# `pip install standardwebhooks`. Uses TEST_DATABASE_URL when set, like the tests.
set -euo pipefail
cd "$(dirname "$0")/../.."

venv="${WEBHOOK_VENV:-$HOME/.cache/moltbot-saas/webhooks-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -c 'import standardwebhooks' 2>/dev/null \
  || "$venv/bin/pip" install --quiet --disable-pip-version-check standardwebhooks

capture="$(mktemp -t webhook-capture.XXXXXX.jsonl)"
trap 'rm -f "$capture"' EXIT
WEBHOOK_CAPTURE_FILE="$capture" cargo test --locked -p moltbot-saas-tests --test it \
  webhooks_delivery:: -- --test-threads=2
"$venv/bin/python" scripts/webhooks/verify_signatures.py "$capture"
