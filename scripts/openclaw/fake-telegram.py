#!/usr/bin/env python3
"""fake-telegram.py - a tiny Telegram Bot API for end-to-end checks without the internet.

    python3 scripts/openclaw/fake-telegram.py PORT LOG.jsonl

Listens on 127.0.0.1:PORT and answers `/bot<TOKEN>/<method>` as the Bot API would, for any
token: `getMe` (the bot's id is the token's number), `getUpdates` (long polling, at most 2 s a
call, over the updates queued for that token), `sendMessage` (recorded; answers the sent
message), `getWebhookInfo`, and `{"ok": true, "result": true}` for any other method
(`deleteWebhook`, `setMyCommands`, `sendChatAction`, ...). Every Bot API call is appended to
LOG as {"method", "token" (its number only)}.

The test drives it through two routes of its own:
    POST /control/message {"token", "chatId", "text"}  queues a private message to that bot
    GET  /control/sent                                 the messages bots sent, as a JSON list
Point a gateway at it with `channels.telegram.apiRoot: "http://127.0.0.1:PORT"`.
Standard library only.
"""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

LOCK = threading.Condition()
UPDATES = {}  # token -> list of updates
SENT = []
COUNTER = {"update": 1000, "message": 500}


def bot_id(token):
    head = token.split(":", 1)[0]
    return int(head) if head.isdigit() else 1


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    log_path = None

    def log_message(self, *args):
        pass

    def reply(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def params(self):
        url = urlparse(self.path)
        params = {k: v[-1] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        ctype = self.headers.get("content-type") or ""
        if raw and "json" in ctype:
            params.update(json.loads(raw))
        elif raw and "x-www-form-urlencoded" in ctype:
            params.update({k: v[-1] for k, v in parse_qs(raw.decode()).items()})
        return url.path, params

    def do_GET(self):
        self.handle_any()

    def do_POST(self):
        self.handle_any()

    def handle_any(self):
        path, params = self.params()
        if path == "/control/message":
            token = params["token"]
            with LOCK:
                COUNTER["update"] += 1
                COUNTER["message"] += 1
                chat = int(params.get("chatId", 4242))
                UPDATES.setdefault(token, []).append({
                    "update_id": COUNTER["update"],
                    "message": {
                        "message_id": COUNTER["message"],
                        "from": {"id": chat, "is_bot": False, "first_name": "Ann", "username": "ann"},
                        "chat": {"id": chat, "type": "private", "first_name": "Ann", "username": "ann"},
                        "date": int(time.time()),
                        "text": params["text"],
                    },
                })
                LOCK.notify_all()
            self.reply(200, {"ok": True})
            return
        if path == "/control/sent":
            with LOCK:
                self.reply(200, list(SENT))
            return
        parts = path.split("/")
        if len(parts) < 3 or not parts[1].startswith("bot"):
            self.reply(404, {"ok": False, "error_code": 404, "description": "Not Found"})
            return
        token, method = parts[1][3:], parts[2]
        if self.log_path:
            with open(self.log_path, "a") as f:
                f.write(json.dumps({"method": method, "token": bot_id(token)}) + "\n")
        me = {"id": bot_id(token), "is_bot": True, "first_name": "Fake bot", "username": f"fake{bot_id(token)}_bot",
              "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}
        if method == "getMe":
            self.reply(200, {"ok": True, "result": me})
        elif method == "getUpdates":
            offset = int(params.get("offset") or 0)
            wait = min(float(params.get("timeout") or 0), 2.0)
            deadline = time.time() + wait
            with LOCK:
                while True:
                    queue = UPDATES.setdefault(token, [])
                    # Updates before the offset are confirmed: forget them.
                    queue[:] = [u for u in queue if u["update_id"] >= offset]
                    if queue or time.time() >= deadline:
                        break
                    LOCK.wait(max(0.0, deadline - time.time()))
                self.reply(200, {"ok": True, "result": list(queue)})
        elif method == "sendMessage":
            with LOCK:
                COUNTER["message"] += 1
                chat = int(params.get("chat_id") or 0)
                msg = {"message_id": COUNTER["message"], "from": me,
                       "chat": {"id": chat, "type": "private", "first_name": "Ann"},
                       "date": int(time.time()), "text": params.get("text", "")}
                SENT.append({"token": bot_id(token), "chatId": chat, "text": msg["text"], "messageId": msg["message_id"]})
            self.reply(200, {"ok": True, "result": msg})
        elif method == "getWebhookInfo":
            self.reply(200, {"ok": True, "result": {"url": "", "has_custom_certificate": False, "pending_update_count": 0}})
        else:
            self.reply(200, {"ok": True, "result": True})


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: fake-telegram.py PORT LOG.jsonl")
    Handler.log_path = sys.argv[2]
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    print(f"fake Telegram Bot API listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
