#!/usr/bin/env bash
# The independent signature check of Stripe's webhooks: every event the billing tests send to a
# real server (applied, replayed, out of order, 301 s old, tampered, signed with another secret)
# is signed by the official `stripe` library from PyPI (`WebhookSignature.generate_signature_header`,
# scripts/billing/stripe_sign.py), not by our own code, and the server must accept exactly the
# valid ones. Runs the billing tests on the backend TEST_DATABASE_URL names (SQLite without it).
#
# Self-installing: a virtualenv (default ~/.cache/moltbot-saas/stripe-venv) with `pip install stripe`.
set -euo pipefail
cd "$(dirname "$0")/../.."

venv="${STRIPE_VENV:-$HOME/.cache/moltbot-saas/stripe-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -c 'import stripe; stripe.WebhookSignature.generate_signature_header' 2>/dev/null \
  || "$venv/bin/pip" install --quiet --disable-pip-version-check --upgrade stripe
echo "stripe $("$venv/bin/python" -c 'import stripe; print(stripe.VERSION)') from PyPI signs the events"

log="$(mktemp -t stripe-signed.XXXXXX)"
trap 'rm -f "$log"' EXIT
STRIPE_SIGNER="$venv/bin/python $PWD/scripts/billing/stripe_sign.py" STRIPE_SIGNED_LOG="$log" \
  cargo test --locked -p moltbot-saas-tests --test it billing:: -- --test-threads=2
signed=$(wc -l <"$log")
if [ "$signed" -lt 20 ]; then
  echo "only $signed events were signed by the stripe library: the tests did not use it" >&2
  exit 1
fi
echo "$signed Stripe events signed by the official stripe library; the server accepted exactly the valid ones"
