#!/usr/bin/env bash
# Starts an extra Docker Engine beside the main one, for the tests. Usage:
#
#   start-extra-dockerd.sh classic   classic (graphdriver) image store: what BuildKit inside such an
#                                    engine lacks (MergeOp/DiffOp, oci exports, registry cache) and the
#                                    gateway path that gives its images a config (tests marked classic);
#   start-extra-dockerd.sh second    a second containerd-store engine: `llbgen bake --builder A --builder B`
#                                    and the registry-cache handoff between two builders;
#   start-extra-dockerd.sh tls       a containerd-store engine that also listens on
#                                    tcp://127.0.0.1:23760 with --tlsverify (mutual TLS), with a CA,
#                                    server and client certificates made here in /var/lib/llbgen-tls/certs
#                                    (DOCKER_CERT_PATH layout: ca.pem, cert.pem, key.pem).
#
# Idempotent: does nothing but check the image store and the test images when that engine
# already answers. Run as root, after .ci/setup-host.sh started the main engine (the test base
# images are copied from there: `docker save | docker -H ... load`).
#
# Kept apart from the main engine (and from each other) in every shared resource:
# * its own data root, exec root, socket, pidfile, config file and log;
# * its own containerd: without --containerd, dockerd starts a managed containerd
#   under its exec root, so the engines never share a containerd or its content;
# * its own bridge. Never `--bridge none`: stopping such a daemon removed the main
#   daemon's docker0 here;
# * --iptables=false: the daemons would otherwise rewrite the same DOCKER* chains.
#   Containers on its bridge then have no NAT to the outside. Build steps that the tests
#   run with `--network host` are in the host's network namespace and still reach
#   127.0.0.1 (the loopback mirrors, the registry); BuildKit's HTTP sources and registry
#   pulls/pushes are made by the daemon itself, on the host.
set -euo pipefail

PROFILE=${1:-}
case "$PROFILE" in
  classic) BRIDGE=llbgen-br1; BRIDGE_ADDR=172.31.250.1/24; SNAPSHOTTER=false ;;
  second)  BRIDGE=llbgen-br2; BRIDGE_ADDR=172.31.251.1/24; SNAPSHOTTER=true ;;
  tls)     BRIDGE=llbgen-brtls; BRIDGE_ADDR=172.31.248.1/24; SNAPSHOTTER=true ;;
  *) echo "usage: $0 classic|second|tls" >&2; exit 2 ;;
esac

log() { printf '[%s-dockerd] %s\n' "$PROFILE" "$*" >&2; }

export PATH=/usr/bin:$PATH

RUN_DIR=/var/run/llbgen-$PROFILE
SOCK="$RUN_DIR/docker.sock"
HOST="unix://$SOCK"
DATA_ROOT=/var/lib/llbgen-$PROFILE
EXEC_ROOT=/var/run/llbgen-$PROFILE-exec
CONFIG=/etc/llbgen-$PROFILE-daemon.json
LOG=/var/log/llbgen-$PROFILE-dockerd.log
MAIN_HOST=unix:///var/run/docker.sock
# Copied when the main engine has them (the CUDA stand-in is made by the image tests).
REQUIRED_IMAGES=(llbgen-test/debian:bookworm)
OPTIONAL_IMAGES=()
[ "$PROFILE" = second ] && OPTIONAL_IMAGES=(llbgen-test/cuda-standin:bookworm)

# The tls engine keeps its unix socket (for this script and the tests' own set-up) and adds a
# TCP listener that takes only clients with a certificate from its CA.
LISTEN=(-H "$HOST")
if [ "$PROFILE" = tls ]; then
  CERTS=/var/lib/llbgen-tls/certs
  TLS_PORT=23760
  if [ ! -f "$CERTS/key.pem" ]; then
    log "making a CA, a server certificate (IP:127.0.0.1) and a client certificate in $CERTS"
    install -d -m 0700 "$CERTS"
    (
      cd "$CERTS"
      umask 077
      openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=llbgen-test-ca \
        -keyout ca-key.pem -out ca.pem 2>/dev/null
      openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server-key.pem -out server.csr 2>/dev/null
      printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' > server.ext
      openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 3650 \
        -extfile server.ext -out server-cert.pem 2>/dev/null
      openssl req -newkey rsa:2048 -nodes -subj /CN=llbgen-test-client -keyout key.pem -out client.csr 2>/dev/null
      printf 'extendedKeyUsage=clientAuth\n' > client.ext
      openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 3650 \
        -extfile client.ext -out cert.pem 2>/dev/null
      rm -f server.csr client.csr server.ext client.ext
    )
  fi
  LISTEN+=(-H "tcp://127.0.0.1:$TLS_PORT" --tlsverify --tlscacert "$CERTS/ca.pem"
           --tlscert "$CERTS/server-cert.pem" --tlskey "$CERTS/server-key.pem")
fi

if ! docker -H "$HOST" info >/dev/null 2>&1; then
  mkdir -p "$RUN_DIR" "$DATA_ROOT" "$EXEC_ROOT"
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    log "creating bridge $BRIDGE ($BRIDGE_ADDR)"
    ip link add "$BRIDGE" type bridge
  fi
  ip addr show dev "$BRIDGE" | grep -q "inet ${BRIDGE_ADDR%/*}/" || ip addr add "$BRIDGE_ADDR" dev "$BRIDGE"
  ip link set "$BRIDGE" up

  # The main engine reads /etc/docker/daemon.json; this one reads only its own file.
  printf '{"features": {"containerd-snapshotter": %s}}\n' "$SNAPSHOTTER" > "$CONFIG"

  # A stale socket or pidfile from a killed daemon would make the new one refuse to start.
  if [ -f "$RUN_DIR/docker.pid" ] && ! kill -0 "$(cat "$RUN_DIR/docker.pid")" 2>/dev/null; then
    rm -f "$RUN_DIR/docker.pid" "$SOCK"
  fi

  log "starting dockerd (containerd-snapshotter: $SNAPSHOTTER) on $SOCK"
  nohup dockerd \
    --config-file "$CONFIG" \
    --data-root "$DATA_ROOT" \
    --exec-root "$EXEC_ROOT" \
    --pidfile "$RUN_DIR/docker.pid" \
    "${LISTEN[@]}" \
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
case "$SNAPSHOTTER:$driver" in
  false:*io.containerd.snapshotter*) log "the engine at $SOCK uses the containerd image store: $driver"; exit 1 ;;
  true:*io.containerd.snapshotter*) ;;
  true:*) log "the engine at $SOCK uses the classic image store: $driver"; exit 1 ;;
esac

# Same layers and config as on the main engine, else (re)copied.
fingerprint() { docker -H "$1" image inspect --format '{{json .RootFS.Layers}} {{json .Config.Env}} {{json .Config.Labels}}' "$2" 2>/dev/null || true; }
copy() {
  local image=$1 want
  want=$(fingerprint "$MAIN_HOST" "$image")
  [ -n "$want" ] || return 1
  if [ "$(fingerprint "$HOST" "$image")" != "$want" ]; then
    log "copying $image from the main engine"
    docker -H "$MAIN_HOST" save "$image" | docker -H "$HOST" load >/dev/null
  fi
}
for image in "${REQUIRED_IMAGES[@]}"; do
  copy "$image" || { log "$image is missing in the main engine (run .ci/setup-host.sh)"; exit 1; }
done
for image in "${OPTIONAL_IMAGES[@]}"; do
  copy "$image" || log "$image is not in the main engine yet; skipped"
done
log "ready: $HOST ($driver)"
