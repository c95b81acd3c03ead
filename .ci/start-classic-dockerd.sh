#!/usr/bin/env bash
# Starts a second Docker Engine that uses the classic (graphdriver) image store, so
# the tests can cover what BuildKit inside such an engine lacks (MergeOp/DiffOp, oci
# exports, registry cache) and the gateway path that gives its images a config.
# Idempotent: does nothing when that engine already answers. Run as root, after
# .ci/setup-host.sh started the main engine (the base image is copied from there).
#
# Kept apart from the main engine in every shared resource:
# * its own data root, exec root, socket and pidfile;
# * its own containerd: without --containerd, dockerd starts a managed containerd
#   under its exec root, so the two engines never share a containerd or its content;
# * its own bridge llbgen-br1. Never `--bridge none`: stopping such a daemon removed
#   the main daemon's docker0 here;
# * --iptables=false: both daemons would otherwise rewrite the same DOCKER* chains.
#   Build steps then have no NAT to the outside, which the tests do not need.
set -euo pipefail

log() { printf '[classic-dockerd] %s\n' "$*" >&2; }

export PATH=/usr/bin:$PATH

RUN_DIR=/var/run/llbgen-classic
SOCK="$RUN_DIR/docker.sock"
HOST="unix://$SOCK"
DATA_ROOT=/var/lib/llbgen-classic
EXEC_ROOT=/var/run/llbgen-classic-exec
CONFIG=/etc/llbgen-classic-daemon.json
LOG=/var/log/llbgen-classic-dockerd.log
BRIDGE=llbgen-br1
BRIDGE_ADDR=172.31.250.1/24
MAIN_HOST=unix:///var/run/docker.sock
BASE_IMAGE=llbgen-test/debian:bookworm

if ! docker -H "$HOST" info >/dev/null 2>&1; then
  mkdir -p "$RUN_DIR" "$DATA_ROOT" "$EXEC_ROOT"
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    log "creating bridge $BRIDGE ($BRIDGE_ADDR)"
    ip link add "$BRIDGE" type bridge
  fi
  ip addr show dev "$BRIDGE" | grep -q "inet ${BRIDGE_ADDR%/*}/" || ip addr add "$BRIDGE_ADDR" dev "$BRIDGE"
  ip link set "$BRIDGE" up

  # The main engine's /etc/docker/daemon.json turns the containerd store on; this one
  # reads only its own file.
  cat > "$CONFIG" <<'JSON'
{"features": {"containerd-snapshotter": false}}
JSON

  # A stale socket or pidfile from a killed daemon would make the new one refuse to start.
  if [ -f "$RUN_DIR/docker.pid" ] && ! kill -0 "$(cat "$RUN_DIR/docker.pid")" 2>/dev/null; then
    rm -f "$RUN_DIR/docker.pid" "$SOCK"
  fi

  log "starting dockerd (classic image store) on $SOCK"
  nohup dockerd \
    --config-file "$CONFIG" \
    --data-root "$DATA_ROOT" \
    --exec-root "$EXEC_ROOT" \
    --pidfile "$RUN_DIR/docker.pid" \
    -H "$HOST" \
    --bridge "$BRIDGE" \
    --iptables=false \
    --ip6tables=false \
    >>"$LOG" 2>&1 &
  for _ in $(seq 1 60); do
    docker -H "$HOST" info >/dev/null 2>&1 && break
    sleep 1
  done
  docker -H "$HOST" info >/dev/null 2>&1 || { tail -50 "$LOG"; exit 1; }
fi

driver=$(docker -H "$HOST" info --format '{{.Driver}} {{json .DriverStatus}}')
case "$driver" in
  *io.containerd.snapshotter*) log "the engine at $SOCK uses the containerd image store: $driver"; exit 1 ;;
esac

if ! docker -H "$HOST" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  log "copying $BASE_IMAGE from the main engine"
  docker -H "$MAIN_HOST" save "$BASE_IMAGE" | docker -H "$HOST" load >/dev/null
fi
log "ready: $HOST ($driver)"
