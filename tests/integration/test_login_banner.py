"""The login banner in the runtime image says only what is true, and fits 120 columns."""

from __future__ import annotations

import re
import subprocess
import unicodedata

from tests.integration.test_runtime import runtime_image  # noqa: F401  (the session fixture)

# The runtime image's /root/miniconda3 is a venv: python and pip, no conda.
SCRIPT = r"""
set -e
echo "@@ image"; /init/bin/login-banner
echo "@@ no-path"; PATH=/usr/bin:/bin /init/bin/login-banner
printf '#!/bin/sh\n' > /root/miniconda3/bin/conda; chmod +x /root/miniconda3/bin/conda
echo "@@ with-conda"; /init/bin/login-banner
echo "@@"
"""


def columns(line: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line)


def banner_sections(image: str) -> dict[str, str]:
    out = subprocess.run(["docker", "run", "--rm", "--entrypoint", "bash", image, "-c", SCRIPT], check=True,
                         capture_output=True, text=True, timeout=90).stdout
    return dict(re.findall(r"^@@ (\S+)\n(.*?)(?=^@@)", out, re.MULTILINE | re.DOTALL))


def conda_line(banner: str) -> str:
    return next(line for line in banner.splitlines() if line.strip().startswith("Conda"))


def test_banner_says_conda_is_on_path_only_when_it_is(runtime_image: str) -> None:  # noqa: F811
    sections = banner_sections(runtime_image)
    assert conda_line(sections["image"]).endswith(
        "/root/miniconda3（python、pip 已在 PATH / on PATH；conda 不在 / not）"), sections["image"]
    assert conda_line(sections["no-path"]).endswith(
        "/root/miniconda3（python、pip、conda 不在 PATH / not on PATH）"), sections["no-path"]
    assert conda_line(sections["with-conda"]).endswith(
        "/root/miniconda3（python、pip、conda 已在 PATH / on PATH）"), sections["with-conda"]


def test_banner_lines_fit_120_columns(runtime_image: str) -> None:  # noqa: F811
    banner = banner_sections(runtime_image)["with-conda"]
    assert "JupyterLab" in banner
    too_wide = [line for line in banner.splitlines() if columns(line) > 120]
    assert too_wide == [], too_wide
