# lib.sh - shared by the scripts in scripts/openclaw: where Node.js and the OpenClaw gateway are
# cached, and how they get there. Source it (bash); it only defines variables and functions.
#
#   . scripts/openclaw/lib.sh
#   openclaw_select current|legacy   # sets VERSION, NODE, CLI (and CACHE, NODE_DIR, PKG_DIR)
#   openclaw_install                 # installs Node and that gateway release if not cached yet
#   openclaw_netns                   # sets WRAP: the command prefix that runs without network
#
# Messages and errors are prefixed with $OPENCLAW_PROG (default: the calling script's name);
# errors exit 2.
#
# Environment:
#   OPENCLAW_CACHE     cache directory (default: $HOME/.cache/moltbot-saas/openclaw)
#   OPENCLAW_NODE      Node.js version from npm (default 24.21.0; openclaw 2026.9 needs >= 24.16)
#   OPENCLAW_CURRENT   gateway release for the current dialect (default 2026.9.6)
#   OPENCLAW_LEGACY    gateway release for the legacy dialect (default 2026.7.35)
# Needs npm (any version) to bootstrap.

OPENCLAW_PROG="${OPENCLAW_PROG:-$(basename "$0")}"
openclaw_die() { echo "$OPENCLAW_PROG: $*" >&2; exit 2; }

CACHE="${OPENCLAW_CACHE:-$HOME/.cache/moltbot-saas/openclaw}"
NODE_VERSION="${OPENCLAW_NODE:-24.21.0}"
NODE_DIR="$CACHE/node-$NODE_VERSION"
NODE="$NODE_DIR/node_modules/node/bin/node"

# openclaw_select DIALECT: the gateway release of that dialect and its paths in the cache.
openclaw_select() {
  case "$1" in
    current) VERSION="${OPENCLAW_CURRENT:-2026.9.6}";;
    legacy) VERSION="${OPENCLAW_LEGACY:-2026.7.35}";;
    *) openclaw_die "the dialect must be current or legacy (got '$1')";;
  esac
  PKG_DIR="$CACHE/openclaw-$VERSION"
  CLI="$PKG_DIR/node_modules/openclaw/openclaw.mjs"
}

# Installs into a temporary directory and renames it into place, so an interrupted install is
# never mistaken for a finished one.
openclaw_install_into() { # DIR PACKAGE_JSON SPEC
  local dir="$1" manifest="$2" spec="$3" tmp
  command -v npm >/dev/null || openclaw_die "npm is needed to install $spec (apt-get install npm)"
  mkdir -p "$CACHE"
  tmp="$(mktemp -d "$CACHE/.install.XXXXXX")"
  printf '%s\n' "$manifest" > "$tmp/package.json"
  echo "$OPENCLAW_PROG: installing $spec into $dir ..." >&2
  if ! (cd "$tmp" && PATH="$(dirname "$NODE"):$PATH" \
        npm install --no-audit --no-fund --loglevel=error "$spec" >&2); then
    rm -rf "$tmp"; openclaw_die "npm install $spec failed"
  fi
  rm -rf "$dir"; mv "$tmp" "$dir"
}

# openclaw_install: Node and the selected gateway release, each only if not cached yet.
openclaw_install() {
  [ -n "${CLI:-}" ] || openclaw_die "openclaw_select first"
  [ -x "$NODE" ] || openclaw_install_into "$NODE_DIR" '{"name":"openclaw-node","private":true}' \
    "node@$NODE_VERSION"
  [ -x "$NODE" ] || openclaw_die "no node binary at $NODE"
  # Releases before 2026.8 pull libsignal (through baileys) from a git URL, which a machine that
  # reaches only the npm registry cannot fetch; the npm-published libsignal stands in for it.
  # Neither validation nor the end-to-end check runs WhatsApp's crypto code.
  [ -f "$CLI" ] || openclaw_install_into "$PKG_DIR" \
    '{"name":"openclaw-validate","private":true,"overrides":{"libsignal":"npm:libsignal@2.0.1"}}' \
    "openclaw@$VERSION"
  [ -f "$CLI" ] || openclaw_die "no gateway CLI at $CLI"
}

# openclaw_netns: WRAP=(unshare -n) when the kernel lets us make a network namespace (no
# interface but a loopback that is down), else WRAP=() and a note on stderr.
openclaw_netns() {
  WRAP=()
  if command -v unshare >/dev/null && unshare -n true 2>/dev/null; then
    WRAP=(unshare -n)
  else
    echo "$OPENCLAW_PROG: note: no network namespace available; running with network" >&2
  fi
}
