#!/usr/bin/env bash
# Installs llbgen for the user running it, and a Docker Engine only where none exists.
#
#   bash scripts/install.sh [--containerd-store] [--restart-engine] [--dry-run]
#
# * llbgen goes into ./.venv (python3 -m venv; pip install .), owned by the caller.
# * A Docker Engine is installed only when the machine has none (no dockerd), from the
#   distribution's own packages: Debian 13+ its docker.io; Debian 12 docker.io from trixie,
#   pinned so nothing else is upgraded (bookworm's 20.10 is too old for MergeOp/DiffOp);
#   Ubuntu its docker.io. Other systems: the script stops and says so.
# * --containerd-store merges the one key {"features": {"containerd-snapshotter": true}} into
#   the existing /etc/docker/daemon.json (every other key kept, a backup beside it first).
#   A running engine reads it only when restarted: the script restarts an engine it
#   installed itself, and an existing one only with --restart-engine.
# * Running it again changes nothing. --dry-run prints what it would run instead.
#
# Root is needed only for the engine and daemon.json: the script uses sudo for those steps
# when not run as root. LLBGEN_INSTALL_ROOT (a prefix for /etc), LLBGEN_OS_RELEASE and
# LLBGEN_DOCKERD (the engine binary looked for) are for the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

containerd_store=0 restart_engine=0 dry_run=0
for arg in "$@"; do
  case "$arg" in
    --containerd-store) containerd_store=1 ;;
    --restart-engine) restart_engine=1 ;;
    --dry-run) dry_run=1 ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option '$arg' (see --help)" >&2; exit 2 ;;
  esac
done

ROOT=${LLBGEN_INSTALL_ROOT:-}
OS_RELEASE=${LLBGEN_OS_RELEASE:-/etc/os-release}
DAEMON_JSON="$ROOT/etc/docker/daemon.json"

log() { printf '[install] %s\n' "$*" >&2; }
run() {  # a command, or its line under --dry-run
  if [ "$dry_run" = 1 ]; then printf 'would run: %s\n' "$*"; else "$@"; fi
}
as_root() {
  if [ "$(id -u)" = 0 ] || [ -n "$ROOT" ]; then run "$@"; else run sudo "$@"; fi
}

os_field() {  # KEY → its value in os-release, unquoted
  sed -n "s/^$1=//p" "$OS_RELEASE" | head -n1 | tr -d '"'\'
}

engine_installed=0
install_engine() {
  local id like codename
  id=$(os_field ID) like=$(os_field ID_LIKE) codename=$(os_field VERSION_CODENAME)
  if [ "$id" = ubuntu ] || [[ " $like " == *" ubuntu "* ]]; then
    log "installing Docker Engine from Ubuntu's own docker.io"
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends docker.io docker-buildx
  elif [ "$id" = debian ] && [ "$codename" = bookworm ]; then
    log "installing Docker Engine from Debian 13's docker.io (pinned; nothing else comes from trixie)"
    if [ ! -e "$ROOT/etc/apt/sources.list.d/llbgen-trixie.sources" ]; then
      as_root install -D -m 0644 /dev/stdin "$ROOT/etc/apt/sources.list.d/llbgen-trixie.sources" <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
      as_root install -D -m 0644 /dev/stdin "$ROOT/etc/apt/preferences.d/llbgen-trixie-low" <<'PIN'
Package: *
Pin: release n=trixie
Pin-Priority: 100
PIN
    fi
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      docker.io/trixie containerd/trixie docker-buildx/trixie docker-cli/trixie
  elif [ "$id" = debian ]; then
    log "installing Docker Engine from Debian's own docker.io"
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends docker.io docker-buildx docker-cli
  else
    log "no Docker Engine here and '$id' is neither Debian nor Ubuntu: install Docker Engine 23+ yourself, then run this again"
    exit 1
  fi
  engine_installed=1
}

# The merged daemon.json on stdout, or nothing when the key is already set.
merged_daemon_json() {
  python3 - "$DAEMON_JSON" <<'PY'
import json, pathlib, sys
path = pathlib.Path(sys.argv[1])
try:
    config = json.loads(path.read_text() or "{}") if path.exists() else {}
except ValueError as err:
    sys.exit(f"install.sh: {path} is not valid JSON ({err}); fix it, then run this again")
if not isinstance(config, dict) or not isinstance(config.get("features", {}), dict):
    sys.exit(f"install.sh: {path} has no JSON object at its top or under 'features'; fix it, then run this again")
if config.get("features", {}).get("containerd-snapshotter") is True:
    sys.exit(0)
config.setdefault("features", {})["containerd-snapshotter"] = True
print(json.dumps(config, indent=2))
PY
}

enable_containerd_store() {
  local merged
  merged=$(merged_daemon_json)
  if [ -z "$merged" ]; then
    log "the containerd image store is already enabled in $DAEMON_JSON"
    return 1
  fi
  if [ -e "$DAEMON_JSON" ]; then
    local backup
    backup="$DAEMON_JSON.llbgen-backup-$(date -u +%Y%m%dT%H%M%SZ)"
    log "backing up $DAEMON_JSON to $backup"
    as_root cp -p "$DAEMON_JSON" "$backup"
  fi
  log "enabling the containerd image store in $DAEMON_JSON (other keys kept)"
  printf '%s\n' "$merged" | as_root install -D -m 0644 /dev/stdin "$DAEMON_JSON"
  return 0
}

restart_docker() {
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    as_root systemctl restart docker
  else
    as_root service docker restart
  fi
}

DOCKERD=${LLBGEN_DOCKERD:-dockerd}
if command -v "$DOCKERD" >/dev/null 2>&1; then
  log "Docker Engine found ($("$DOCKERD" --version 2>/dev/null || echo "$DOCKERD")); not installing one"
else
  install_engine
fi

if [ "$containerd_store" = 1 ] && enable_containerd_store; then
  if [ "$engine_installed" = 1 ] || [ "$restart_engine" = 1 ]; then
    log "restarting the Docker Engine so it reads $DAEMON_JSON"
    restart_docker
  else
    log "the Docker Engine must restart to use it: run this again with --restart-engine, or restart it yourself (e.g. sudo systemctl restart docker)"
  fi
fi

if [ ! -x .venv/bin/llbgen ]; then
  log "installing llbgen into $(pwd)/.venv"
  [ -x .venv/bin/python ] || run python3 -m venv .venv
  run .venv/bin/pip install --quiet --disable-pip-version-check .
else
  log "llbgen is already installed in $(pwd)/.venv (reinstall: .venv/bin/pip install .)"
fi
log "done: .venv/bin/llbgen builder inspect shows what the engine can do"
