#!/usr/bin/env bash
# e2e-fleet.sh - end-to-end check of the gateway fleet with two real OpenClaw gateways: tenants
# spread over both, one moved, and never one channel account in both gateways' configs at once.
#
#   scripts/openclaw/e2e-fleet.sh
#
# 1. Builds `moltbot-saas` and starts it on a free 127.0.0.1 port with a throwaway SQLite
#    database. Gives the built-in gateway `default` capacity 0 and creates two shared gateways
#    with `POST /gateways` (`gw-a`, `gw-b`), each with its own token; checks that a gateway's
#    token reads its own document and not the other's.
# 2. Creates four tenants, each with a Telegram channel: placement spreads them (the freest
#    gateway, ties by name: a, b, a, b).
# 3. One `moltbot-saas config sync --gateway NAME --interval 1` per gateway keeps that gateway's
#    file (over the database, as docs/fleet.md shows; each with a base config of its own: its
#    port, its log file), and `fleet-watch.py` polls both files every 50 ms for the whole run: a
#    channel account in both files at once fails the check (a proven overlap: no file was
#    replaced while both were read). Every wait below checks the watcher too.
# 4. Starts two real gateways (`openclaw gateway run`, 2026.9.6), each on its own file, each in
#    its own network namespace when the kernel allows it (as e2e-hot-reload.sh), and asks each
#    (`openclaw gateway call channels.status`, `agents.list`) what it loaded: its own tenants'
#    accounts and agents, none of the other's.
# 5. Moves a tenant from gw-a to gw-b (`POST /tenants/{id}/placement`): its account must leave
#    gw-a's file before it enters gw-b's (the watcher's timeline), the move must complete
#    (`placed` on gw-b), and the gateways must hot-apply it without a restart: gw-b reports the
#    account, gw-a no longer does.
# 6. Failover (only when the build has it, see FLEET_FAILOVER): the control plane runs with
#    SAAS_GATEWAY_FAILOVER=on, a short lease (FLEET_LEASE_SECS) and margin (2 s), and the syncs
#    fence (`config sync --fence`, on by default for a fleet gateway). Stopping gw-a's sync
#    (SIGTERM) must fence gw-a's file (no tenant left in it, and said in the sync's log); after
#    the lease and margin gw-a's tenants must be placed on gw-b, in gw-b's file and in what gw-b
#    reports, gw-a `down` in `GET /gateways`, and gw-a must report no tenant; the fenced file
#    must have been written before any of them entered gw-b's.
#
# Every wait is bounded; every process started here is stopped on exit. Prints PASS or FAIL and
# exits 0 or 1 (2: could not set up). Only 127.0.0.1 is used. The work directory is kept on
# failure.
#
# Environment:
#   FLEET_FAILOVER       1: run part 6 (fails if the build lacks it); 0: skip it; unset (auto):
#                        run it when the binary knows SAAS_GATEWAY_FAILOVER and `config sync`
#                        has `--fence`
#   FLEET_LEASE_SECS     SAAS_GATEWAY_LEASE_SECS (default 8: short, yet long enough that a sync
#                        pass slowed by a loaded machine does not lapse it)
#   E2E_KEEP=1           keep the work directory (logs, configs, database) even on success
#   E2E_STEP_TIMEOUT     seconds to wait for each file change and hot reload (default 30)
#   E2E_START_TIMEOUT    seconds to wait for the gateways to be ready (default 240)
#   CARGO_TARGET_DIR     as for cargo; OPENCLAW_CACHE, OPENCLAW_NODE, OPENCLAW_CURRENT: see lib.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

OPENCLAW_PROG=e2e-fleet.sh
. scripts/openclaw/lib.sh
. scripts/openclaw/e2e-lib.sh

STEP_TIMEOUT="${E2E_STEP_TIMEOUT:-30}"
START_TIMEOUT="${E2E_START_TIMEOUT:-240}"
LEASE="${FLEET_LEASE_SECS:-8}"
MARGIN=2
ADMIN_TOKEN="msop_e2e_fleet_operator_token_0123456789abcdef"
SAAS_GW_TOKEN="msgw_e2e_fleet_default_gateway_token_0123456789"
OC_TOKEN="openclaw-e2e-fleet-gateway-auth-token-0123456789"
NAMES=(a b)

for tool in curl cargo python3; do
  command -v "$tool" >/dev/null || openclaw_die "$tool is needed"
done
openclaw_select current
openclaw_install

WORK="$(mktemp -d "${TMPDIR:-/tmp}/openclaw-fleet.XXXXXX")"
SERVER_PID="" WATCH_PID=""
declare -A GW_PID=() SYNC_PID=() FILE=() GW_ID=() GW_TOKEN=() PORT=()
for n in "${NAMES[@]}"; do
  FILE[$n]="$WORK/$n/openclaw.json"
  mkdir -p "$WORK/$n/home" "$WORK/$n/state" "$WORK/$n/cli/home" "$WORK/$n/cli/state"
done
mkdir -p "$WORK/watch"

# stop PID [GROUP]: SIGTERM (to its process group too when GROUP), then SIGKILL after 10 s.
stop() {
  local pid="$1" group="${2:-}"
  [ -n "$pid" ] || return 0
  [ -z "$group" ] || kill -TERM -- "-$pid" 2>/dev/null || true
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "$OPENCLAW_PROG: pid $pid did not stop on SIGTERM; killing it" >&2
    [ -z "$group" ] || kill -KILL -- "-$pid" 2>/dev/null || true
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  # The gateway's helpers share its process group; make sure none outlives it.
  [ -z "$group" ] || kill -KILL -- "-$pid" 2>/dev/null || true
}

# Stops what was started here, prints the verdict.
cleanup() {
  local rc=$? n f
  trap - EXIT INT TERM
  [ "$rc" = 0 ] || RESULT=FAIL
  for n in "${NAMES[@]}"; do stop "${GW_PID[$n]:-}" group; done
  for n in "${NAMES[@]}"; do stop "${SYNC_PID[$n]:-}"; done
  stop "$WATCH_PID"
  stop "$SERVER_PID"
  if [ "${RESULT:-}" = PASS ]; then
    if [ "${E2E_KEEP:-0}" = 1 ]; then echo "work directory kept: $WORK"; else rm -rf "$WORK"; fi
    echo "PASS: $SUMMARY ($((SECONDS - T0))s)"
    exit 0
  fi
  for n in "${NAMES[@]}"; do
    if [ -f "$WORK/$n/gateway.log" ]; then
      echo "---- gateway $n log (last 30 lines of $WORK/$n/gateway.log) ----" >&2
      tail -n 30 "$WORK/$n/gateway.log" >&2
    fi
  done
  for f in server.log a/sync.log b/sync.log watch/events.log watch/violations.log; do
    if [ -s "$WORK/$f" ]; then
      echo "---- $f (last 15 lines) ----" >&2
      tail -n 15 "$WORK/$f" >&2
    fi
  done
  echo "FAIL: end-to-end fleet check failed (exit $rc); everything is kept in $WORK" >&2
  exit "$([ "$rc" = 0 ] && echo 1 || echo "$rc")"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now_ms() { date +%s%3N; }

# invariant: the guarantee, checked at every poll of every wait: the watcher runs, found no
# account in both files and no torn file; the syncs that should run do.
invariant() {
  local n
  kill -0 "$WATCH_PID" 2>/dev/null || fail "the watcher exited: $(cat "$WORK/watch/watch.log")"
  if [ -s "$WORK/watch/violations.log" ]; then
    fail "a channel account was in both gateways' files at once: $(head -n 5 "$WORK/watch/violations.log")"
  fi
  if grep -q ' ! ' "$WORK/watch/events.log" 2>/dev/null; then
    fail "a gateway's file did not parse: $(grep -m1 ' ! ' "$WORK/watch/events.log")"
  fi
  for n in "${NAMES[@]}"; do
    [ -z "${SYNC_PID[$n]:-}" ] || kill -0 "${SYNC_PID[$n]}" 2>/dev/null ||
      fail "config sync of gw-$n exited: $(tail -n 5 "$WORK/$n/sync.log")"
  done
}
# Every wait (wait_until) checks the invariant at each poll once the watcher runs.
e2e_on_poll() { [ -z "$WATCH_PID" ] || invariant; }

# ---- 1. the control plane --------------------------------------------------------------------
e2e_build

# Part 6 needs the control plane's failover and a `config sync` that fences.
HAS_FAILOVER=0
if grep -qa SAAS_GATEWAY_FAILOVER "$BIN" && "$BIN" config sync --help 2>&1 | grep -q -- '--fence'; then
  HAS_FAILOVER=1
fi
case "${FLEET_FAILOVER:-auto}" in
  1) [ "$HAS_FAILOVER" = 1 ] ||
       openclaw_die "FLEET_FAILOVER=1, but this build has no SAAS_GATEWAY_FAILOVER or no config sync --fence"
     FAILOVER=1;;
  0) FAILOVER=0;;
  auto) FAILOVER="$HAS_FAILOVER";;
  *) openclaw_die "FLEET_FAILOVER must be 0, 1 or unset (got '$FLEET_FAILOVER')";;
esac
log "failover part: $([ "$FAILOVER" = 1 ] && echo "on (lease ${LEASE}s, margin ${MARGIN}s)" || echo 'off (not in this build, or FLEET_FAILOVER=0)')"

export DATABASE_URL="sqlite://$WORK/saas.db"
export SAAS_ADMIN_TOKEN="$ADMIN_TOKEN" SAAS_GATEWAY_TOKEN="$SAAS_GW_TOKEN"
export SAAS_BIND_ADDRESS=127.0.0.1 SAAS_API_PORT=0 SAAS_LOG_FORMAT=json SAAS_WORKERS=2
export SAAS_CONFIG_DIALECT=current SAAS_CONFIG_SECRETS=inline
export SAAS_GATEWAY_WORKSPACE_ROOT="$WORK/gateways/workspaces"
export SAAS_GATEWAY_AGENT_DIR_ROOT="$WORK/gateways/agents"
export SAAS_GATEWAY_WHATSAPP_ROOT="$WORK/gateways/whatsapp"
export SAAS_GATEWAY_LEASE_SECS="$LEASE"
[ "$FAILOVER" = 0 ] || export SAAS_GATEWAY_FAILOVER=on SAAS_GATEWAY_LEASE_MARGIN_SECS="$MARGIN"

# The gateways' base configs: what a gateway needs to run here, offline. Each sync renders with
# a base of its own (its port, its log file), so the gateways can share a network if they must.
openclaw_netns
NETNS=0
if [ ${#WRAP[@]} -gt 0 ] && command -v ip >/dev/null && command -v nsenter >/dev/null; then
  NETNS=1
else
  echo "$OPENCLAW_PROG: note: gateways run in this host's network (loopback only by config)" >&2
fi
base_config() { # FILE PORT LOGFILE
  cat >"$1" <<EOF
// Base config for the fleet end-to-end check: what a gateway needs to run here, offline.
{
  gateway: {
    mode: "local",
    bind: "loopback",
    port: $2,
    auth: { mode: "token", token: "$OC_TOKEN" },
  },
  discovery: { mdns: { mode: "off" } },
  update: { checkOnStart: false },
  models: { catalogRefresh: { enabled: false } },
  logging: { file: "$3" },
}
EOF
}
# The server's (what GET /config answers) and each sync's.
export SAAS_GATEWAY_BASE_CONFIG="$WORK/base.json5"
base_config "$SAAS_GATEWAY_BASE_CONFIG" "$(free_port)" "$WORK/gateways/openclaw.jsonl"
for n in "${NAMES[@]}"; do
  PORT[$n]="$(free_port)" || openclaw_die "no free port found"
  if [ "$n" != a ] && [ "${PORT[$n]}" = "${PORT[a]}" ]; then PORT[$n]=$((PORT[a] + 1)); fi
  base_config "$WORK/$n/base.json5" "${PORT[$n]}" "$WORK/$n/openclaw.jsonl"
done

e2e_serve

# placement TENANT_ID: sets P_STATE and P_GATEWAY (GET /tenants/{id}/placement).
placement() {
  api GET "/tenants/$1/placement"
  P_STATE="$(json_get state <"$WORK/answer.json")" || fail "no placement state: $(cat "$WORK/answer.json")"
  P_GATEWAY="$(json_get gatewayId <"$WORK/answer.json" || true)"
}
# name_of GATEWAY_ID: a or b.
name_of() {
  local n
  for n in "${NAMES[@]}"; do [ "${GW_ID[$n]}" != "$1" ] || { echo "$n"; return 0; }; done
  fail "tenant placed on an unexpected gateway '$1'"
}

# ---- the fleet: default closed, two gateways with tokens of their own ---------------------------
api PATCH /gateways/00000000-0000-0000-0000-000000000000 '{"capacity": 0}'
for n in "${NAMES[@]}"; do
  api POST /gateways "{\"name\": \"gw-$n\", \"kind\": \"shared\", \"capacity\": 10}"
  GW_ID[$n]="$(json_get id <"$WORK/answer.json")" || fail "no gateway id: $(cat "$WORK/answer.json")"
  GW_TOKEN[$n]="$(json_get token <"$WORK/answer.json")" || fail "no gateway token: $(cat "$WORK/answer.json")"
  case "${GW_TOKEN[$n]}" in msgw_*) ;; *) fail "gw-$n's token is not a gateway token";; esac
  log "gateway gw-$n: ${GW_ID[$n]}"
done
[ "${GW_TOKEN[a]}" != "${GW_TOKEN[b]}" ] || fail "the two gateways got the same token"
# A gateway token reads its own document, not the other's, and nothing else.
call "${GW_TOKEN[a]}" GET /config
[ "$CODE" = 200 ] || fail "gw-a's token could not read its document ($CODE): $(cat "$WORK/answer.json")"
call "${GW_TOKEN[a]}" GET "/config?gateway=${GW_ID[b]}"
[ "$CODE" = 400 ] || fail "gw-a's token asking for gw-b's document answered $CODE, not 400"
call "${GW_TOKEN[a]}" GET /tenants
[ "$CODE" = 401 ] || [ "$CODE" = 403 ] || fail "gw-a's token on GET /tenants answered $CODE"

# ---- 2. tenants, spread by placement ---------------------------------------------------------
declare -A ACCOUNT=() AGENT=() ON=()
TENANTS=()
for i in 1 2 3 4; do
  api POST /tenants "{\"name\": \"Fleet Tenant $i\"}"
  id="$(json_get id <"$WORK/answer.json")"
  AGENT[$id]="$(json_get agentId <"$WORK/answer.json")"
  ACCOUNT[$id]="$(json_get accountId <"$WORK/answer.json")"
  api POST "/tenants/$id/channels" \
    "{\"channel\": \"telegram\", \"enabled\": true, \"credentials\": {\"botToken\": \"10000000$i:AAfleetEndToEndTokenNumber000000$i\"}}"
  [ "$(json_get state <"$WORK/answer.json")" = ready ] || fail "channel not ready: $(cat "$WORK/answer.json")"
  placement "$id"
  [ "$P_STATE" = placed ] || fail "tenant $i is $P_STATE, not placed"
  ON[$id]="$(name_of "$P_GATEWAY")" || exit 1
  TENANTS+=("$id")
  log "tenant $i: account ${ACCOUNT[$id]}, agent ${AGENT[$id]}, on gw-${ON[$id]}"
done
# on NAME: the tenants placed on that gateway now (by ON).
on() {
  local id
  for id in "${TENANTS[@]}"; do [ "${ON[$id]}" != "$1" ] || echo "$id"; done
}
[ "$(on a | wc -l)" = 2 ] && [ "$(on b | wc -l)" = 2 ] ||
  fail "placement did not spread the tenants 2/2: $(for id in "${TENANTS[@]}"; do printf '%s ' "${ON[$id]}"; done)"

# ---- 3. one config sync per gateway, and the watcher -----------------------------------------
python3 scripts/openclaw/fleet-watch.py watch "$WORK/watch" "a=${FILE[a]}" "b=${FILE[b]}" \
  >"$WORK/watch/watch.log" 2>&1 &
WATCH_PID=$!
# start_sync NAME: config sync of that gateway's file (with a build that fences, it renews the
# gateway's lease and fences: the default for a fleet gateway).
start_sync() {
  SAAS_GATEWAY_BASE_CONFIG="$WORK/$1/base.json5" "$BIN" config sync --gateway "gw-$1" \
    --out "${FILE[$1]}" --interval 1 >"$WORK/$1/sync.log" 2>&1 &
  SYNC_PID[$1]=$!
}
# file_has yes|no NAME ID: whether gateway NAME's file holds the account or agent ID.
file_has() {
  if grep -qF -- "\"$3\"" "${FILE[$2]}" 2>/dev/null; then [ "$1" = yes ]; else [ "$1" = no ] && [ -f "${FILE[$2]}" ]; fi
}
# files_hold: each file holds exactly the accounts and agents of its gateway's tenants (by ON).
files_hold() {
  local n id other
  for n in "${NAMES[@]}"; do
    for id in "${TENANTS[@]}"; do
      if [ "${ON[$id]}" = "$n" ]; then other=yes; else other=no; fi
      file_has "$other" "$n" "${ACCOUNT[$id]}" && file_has "$other" "$n" "${AGENT[$id]}" || return 1
    done
  done
}
for n in "${NAMES[@]}"; do start_sync "$n"; done
wait_until "$STEP_TIMEOUT" "each gateway's file to hold its own tenants and none of the other's" files_hold
log "config sync gw-a (pid ${SYNC_PID[a]}) and gw-b (pid ${SYNC_PID[b]}) keep their files; watcher pid $WATCH_PID"
# What each gateway's token reads over HTTP holds the same accounts as its file.
for n in "${NAMES[@]}"; do
  call "${GW_TOKEN[$n]}" GET /config
  [ "$CODE" = 200 ] || fail "gw-$n's GET /config answered $CODE"
  cp "$WORK/answer.json" "$WORK/$n/served.json"
  diff <(python3 scripts/openclaw/fleet-watch.py show "$WORK/$n/served.json") \
    <(python3 scripts/openclaw/fleet-watch.py show "${FILE[$n]}") >&2 ||
    fail "gw-$n's file and its GET /config hold different tenants (above)"
done

# ---- 4. the gateways -------------------------------------------------------------------------
# start_gateway NAME: the real gateway on that gateway's file, its own HOME and state.
start_gateway() {
  local n="$1"
  local env=(env -i PATH="$(dirname "$NODE"):/usr/bin:/bin:/usr/sbin:/sbin"
    HOME="$WORK/$n/home" OPENCLAW_STATE_DIR="$WORK/$n/state"
    OPENCLAW_CONFIG_PATH="${FILE[$n]}" OPENCLAW_CONFIG_READONLY=1 OPENCLAW_SKIP_CHANNELS=1
    NO_COLOR=1 FORCE_COLOR=0 TZ=UTC)
  # setsid: the gateway leads its own process group, so cleanup can stop its helpers with it.
  if [ "$NETNS" = 1 ]; then
    setsid "${env[@]}" unshare -n sh -c 'ip link set lo up && exec "$@"' sh \
      "$NODE" "$CLI" gateway run >"$WORK/$n/gateway.log" 2>&1 &
  else
    setsid "${env[@]}" "$NODE" "$CLI" gateway run >"$WORK/$n/gateway.log" 2>&1 &
  fi
  GW_PID[$n]=$!
  log "gateway gw-$n openclaw@$VERSION starting (pid ${GW_PID[$n]}, port ${PORT[$n]}, $([ "$NETNS" = 1 ] && echo 'own network namespace' || echo 'host network'))"
}
gw_alive() { kill -0 "${GW_PID[$1]}" 2>/dev/null || fail "gateway gw-$1 exited (see $WORK/$1/gateway.log)"; }
log_count() { grep -cE -- "$2" "$WORK/$1/gateway.log" || true; }
gws_ready() {
  local n
  for n in "${NAMES[@]}"; do
    gw_alive "$n"
    [ "$(log_count "$n" '\[gateway\] ready$')" -ge 1 ] || return 1
  done
}
for n in "${NAMES[@]}"; do start_gateway "$n"; done
wait_until "$START_TIMEOUT" "both gateways to log '[gateway] ready'" gws_ready
log "both gateways ready"

# gw_call NAME METHOD: asks gateway NAME (inside its namespace), JSON on stdout.
gw_call() {
  local n="$1" pre=()
  [ "$NETNS" = 1 ] && pre=(nsenter -t "${GW_PID[$n]}" -n)
  "${pre[@]}" env -i PATH="$(dirname "$NODE"):/usr/bin:/bin" HOME="$WORK/$n/cli/home" \
    OPENCLAW_STATE_DIR="$WORK/$n/cli/state" OPENCLAW_CONFIG_PATH="${FILE[$n]}" NO_COLOR=1 TZ=UTC \
    timeout 60 "$NODE" "$CLI" gateway call "$2" --json --timeout 20000 \
    --url "ws://127.0.0.1:${PORT[$n]}" --token "$OC_TOKEN" 2>"$WORK/$n/cli.err"
}
# gw_ids NAME METHOD REGEX: the ids matching REGEX in gateway NAME's answer, one a line. A
# client killed by a signal is retried (the calls only read).
gw_ids() {
  local rc out="$WORK/$1/${2//./-}.json"
  for _ in 1 2 3; do
    rc=0
    gw_call "$1" "$2" >"$out" || rc=$?
    [ "$rc" -ge 128 ] || break
    echo "$OPENCLAW_PROG: note: gateway call $2 on gw-$1 died with status $rc; retrying" >&2
  done
  [ "$rc" = 0 ] || fail "gateway call $2 on gw-$1 failed ($rc): $(cat "$out" "$WORK/$1/cli.err")"
  # None is an answer too (a fenced gateway serves nobody): grep's "no match" is not a failure.
  { grep -oE "$3" "$out" || true; } | cut -d'"' -f4 | sort -u
}
# gw_check NAME: what gateway NAME reports (agents.list; channels.status for Telegram accounts)
# must be exactly its tenants' agents and accounts (by ON).
gw_check() {
  local n="$1" agents accounts want_agents want_accounts id
  invariant
  agents="$(gw_ids "$n" agents.list '"id": "agent-[0-9a-f]{8}"' | xargs)"
  accounts="$(gw_ids "$n" channels.status '"accountId": "tenant-[0-9a-f]{8}"' | xargs)"
  want_agents="$(for id in "${TENANTS[@]}"; do [ "${ON[$id]}" != "$n" ] || echo "${AGENT[$id]}"; done | sort | xargs)"
  want_accounts="$(for id in "${TENANTS[@]}"; do [ "${ON[$id]}" != "$n" ] || echo "${ACCOUNT[$id]}"; done | sort | xargs)"
  log "gw-$n reports agents: ${agents:-none} / telegram accounts: ${accounts:-none}"
  [ "$agents" = "$want_agents" ] || fail "gw-$n runs agents '$agents', expected '$want_agents'"
  [ "$accounts" = "$want_accounts" ] || fail "gw-$n serves accounts '$accounts', expected '$want_accounts'"
}
for n in "${NAMES[@]}"; do gw_check "$n"; done

# Lines that mean a change was not simply hot-applied.
BAD='requires gateway restart|; restarting|restarting gateway|restart mode:|config reload skipped|config reload failed|hot reload failed|hot reload committed with|hot reload cancelled'
# applied NAME MARK ACCOUNT: gateway NAME hot-applied a change of ACCOUNT after byte MARK of its log.
applied() {
  local text
  gw_alive "$1"
  text="$(tail -c +"$(($2 + 1))" "$WORK/$1/gateway.log")"
  if grep -E -- "$BAD" <<<"$text" >&2; then fail "gw-$1 did not hot-apply the change (lines above)"; fi
  grep -qE -- "config hot reload applied \(([^)]*, )?channels\.telegram\.accounts\.$3(,|\))" <<<"$text"
}
# no_restart NAME: one '[gateway] ready' and one HTTP server start in its log, no restart line.
no_restart() {
  gw_alive "$1"
  [ "$(log_count "$1" '\[gateway\] ready$')" = 1 ] || fail "gw-$1 became ready again (it restarted)"
  [ "$(log_count "$1" 'http server listening')" = 1 ] || fail "gw-$1 started its HTTP server again (it restarted)"
  ! grep -E -- "$BAD" "$WORK/$1/gateway.log" >&2 || fail "gw-$1: restart or reload failure lines in its log (above)"
}
# first_event SINCE_MS NAME +|- ACCOUNT: when the watcher first saw ACCOUNT enter (+) or leave (-)
# gateway NAME's file at or after SINCE_MS: "<epoch ms of the poll> <ctime ns of the file
# version>"; nothing if it has not yet.
first_event() {
  awk -v since="$1" -v n="$2" -v op="$3" -v acc="telegram:$4" \
    '$1 >= since && $2 == n && $3 == op && $4 == acc { print $1, $5; exit }' \
    "$WORK/watch/events.log" 2>/dev/null
}
# before WHAT FIRST SECOND: the file version of event FIRST ("ms ctime") was renamed into place
# before the one of SECOND. File times tick coarsely (a few ms here): versions within one tick
# are noted, not failed; the watcher's overlap check is the guarantee itself.
before() {
  local first="${2#* }" second="${3#* }"
  if [ "$first" -lt "$second" ]; then return 0; fi
  [ "$first" = "$second" ] || fail "$1: the second file version was written $(((first - second) / 1000)) µs before the first"
  log "note: $1: both file versions carry the same timestamp (one clock tick); the order is not shown"
}

# ---- 5. a move from gw-a to gw-b -------------------------------------------------------------
MOVER="$(on a | sed -n 1p)"
MOVER_ACC="${ACCOUNT[$MOVER]}"
MARK_A="$(stat -c %s "$WORK/a/gateway.log")" MARK_B="$(stat -c %s "$WORK/b/gateway.log")"
MOVE_AT="$(now_ms)"
api POST "/tenants/$MOVER/placement" "{\"gatewayId\": \"${GW_ID[b]}\"}"
P_STATE="$(json_get state <"$WORK/answer.json")"
case "$P_STATE" in
  moving) ;;
  placed) [ "$(json_get gatewayId <"$WORK/answer.json")" = "${GW_ID[b]}" ] ||
            fail "the move answered placed, but not on gw-b: $(cat "$WORK/answer.json")";;
  *) fail "the move answered $P_STATE: $(cat "$WORK/answer.json")";;
esac
log "moving tenant $MOVER (account $MOVER_ACC) from gw-a to gw-b: $P_STATE"
moved() {
  placement "$MOVER"
  [ "$P_STATE" = placed ] && [ "$P_GATEWAY" = "${GW_ID[b]}" ] && file_has yes b "$MOVER_ACC" &&
    file_has no a "$MOVER_ACC" && [ -n "$(first_event "$MOVE_AT" b + "$MOVER_ACC")" ]
}
wait_until "$STEP_TIMEOUT" "the move to complete and gw-b's file to hold $MOVER_ACC" moved
ON[$MOVER]=b
LEFT="$(first_event "$MOVE_AT" a - "$MOVER_ACC")"
ENTERED="$(first_event "$MOVE_AT" b + "$MOVER_ACC")"
[ -n "$LEFT" ] || fail "the watcher never saw $MOVER_ACC leave gw-a's file"
before "$MOVER_ACC leaving gw-a's file, then entering gw-b's" "$LEFT" "$ENTERED"
log "$MOVER_ACC left gw-a's file $((${LEFT%% *} - MOVE_AT)) ms after the request and entered gw-b's $(((${ENTERED#* } - ${LEFT#* }) / 1000000)) ms later (file times); placed on gw-b"
wait_until "$STEP_TIMEOUT" "gw-a to hot-apply the departure of $MOVER_ACC" applied a "$MARK_A" "$MOVER_ACC"
wait_until "$STEP_TIMEOUT" "gw-b to hot-apply the arrival of $MOVER_ACC" applied b "$MARK_B" "$MOVER_ACC"
for n in "${NAMES[@]}"; do no_restart "$n"; gw_check "$n"; done
files_hold || fail "the files do not hold what the placements say after the move"
SUMMARY="two real gateways served their own tenants; a moved tenant's account left gw-a's file before it entered gw-b's and both gateways hot-applied it"

# ---- 6. failover -----------------------------------------------------------------------------
if [ "$FAILOVER" = 1 ]; then
  FAILED_OVER=()
  while read -r id; do FAILED_OVER+=("$id"); done < <(on a)
  [ "${#FAILED_OVER[@]}" -ge 1 ] || fail "gw-a holds no tenant to fail over"
  api GET "/gateways/${GW_ID[a]}"
  [ "$(json_get health <"$WORK/answer.json")" = up ] || fail "gw-a is not up before its sync stops: $(cat "$WORK/answer.json")"
  MARK_A="$(stat -c %s "$WORK/a/gateway.log")" MARK_B="$(stat -c %s "$WORK/b/gateway.log")"
  MARK_SYNC="$(stat -c %s "$WORK/a/sync.log")"
  STOP_AT="$(now_ms)"
  # gw-a's sync stops: nobody renews gw-a's lease from now on, so it fences on its way out.
  PID="${SYNC_PID[a]}"
  SYNC_PID[a]=""
  stop "$PID"
  log "stopped gw-a's config sync (lease ${LEASE}s, margin ${MARGIN}s); gw-a held: ${FAILED_OVER[*]}"
  # (A sync may fence at its start too: only what it logs from the stop on counts.)
  fenced() {
    [ -f "${FILE[a]}" ] && [ -z "$(python3 scripts/openclaw/fleet-watch.py show "${FILE[a]}")" ] &&
      tail -c +"$((MARK_SYNC + 1))" "$WORK/a/sync.log" | grep -qi 'fenced'
  }
  wait_until "$STEP_TIMEOUT" "gw-a's file to hold no tenant (fenced, said in the sync's log)" fenced
  # The fence: the last version of gw-a's file that dropped an account after the stop.
  FENCED="$(awk -v since="$STOP_AT" '$1 >= since && $2 == "a" && $3 == "-" { t = $1 " " $5 } END { print t }' "$WORK/watch/events.log")"
  [ -n "$FENCED" ] || fail "the watcher never saw gw-a's file lose its accounts"
  log "gw-a's file fenced $((${FENCED%% *} - STOP_AT)) ms after the stop: $(tail -c +"$((MARK_SYNC + 1))" "$WORK/a/sync.log" | grep -i -m1 'fenced' | cut -c1-200)"
  failed_over() {
    local id
    for id in "${FAILED_OVER[@]}"; do
      placement "$id"
      [ "$P_STATE" = placed ] && [ "$P_GATEWAY" = "${GW_ID[b]}" ] && file_has yes b "${ACCOUNT[$id]}" || return 1
    done
  }
  # The lease and its margin, a sweep (a fifth of the lease), and gw-b's sync.
  wait_until $((LEASE + MARGIN + STEP_TIMEOUT)) "gw-a's tenants to be re-placed on gw-b and in its file" failed_over
  for id in "${FAILED_OVER[@]}"; do
    ON[$id]=b
    ENTERED="$(first_event "$STOP_AT" b + "${ACCOUNT[$id]}")"
    [ -n "$ENTERED" ] || fail "the watcher never saw ${ACCOUNT[$id]} enter gw-b's file"
    before "gw-a's fence, then ${ACCOUNT[$id]} entering gw-b's file" "$FENCED" "$ENTERED"
    # The lease runs from gw-a's last renewal (up to a fifth of it, plus a pass, before the
    # stop); the margin covers that: so never within half a lease of the stop.
    [ $((${ENTERED%% *} - STOP_AT)) -ge $((LEASE * 500)) ] ||
      fail "${ACCOUNT[$id]} entered gw-b's file $((${ENTERED%% *} - STOP_AT)) ms after the stop, long before the ${LEASE}s lease ran out"
    log "${ACCOUNT[$id]} entered gw-b's file $((${ENTERED%% *} - STOP_AT)) ms after the stop ($(((${ENTERED#* } - ${FENCED#* }) / 1000000)) ms after the fence, file times)"
  done
  api GET "/gateways/${GW_ID[a]}"
  [ "$(json_get health <"$WORK/answer.json")" = down ] || fail "gw-a is not down: $(cat "$WORK/answer.json")"
  for id in "${FAILED_OVER[@]}"; do
    wait_until "$STEP_TIMEOUT" "gw-b to hot-apply the arrival of ${ACCOUNT[$id]}" applied b "$MARK_B" "${ACCOUNT[$id]}"
  done
  # gw-a's file lost every tenant (whole sections): however the gateway applies that (a hot
  # reload, or a restart in its process), it must end up serving nobody.
  reloaded_a() {
    tail -c +"$((MARK_A + 1))" "$WORK/a/gateway.log" |
      grep -qE '\[reload\] config (hot reload applied|change applied)|restart'
  }
  wait_until "$STEP_TIMEOUT" "gw-a to apply its fenced config" reloaded_a
  wait_until "$START_TIMEOUT" "gw-a to be ready after applying it" gws_ready
  no_restart b
  gw_check b
  gw_check a
  SUMMARY="$SUMMARY; gw-a's sync stopped, fenced its file, and its tenants failed over to gw-b after the lease"
fi

# ---- the watcher's verdict -------------------------------------------------------------------
invariant
stop "$WATCH_PID"
WATCH_PID=""
[ ! -s "$WORK/watch/violations.log" ] || fail "a channel account was in both files: $(head -n 5 "$WORK/watch/violations.log")"
POLLS="$(cat "$WORK/watch/polls")"
[ "$POLLS" -ge 20 ] || fail "the watcher polled only $POLLS times"
log "the watcher polled both files $POLLS times: never an account in both"
SUMMARY="$SUMMARY; $POLLS polls of both files, never an account in both"
RESULT=PASS
