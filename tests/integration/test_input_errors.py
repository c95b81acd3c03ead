"""A build whose input cannot be fetched fails with the flag that replaces that input, on a real engine."""

from __future__ import annotations

import secrets

from tests.integration.helpers import HOST_CA, llbgen

BASE = "llbgen-test/debian:bookworm"
# Nothing listens on the discard port: fetching from it fails at once, as from a blocked registry or host.
UNREACHABLE = "127.0.0.1:9"


def build(*args: str):
    tag = f"llbgen-test/input-errors:{secrets.token_hex(4)}"
    return llbgen("build", "--torch", "2.3.0", "--cuda", "12.1", "--progress", "plain", "-t", tag, *args,
                  timeout=300)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("llbgen: error:")]


def test_unreachable_base_image_names_base_image_flag_and_registry_mirror():
    result = build("--base-image", f"{UNREACHABLE}/llbgen-test/absent:1")
    assert result.returncode != 0
    (line,) = error_lines(result.stderr)
    assert line.startswith(f"llbgen: error: cannot get the base image {UNREACHABLE}/llbgen-test/absent:1: ")
    assert line.count("llbgen-test/absent") == 1  # the cause, not the reference three times
    assert line.endswith('use --base-image IMAGE (base_image in llbgen.toml) on a registry this engine can reach, '
                         'or give the engine a registry mirror ("registry-mirrors" in /etc/docker/daemon.json)')
    assert "Traceback" not in result.stderr


def test_unreachable_builder_image_says_it_is_the_builder_image_and_names_its_flag():
    result = build("--base-image", BASE, "--builder-image", f"{UNREACHABLE}/llbgen-test/absent-builder:1")
    assert result.returncode != 0
    (line,) = error_lines(result.stderr)
    assert line.startswith(f"llbgen: error: cannot get the builder image {UNREACHABLE}/llbgen-test/absent-builder:1 "
                           "(the neutral image the python, jupyter and torch layers are built on): ")
    assert "use --builder-image IMAGE (builder_image in llbgen.toml)" in line


def test_unreachable_miniconda_names_miniconda_url_and_installer_flags():
    result = build("--base-image", BASE, "--builder-image", BASE, "--miniconda-url", f"http://{UNREACHABLE}/miniconda")
    assert result.returncode != 0
    assert error_lines(result.stderr)[0].startswith("llbgen: error: step download Miniconda")
    last = result.stderr.rstrip().splitlines()[-1]
    assert "--miniconda-url URL ([mirrors] miniconda_url in llbgen.toml)" in last
    assert "--miniconda-installer FILE --miniconda-sha256 SHA256" in last


def test_unreachable_apt_archive_names_apt_mirror_flag(mirror):
    # The CA lets the jupyter step reach PyPI (through this machine's proxy): only apt fails.
    result = build("--base-image", BASE, "--builder-image", BASE, *mirror.build_flags(), "--network", "host",
                   "--ca-cert", str(HOST_CA), "--apt-mirror", f"http://{UNREACHABLE}/debian")
    assert result.returncode != 0
    assert error_lines(result.stderr)[0].startswith("llbgen: error: step os: apt-get install")
    assert result.stderr.rstrip().splitlines()[-1] == (
        "if apt could not download: use --apt-mirror URL ([mirrors] apt in llbgen.toml)")


def test_unreachable_pip_index_names_pip_index_url_flag(mirror):
    result = build("--base-image", BASE, "--builder-image", BASE, *mirror.build_flags(), "--network", "host",
                   "--ca-cert", str(HOST_CA), "--pip-index-url", f"http://{UNREACHABLE}/simple")
    assert result.returncode != 0
    assert error_lines(result.stderr)[0].startswith("llbgen: error: step jupyter: pip install")
    assert result.stderr.rstrip().splitlines()[-1] == (
        "if pip could not download: use --pip-index-url URL ([mirrors] pip_index_url in llbgen.toml)")
