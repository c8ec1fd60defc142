#!/usr/bin/env python3
"""webhook-receiver.py - a tenant's webhook endpoint for end-to-end checks, and the check of
what it received.

    python3 scripts/openclaw/webhook-receiver.py serve PORT OUT.jsonl
    python3 scripts/openclaw/webhook-receiver.py verify SECRET OUT.jsonl

`serve` listens on 127.0.0.1:PORT and answers every POST with 204, appending one JSON line per
request to OUT: the path, the Standard Webhooks headers and the raw body (base64, so the bytes
the signature covers are kept exactly).

`verify` checks every captured request against the endpoint's signing secret (`whsec_...`): the
`webhook-signature` header must hold a `v1,` entry equal to base64(HMAC-SHA256(key,
"{webhook-id}.{webhook-timestamp}.{body}")) with key the base64-decoded part after `whsec_`
(https://www.standardwebhooks.com), compared in constant time, and the timestamp must be
within 5 minutes of the request's arrival. It prints one JSON object per delivery
({"webhookId", "type", "id", "data"}) on stdout and exits 1 if any request fails.
Standard library only.
"""

import base64
import hashlib
import hmac
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature", "content-type")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    out_path = None

    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        entry = {
            "path": self.path,
            "receivedAt": time.time(),
            "headers": {h: self.headers.get(h) for h in HEADERS},
            "body": base64.b64encode(body).decode(),
        }
        with open(self.out_path, "a") as f:
            f.write(json.dumps(entry) + "\n")
        self.send_response(204)
        self.send_header("content-length", "0")
        self.end_headers()


def serve(port, out):
    Handler.out_path = out
    server = ThreadingHTTPServer(("127.0.0.1", int(port)), Handler)
    print(f"webhook receiver listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


def verify(secret, path):
    if not secret.startswith("whsec_"):
        sys.exit("verify: the secret must start with whsec_")
    key = base64.b64decode(secret[len("whsec_"):])
    failures = 0
    with open(path) as f:
        entries = [json.loads(line) for line in f if line.strip()]
    for n, e in enumerate(entries, 1):
        h = e["headers"]
        body = base64.b64decode(e["body"])
        problem = None
        if not (h.get("webhook-id") and h.get("webhook-timestamp") and h.get("webhook-signature")):
            problem = "missing Standard Webhooks headers"
        else:
            signed = f'{h["webhook-id"]}.{h["webhook-timestamp"]}.'.encode() + body
            expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
            given = [s.split(",", 1)[1] for s in h["webhook-signature"].split() if s.startswith("v1,")]
            if not any(hmac.compare_digest(expected, g) for g in given):
                problem = "no signature matches"
            elif abs(int(h["webhook-timestamp"]) - e["receivedAt"]) > 300:
                problem = "timestamp more than 5 minutes off"
        if problem:
            failures += 1
            print(f"verify: request {n} ({h.get('webhook-id')}): {problem}", file=sys.stderr)
            continue
        payload = json.loads(body)
        print(json.dumps({"webhookId": h["webhook-id"], "type": payload.get("type"),
                          "id": payload.get("id"), "data": payload.get("data")}))
    if failures:
        sys.exit(1)


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "verify":
        verify(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
