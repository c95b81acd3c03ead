#!/usr/bin/env bash
# Starts an extra Docker Engine beside the main one, for the tests. Usage:
#
#   start-extra-dockerd.sh classic   classic (graphdriver) image store: what BuildKit inside such an
#                                    engine lacks (MergeOp/DiffOp, oci exports, registry cache) and the
#                                    gateway path that gives its images a config (tests marked classic);
#   start-extra-dockerd.sh second    a second containerd-store engine: `llbgen bake --builder A --builder B`
#                                    and the registry-cache handoff between two builders;
#   start-extra-dockerd.sh current   Debian's newest Docker Engine (sid's docker.io, 28.x, containerd
#                                    store): the integration tier runs on it too (scripts/test.sh).
#                                    Its dockerd is unpacked into $CURRENT_ENGINE_DIR (apt-get download
#                                    + dpkg -x, with an apt configuration of its own), never installed
#                                    over the system engine; it uses the system containerd and runc.
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
# * --iptables=false: the daemons would otherwise rewrite the same DOCKER* chains. Build steps
#   on its bridge get their way out from three rules of ours instead (the main engine's
#   DOCKER-USER chain, which Docker leaves to users, and a MASQUERADE for its subnet), so
#   they reach PyPI and the apt archive as on the main engine; BuildKit's HTTP sources and
#   registry pulls/pushes are made by the daemon itself, on the host.
set -euo pipefail

PROFILE=${1:-}
case "$PROFILE" in
  classic) BRIDGE=llbgen-br1; BRIDGE_ADDR=172.31.250.1/24; SNAPSHOTTER=false ;;
  second)  BRIDGE=llbgen-br2; BRIDGE_ADDR=172.31.251.1/24; SNAPSHOTTER=true ;;
  current) BRIDGE=llbgen-br3; BRIDGE_ADDR=172.31.252.1/24; SNAPSHOTTER=true ;;
  tls)     BRIDGE=llbgen-brtls; BRIDGE_ADDR=172.31.248.1/24; SNAPSHOTTER=true ;;
  *) echo "usage: $0 classic|second|current|tls" >&2; exit 2 ;;
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
DOCKERD=dockerd
CURRENT_ENGINE_DIR=${CURRENT_ENGINE_DIR:-/var/cache/llbgen-test/docker-current}
# Copied when the main engine has them (the CUDA stand-in is made by the image tests).
REQUIRED_IMAGES=(llbgen-test/debian:bookworm)
OPTIONAL_IMAGES=()
case "$PROFILE" in second|current) OPTIONAL_IMAGES=(llbgen-test/cuda-standin:bookworm) ;; esac

# Debian's newest docker.io, unpacked once: an apt configuration of its own (sid's package
# lists under $CURRENT_ENGINE_DIR) so the machine's apt sources and pins are not touched.
unpack_current_engine() {
  local dir=$CURRENT_ENGINE_DIR
  [ -x "$dir/root/usr/sbin/dockerd" ] && return 0
  log "downloading Debian sid's docker.io into $dir"
  mkdir -p "$dir/lists/partial" "$dir/download"
  echo 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian sid main' \
    > "$dir/sources.list"
  local apt_opts=(-o "Dir::Etc::SourceList=$dir/sources.list" -o "Dir::Etc::SourceParts=$dir/no-parts"
                  -o "Dir::State::Lists=$dir/lists" -o "Dir::Etc::Preferences=/dev/null"
                  -o "Dir::Etc::PreferencesParts=$dir/no-parts" -o "APT::Sandbox::User=root")
  mkdir -p "$dir/no-parts"
  apt-get "${apt_opts[@]}" update -qq
  (cd "$dir/download" && rm -f ./*.deb && apt-get "${apt_opts[@]}" download docker.io)
  rm -rf "$dir/root.partial" && dpkg -x "$dir"/download/docker.io_*.deb "$dir/root.partial"
  mv "$dir/root.partial" "$dir/root"
}
if [ "$PROFILE" = current ]; then
  unpack_current_engine
  # Its own docker-proxy comes first on PATH; containerd and runc are the system's.
  export PATH="$CURRENT_ENGINE_DIR/root/usr/sbin:$CURRENT_ENGINE_DIR/root/usr/bin:$PATH"
  DOCKERD="$CURRENT_ENGINE_DIR/root/usr/sbin/dockerd"
fi

# The way out for build steps on this engine's bridge (see the header). Idempotent.
allow_bridge_out() {
  local subnet
  subnet=$(python3 -c 'import ipaddress, sys; print(ipaddress.ip_interface(sys.argv[1]).network)' "$BRIDGE_ADDR")
  iptables -N DOCKER-USER 2>/dev/null || true
  iptables -C FORWARD -j DOCKER-USER 2>/dev/null || iptables -I FORWARD -j DOCKER-USER
  iptables -C DOCKER-USER -i "$BRIDGE" ! -o "$BRIDGE" -j ACCEPT 2>/dev/null \
    || iptables -I DOCKER-USER -i "$BRIDGE" ! -o "$BRIDGE" -j ACCEPT
  iptables -C DOCKER-USER -o "$BRIDGE" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT 2>/dev/null \
    || iptables -I DOCKER-USER -o "$BRIDGE" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
  iptables -t nat -C POSTROUTING -s "$subnet" ! -o "$BRIDGE" -j MASQUERADE 2>/dev/null \
    || iptables -t nat -A POSTROUTING -s "$subnet" ! -o "$BRIDGE" -j MASQUERADE
}

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

  log "starting $("$DOCKERD" --version) (containerd-snapshotter: $SNAPSHOTTER) on $SOCK"
  nohup "$DOCKERD" \
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

allow_bridge_out

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
