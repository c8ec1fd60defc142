#!/usr/bin/env bash
# validate.sh - check rendered gateway configs with the real OpenClaw gateway's own validator.
#
#   scripts/openclaw/validate.sh [--dialect current|legacy] [--setup-only] FILE...
#
# Installs Node.js (the npm registry's `node` package) and the gateway release that matches the
# dialect into a cache directory, then runs `openclaw config validate --json` on each FILE:
# without network (unshare -n, when the kernel allows it), with a throwaway HOME and state
# directory, and OPENCLAW_CONFIG_PATH pointing at the file. If FILE is NAME.json and NAME.env
# exists beside it (the env file of the `env`/`secret-ref` secrets modes), that file is loaded
# into the validator's environment first (`set -a; . NAME.env`).
#
# Beyond the gateway's own checks it verifies what the gateway does not: every binding's account
# exists under channels.<channel>.accounts, and account ids are canonical.
#
# Exit codes: 0 every file valid with no warning; 1 some file has an error or a warning (all are
# printed); 2 usage or setup problem.
#
# Environment:
#   OPENCLAW_CACHE     cache directory (default: $HOME/.cache/moltbot-saas/openclaw)
#   OPENCLAW_NODE      Node.js version from npm (default 24.21.0; openclaw 2026.9 needs >= 24.16)
#   OPENCLAW_CURRENT   gateway release for the current dialect (default 2026.9.6)
#   OPENCLAW_LEGACY    gateway release for the legacy dialect (default 2026.7.35)
# Needs bash, and npm (any version) to bootstrap. The install logic is in lib.sh, beside it.
set -euo pipefail

DIALECT=current SETUP_ONLY=0
FILES=()
die() { echo "validate.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --dialect) DIALECT="${2:-}"; shift 2 || die "--dialect needs a value";;
    --dialect=*) DIALECT="${1#*=}"; shift;;
    --setup-only) SETUP_ONLY=1; shift;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0;;
    --) shift; FILES+=("$@"); break;;
    -*) die "unknown option $1";;
    *) FILES+=("$1"); shift;;
  esac
done
. "$(dirname "$0")/lib.sh"
case "$DIALECT" in
  current|legacy) openclaw_select "$DIALECT";;
  *) die "--dialect must be current or legacy (got '$DIALECT')";;
esac
[ "$SETUP_ONLY" = 1 ] || [ ${#FILES[@]} -gt 0 ] || die "usage: $0 [--dialect current|legacy] FILE..."

openclaw_install
if [ "$SETUP_ONLY" = 1 ]; then
  echo "validate.sh: openclaw@$VERSION with node $("$NODE" --version) ready in $CACHE" >&2
  exit 0
fi

openclaw_netns

SANDBOX="$(mktemp -d "${TMPDIR:-/tmp}/openclaw-validate.XXXXXX")"
trap 'rm -rf "$SANDBOX"' EXIT

# Reads the validator's JSON answer and the config itself; prints every problem; exits 1 if any.
REPORT='
const fs = require("fs");
const [out, cfg, rc] = process.argv.slice(1);
const problems = [];
let res = null;
const raw = fs.readFileSync(out, "utf8");
try { res = JSON.parse(raw); } catch {
  const m = raw.match(/\{[\s\S]*\}\s*$/);
  try { res = m ? JSON.parse(m[0]) : null; } catch { res = null; }
}
if (!res || typeof res.valid !== "boolean") {
  console.error(`  ERROR validator gave no result (exit ${rc}): ${raw.slice(-2000)}`);
  process.exit(2);
}
const where = (i) => (typeof i === "object" && i) ? `${i.path || "<root>"}: ${i.message ?? JSON.stringify(i)}` : String(i);
for (const i of res.issues ?? []) problems.push(`ERROR ${where(i)}`);
for (const w of res.warnings ?? []) problems.push(`WARN  ${where(w)}`);
if (!res.valid && !(res.issues ?? []).length) problems.push("ERROR invalid, without details");
// Checks the gateway does not do.
let doc = null;
try { doc = JSON.parse(fs.readFileSync(cfg, "utf8")); } catch { /* JSON5: skip */ }
if (doc) {
  const channels = doc.channels ?? {};
  (doc.bindings ?? []).forEach((b, n) => {
    const ch = b?.match?.channel, acc = b?.match?.accountId;
    if (acc === undefined) problems.push(`ERROR bindings.${n}.match.accountId: missing (matches only the default account)`);
    else if (!channels[ch]?.accounts?.[acc]) problems.push(`ERROR bindings.${n}: no account channels.${ch}.accounts.${acc}`);
  });
  for (const [ch, block] of Object.entries(channels))
    for (const acc of Object.keys(block?.accounts ?? {}))
      if (!/^[a-z0-9][a-z0-9_-]{0,63}$/.test(acc) || acc === "default" || acc === "main")
        problems.push(`ERROR channels.${ch}.accounts.${acc}: account id is not canonical`);
}
for (const p of problems) console.error("  " + p);
process.exit(problems.length ? 1 : 0);
'

failed=0 n=0
for file in "${FILES[@]}"; do
  [ -f "$file" ] || { echo "validate.sh: no such file: $file" >&2; failed=1; continue; }
  abs="$(cd "$(dirname "$file")" && pwd -P)/$(basename "$file")"
  envfile="${abs%.json}.env"
  [ "$envfile" != "$abs" ] && [ -f "$envfile" ] || envfile=""
  rm -rf "$SANDBOX/home" "$SANDBOX/state"; mkdir -p "$SANDBOX/home" "$SANDBOX/state"
  set +e
  (
    # Only the variables below (and the env file's) reach the validator.
    exec env -i PATH="$(dirname "$NODE"):/usr/bin:/bin" HOME="$SANDBOX/home" \
      OPENCLAW_STATE_DIR="$SANDBOX/state" OPENCLAW_CONFIG_PATH="$abs" \
      OPENCLAW_SKIP_CHANNELS=1 NO_COLOR=1 FORCE_COLOR=0 TZ=UTC ENVFILE="$envfile" \
      "${WRAP[@]}" bash -c 'if [ -n "$ENVFILE" ]; then set -a; . "$ENVFILE"; set +a; fi; unset ENVFILE;
        exec "$0" "$1" config validate --json' "$NODE" "$CLI"
  ) >"$SANDBOX/out.json" 2>"$SANDBOX/err.txt"
  rc=$?
  "$NODE" -e "$REPORT" "$SANDBOX/out.json" "$abs" "$rc" 2>"$SANDBOX/report.txt"
  verdict=$?
  set -e
  n=$((n + 1))
  if [ "$verdict" = 0 ]; then
    echo "ok    openclaw@$VERSION $file${envfile:+ (with $(basename "$envfile"))}"
  else
    echo "FAIL  openclaw@$VERSION $file${envfile:+ (with $(basename "$envfile"))}"
    cat "$SANDBOX/report.txt"
    [ "$verdict" = 2 ] && tail -n 20 "$SANDBOX/err.txt"
    failed=1
  fi
done
echo "validate.sh: $n file(s) checked with openclaw@$VERSION: $([ $failed = 0 ] && echo 'all valid, no warnings' || echo 'FAILURES above')"
exit "$failed"
