#!/usr/bin/env bash
# e2e-hot-reload.sh - end-to-end check that a real OpenClaw gateway hot-applies what the control
# plane renders, without a restart.
#
#   scripts/openclaw/e2e-hot-reload.sh
#
# 1. Builds `moltbot-saas` and starts it on a free 127.0.0.1 port with a throwaway SQLite
#    database and fixed operator/gateway tokens.
# 2. Runs `moltbot-saas config sync --out $WORK/openclaw.json --interval 1` with a base config that
#    lets the gateway run locally and offline (gateway.mode local, loopback, token auth, mDNS,
#    update check and model catalog refresh off, log file in $WORK). A first tenant ("Baseline",
#    Telegram) is created before the gateway starts, so the gateway already serves Telegram.
# 3. Starts the real gateway (`openclaw gateway run`, current dialect release) with
#    OPENCLAW_CONFIG_PATH on that file, OPENCLAW_SKIP_CHANNELS=1 (it never contacts Telegram),
#    OPENCLAW_CONFIG_READONLY=1, a throwaway HOME and state directory, in its own network
#    namespace (unshare -n; only a loopback interface) when the kernel allows it.
# 4. Creates a tenant and its Telegram channel through the API and waits for the gateway's log to
#    show the new agent, account and binding hot-applied ("[reload] config change detected ...",
#    "[reload] config hot reload applied ..."), with no restart: same PID, no restart line, still
#    one "[gateway] ready". Then asks the running gateway itself (`openclaw gateway call`
#    agents.list and channels.status) whether it reports the agent and the account.
# 5. Suspends the tenant (PATCH status) and waits for the same, removed.
#
# Every wait is bounded; every process started here is stopped on exit. Prints PASS or FAIL and
# exits 0 or 1 (2: could not set up). Only 127.0.0.1 is used.
#
# Environment:
#   E2E_KEEP=1           keep the work directory (logs, config, database) even on success
#   E2E_STEP_TIMEOUT     seconds to wait for each hot reload (default 30)
#   E2E_START_TIMEOUT    seconds to wait for the gateway to be ready (default 180; ~30 s here)
#   CARGO_TARGET_DIR     as for cargo; OPENCLAW_CACHE, OPENCLAW_NODE, OPENCLAW_CURRENT: see lib.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

OPENCLAW_PROG=e2e-hot-reload.sh
. scripts/openclaw/lib.sh
. scripts/openclaw/e2e-lib.sh

STEP_TIMEOUT="${E2E_STEP_TIMEOUT:-30}"
START_TIMEOUT="${E2E_START_TIMEOUT:-180}"
ADMIN_TOKEN="msop_e2e_hot_reload_operator_token_0123456789"
SAAS_GW_TOKEN="msgw_e2e_hot_reload_gateway_token_0123456789"
OC_TOKEN="openclaw-e2e-hot-reload-gateway-auth-token-0123456789"

for tool in curl cargo; do
  command -v "$tool" >/dev/null || openclaw_die "$tool is needed"
done
openclaw_select current
openclaw_install

WORK="$(mktemp -d "${TMPDIR:-/tmp}/openclaw-e2e.XXXXXX")"
CONFIG="$WORK/openclaw.json"
GWLOG="$WORK/gateway.log"
SERVER_PID="" SYNC_PID="" GW_PID=""

# Stops what was started here (the gateway with its process group), prints the verdict.
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ "$rc" = 0 ] || RESULT=FAIL
  e2e_stop_all "$GW_PID" "$SYNC_PID" "$SERVER_PID"
  if [ "${RESULT:-}" = PASS ]; then
    if [ "${E2E_KEEP:-0}" = 1 ]; then echo "work directory kept: $WORK"; else rm -rf "$WORK"; fi
    echo "PASS: the gateway hot-applied the tenant's agent, account and binding, and their removal, without restarting ($((SECONDS - T0))s)"
    exit 0
  fi
  if [ -f "$GWLOG" ]; then
    echo "---- gateway log (last 40 lines of $GWLOG) ----" >&2
    tail -n 40 "$GWLOG" >&2
  fi
  for f in server sync; do
    if [ -s "$WORK/$f.log" ]; then
      echo "---- $f log (last 10 lines) ----" >&2
      tail -n 10 "$WORK/$f.log" >&2
    fi
  done
  echo "FAIL: end-to-end hot reload check failed (exit $rc); everything is kept in $WORK" >&2
  exit "$([ "$rc" = 0 ] && echo 1 || echo "$rc")"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- 1. the control plane --------------------------------------------------------------------
e2e_build

export DATABASE_URL="sqlite://$WORK/saas.db"
export SAAS_ADMIN_TOKEN="$ADMIN_TOKEN" SAAS_GATEWAY_TOKEN="$SAAS_GW_TOKEN"
export SAAS_BIND_ADDRESS=127.0.0.1 SAAS_API_PORT=0 SAAS_LOG_FORMAT=json SAAS_WORKERS=2
export SAAS_CONFIG_DIALECT=current SAAS_CONFIG_SECRETS=inline
export SAAS_GATEWAY_WORKSPACE_ROOT="$WORK/gateway/workspaces"
export SAAS_GATEWAY_AGENT_DIR_ROOT="$WORK/gateway/agents"
export SAAS_GATEWAY_WHATSAPP_ROOT="$WORK/gateway/whatsapp"
export SAAS_GATEWAY_BASE_CONFIG="$WORK/base.json5"
mkdir -p "$WORK/gateway/home" "$WORK/gateway/state"

# The gateway runs in its own network namespace when it can, so its port is free there; the port
# is still picked free on this host for when it cannot.
GW_PORT="$(free_port)" || openclaw_die "no free port found"
cat > "$SAAS_GATEWAY_BASE_CONFIG" <<EOF
// Base config for the end-to-end check: what the gateway needs to run on this machine, offline.
{
  gateway: {
    mode: "local",
    bind: "loopback",
    port: $GW_PORT,
    auth: { mode: "token", token: "$OC_TOKEN" },
  },
  discovery: { mdns: { mode: "off" } },
  update: { checkOnStart: false },
  models: { catalogRefresh: { enabled: false } },
  logging: { file: "$WORK/gateway/openclaw.jsonl" },
}
EOF

e2e_serve

# new_tenant NAME BOT_TOKEN: creates an active tenant with a served Telegram channel; sets
# TENANT_ID, AGENT_ID, ACCOUNT_ID.
new_tenant() {
  api POST /tenants "{\"name\": \"$1\"}"
  TENANT_ID="$(json_get id <"$WORK/answer.json")"
  AGENT_ID="$(json_get agentId <"$WORK/answer.json")"
  ACCOUNT_ID="$(json_get accountId <"$WORK/answer.json")"
  api POST "/tenants/$TENANT_ID/channels" \
    "{\"channel\": \"telegram\", \"enabled\": true, \"credentials\": {\"botToken\": \"$2\"}}"
  [ "$(json_get state <"$WORK/answer.json")" = ready ] || fail "channel not ready: $(cat "$WORK/answer.json")"
}

new_tenant "Baseline Co" "100000001:AAbaselineTokenForTheEndToEndCheck01"
BASE_AGENT="$AGENT_ID" BASE_ACCOUNT="$ACCOUNT_ID"
log "baseline tenant: agent $BASE_AGENT, account $BASE_ACCOUNT"

# ---- 2. config sync --------------------------------------------------------------------------
"$BIN" config sync --out "$CONFIG" --interval 1 >"$WORK/sync.log" 2>&1 &
SYNC_PID=$!
config_has() { # yes|no TEXT: whether the synced config contains TEXT
  kill -0 "$SYNC_PID" 2>/dev/null || fail "config sync exited: $(tail -n 5 "$WORK/sync.log")"
  if grep -qF -- "\"$2\"" "$CONFIG" 2>/dev/null; then [ "$1" = yes ]; else [ "$1" = no ] && [ -f "$CONFIG" ]; fi
}
wait_until 30 "config sync to write $CONFIG with $BASE_AGENT" config_has yes "$BASE_AGENT"
log "config sync (pid $SYNC_PID) keeps $CONFIG"

# ---- 3. the gateway --------------------------------------------------------------------------
openclaw_netns
NETNS=0
if [ ${#WRAP[@]} -gt 0 ] && command -v ip >/dev/null && command -v nsenter >/dev/null; then
  NETNS=1
else
  echo "$OPENCLAW_PROG: note: gateway runs in this host's network (loopback only by config)" >&2
fi
GW_ENV=(env -i PATH="$(dirname "$NODE"):/usr/bin:/bin:/usr/sbin:/sbin"
  HOME="$WORK/gateway/home" OPENCLAW_STATE_DIR="$WORK/gateway/state"
  OPENCLAW_CONFIG_PATH="$CONFIG" OPENCLAW_CONFIG_READONLY=1 OPENCLAW_SKIP_CHANNELS=1
  NO_COLOR=1 FORCE_COLOR=0 TZ=UTC)
# setsid: the gateway leads its own process group, so cleanup can stop its helpers with it.
if [ "$NETNS" = 1 ]; then
  setsid "${GW_ENV[@]}" unshare -n sh -c 'ip link set lo up && exec "$@"' sh \
    "$NODE" "$CLI" gateway run >"$GWLOG" 2>&1 &
else
  setsid "${GW_ENV[@]}" "$NODE" "$CLI" gateway run >"$GWLOG" 2>&1 &
fi
GW_PID=$!
log "gateway openclaw@$VERSION starting (pid $GW_PID, port $GW_PORT, $([ "$NETNS" = 1 ] && echo 'own network namespace' || echo 'host network'))"

gw_alive() { kill -0 "$GW_PID" 2>/dev/null || fail "the gateway exited (see $GWLOG)"; }
log_count() { grep -cE -- "$1" "$GWLOG" || true; }
gw_ready() { gw_alive; [ "$(log_count '\[gateway\] ready$')" -ge 1 ]; }
wait_until "$START_TIMEOUT" "the gateway to log '[gateway] ready'" gw_ready
# The process's start time (field 22 of /proc/PID/stat): a replaced process would differ.
start_time() { sed 's/^.*) //' "/proc/$GW_PID/stat" | cut -d' ' -f20; }
GW_START_TIME="$(start_time)"
log "gateway ready: $(grep -m1 'http server listening' "$GWLOG" | sed 's/^[^ ]* //')"

# gw_call METHOD: asks the running gateway (inside its namespace), JSON on stdout.
gw_call() {
  local pre=()
  [ "$NETNS" = 1 ] && pre=(nsenter -t "$GW_PID" -n)
  "${pre[@]}" env -i PATH="$(dirname "$NODE"):/usr/bin:/bin" HOME="$WORK/cli/home" \
    OPENCLAW_STATE_DIR="$WORK/cli/state" OPENCLAW_CONFIG_PATH="$CONFIG" NO_COLOR=1 TZ=UTC \
    timeout 60 "$NODE" "$CLI" gateway call "$1" --json --timeout 20000 \
    --url "ws://127.0.0.1:$GW_PORT" --token "$OC_TOKEN" 2>"$WORK/cli.err"
}
# gw_ids METHOD REGEX: the ids matching REGEX in the running gateway's answer to METHOD, one a
# line. A client killed by a signal is retried (the calls only read).
gw_ids() {
  local rc out="$WORK/${1//./-}.json"
  for _ in 1 2 3; do
    rc=0
    gw_call "$1" >"$out" || rc=$?
    [ "$rc" -ge 128 ] || break
    echo "$OPENCLAW_PROG: note: gateway call $1 died with status $rc; retrying" >&2
  done
  [ "$rc" = 0 ] || fail "gateway call $1 failed ($rc): $(cat "$out" "$WORK/cli.err")"
  grep -oE "$2" "$out" | cut -d'"' -f4 | sort -u
}
# gw_state: "agents: ... accounts: ..." as the running gateway reports them (agents.list, and
# channels.status for Telegram accounts); sets GW_STATE.
gw_state() {
  local agents accounts
  agents="$(gw_ids agents.list '"id": "agent-[0-9a-f]{8}"')"
  accounts="$(gw_ids channels.status '"accountId": "tenant-[0-9a-f]{8}"')"
  GW_STATE="agents: $(echo $agents) / telegram accounts: $(echo $accounts)"
  log "gateway reports $GW_STATE"
}
# gw_has yes|no ID: whether the last gw_state listed ID.
gw_has() {
  case " $GW_STATE " in
    *" $2 "*) [ "$1" = yes ] || fail "the gateway still reports $2";;
    *) [ "$1" = no ] || fail "the gateway does not report $2";;
  esac
}
mkdir -p "$WORK/cli/home" "$WORK/cli/state"
gw_state
gw_has yes "$BASE_AGENT"; gw_has yes "$BASE_ACCOUNT"

# ---- hot reload checks -----------------------------------------------------------------------
# Lines that mean the change was not simply hot-applied.
BAD='requires gateway restart|; restarting|restarting gateway|restart mode:|config reload skipped|config reload failed|hot reload failed|hot reload committed with|hot reload cancelled'
DETECTED='\[reload\] config change detected; evaluating reload'
APPLIED='\[reload\] config (hot reload applied|change applied)'

# wait_reload WHAT DETECTED_PATHS APPLIED_PATHS: from $MARK on, every DETECTED_PATH must appear in
# a "config change detected" line and every APPLIED_PATH in a "config hot reload applied" line,
# and every detected change must have been applied; nothing in $BAD may appear.
wait_reload() {
  local what="$1" deadline=$((SECONDS + STEP_TIMEOUT)) start=$SECONDS text p ok
  local -a detected applied
  read -r -a detected <<<"$2"
  read -r -a applied <<<"$3"
  while :; do
    gw_alive
    text="$(tail -c +"$((MARK + 1))" "$GWLOG")"
    if grep -E -- "$BAD" <<<"$text" >&2; then fail "$what: the gateway did not hot-apply it (lines above)"; fi
    ok=1
    for p in "${detected[@]}"; do
      grep -qE -- "$DETECTED \(([^)]*, )?${p//./\\.}(,|\))" <<<"$text" || { ok=0; break; }
    done
    if [ "$ok" = 1 ]; then
      for p in "${applied[@]}"; do
        grep -qE -- "config hot reload applied \(([^)]*, )?${p//./\\.}(,|\))" <<<"$text" || { ok=0; break; }
      done
    fi
    if [ "$ok" = 1 ] && [ "$(grep -cE -- "$DETECTED" <<<"$text")" = "$(grep -cE -- "$APPLIED" <<<"$text")" ]; then
      log "$what: hot-applied in $((SECONDS - start))s:"
      grep -E -- "$DETECTED|$APPLIED" <<<"$text" | sed 's/^/    /'
      return 0
    fi
    [ "$SECONDS" -lt "$deadline" ] || fail "$what: not hot-applied within ${STEP_TIMEOUT}s"
    sleep 0.5
  done
}
# no_restart WHAT: the gateway is the same process and has not restarted in-process either.
no_restart() {
  gw_alive
  [ "$(start_time)" = "$GW_START_TIME" ] || fail "$1: the gateway process was replaced"
  [ "$(log_count '\[gateway\] ready$')" = 1 ] || fail "$1: the gateway became ready again (it restarted)"
  [ "$(log_count 'http server listening')" = 1 ] || fail "$1: the gateway started its HTTP server again (it restarted)"
  ! grep -E -- "$BAD" "$GWLOG" >&2 || fail "$1: restart or reload failure lines in the gateway log (above)"
  log "$1: no restart (pid $GW_PID, one '[gateway] ready')"
}

# ---- 4. a new tenant and channel -------------------------------------------------------------
MARK="$(stat -c %s "$GWLOG")"
new_tenant "Hot Reload Inc" "200000002:AAnewTenantTokenForTheEndToEndCheck02"
log "created tenant $TENANT_ID (agent $AGENT_ID, account $ACCOUNT_ID) with a Telegram channel"
wait_until "$STEP_TIMEOUT" "config sync to write $AGENT_ID" config_has yes "$AGENT_ID"
wait_reload "new tenant" "agents.entries.$AGENT_ID channels.telegram.accounts.$ACCOUNT_ID bindings" \
  "agents.entries.$AGENT_ID channels.telegram.accounts.$ACCOUNT_ID"
no_restart "new tenant"
gw_state
gw_has yes "$AGENT_ID"; gw_has yes "$ACCOUNT_ID"

# ---- 5. suspend it ---------------------------------------------------------------------------
MARK="$(stat -c %s "$GWLOG")"
api PATCH "/tenants/$TENANT_ID" '{"status": "suspended"}'
[ "$(json_get status <"$WORK/answer.json")" = suspended ] || fail "tenant not suspended: $(cat "$WORK/answer.json")"
log "suspended tenant $TENANT_ID"
wait_until "$STEP_TIMEOUT" "config sync to drop $AGENT_ID" config_has no "$AGENT_ID"
wait_reload "suspended tenant" "agents.entries.$AGENT_ID channels.telegram.accounts.$ACCOUNT_ID bindings" \
  "agents.entries.$AGENT_ID channels.telegram.accounts.$ACCOUNT_ID"
no_restart "suspended tenant"
gw_state
gw_has no "$AGENT_ID"; gw_has no "$ACCOUNT_ID"
gw_has yes "$BASE_AGENT"; gw_has yes "$BASE_ACCOUNT"

RESULT=PASS
