"""Builds that never install another torch than the image says, with a loopback index and no --network host.

The loopback stand-ins of conftest.py (a PEP 503 index with torch 2.13.0+cpu, the stand-in
Miniconda installer) and real PyPI, through the CA-mounted proxy, for everything else. No
build here passes ``--network host``: the torch step reaches the loopback index because its
own URL is on the loopback, and only it runs on the host's network.

1. ``--cpu``: builds; the torch step reports the build it checked, and the image's torch is
   2.13.0+cpu without CUDA;
2. ``--cuda 12.6`` against the same index (it serves only the CPU wheel): the build fails
   naming the CPU build found and the cu126 build expected, and downloads no CUDA package;
3. ``--cpu`` against an index that serves nothing, while PyPI (which has torch 2.13.0, a
   CUDA build) is reachable: the build fails naming the index instead of falling back.

The three builds share the os, python and jupyter layers: the first builds them (cold, a few
minutes on 2 cores), the others fail at the torch step.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration import mirrors
from tests.integration.conftest import Mirror
from tests.integration.helpers import HOST_CA, llbgen

pytestmark = [pytest.mark.integration, pytest.mark.timeout(2400)]

BUILD_TIMEOUT = 2000


def spec_flags(mirror: Mirror, base: str, torch_index_url: str, *build: str) -> list[str]:
    return [
        "--torch", "2.13.0", "--python", "3.11", "--torchvision", "none", "--torchaudio", "none", *build,
        "--base-image", base, "--builder-image", base,
        "--miniconda-url", mirror.miniconda_url, "--miniconda-installer", mirror.installer.name,
        "--miniconda-sha256", mirror.installer.sha256,
        "--torch-index-url", torch_index_url,
        "--pip-index-url", "https://pypi.org/simple",
        "--ca-cert", str(HOST_CA),
    ]


def build(mirror: Mirror, base: str, torch_index_url: str, tag: str, *variant: str) -> tuple[int, str]:
    result = llbgen("build", *spec_flags(mirror, base, torch_index_url, *variant), "--progress", "plain",
                    "-t", tag, "--always-solve", timeout=BUILD_TIMEOUT)
    return result.returncode, result.stdout + result.stderr


@pytest.fixture
def tag() -> Iterator[str]:
    name = f"llbgen-test/torch-trust:{secrets.token_hex(4)}"
    yield name
    subprocess.run(["docker", "image", "rm", "-f", name], capture_output=True)


@pytest.fixture
def empty_index(tmp_path: Path) -> Iterator[str]:
    """A loopback PEP 503 index that has no project at all."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    with mirrors.MirrorServer(wheels, []) as server:
        yield server.simple_url


def test_cpu_build_from_a_loopback_index_without_network_host(mirror: Mirror, base_image: str, tag: str) -> None:
    code, output = build(mirror, base_image, mirror.torch_index_url, tag, "--cpu")
    assert code == 0, f"llbgen build failed (exit {code}):\n{output[-6000:]}"
    assert "llbgen: installed torch 2.13.0+cpu (CPU build, as the image says)" in output
    found = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "--entrypoint", "/root/miniconda3/bin/python", tag, "-c",
         "import os, torch; print(torch.__version__, torch.version.cuda, os.path.exists('/tmp/llbgen-torch-wheels'))"],
        capture_output=True, text=True, timeout=300)
    assert found.stdout.split() == ["2.13.0+cpu", "None", "False"], found.stderr


def test_cuda_build_from_an_index_serving_the_cpu_wheel_fails_naming_both(mirror: Mirror, base_image: str,
                                                                          tag: str) -> None:
    code, output = build(mirror, base_image, mirror.torch_index_url, tag, "--cuda", "12.6")
    assert code != 0, f"the build succeeded with a CPU torch in a CUDA image:\n{output[-4000:]}"
    assert ("llbgen: the torch index served another build: torch 2.13.0+cpu is a CPU build, "
            "expected cu126 (CUDA 12.6) (check --torch-index-url)") in output, output[-6000:]
    assert "nvidia-" not in output  # nothing of a CUDA build was fetched from anywhere


def test_cpu_build_from_an_empty_index_fails_instead_of_falling_back(mirror: Mirror, base_image: str, tag: str,
                                                                     empty_index: str) -> None:
    code, output = build(mirror, base_image, empty_index, tag, "--cpu")
    assert code != 0, f"the build succeeded without the torch index:\n{output[-4000:]}"
    assert (f"llbgen: the torch index {empty_index} has no such wheel for this Python, or cannot be reached; "
            "torch, torchvision and torchaudio come from it alone (check --torch-index-url)") in output, output[-6000:]
    assert "(from versions: none)" in output  # pip looked at that index alone: PyPI's torch 2.13.0 is not a candidate
    assert "nvidia-" not in output
