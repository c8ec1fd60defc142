#!/usr/bin/env bash
# The dashboard and the portal in a real browser (issue 18): builds the server, starts it on a
# temporary SQLite database with SAAS_BASE_DOMAIN=localhost (Chromium resolves *.localhost to
# loopback), creates an operator user, and runs tests/browser/e2e.mjs in headless Debian
# Chromium through playwright-core. Screenshots go to target/ui-screenshots/.
#
# Needs /usr/bin/chromium (apt-get install chromium) and node/npm; `.ci/run` installs both
# when missing. npm packages are cached under $HOME/.cache/moltbot-saas/npm.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
target=${CARGO_TARGET_DIR:-$root/target}
shots=$root/target/ui-screenshots
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

[ -x /usr/bin/chromium ] || { echo "e2e-browser: /usr/bin/chromium is missing (apt-get install chromium)" >&2; exit 1; }

# playwright-core needs Node >= 20: the system's when recent enough, else the Node the gateway
# scripts cache (scripts/openclaw/lib.sh).
node=node
if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  OPENCLAW_PROG=e2e-browser
  . scripts/openclaw/lib.sh
  [ -x "$NODE" ] || openclaw_install_into "$NODE_DIR" '{"name":"openclaw-node","private":true}' "node@$NODE_VERSION"
  node=$NODE
  export PATH="$(dirname "$NODE"):$PATH"
fi

cargo build --locked -q -p tenant-server --bin moltbot-saas
(cd tests/browser && npm ci --no-audit --no-fund --cache "$HOME/.cache/moltbot-saas/npm" --prefer-offline >/dev/null)

work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
password='e2e operator password'
export DATABASE_URL="sqlite://$work/saas.db" SAAS_DATA_DIR="$work" SAAS_API_PORT=$port \
  SAAS_BASE_DOMAIN=localhost SAAS_WEBHOOK_ALLOWED_NETWORKS=127.0.0.0/8 \
  SAAS_WEBHOOK_POLL_INTERVAL_MS=200 RUST_LOG=warn
echo "$password" | "$target/debug/moltbot-saas" operators create --email op@e2e.test >/dev/null
"$target/debug/moltbot-saas" serve >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  sleep 0.1
done

rm -rf "$shots"
if ! BASE_PORT=$port OPERATOR_EMAIL=op@e2e.test PASSWORD=$password SHOTS=$shots \
  "$node" tests/browser/e2e.mjs; then
  echo "--- server log" >&2; tail -50 "$work/server.log" >&2
  exit 1
fi
echo "screenshots: $shots"
