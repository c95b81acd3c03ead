#!/usr/bin/env bash
# Another containerd-store Docker Engine, for `llbgen bake --builder A --builder B` and the
# registry-cache handoff between builders: socket unix:///var/run/llbgen-second/docker.sock,
# data root /var/lib/llbgen-second, bridge llbgen-br2 (172.31.251.1/24). See start-extra-dockerd.sh.
exec "$(dirname "$0")/start-extra-dockerd.sh" second
