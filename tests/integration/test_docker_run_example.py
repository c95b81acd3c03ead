"""examples/docker-run.sh, run twice under one NAME with two images: the work directory and
TensorBoard logs survive, and the second run uses the second image's Python packages.

The images are the runtime test image (test_runtime.py) with one module of their own in
/root/miniconda3's site-packages, so nothing is downloaded.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_runtime import runtime_image  # noqa: F401  (the session fixture)

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "docker-run.sh"
MODULE = "llbgen_example_variant"


def docker(*args: str, check: bool = True, input: str | None = None, timeout: float = 300):
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, input=input,
                          timeout=timeout)


@pytest.fixture(scope="module")
def variants(runtime_image: str) -> Iterator[tuple[str, str]]:  # noqa: F811
    """Two images that differ in one installed module: NAME = "first" / "second"."""
    tags = []
    for variant in ("first", "second"):
        tag = f"llbgen-test/docker-run-{variant}:{secrets.token_hex(4)}"
        install = (f"import site; open(site.getsitepackages()[0] + '/{MODULE}.py', 'w')"
                   f".write('NAME = \\\"{variant}\\\"\\\\n')")
        dockerfile = f'FROM {runtime_image}\nRUN /root/miniconda3/bin/python -c "{install}"\n'
        docker("buildx", "build", "--load", "-q", "-t", tag, "-", input=dockerfile, timeout=600)
        tags.append(tag)
    yield tags[0], tags[1]
    docker("rmi", *tags, check=False)


def run_example(image: str, name: str) -> None:
    env = {**os.environ, "IMAGE": image, "NAME": name, "GPUS": "none", "SSH_PORT": "0", "JUPYTER_PORT": "0",
           "TENSORBOARD_PORT": "0", "ULIMITS": "", "PUBLIC_KEY_FILE": "/nonexistent", "JUPYTER_TOKEN": secrets.token_hex(16)}
    subprocess.run(["bash", str(SCRIPT)], env=env, check=True, capture_output=True, text=True, timeout=120)


def in_container(name: str, command: str) -> str:
    deadline = time.monotonic() + 60
    while True:
        result = docker("exec", name, "bash", "-c", command, check=False)
        if result.returncode == 0 or time.monotonic() > deadline:
            assert result.returncode == 0, result.stderr
            return result.stdout.strip()
        time.sleep(1)


def test_second_run_keeps_work_and_logs_and_uses_the_new_images_packages(variants):
    first, second = variants
    name = f"llbgen-test-docker-run-{secrets.token_hex(4)}"
    try:
        run_example(first, name)
        assert in_container(name, f"/root/miniconda3/bin/python -c 'import {MODULE}; print({MODULE}.NAME)'") == "first"
        in_container(name, "echo notes > /root/work/notes.txt && echo events > /root/tensorboard-logs/run1.events")
        mounts = docker("inspect", "-f", "{{range .Mounts}}{{.Destination}} {{end}}", name).stdout.split()
        assert sorted(mounts) == ["/root/tensorboard-logs", "/root/work"]

        docker("rm", "-f", name)
        run_example(second, name)
        assert in_container(name, "cat /root/work/notes.txt /root/tensorboard-logs/run1.events") == "notes\nevents"
        assert in_container(name, f"/root/miniconda3/bin/python -c 'import {MODULE}; print({MODULE}.NAME)'") == \
            "second"
    finally:
        docker("rm", "-f", name, check=False)
        docker("volume", "rm", f"{name}-work", f"{name}-tensorboard", check=False)
