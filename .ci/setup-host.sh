#!/usr/bin/env bash
# Installs and starts what llbgen's tests need on a fresh Debian 12 machine:
# Docker Engine (Debian 13's docker.io, containerd image store), the buildx CLI
# plugin, debootstrap, an OCI registry and an SSH client. Idempotent.
set -euo pipefail

log() { printf '[setup] %s\n' "$*" >&2; }

export DEBIAN_FRONTEND=noninteractive

if ! grep -rqs 'trixie' /etc/apt/sources.list.d/; then
  log "adding a low-priority trixie apt source (only docker.io and containerd come from it)"
  cat > /etc/apt/sources.list.d/trixie.sources <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  cat > /etc/apt/preferences.d/trixie-low <<'PIN'
Package: *
Pin: release n=trixie
Pin-Priority: 100
PIN
fi

need_install=0
for cmd in dockerd debootstrap docker-registry ssh tini sshpass htpasswd; do
  command -v "$cmd" >/dev/null 2>&1 || need_install=1
done
[ -e /usr/libexec/docker/cli-plugins/docker-buildx ] || need_install=1
command -v docker >/dev/null 2>&1 || need_install=1
if [ "$need_install" = 1 ]; then
  log "installing packages"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends \
    docker.io/trixie containerd/trixie docker-buildx/trixie tini iptables \
    debootstrap docker-registry openssh-client sshpass curl ca-certificates apache2-utils \
    >/dev/null
  # Debian 13 ships the client separately; machines that already have one keep theirs.
  command -v docker >/dev/null 2>&1 || apt-get install -y -qq --no-install-recommends docker-cli/trixie >/dev/null
fi

# The engine's own client comes with docker.io; the image may carry an older one first on PATH.
export PATH=/usr/bin:$PATH

mkdir -p /etc/docker
cat > /etc/docker/daemon.json <<'JSON'
{"features": {"containerd-snapshotter": true}}
JSON

if ! docker -H unix:///var/run/docker.sock info >/dev/null 2>&1; then
  log "starting dockerd (containerd image store)"
  nohup dockerd >/var/log/dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker -H unix:///var/run/docker.sock info >/dev/null 2>&1 && break
    sleep 1
  done
  docker -H unix:///var/run/docker.sock info >/dev/null 2>&1 || { tail -50 /var/log/dockerd.log; exit 1; }
fi

if ! curl -fsS http://127.0.0.1:5000/v2/ >/dev/null 2>&1; then
  log "starting the local registry on 127.0.0.1:5000"
  mkdir -p /var/lib/llbgen-registry
  cat > /etc/llbgen-registry.yml <<'YML'
version: 0.1
storage:
  filesystem:
    rootdirectory: /var/lib/llbgen-registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:5000
YML
  nohup docker-registry serve /etc/llbgen-registry.yml >/var/log/llbgen-registry.log 2>&1 &
  for _ in $(seq 1 30); do
    curl -fsS http://127.0.0.1:5000/v2/ >/dev/null 2>&1 && break
    sleep 1
  done
fi

# A second registry that wants a login (htpasswd, basic auth; loopback, so the engine speaks
# plain HTTP to it): the session's Auth service is tested against it. Credentials are made
# here, readable by root only, for the tests to read.
auth_dir=/var/lib/llbgen-registry-auth
if ! curl -sS -o /dev/null -w '%{http_code}' http://127.0.0.1:5001/v2/ 2>/dev/null | grep -q 401; then
  log "starting the registry with basic auth on 127.0.0.1:5001"
  mkdir -p "$auth_dir/storage" && chmod 700 "$auth_dir"
  [ -s "$auth_dir/password" ] || head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$auth_dir/password"
  echo llbgen-test > "$auth_dir/username"
  htpasswd -Bbn llbgen-test "$(cat "$auth_dir/password")" > "$auth_dir/htpasswd"
  cat > "$auth_dir/config.yml" <<YML
version: 0.1
storage:
  filesystem:
    rootdirectory: $auth_dir/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:5001
auth:
  htpasswd:
    realm: llbgen-test
    path: $auth_dir/htpasswd
YML
  nohup docker-registry serve "$auth_dir/config.yml" >/var/log/llbgen-registry-auth.log 2>&1 &
  for _ in $(seq 1 30); do
    curl -sS -o /dev/null -w '%{http_code}' http://127.0.0.1:5001/v2/ 2>/dev/null | grep -q 401 && break
    sleep 1
  done
fi

# A real Debian base image, made locally since no registry of images is reachable. The
# rootfs is kept so a damaged image (a missing blob makes exports fail with "not found")
# can be re-imported in seconds; `docker save` reads every blob, so it finds that damage.
rootfs=/var/cache/llbgen-test/debian-bookworm-rootfs.tar
if [ ! -s "$rootfs" ]; then
  log "making a Debian bookworm rootfs with debootstrap"
  mkdir -p "$(dirname "$rootfs")"
  root=$(mktemp -d)
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >/var/log/debootstrap.log 2>&1 \
    || { tail -30 /var/log/debootstrap.log; exit 1; }
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -cf "$rootfs.partial" . && mv "$rootfs.partial" "$rootfs"
  rm -rf "$root"
fi
if ! docker image save llbgen-test/debian:bookworm >/dev/null 2>&1; then
  log "importing llbgen-test/debian:bookworm"
  docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'CMD ["bash"]' "$rootfs" llbgen-test/debian:bookworm >/dev/null
fi
log "ready: $(docker version --format 'engine {{.Server.Version}}')"
"$(dirname "$0")/start-classic-dockerd.sh"  # a second engine with the classic image store (tests marked classic)
"$(dirname "$0")/start-second-dockerd.sh"  # another containerd-store engine (bake on several builders)
"$(dirname "$0")/start-tls-dockerd.sh"  # a containerd-store engine behind mutual TLS (docker://tcp:// builders)
