# e2e-lib.sh - what the end-to-end checks in scripts/openclaw share (e2e-hot-reload.sh,
# e2e-bridge.sh, e2e-fleet.sh). Source it (bash) after lib.sh; it only defines variables and
# functions, and starts the clock of `log`.
#
#   . scripts/openclaw/e2e-lib.sh
#   log MESSAGE...                  # "[e2e  12s] MESSAGE", seconds since sourcing
#   fail MESSAGE...                 # RESULT=FAIL, the message on stderr, exit 1
#   json_get FIELD < JSON           # a top-level string field of a compact JSON object
#   free_port                       # a port nothing listens on at 127.0.0.1 right now
#   wait_until SECONDS WHAT CMD...  # runs CMD every half second until it succeeds (fails after
#                                   # SECONDS), calling e2e_on_poll (define it to check an
#                                   # invariant; by default it does nothing) before each try
#   e2e_build                       # builds moltbot-saas (cargo, $CARGO_TARGET_DIR); sets BIN
#   e2e_serve                       # "$BIN serve" on the port it picks (SAAS_API_PORT=0), log in
#                                   # $WORK/server.log; sets SERVER_PID, API_PORT and API
#   call TOKEN METHOD PATH [BODY]   # the API with that bearer token; answer in $WORK/answer.json,
#                                   # status in CODE (through "${IN[@]}", e.g. nsenter, when set)
#   api METHOD PATH [BODY]          # call as the operator ($ADMIN_TOKEN); not 2xx fails the check
#   e2e_stop_all GROUP PID...       # SIGTERM to each PID (and to GROUP's process group) at once,
#                                   # then waits up to 10 s for each, SIGKILL if it must; empty
#                                   # PIDs are skipped
#
# Small helpers use grep and sed, not node: the answers they read are flat JSON written by the
# programs under test, and short-lived node processes are the part most exposed to flakes.

T0=$SECONDS
RESULT=""
IN=()

log() { printf '[e2e %3ds] %s\n' "$((SECONDS - T0))" "$*"; }

fail() {
  RESULT=FAIL
  echo "FAIL: $*" >&2
  exit 1
}

json_get() {
  grep -o "\"$1\":\"[^\"]*\"" | head -n 1 | sed 's/^"[^"]*":"//; s/"$//' | grep .
}

free_port() {
  local port
  for _ in $(seq 1 100); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return 0; fi
  done
  return 1
}

e2e_on_poll() { :; }

wait_until() {
  local limit="$1" what="$2" deadline=$((SECONDS + $1))
  shift 2
  while :; do
    e2e_on_poll
    "$@" && return 0
    [ "$SECONDS" -lt "$deadline" ] || fail "timed out after ${limit}s waiting for $what"
    sleep 0.5
  done
}

e2e_build() {
  log "building moltbot-saas"
  BIN="$(cargo build --locked -p tenant-server --bin moltbot-saas --message-format=json-render-diagnostics |
    grep -o '"executable":"[^"]*/moltbot-saas"' | tail -n 1 | sed 's/^"executable":"//; s/"$//')" ||
    openclaw_die "cargo build failed"
  [ -x "$BIN" ] || openclaw_die "no binary at $BIN"
}

e2e_server_port() {
  API_PORT="$(grep -m1 '"listening"' "$WORK/server.log" | grep -o '"port":[0-9]*' | cut -d: -f2)" &&
    [ -n "$API_PORT" ]
}
e2e_server_ready() {
  kill -0 "$SERVER_PID" 2>/dev/null || fail "moltbot-saas exited: $(tail -n 5 "$WORK/server.log")"
  e2e_server_port && curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$API_PORT/ready"
}
e2e_serve() {
  "$BIN" serve >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  wait_until 30 "moltbot-saas /ready" e2e_server_ready
  API="http://127.0.0.1:$API_PORT"
  log "moltbot-saas (pid $SERVER_PID) ready on $API"
}

call() {
  CODE="$("${IN[@]}" curl -sS --max-time 10 -o "$WORK/answer.json" -w '%{http_code}' -X "$2" "$API$3" \
    -H "Authorization: Bearer $1" -H 'Content-Type: application/json' ${4:+-d "$4"})" ||
    fail "$2 $3: curl failed"
}
api() {
  call "$ADMIN_TOKEN" "$@"
  case "$CODE" in
    2??) ;;
    *) fail "$1 $2 answered $CODE: $(cat "$WORK/answer.json")";;
  esac
}

e2e_stop_all() {
  local group="$1" pid
  shift
  for pid in "$group" "$@"; do
    [ -n "$pid" ] || continue
    if [ "$pid" = "$group" ]; then kill -TERM -- "-$pid" 2>/dev/null || true; fi
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "$group" "$@"; do
    [ -n "$pid" ] || continue
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "$OPENCLAW_PROG: pid $pid did not stop on SIGTERM; killing it" >&2
      if [ "$pid" = "$group" ]; then kill -KILL -- "-$pid" 2>/dev/null || true; fi
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  # The gateway's helpers share its process group; make sure none outlives it.
  if [ -n "$group" ]; then kill -KILL -- "-$group" 2>/dev/null || true; fi
}
