#!/usr/bin/env bash
# The layers stay layers (issue 14, docs/architecture.md): checked by CI, in seconds, without
# building anything.
# 1. Crates depend one way: tenant-server → tenant-service → {tenant-webhooks, tenant-configgen,
#    tenant-store} → tenant-core (tenant-webhooks → tenant-store), nothing on tenant-server but
#    the test harness.
# 2. Their normal dependency trees keep out what does not belong: no actix, clap or utoipa under
#    tenant-service (embedders get the use cases without HTTP), no diesel, actix, reqwest or tokio
#    under tenant-core.
# 3. No import cycle between the modules of any crate (scripts/ci/module_cycles.py).
set -euo pipefail
cd "$(dirname "$0")/../.."

fail=0

# 1. Which workspace crates each crate may depend on (normal dependencies).
cargo metadata --format-version 1 --no-deps --locked | python3 -c '
import json, sys
allowed = {
    "tenant-core": set(),
    # The model of the fleet move protocol: a specification, checked on its own (std only).
    "fleet-model": set(),
    "tenant-store": {"tenant-core"},
    "tenant-configgen": {"tenant-core"},
    "tenant-webhooks": {"tenant-core", "tenant-store"},
    "tenant-service": {"tenant-core", "tenant-store", "tenant-configgen", "tenant-webhooks"},
    "tenant-server": {"tenant-core", "tenant-store", "tenant-configgen", "tenant-webhooks", "tenant-service"},
}
meta = json.load(sys.stdin)
members = {p["name"] for p in meta["packages"]}
bad = 0
for p in meta["packages"]:
    name = p["name"]
    deps = {d["name"] for d in p["dependencies"] if d["name"] in members and d.get("kind") is None}
    if name in allowed:
        extra = deps - allowed[name]
        if extra:
            print(name, "must not depend on", sorted(extra))
            bad = 1
    elif "tenant-server" in deps and name != "moltbot-saas-tests":
        print(name, "depends on tenant-server: only the test harness may (to spawn the app)")
        bad = 1
sys.exit(bad)
' || fail=1

# 2. Forbidden crates anywhere in a crate's normal dependency tree.
forbid() {
  local crate=$1 pattern=$2 found
  found=$(cargo tree --locked -p "$crate" -e normal --prefix none --format '{p}' | awk '{print $1}' |
    grep -E "^($pattern)$" | sort -u || true)
  if [ -n "$found" ]; then
    echo "$crate's normal dependency tree has: $(echo $found)"
    fail=1
  fi
}
forbid tenant-service 'actix.*|clap.*|utoipa.*'
forbid tenant-core 'diesel.*|actix.*|reqwest|tokio'

# 3. Module import cycles.
python3 scripts/ci/module_cycles.py || fail=1

if [ "$fail" = 0 ]; then
  echo "layers: crate dependencies point one way; tenant-service has no actix, clap or utoipa; no module import cycles"
fi
exit "$fail"
