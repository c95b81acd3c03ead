#!/usr/bin/env bash
# Debian's newest Docker Engine (sid's docker.io, 28.x, containerd store) beside the system one,
# for the integration tier's second run (scripts/test.sh): socket
# unix:///var/run/llbgen-current/docker.sock, data root /var/lib/llbgen-current, bridge llbgen-br3
# (172.31.252.1/24). See start-extra-dockerd.sh.
exec "$(dirname "$0")/start-extra-dockerd.sh" current
