"""The spec against what the real base says it is: ``llbgen plan`` resolves the bases on the engine.

The Debian test base has no CUDA; the CUDA stand-in has an nvidia/cuda-like environment
(``CUDA_VERSION=12.1.0``, no cuDNN). A CUDA spec on the first and a CUDA 11.8 spec on the
second are warnings naming the fix, and the default tag names the base, not a guessed distro.
"""

from __future__ import annotations

import pytest

from tests.integration.helpers import llbgen

pytestmark = pytest.mark.integration


def plan(base: str, *flags: str):
    result = llbgen("plan", "--torch", "2.3.0", "--base-image", base, "--builder-image", base, *flags, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_cuda_spec_on_a_base_without_cuda_is_warned(base_image: str) -> None:
    out = plan(base_image, "--cuda", "12.1")
    assert "Layer plan for pytorch:2.3.0-python3.8-cuda12.1.0-cudnn8-devel-debian-bookworm " in out, out
    assert "ubuntu22.04" not in out.split("\n", 1)[0]
    assert (f"warning: base {base_image} has no CUDA (no CUDA_VERSION in its environment) but the spec asks for "
            "CUDA 12.1.0 (cu121 wheels), and so does the tag pytorch:2.3.0-python3.8-cuda12.1.0-cudnn8-devel-"
            "debian-bookworm: build with --cpu") in out, out


def test_cuda_mismatch_with_the_base_is_warned(cuda_standin_base: str) -> None:
    out = plan(cuda_standin_base, "--cuda", "11.8")
    assert (f"warning: base {cuda_standin_base} has CUDA 12.1.0 but the spec asks for CUDA 11.8.0 (cu118 wheels), "
            "and so does the tag pytorch:2.3.0-python3.8-cuda11.8.0-cudnn8-devel-cuda-standin-bookworm: give --cuda "
            "12.1.0, or a CUDA 11.8.0 base") in out, out
    assert f"warning: base {cuda_standin_base} has no cuDNN (no NV_CUDNN_VERSION in its environment)" in out
    # Matching CUDA: no CUDA warning.
    out = plan(cuda_standin_base, "--cuda", "12.1")
    assert "has CUDA" not in out and "no CUDA" not in out, out
