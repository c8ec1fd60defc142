#!/usr/bin/env bash
# e2e-bridge.sh - end-to-end check of the gateway bridge with the real OpenClaw gateway: a
# message sent into the gateway becomes a signed webhook at the tenant's endpoint, and nothing is
# lost or doubled while the control plane is down.
#
#   scripts/openclaw/e2e-bridge.sh
#
# Everything runs on 127.0.0.1 inside one network namespace with only a loopback interface
# (unshare -n; when the kernel does not allow it, on the host's loopback): the control plane,
# the gateway, a fake OpenAI-compatible model (fake-openai.py), a fake Telegram Bot API
# (fake-telegram.py) and the tenant's webhook endpoint (webhook-receiver.py). Nothing reaches
# the internet.
#
# 1. Builds `moltbot-saas`, installs the bridge plugin with `moltbot-saas gateway install-bridge`,
#    and starts the control plane (throwaway SQLite database, secrets mode secret-ref) with
#    SAAS_GATEWAY_BRIDGE_PATH and SAAS_PUBLIC_URL set. Creates a tenant with a Telegram channel
#    and a webhook endpoint on the receiver.
# 2. `moltbot-saas config sync --interval 1` keeps the gateway's config (and its env file); the
#    base config points the model and Telegram (`apiRoot`, open DMs) at the fakes and tunes the
#    bridge's retries.
# 3. Starts the real gateway (openclaw 2026.9.6 on Node 24) with the env file loaded, and waits
#    for the bridge to start sending and the tenant's Telegram account to poll the fake.
# 4. `openclaw gateway call chat.send` on the tenant's session key: the control plane must store
#    message.received and session.started for the tenant (read from its database), and the
#    receiver must get both, signed (Standard Webhooks, checked by webhook-receiver.py verify).
# 5. Stops the control plane, sends a second message, waits for the bridge to fail to deliver it,
#    starts the control plane again: the second message must be stored and delivered exactly
#    once, the first not again.
# 6. A private message to the tenant's bot through the fake Bot API: the real Telegram channel
#    account receives it and sends the model's reply, so the control plane must store and
#    deliver message.received (channel telegram, the tenant's account) and message.sent.
#
# Every wait is bounded; every process started here is stopped on exit. Prints PASS or FAIL and
# exits 0 or 1 (2: could not set up). The work directory is kept on failure.
#
# Environment:
#   E2E_KEEP=1           keep the work directory even on success
#   E2E_STEP_TIMEOUT     seconds to wait for each delivery (default 60)
#   E2E_START_TIMEOUT    seconds to wait for the gateway to be ready (default 180; ~30 s here)
#   CARGO_TARGET_DIR     as for cargo; OPENCLAW_CACHE, OPENCLAW_NODE, OPENCLAW_CURRENT: see lib.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

OPENCLAW_PROG=e2e-bridge.sh
. scripts/openclaw/lib.sh
. scripts/openclaw/e2e-lib.sh

STEP_TIMEOUT="${E2E_STEP_TIMEOUT:-60}"
START_TIMEOUT="${E2E_START_TIMEOUT:-180}"
ADMIN_TOKEN="msop_e2e_bridge_operator_token_0123456789abcdef"
SAAS_GW_TOKEN="msgw_e2e_bridge_gateway_token_0123456789abcdef"
OC_TOKEN="openclaw-e2e-bridge-gateway-auth-token-0123456789"

for tool in curl cargo python3; do
  command -v "$tool" >/dev/null || openclaw_die "$tool is needed"
done
openclaw_select current
openclaw_install

WORK="$(mktemp -d "${TMPDIR:-/tmp}/openclaw-e2e-bridge.XXXXXX")"
CONFIG="$WORK/openclaw.json"
GWLOG="$WORK/gateway.log"
NS_PID="" SERVER_PID="" SYNC_PID="" GW_PID="" MODEL_PID="" HOOK_PID="" TG_PID=""

# Stops what was started here (the gateway with its process group), prints the verdict.
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ "$rc" = 0 ] || RESULT=FAIL
  e2e_stop_all "$GW_PID" "$SYNC_PID" "$SERVER_PID" "$MODEL_PID" "$HOOK_PID" "$TG_PID" "$NS_PID"
  if [ "${RESULT:-}" = PASS ]; then
    if [ "${E2E_KEEP:-0}" = 1 ]; then echo "work directory kept: $WORK"; else rm -rf "$WORK"; fi
    echo "PASS: messages through the real gateway (chat.send and a Telegram account) became signed webhooks at the tenant's endpoint, each exactly once, across a control plane outage ($((SECONDS - T0))s)"
    exit 0
  fi
  if [ -f "$GWLOG" ]; then
    echo "---- gateway log (last 40 lines of $GWLOG) ----" >&2
    tail -n 40 "$GWLOG" >&2
  fi
  for f in server sync model hooks telegram; do
    if [ -s "$WORK/$f.log" ]; then
      echo "---- $f log (last 10 lines) ----" >&2
      tail -n 10 "$WORK/$f.log" >&2
    fi
  done
  echo "FAIL: end-to-end bridge check failed (exit $rc); everything is kept in $WORK" >&2
  exit "$([ "$rc" = 0 ] && echo 1 || echo "$rc")"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- the network namespace -------------------------------------------------------------------
# One namespace for every process, so the gateway's bridge reaches the control plane and the
# control plane the receiver on 127.0.0.1, and nothing reaches anything else.
openclaw_netns
if [ ${#WRAP[@]} -gt 0 ] && command -v ip >/dev/null && command -v nsenter >/dev/null; then
  setsid unshare -n sh -c 'ip link set lo up && exec sleep 86400' >/dev/null 2>&1 &
  NS_PID=$!
  ns_up() { nsenter -t "$NS_PID" -n ip -o link show lo 2>/dev/null | grep -q 'LOOPBACK,UP'; }
  wait_until 10 "the network namespace" ns_up
  IN=(nsenter -t "$NS_PID" -n)
  log "network namespace ready (held by pid $NS_PID): only a loopback interface"
else
  echo "$OPENCLAW_PROG: note: running on this host's loopback (no network namespace)" >&2
fi
in_ns() { "${IN[@]}" "$@"; }

# ---- 1. the control plane --------------------------------------------------------------------
e2e_build

BRIDGE_DIR="$WORK/bridge"
"$BIN" gateway install-bridge "$BRIDGE_DIR" >"$WORK/install.log" 2>&1 ||
  fail "install-bridge failed: $(cat "$WORK/install.log")"
log "$(head -n 1 "$WORK/install.log")"

API_PORT="$(free_port)" && GW_PORT="$(free_port)" && MODEL_PORT="$(free_port)" &&
  HOOK_PORT="$(free_port)" && TG_PORT="$(free_port)" || openclaw_die "no free ports found"
API="http://127.0.0.1:$API_PORT"

# Started without a shell function in between, so $! is the process itself (nsenter execs it).
"${IN[@]}" python3 scripts/openclaw/fake-openai.py "$MODEL_PORT" "$WORK/model.jsonl" >"$WORK/model.log" 2>&1 &
MODEL_PID=$!
"${IN[@]}" python3 scripts/openclaw/webhook-receiver.py serve "$HOOK_PORT" "$WORK/hooks.jsonl" >"$WORK/hooks.log" 2>&1 &
HOOK_PID=$!
"${IN[@]}" python3 scripts/openclaw/fake-telegram.py "$TG_PORT" "$WORK/telegram.jsonl" >"$WORK/telegram.log" 2>&1 &
TG_PID=$!

export DATABASE_URL="sqlite://$WORK/saas.db"
export SAAS_ADMIN_TOKEN="$ADMIN_TOKEN" SAAS_GATEWAY_TOKEN="$SAAS_GW_TOKEN"
export SAAS_BIND_ADDRESS=127.0.0.1 SAAS_API_PORT="$API_PORT" SAAS_LOG_FORMAT=json SAAS_WORKERS=2
export SAAS_ACCESS_LOG=all
export SAAS_CONFIG_DIALECT=current SAAS_CONFIG_SECRETS=secret-ref
export SAAS_GATEWAY_WORKSPACE_ROOT="$WORK/gateway/workspaces"
export SAAS_GATEWAY_AGENT_DIR_ROOT="$WORK/gateway/agents"
export SAAS_GATEWAY_WHATSAPP_ROOT="$WORK/gateway/whatsapp"
export SAAS_GATEWAY_BASE_CONFIG="$WORK/base.json5"
export SAAS_GATEWAY_BRIDGE_PATH="$BRIDGE_DIR" SAAS_PUBLIC_URL="$API"
export SAAS_WEBHOOK_ALLOWED_NETWORKS=127.0.0.1/32 SAAS_WEBHOOK_POLL_INTERVAL_MS=200
mkdir -p "$WORK/gateway/home" "$WORK/gateway/state" "$WORK/cli/home" "$WORK/cli/state"

cat > "$SAAS_GATEWAY_BASE_CONFIG" <<EOF
// Base config of the bridge check: the gateway runs locally, offline, on a fake model and a
// fake Telegram Bot API (every account inherits apiRoot; DMs open to anyone); an operator
// agent of its own; the bridge retries quickly so the check stays short.
{
  gateway: {
    mode: "local",
    bind: "loopback",
    port: $GW_PORT,
    auth: { mode: "token", token: "$OC_TOKEN" },
  },
  discovery: { mdns: { mode: "off" } },
  update: { checkOnStart: false },
  models: {
    catalogRefresh: { enabled: false },
    providers: {
      fake: {
        baseUrl: "http://127.0.0.1:$MODEL_PORT/v1",
        apiKey: "fake-model-key",
        api: "openai-completions",
        models: [{ id: "echo-1", name: "Echo" }],
      },
    },
  },
  agents: {
    defaults: { model: { primary: "fake/echo-1" } },
    entries: {
      ops: { name: "Operator desk", workspace: "$WORK/gateway/ops/workspace", agentDir: "$WORK/gateway/ops/agent" },
    },
  },
  channels: {
    telegram: { apiRoot: "http://127.0.0.1:$TG_PORT", dmPolicy: "open", allowFrom: ["*"] },
  },
  logging: { file: "$WORK/gateway/openclaw.jsonl" },
  plugins: {
    entries: {
      "moltbot-saas-bridge": { config: { retryInitialMs: 200, retryMaxMs: 1000, drainOnStopMs: 2000 } },
    },
  },
}
EOF

start_server() {
  "${IN[@]}" "$BIN" serve >>"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  wait_until 30 "moltbot-saas /ready" server_ready
  log "moltbot-saas (pid $SERVER_PID) ready on $API"
}
server_ready() {
  kill -0 "$SERVER_PID" 2>/dev/null || fail "moltbot-saas exited: $(tail -n 5 "$WORK/server.log")"
  in_ns curl -fsS -o /dev/null --max-time 2 "$API/ready"
}
stop_server() {
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  ! in_ns curl -fsS -o /dev/null --max-time 2 "$API/health" 2>/dev/null || fail "the control plane still answers"
  SERVER_PID=""
}
start_server

api POST /tenants '{"name": "Bridge Co"}'
TENANT_ID="$(json_get id <"$WORK/answer.json")"
AGENT_ID="$(json_get agentId <"$WORK/answer.json")"
ACCOUNT_ID="$(json_get accountId <"$WORK/answer.json")"
BOT_TOKEN="300000003:AAbridgeTenantTokenForTheEndToEndCheck"
api POST "/tenants/$TENANT_ID/channels" \
  "{\"channel\": \"telegram\", \"enabled\": true, \"credentials\": {\"botToken\": \"$BOT_TOKEN\"}}"
api POST "/tenants/$TENANT_ID/webhooks" "{\"url\": \"http://127.0.0.1:$HOOK_PORT/hook\"}"
SECRET="$(json_get secret <"$WORK/answer.json")"
[ -n "$SECRET" ] || fail "no webhook secret in $(cat "$WORK/answer.json")"
log "tenant $TENANT_ID (agent $AGENT_ID, account $ACCOUNT_ID), webhook endpoint on 127.0.0.1:$HOOK_PORT"

# ---- 2. config sync --------------------------------------------------------------------------
"$BIN" config sync --out "$CONFIG" --interval 1 >"$WORK/sync.log" 2>&1 &
SYNC_PID=$!
synced() {
  kill -0 "$SYNC_PID" 2>/dev/null || fail "config sync exited: $(tail -n 5 "$WORK/sync.log")"
  grep -qF "\"$AGENT_ID\"" "$CONFIG" 2>/dev/null && grep -qF '"moltbot-saas-bridge"' "$CONFIG" &&
    [ -f "$CONFIG.env" ]
}
wait_until 30 "config sync to write $CONFIG with the tenant and the bridge" synced
grep -qF "$SAAS_GW_TOKEN" "$CONFIG" && fail "the gateway token is in the document (secret-ref mode)"
grep -qF "MOLTBOT_SAAS_GATEWAY_TOKEN=$SAAS_GW_TOKEN" "$CONFIG.env" || fail "the env file lacks the bridge token"
log "config sync (pid $SYNC_PID) keeps $CONFIG and $CONFIG.env"

# ---- 3. the gateway --------------------------------------------------------------------------
# setsid: the gateway leads its own process group, so cleanup can stop its helpers with it. The
# env file is loaded as a systemd EnvironmentFile would.
setsid "${IN[@]}" env -i PATH="$(dirname "$NODE"):/usr/bin:/bin" \
  HOME="$WORK/gateway/home" OPENCLAW_STATE_DIR="$WORK/gateway/state" \
  OPENCLAW_CONFIG_PATH="$CONFIG" OPENCLAW_CONFIG_READONLY=1 \
  NO_COLOR=1 FORCE_COLOR=0 TZ=UTC ENVFILE="$CONFIG.env" \
  bash -c 'set -a; . "$ENVFILE"; set +a; unset ENVFILE; exec "$0" "$@"' \
  "$NODE" "$CLI" gateway run >"$GWLOG" 2>&1 &
GW_PID=$!
log "gateway openclaw@$VERSION starting (pid $GW_PID, port $GW_PORT)"
gw_alive() { kill -0 "$GW_PID" 2>/dev/null || fail "the gateway exited (see $GWLOG)"; }
gw_ready() { gw_alive; grep -qE '\[gateway\] ready$' "$GWLOG"; }
wait_until "$START_TIMEOUT" "the gateway to log '[gateway] ready'" gw_ready
bridge_started() { gw_alive; grep -qF "moltbot-saas-bridge: sending events to $API/events" "$GWLOG"; }
wait_until 30 "the bridge to start sending" bridge_started
log "gateway ready; $(grep -m1 -o 'moltbot-saas-bridge: sending events to.*' "$GWLOG")"
polling() { gw_alive; grep -q '"method": "getUpdates", "token": 300000003' "$WORK/telegram.jsonl" 2>/dev/null; }
wait_until 60 "the tenant's Telegram account to poll the fake Bot API" polling
log "the tenant's Telegram account $ACCOUNT_ID polls the fake Bot API"


# chat_send TEXT KEY: sends TEXT into the tenant's session, as a client of the running gateway.
SESSION_KEY="agent:$AGENT_ID:telegram:$ACCOUNT_ID:direct:4242"
chat_send() {
  local params rc=0
  params="{\"sessionKey\": \"$SESSION_KEY\", \"message\": \"$1\", \"idempotencyKey\": \"$2\"}"
  for _ in 1 2 3; do
    rc=0
    in_ns env -i PATH="$(dirname "$NODE"):/usr/bin:/bin" HOME="$WORK/cli/home" \
      OPENCLAW_STATE_DIR="$WORK/cli/state" NO_COLOR=1 TZ=UTC \
      timeout 60 "$NODE" "$CLI" gateway call chat.send --json --timeout 20000 \
      --url "ws://127.0.0.1:$GW_PORT" --token "$OC_TOKEN" --params "$params" \
      >"$WORK/chat-$2.json" 2>"$WORK/chat-$2.err" || rc=$?
    # A client killed by a signal is retried: the idempotency key makes it one message.
    [ "$rc" -ge 128 ] || break
  done
  [ "$rc" = 0 ] || fail "chat.send '$1' failed ($rc): $(cat "$WORK/chat-$2.json" "$WORK/chat-$2.err")"
  grep -q '"status": *"started"' "$WORK/chat-$2.json" || fail "chat.send '$1': $(cat "$WORK/chat-$2.json")"
  log "sent '$1' into $SESSION_KEY"
}

# stored TYPE [TEXT]: how many events of TYPE (with data.text TEXT) the control plane stored for
# the tenant, read from its database.
stored() {
  python3 - "$WORK/saas.db" "$TENANT_ID" "$1" "${2:-}" <<'PY'
import json, sqlite3, sys
db, tenant, kind, text = sys.argv[1:]
con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
rows = con.execute("SELECT payload FROM events WHERE tenant_id = ? AND event_type = ? AND source = 'gateway'", (tenant, kind)).fetchall()
print(sum(1 for (p,) in rows if not text or json.loads(p)["data"].get("text") == text))
PY
}
# delivered TYPE [TEXT]: how many signed deliveries of TYPE (with data.text TEXT) the endpoint
# got; fails on any request whose signature does not verify.
delivered() {
  [ -s "$WORK/hooks.jsonl" ] || { echo 0; return 0; }
  if ! python3 scripts/openclaw/webhook-receiver.py verify "$SECRET" "$WORK/hooks.jsonl" \
      >"$WORK/verified.jsonl" 2>"$WORK/verify.err"; then
    echo invalid
    return 0
  fi
  python3 - "$WORK/verified.jsonl" "$1" "${2:-}" <<'PY'
import json, sys
path, kind, text = sys.argv[1:]
got = [json.loads(l) for l in open(path) if l.strip()]
print(sum(1 for d in got if d["type"] == kind and (not text or d["data"].get("text") == text)))
PY
}
# is_count N stored|delivered TYPE [TEXT]: whether the count is N; a bad signature fails the check.
is_count() {
  local n
  n="$("$2" "${@:3}")"
  [ "$n" != invalid ] || fail "a webhook request failed verification: $(cat "$WORK/verify.err")"
  [ "$n" = "$1" ]
}

# ---- 4. a message through the gateway --------------------------------------------------------
chat_send "hello from the bridge check" e2e-1
wait_until "$STEP_TIMEOUT" "message.received stored" is_count 1 stored message.received "hello from the bridge check"
wait_until "$STEP_TIMEOUT" "session.started stored" is_count 1 stored session.started
log "the control plane stored message.received and session.started for tenant $TENANT_ID"
wait_until "$STEP_TIMEOUT" "the signed message.received webhook" is_count 1 delivered message.received "hello from the bridge check"
wait_until "$STEP_TIMEOUT" "the signed session.started webhook" is_count 1 delivered session.started
python3 - "$WORK/verified.jsonl" "$TENANT_ID" "$SESSION_KEY" "$AGENT_ID" <<'PY' || fail "a delivery's content is wrong"
import json, sys
path, tenant, key, agent = sys.argv[1:]
for d in (json.loads(l) for l in open(path) if l.strip()):
    data = d["data"]
    assert data["tenantId"] == tenant, d
    assert data["sessionKey"] == key, d
    assert data["agentId"] == agent, d
    assert data["channel"] == "telegram", d
    if d["type"] == "message.received":
        assert data["messageId"] == "e2e-1", d
PY
log "the endpoint got both, signed (Standard Webhooks signature verified): $(cut -c1-160 "$WORK/verified.jsonl" | head -n 1)"

# ---- 5. the control plane goes away and comes back -------------------------------------------
stop_server
log "control plane stopped"
MARK="$(stat -c %s "$GWLOG")"
chat_send "sent while the control plane was down" e2e-2
bridge_failing() { gw_alive; tail -c +"$((MARK + 1))" "$GWLOG" | grep -q 'moltbot-saas-bridge: cannot deliver event openclaw:message.received'; }
wait_until "$STEP_TIMEOUT" "the bridge to fail to deliver the second message" bridge_failing
log "the bridge keeps it: $(tail -c +"$((MARK + 1))" "$GWLOG" | grep -m1 -o 'cannot deliver event.*' | cut -c1-150)"
sleep 3 # a few more failed attempts (the base sets retries of 0.2 s to 1 s)
[ "$(stored message.received "sent while the control plane was down")" = 0 ] || fail "stored while the control plane was down?"
start_server
wait_until "$STEP_TIMEOUT" "the second message stored" is_count 1 stored message.received "sent while the control plane was down"
wait_until "$STEP_TIMEOUT" "the second message's signed webhook" is_count 1 delivered message.received "sent while the control plane was down"
recovered() { gw_alive; tail -c +"$((MARK + 1))" "$GWLOG" | grep -q 'moltbot-saas-bridge: control plane reachable again'; }
wait_until "$STEP_TIMEOUT" "the bridge to report the control plane reachable again" recovered
# Let any resend that would happen, happen, then count: exactly once each.
sleep 3
for check in "stored message.received" "delivered message.received"; do
  read -r what kind <<<"$check"
  n="$("$what" "$kind")"
  [ "$n" != invalid ] || fail "a webhook request failed verification: $(cat "$WORK/verify.err")"
  [ "$n" = 2 ] || fail "$what: $n message.received events, expected exactly 2"
  for text in "hello from the bridge check" "sent while the control plane was down"; do
    n="$("$what" "$kind" "$text")"
    [ "$n" = 1 ] || fail "$what: '$text' $n times, expected exactly once"
  done
done
n="$(stored session.started)"
[ "$n" = 1 ] || fail "session.started stored $n times, expected once (one session)"
log "exactly once: each message stored and delivered once, the session started once"

# ---- 6. a real channel account: Telegram through the fake Bot API ----------------------------
in_ns curl -fsS --max-time 5 -o /dev/null -H 'content-type: application/json' \
  -d "{\"token\": \"$BOT_TOKEN\", \"chatId\": 5151, \"text\": \"hello over telegram\"}" \
  "http://127.0.0.1:$TG_PORT/control/message" || fail "could not queue a Telegram message"
log "queued a private Telegram message to the tenant's bot"
wait_until "$STEP_TIMEOUT" "the Telegram message stored" is_count 1 stored message.received "hello over telegram"
# The model's reply, sent by the account: the only message.sent (chat.send replies stay in the
# gateway's own chat).
wait_until "$STEP_TIMEOUT" "the reply's message.sent stored" is_count 1 stored message.sent "pong from the fake model"
wait_until "$STEP_TIMEOUT" "the signed message.sent webhook" is_count 1 delivered message.sent "pong from the fake model"
wait_until "$STEP_TIMEOUT" "the signed Telegram message.received webhook" is_count 1 delivered message.received "hello over telegram"
python3 - "$WORK/verified.jsonl" "$TENANT_ID" "$ACCOUNT_ID" <<'PY' || fail "a Telegram delivery's content is wrong"
import json, sys
path, tenant, account = sys.argv[1:]
got = [json.loads(l) for l in open(path) if l.strip()]
for text in ("hello over telegram", "pong from the fake model"):
    (d,) = [d for d in got if d["data"].get("text") == text]
    data = d["data"]
    assert data["tenantId"] == tenant and data["accountId"] == account, d
    assert data["channel"] == "telegram" and data["conversationId"] == "telegram:5151", d
    if d["type"] == "message.sent":
        assert data["success"] is True and data["messageId"], d
PY
in_ns curl -fsS --max-time 5 "http://127.0.0.1:$TG_PORT/control/sent" | grep -q '"text": "pong from the fake model"' ||
  fail "the fake Bot API did not get the reply"
log "Telegram: message.received and message.sent (account $ACCOUNT_ID) stored and delivered, signed"

RESULT=PASS
