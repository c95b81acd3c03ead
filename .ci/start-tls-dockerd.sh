#!/usr/bin/env bash
# A containerd-store Docker Engine behind mutual TLS, for the tests of docker://tcp:// builders:
# tcp://127.0.0.1:23760 (--tlsverify), certificates in /var/lib/llbgen-tls/certs, socket
# unix:///var/run/llbgen-tls/docker.sock, bridge llbgen-brtls (172.31.248.1/24). See start-extra-dockerd.sh.
exec "$(dirname "$0")/start-extra-dockerd.sh" tls
