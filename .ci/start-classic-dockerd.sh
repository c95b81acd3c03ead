#!/usr/bin/env bash
# A second Docker Engine with the classic (graphdriver) image store, for the tests marked classic:
# socket unix:///var/run/llbgen-classic/docker.sock, bridge llbgen-br1. See start-extra-dockerd.sh.
exec "$(dirname "$0")/start-extra-dockerd.sh" classic
