#!/usr/bin/env bash
# The test command (README): prepares this Debian/Ubuntu machine (Docker Engine with the
# containerd image store, local registries, base images; needs root) and runs every test tier.
#
# LLBGEN_TEST_ENGINES (space-separated DOCKER_HOST values) selects the engines. The first runs
# the whole suite; each further one runs the integration tier (tests/integration) side by side
# with it, without the tests that name an engine of their own whatever DOCKER_HOST says (the
# classic-store and TLS engines: the first tier runs them once). Default:
# the system engine (Docker 26.1) and Debian's newest (28.x, .ci/start-current-dockerd.sh).
# Arguments go to the first engine's pytest only; with arguments the other engines are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

SYSTEM_ENGINE=unix:///var/run/docker.sock
CURRENT_ENGINE=unix:///var/run/llbgen-current/docker.sock
read -r -a engines <<< "${LLBGEN_TEST_ENGINES:-$SYSTEM_ENGINE $CURRENT_ENGINE}"
[ "$#" -eq 0 ] || engines=("${engines[0]}")

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

as_root bash .ci/setup-host.sh

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[test]'

# The CUDA stand-in base is made once on the system engine and copied to the others, so every
# engine (and the second engine both tiers' bake tests share) holds the very same image.
.venv/bin/python -c 'from tests.integration.mirrors import ensure_cuda_standin; ensure_cuda_standin("llbgen-test/debian:bookworm")'
as_root bash .ci/start-second-dockerd.sh
for engine in "${engines[@]:1}"; do
  if [ "$engine" = "$CURRENT_ENGINE" ]; then as_root bash .ci/start-current-dockerd.sh; fi
done

results=$(mktemp -d)
pytest_on() {  # ENGINE INDEX ARGS... — one engine's tier, its JUnit report under $results
  local engine=$1 index=$2; shift 2
  DOCKER_HOST=$engine LLBGEN_TEST_MIRROR_PORT=$((47501 + index)) LLBGEN_TEST_CLEAN_IMAGES=1 \
    .venv/bin/python -m pytest -p no:cacheprovider -q -rfEs --durations=15 --junitxml="$results/$index.xml" "$@"
}

pids=()
for index in "${!engines[@]}"; do
  [ "$index" = 0 ] && continue
  engine=${engines[$index]}
  echo "[test] integration tier on $engine: side by side, its output follows the first tier's"
  pytest_on "$engine" "$index" tests/integration -m "not classic" --ignore tests/integration/test_tls_engine.py \
    >"$results/$index.log" 2>&1 &
  pids+=("$!")
done

status=0
echo "[test] every tier on ${engines[0]}"
pytest_on "${engines[0]}" 0 "$@" || status=$?
for index in "${!pids[@]}"; do
  tier=$((index + 1))
  wait "${pids[$index]}" || status=$?
  echo "[test] integration tier on ${engines[$tier]}:"
  cat "$results/$tier.log"
done
.venv/bin/python - "$results" <<'PY'
import sys, pathlib, xml.etree.ElementTree as ET
totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
for report in sorted(pathlib.Path(sys.argv[1]).glob("*.xml")):
    for suite in ET.parse(report).getroot().iter("testsuite"):
        for key in totals:
            totals[key] += int(suite.get(key, 0))
failed = totals["failures"] + totals["errors"]
passed = totals["tests"] - failed - totals["skipped"]
print(f"total: {passed} passed, {failed} failed, {totals['skipped']} skipped")
PY
rm -rf "$results"
exit "$status"
