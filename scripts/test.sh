#!/usr/bin/env bash
# The test command (README): prepares this Debian/Ubuntu machine (Docker Engine with the
# containerd image store, local registry, base image; needs root) and runs every test tier.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ]; then
  bash .ci/setup-host.sh
else
  sudo bash .ci/setup-host.sh
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[test]'

LLBGEN_TEST_CLEAN_IMAGES=1 exec .venv/bin/python -m pytest -p no:cacheprovider -q -rfEs "$@"
