"""A successful ``llbgen build`` ends with one summary: tags, digest, size, layers, wall time, next commands."""

from __future__ import annotations

import re
import secrets
import subprocess

import pytest

from tests.integration.conftest import Mirror
from tests.integration.helpers import llbgen
from tests.integration.test_image_build import BUILD_TIMEOUT, spec_flags

pytestmark = pytest.mark.integration


@pytest.mark.timeout(BUILD_TIMEOUT + 60)
def test_build_ends_with_a_summary_of_what_was_made(base_image: str, mirror: Mirror):
    tag = f"llbgen-test/build-summary:{secrets.token_hex(4)}"
    try:
        result = llbgen("build", *spec_flags(mirror, base_image, base_image), "--progress", "plain", "-t", tag,
                        "--always-solve", timeout=BUILD_TIMEOUT)
        assert result.returncode == 0, result.stderr[-4000:]
        digest = result.stdout.strip()
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest)  # stdout stays the digest alone, for scripts
        summary = result.stderr.rstrip().splitlines()[-5:]
        assert re.fullmatch(rf"llbgen: built {re.escape(tag)} in \d+(\.\d)?s|llbgen: built {re.escape(tag)} in \d+m\d\ds",
                            summary[0]), summary
        assert re.fullmatch(rf"  image   {digest} \(\d+\.\d\d[kMG]B\)", summary[1]), summary
        assert re.fullmatch(r"  layers  \d built \(.*\), \d reused \(.*\)", summary[2]), summary
        assert summary[3:] == [f"  next    llbgen verify {tag}", f"          IMAGE={tag} examples/docker-run.sh"]
    finally:
        subprocess.run(["docker", "rmi", tag], capture_output=True)
