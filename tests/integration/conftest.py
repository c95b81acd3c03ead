"""Fixtures for the image tests: loopback stand-ins for the hosts these machines cannot reach.

See tests/integration/mirrors.py for what each stand-in is and how it is made. The slow
parts (the stand-in installer, the torch wheel directory) are cached across runs under
``$LLBGEN_TEST_CACHE`` (default /var/cache/llbgen-test).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.integration import mirrors


@dataclass(frozen=True)
class Mirror:
    """What a spec needs to point llbgen at the loopback stand-ins."""

    server: mirrors.MirrorServer
    installer: mirrors.Installer

    @property
    def torch_index_url(self) -> str:
        """PEP 503 index standing in for download.pytorch.org/whl/cpu."""
        return self.server.simple_url

    @property
    def miniconda_url(self) -> str:
        """Directory URL standing in for repo.anaconda.com/miniconda."""
        return self.server.miniconda_url

    def build_flags(self) -> list[str]:
        """The ``llbgen build`` flags that point a spec at the stand-ins."""
        return [
            "--miniconda-url", self.miniconda_url,
            "--miniconda-installer", self.installer.name,
            "--miniconda-sha256", self.installer.sha256,
            "--torch-index-url", self.torch_index_url,
        ]


@pytest.fixture(scope="session")
def standin_installer() -> mirrors.Installer:
    """``standin-py311.sh``: Miniconda's ``-b -p PREFIX`` contract, a relocatable CPython 3.11 with pip (not conda)."""
    return mirrors.standin_installer()


@pytest.fixture(scope="session")
def torch_wheels():
    """Directory with the torch 2.13.0+cpu wheel from this machine's disk and its dependencies."""
    return mirrors.torch_wheel_dir()


@pytest.fixture(scope="session")
def mirror(standin_installer: mirrors.Installer, torch_wheels) -> Iterator[Mirror]:
    """A loopback HTTP server with the PEP 503 index and the installer; stopped at session end.

    It listens on 127.0.0.1:$LLBGEN_TEST_MIRROR_PORT (47501) when that is free, else on a random
    port: the torch step's command names the index URL, so a stable URL keeps it cached across runs.

    A build step reaches it only on the host's network: the steps whose own URLs are on the
    loopback (the torch index here) get it by themselves, ``--network host`` gives it to every
    download step; the BuildKit HTTP source (the installer) is fetched by the daemon, on the host.
    """
    port = int(os.environ.get("LLBGEN_TEST_MIRROR_PORT", "47501"))
    with mirrors.MirrorServer(torch_wheels, [standin_installer.path], preferred_port=port) as server:
        yield Mirror(server, standin_installer)


@pytest.fixture(scope="session")
def cuda_standin_base(base_image: str) -> str:
    """``llbgen-test/cuda-standin:bookworm``: the Debian base's files with an nvidia/cuda-like environment (idempotent)."""
    return mirrors.ensure_cuda_standin(base_image)
