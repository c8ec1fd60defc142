"""Signs a Stripe webhook body with the official `stripe` library (PyPI), as Stripe does.

Usage: stripe_sign.py SECRET TIMESTAMP < body   → prints the Stripe-Signature header.

The billing tests call it for every event they send when STRIPE_SIGNER points here
(scripts/billing/verify-stripe-signatures.sh), so the server's verification is checked against
an independent implementation; it also checks, with the library's own verifier, that the header
it made verifies (when the timestamp is recent).
"""

import sys
import time

import stripe


def main() -> int:
    secret, timestamp = sys.argv[1], int(sys.argv[2])
    payload = sys.stdin.buffer.read().decode("utf-8")
    header = stripe.WebhookSignature.generate_signature_header(
        payload, secret, timestamp=timestamp
    )
    if abs(time.time() - timestamp) <= 300:
        stripe.WebhookSignature.verify_header(payload, header, secret, tolerance=300)
    sys.stdout.write(header)
    return 0


if __name__ == "__main__":
    sys.exit(main())
