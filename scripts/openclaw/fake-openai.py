#!/usr/bin/env python3
"""fake-openai.py - a tiny OpenAI-compatible model server for end-to-end checks without the
internet.

    python3 scripts/openclaw/fake-openai.py PORT [LOG.jsonl]

Listens on 127.0.0.1:PORT. `POST /v1/chat/completions` answers "pong from the fake model" (the
gateway wraps a user's text in context of its own, so the answer does not echo it), as a stream of server-sent events when the request asks for `stream` (what openclaw's
`openai-completions` provider does), else as one JSON completion; `GET /v1/models` lists the one
model `echo-1`. Each request is appended to LOG (path, model, stream flag; no message text).
Point a gateway at it with a provider `{baseUrl: "http://127.0.0.1:PORT/v1", api:
"openai-completions", apiKey: "...", models: [{id: "echo-1", name: "Echo"}]}`.
Standard library only.
"""

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "echo-1"
REPLY = "pong from the fake model"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    log_path = None

    def log_message(self, *args):
        pass

    def note(self, entry):
        if self.log_path:
            with open(self.log_path, "a") as f:
                f.write(json.dumps(entry) + "\n")

    def send_json(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.note({"method": "GET", "path": self.path})
        if self.path.rstrip("/").endswith("/models"):
            self.send_json(200, {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "fake"}]})
        else:
            self.send_json(404, {"error": {"message": "not found"}})

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        try:
            req = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self.send_json(400, {"error": {"message": "bad json"}})
            return
        self.note({"method": "POST", "path": self.path, "model": req.get("model"), "stream": bool(req.get("stream"))})
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self.send_json(404, {"error": {"message": "not found"}})
            return
        text = REPLY
        created = int(time.time())
        model = req.get("model") or MODEL
        usage = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
        if not req.get("stream"):
            self.send_json(200, {
                "id": "chatcmpl-fake", "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": usage,
            })
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.end_headers()
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created, "model": model}
        chunks = [
            dict(base, choices=[{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]),
            dict(base, choices=[{"index": 0, "delta": {"content": text}, "finish_reason": None}]),
            dict(base, choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}]),
            dict(base, choices=[], usage=usage),
        ]
        for c in chunks:
            self.wfile.write(b"data: " + json.dumps(c).encode() + b"\n\n")
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: fake-openai.py PORT [LOG.jsonl]")
    Handler.log_path = sys.argv[2] if len(sys.argv) > 2 else None
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    print(f"fake-openai listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
