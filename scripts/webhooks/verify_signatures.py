"""Verifies webhook deliveries captured from moltbot-saas with the independent `standardwebhooks`
package from PyPI (https://pypi.org/project/standardwebhooks/).

Input: a JSON-lines file; each line holds the exact body and the three Standard Webhooks headers
of one delivery a real receiver got, and every secret that must verify it (two during a secret
rotation's overlap window). Exit 0 when every signature verifies with every listed secret and a
tampered body is rejected; 1 otherwise.
"""

import json
import sys

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def main(path: str) -> int:
    with open(path, encoding="utf-8") as f:
        deliveries = [json.loads(line) for line in f if line.strip()]
    if not deliveries:
        print(f"no captured deliveries in {path}", file=sys.stderr)
        return 1
    checked = 0
    rotated = 0
    for d in deliveries:
        headers = d["headers"]
        body = d["body"].encode("utf-8")
        if len(d["secrets"]) > 1:
            rotated += 1
        for secret in d["secrets"]:
            Webhook(secret).verify(body, headers)
            checked += 1
            try:
                Webhook(secret).verify(body + b" ", headers)
            except WebhookVerificationError:
                pass
            else:
                print(f"a tampered body verified for {headers['webhook-id']}", file=sys.stderr)
                return 1
    print(
        f"standardwebhooks verified {checked} signature(s) on {len(deliveries)} delivery(ies), "
        f"{rotated} during a secret rotation"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
