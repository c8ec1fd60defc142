#!/usr/bin/env bash
# The Debian package installed for real, as root, inside a throwaway root (scripts/deploy/check.sh
# runs it in a private copy-on-write overlay of this machine's /, so nothing it does stays), or
# on the machine itself when asked to (DEB_TEST_REAL_ROOT=1; it purges the package at the end):
#
#  1. `dpkg -i` the package: the system user, /etc/moltbot-saas/env 0640 root:moltbot-saas, the
#     state directory, the four units; installing it again (an upgrade) changes nothing.
#  2. `systemd-analyze verify` on every unit (a template through an instance), and
#     `systemd-analyze security --offline=true` on the API unit, which must score OK or better.
#  3. Secrets filled into the packaged env file as an operator would, then the API started as its
#     unit starts it (its ExecStart, User, WorkingDirectory, UMask and EnvironmentFile; no
#     systemd PID 1 needed): /health, a tenant created with the operator token and read back.
#  4. The SQLite backup of docs/deployment.md (`sqlite3 … ".backup …"`, the online backup API)
#     taken while writers create tenants; restored into a fresh directory, the server starts on
#     it and every tenant acknowledged before the backup began is there.
#  5. The migration unit's ExecStart; then `dpkg -r` (binary and units gone; database and env
#     file kept) and `dpkg --purge` (state and env file gone).
#
# Usage: deb-install-test.sh PACKAGE.deb. Needs root, curl, sqlite3, setpriv, systemd-analyze.
set -euo pipefail

deb="${1:?usage: deb-install-test.sh PACKAGE.deb}"
PROG="deb-install-test.sh"
UNIT_DIR=/usr/lib/systemd/system
ENV_FILE=/etc/moltbot-saas/env
STATE=/var/lib/moltbot-saas
T0=$SECONDS
log() { printf '[deb %3ds] %s\n' "$((SECONDS - T0))" "$*"; }
fail() { echo "$PROG: FAIL: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "needs root"
if dpkg-query -W -f='${Status}' moltbot-saas 2>/dev/null | grep -q installed; then
  fail "moltbot-saas is already installed here; refusing to touch it"
fi

WORK="$(mktemp -d /tmp/deb-install-test.XXXXXX)"
chmod 0755 "$WORK"
SERVER_PID=""
stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}
cleanup() {
  local rc=$?
  stop_server
  if [ "$rc" != 0 ]; then
    for f in "$WORK"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 30 "$f"; }; done
  fi
  if [ "${DEB_TEST_REAL_ROOT:-0}" = 1 ]; then
    dpkg --purge moltbot-saas >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# stat_is PATH "MODE USER GROUP"
stat_is() {
  local got
  got="$(stat -c '%a %U %G' "$1")" || fail "$1 is missing"
  [ "$got" = "$2" ] || fail "$1 is '$got', expected '$2'"
}
# unit_value UNIT KEY: the first KEY= of the unit file.
unit_value() { sed -n "s/^$2=//p" "$UNIT_DIR/$1" | head -n 1; }

# ---- 1. install ---------------------------------------------------------------------------------
log "dpkg -i $(basename "$deb")"
dpkg -i "$deb" >"$WORK/dpkg-install.log" 2>&1 || fail "dpkg -i failed: $(cat "$WORK/dpkg-install.log")"
getent passwd moltbot-saas >/dev/null || fail "no system user moltbot-saas"
uid="$(id -u moltbot-saas)"
[ "$uid" -lt 1000 ] || fail "moltbot-saas is not a system user (uid $uid)"
[ "$(getent passwd moltbot-saas | cut -d: -f7)" = /usr/sbin/nologin ] || fail "moltbot-saas has a login shell"
stat_is /etc/moltbot-saas "750 root moltbot-saas"
stat_is "$ENV_FILE" "640 root moltbot-saas"
stat_is "$STATE" "750 moltbot-saas moltbot-saas"
stat_is /usr/bin/moltbot-saas "755 root root"
for unit in moltbot-saas.service moltbot-saas-migrate.service moltbot-saas-dispatch.service \
  moltbot-saas-config-sync@.service; do
  stat_is "$UNIT_DIR/$unit" "644 root root"
done
grep -q '^/etc/moltbot-saas/env$' /var/lib/dpkg/info/moltbot-saas.conffiles ||
  fail "$ENV_FILE is not a conffile"
grep -Eq '^#?SAAS_ENCRYPTION_KEYS=$' "$ENV_FILE" || fail "the env file does not document SAAS_ENCRYPTION_KEYS"
if grep -Eq '^(SAAS_ENCRYPTION_KEYS|SAAS_JWT_SECRET|SAAS_API_KEY_SECRET|SAAS_ADMIN_TOKEN|SAAS_GATEWAY_TOKEN)=.' "$ENV_FILE"; then
  fail "the packaged env file holds a secret"
fi
if ls /etc/systemd/system/*.wants/moltbot-saas* >/dev/null 2>&1; then
  fail "a first install enabled units: $(ls /etc/systemd/system/*.wants/moltbot-saas*)"
fi
log "installed: user moltbot-saas (uid $uid), env file 0640 root:moltbot-saas, state dir 0750, nothing enabled"

log "dpkg -i again (an upgrade over itself)"
dpkg -i "$deb" >"$WORK/dpkg-reinstall.log" 2>&1 || fail "a second dpkg -i failed: $(cat "$WORK/dpkg-reinstall.log")"
stat_is "$ENV_FILE" "640 root moltbot-saas"
stat_is "$STATE" "750 moltbot-saas moltbot-saas"

# ---- 2. systemd-analyze -------------------------------------------------------------------------
for unit in moltbot-saas.service moltbot-saas-migrate.service moltbot-saas-dispatch.service \
  moltbot-saas-config-sync@default.service; do
  if ! systemd-analyze verify "$unit" >"$WORK/verify.log" 2>&1 || [ -s "$WORK/verify.log" ]; then
    cat "$WORK/verify.log" >&2
    fail "systemd-analyze verify $unit"
  fi
done
# The same check must complain about a unit with a mistake in it (or it proves nothing).
sed 's/^ProtectSystem=strict$/ProtectSystem=strictly/' "$UNIT_DIR/moltbot-saas.service" \
  >/etc/systemd/system/moltbot-saas-broken.service
systemd-analyze verify moltbot-saas-broken.service >"$WORK/verify.log" 2>&1 || true
grep -Eqi 'protect ?system' "$WORK/verify.log" || fail "systemd-analyze verify did not notice a bad ProtectSystem="
rm /etc/systemd/system/moltbot-saas-broken.service
log "systemd-analyze verify: clean on all four units (and it does flag a broken copy)"
systemd-analyze security --offline=true --no-pager moltbot-saas.service >"$WORK/security.log" 2>&1 || true
exposure="$(grep -o 'Overall exposure level for moltbot-saas.service: .*' "$WORK/security.log" || true)"
[ -n "$exposure" ] || { cat "$WORK/security.log" >&2; fail "systemd-analyze security printed no score"; }
log "systemd-analyze security: $exposure"
case "$exposure" in
  *" OK"* | *" SAFE"* | *" PERFECT"*) ;;
  *) grep -E '^✗' "$WORK/security.log" >&2 || true; fail "the API unit scores worse than OK" ;;
esac

# ---- 3. the API as its unit starts it ----------------------------------------------------------
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
admin="msop_$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
key="$(/usr/bin/moltbot-saas keys generate --id ci1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')"
# As an operator fills it in (values single-quoted, as the file says).
cat >>"$ENV_FILE" <<EOF

# ---- filled in by $PROG
SAAS_API_PORT=$port
SAAS_ENCRYPTION_KEYS='$key'
SAAS_JWT_SECRET='$(head -c 48 /dev/urandom | base64 -w 0)'
SAAS_API_KEY_SECRET='$(head -c 48 /dev/urandom | base64 -w 0)'
SAAS_ADMIN_TOKEN='$admin'
SAAS_GATEWAY_TOKEN='msgw_$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')'
EOF

# run_unit UNIT: becomes the unit's ExecStart, as its User, in its WorkingDirectory, with its
# UMask and only its EnvironmentFile's variables (read by a shell: the file's syntax suits both).
# It execs: call it in the background (`run_unit U &`, $! is then the server) or in a subshell.
run_unit() {
  local unit="$1" user workdir umask_ envfile exec
  user="$(unit_value "$unit" User)"
  workdir="$(unit_value "$unit" WorkingDirectory)"
  umask_="$(unit_value "$unit" UMask)"
  envfile="$(unit_value "$unit" EnvironmentFile)"
  exec="$(unit_value "$unit" ExecStart)"
  [ -n "$user" ] && [ -n "$workdir" ] && [ -n "$envfile" ] && [ -n "$exec" ] ||
    fail "$unit lacks User, WorkingDirectory, EnvironmentFile or ExecStart"
  # shellcheck disable=SC2016,SC2086 # expanded by the inner shell; ExecStart splits into words
  exec setpriv --reuid="$user" --regid="$user" --init-groups \
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    sh -c 'cd "$1" && umask "$2" && set -a && . "$3" && set +a && shift 3 && exec "$@"' \
    sh "$workdir" "${umask_:-0022}" "$envfile" $exec
}
server_up() {
  local pid="$1" logf="$2"
  for _ in $(seq 1 150); do
    kill -0 "$pid" 2>/dev/null || fail "the server exited: $(tail -n 20 "$logf")"
    curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$port/ready" 2>/dev/null && return 0
    sleep 0.2
  done
  fail "the server did not get ready: $(tail -n 20 "$logf")"
}
api() { # METHOD PATH [BODY]: prints the body; fails unless 2xx
  local code
  code="$(curl -sS --max-time 10 -o "$WORK/answer.json" -w '%{http_code}' -X "$1" \
    "http://127.0.0.1:$port$2" -H "Authorization: Bearer $admin" \
    -H 'Content-Type: application/json' ${3:+-d "$3"})" || fail "$1 $2: curl failed"
  case "$code" in 2??) cat "$WORK/answer.json" ;; *) fail "$1 $2 answered $code: $(cat "$WORK/answer.json")" ;; esac
}
json_id() { python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'; }

log "starting the API as moltbot-saas.service does: $(unit_value moltbot-saas.service ExecStart)"
run_unit moltbot-saas.service >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
server_up "$SERVER_PID" "$WORK/server.log"
[ "$(curl -fsS "http://127.0.0.1:$port/health" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')" = ok ] ||
  fail "/health did not answer ok"
[ "$(ps -o uid=,comm= -p "$SERVER_PID" | tr -s ' ' | sed 's/^ //')" = "$uid moltbot-saas" ] ||
  fail "the server is not moltbot-saas running as uid $uid: $(ps -o uid=,comm= -p "$SERVER_PID")"
hc="$(dirname "$0")/healthcheck.cmd"
if [ -s "$hc" ]; then
  SAAS_API_PORT="$port" /bin/bash -c "$(cat "$hc")" || fail "the Dockerfile's HEALTHCHECK command failed on a healthy server"
  if SAAS_API_PORT=1 /bin/bash -c "$(cat "$hc")" 2>/dev/null; then
    fail "the Dockerfile's HEALTHCHECK command passed with nothing listening"
  fi
  log "the Dockerfile's HEALTHCHECK command: passes on this server, fails on a closed port"
fi
tenant="$(api POST /tenants '{"name": "Package Check"}' | json_id)"
api GET "/tenants/$tenant" >/dev/null
stat_is "$STATE/moltbot-saas.db" "600 moltbot-saas moltbot-saas"
log "/health ok, tenant $tenant created and read back; database 0600 moltbot-saas"

# ---- 4. SQLite backup while writers run, restored and served -----------------------------------
: >"$WORK/acked"
writer() { # appends the id of each acknowledged create, with the time it was acknowledged
  local i=0 id
  while [ ! -e "$WORK/stop-writers" ]; do
    i=$((i + 1))
    id="$(curl -sS --max-time 10 -X POST "http://127.0.0.1:$port/tenants" \
      -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
      -d "{\"name\": \"Writer $1 $i\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("id",""))' 2>/dev/null)" || true
    [ -n "$id" ] && printf '%s %s\n' "$(date +%s%N)" "$id" >>"$WORK/acked.$1"
  done
}
writer 1 & w1=$!
writer 2 & w2=$!
# Let them write a while (at least 20 acknowledged creates, at most 30 s) before the backup.
for _ in $(seq 1 150); do
  [ "$(cat "$WORK"/acked.* 2>/dev/null | wc -l)" -ge 20 ] && break
  sleep 0.2
done
install -d -o moltbot-saas -g moltbot-saas -m 0700 "$WORK/backup"
started="$(date +%s%N)"
setpriv --reuid=moltbot-saas --regid=moltbot-saas --init-groups \
  sqlite3 "$STATE/moltbot-saas.db" ".backup '$WORK/backup/moltbot-saas.db'" 2>"$WORK/backup.log" ||
  fail "sqlite3 .backup failed: $(cat "$WORK/backup.log")"
sleep 1
touch "$WORK/stop-writers"
wait "$w1" "$w2" || true
sort -n "$WORK"/acked.* >"$WORK/acked"
before="$(awk -v t="$started" '$1 < t {print $2}' "$WORK/acked" | wc -l)"
after="$(awk -v t="$started" '$1 >= t {print $2}' "$WORK/acked" | wc -l)"
[ "$before" -gt 0 ] || fail "no write was acknowledged before the backup"
stop_server
log "backup taken with $before creates acknowledged before it began and $after during or after it"

restore="$WORK/restore"
install -d -o moltbot-saas -g moltbot-saas -m 0750 "$restore"
install -o moltbot-saas -g moltbot-saas -m 0600 "$WORK/backup/moltbot-saas.db" "$restore/moltbot-saas.db"
sed -i "s#^DATABASE_URL=.*#DATABASE_URL=sqlite://$restore/moltbot-saas.db#" "$ENV_FILE"
run_unit moltbot-saas.service >"$WORK/restored.log" 2>&1 &
SERVER_PID=$!
server_up "$SERVER_PID" "$WORK/restored.log"
missing=0
while read -r id; do
  code="$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$port/tenants/$id" \
    -H "Authorization: Bearer $admin")"
  [ "$code" = 200 ] || { echo "$PROG: tenant $id (acknowledged before the backup) answered $code" >&2; missing=$((missing + 1)); }
done < <(awk -v t="$started" '$1 < t {print $2}' "$WORK/acked"; echo "$tenant")
[ "$missing" = 0 ] || fail "$missing acknowledged writes are missing from the restored backup"
stop_server
sed -i "s#^DATABASE_URL=.*#DATABASE_URL=sqlite:///var/lib/moltbot-saas/moltbot-saas.db#" "$ENV_FILE"
log "restored into a fresh directory: the server started on it and all $((before + 1)) acknowledged tenants are there"

# ---- 5. migrate, remove, purge ------------------------------------------------------------------
(run_unit moltbot-saas-migrate.service) >"$WORK/migrate.log" 2>&1 || fail "the migrate unit's ExecStart failed: $(cat "$WORK/migrate.log")"
log "moltbot-saas-migrate.service's ExecStart: ok"

dpkg -r moltbot-saas >"$WORK/dpkg-remove.log" 2>&1 || fail "dpkg -r failed: $(cat "$WORK/dpkg-remove.log")"
[ ! -e /usr/bin/moltbot-saas ] || fail "dpkg -r left the binary"
[ ! -e "$UNIT_DIR/moltbot-saas.service" ] || fail "dpkg -r left the API unit"
[ -s "$STATE/moltbot-saas.db" ] || fail "dpkg -r removed the database"
[ -f "$ENV_FILE" ] || fail "dpkg -r removed the env file"
dpkg-query -W -f='${Status}' moltbot-saas | grep -q 'config-files' || fail "not in config-files state after dpkg -r"
log "dpkg -r: binary and units gone; database and env file kept"

dpkg --purge moltbot-saas >"$WORK/dpkg-purge.log" 2>&1 || fail "dpkg --purge failed: $(cat "$WORK/dpkg-purge.log")"
[ ! -e "$STATE" ] || fail "dpkg --purge left $STATE"
[ ! -e /etc/moltbot-saas ] || fail "dpkg --purge left /etc/moltbot-saas"
if dpkg-statoverride --list | grep -q moltbot-saas; then fail "dpkg --purge left a statoverride"; fi
log "dpkg --purge: state and configuration gone (the system user stays, as Debian keeps them)"
echo "$PROG: passed"
