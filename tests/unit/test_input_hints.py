"""Errors about an input the build fetches end with the flag (or llbgen.toml key) that replaces it."""

from __future__ import annotations

import pytest

from llbgen.input_hints import image_error, step_hint
from llbgen.spec import load_spec
from stages import StageContext, layer_plan

BUILDKIT_ERROR = (
    "cannot resolve image docker.io/nvidia/cuda:12.1.0-cudnn8-devel-ubuntu22.04: unknown: failed to resolve source "
    "metadata for docker.io/nvidia/cuda:12.1.0-cudnn8-devel-ubuntu22.04: failed to do request: Head "
    '"https://registry-1.docker.io/v2/nvidia/cuda/manifests/12.1.0-cudnn8-devel-ubuntu22.04": dial tcp: '
    "lookup registry-1.docker.io on 10.255.255.53:53: no such host"
)


def test_base_image_error_names_the_image_once_then_the_cause_then_the_flag():
    text = image_error("nvidia/cuda:12.1.0-cudnn8-devel-ubuntu22.04", BUILDKIT_ERROR, builder_image=False)
    assert text == (
        "cannot get the base image nvidia/cuda:12.1.0-cudnn8-devel-ubuntu22.04: dial tcp: lookup "
        "registry-1.docker.io on 10.255.255.53:53: no such host; use --base-image IMAGE (base_image in "
        'llbgen.toml) on a registry this engine can reach, or give the engine a registry mirror ("registry-mirrors" '
        "in /etc/docker/daemon.json)"
    )


def test_builder_image_error_says_what_the_builder_image_is_and_names_its_flag():
    text = image_error("ubuntu:22.04", "cannot resolve image docker.io/library/ubuntu:22.04: unknown: not found",
                       builder_image=True)
    assert text.startswith("cannot get the builder image ubuntu:22.04 (the neutral image the python, jupyter and "
                           "torch layers are built on): not found; use --builder-image IMAGE (builder_image in ")


def seed_step_names() -> dict[str, str]:
    """Layer name -> the name of its first download step, as the stages name them."""
    plan = layer_plan(StageContext.create(load_spec(None, {"torch": "2.3.0", "cuda": "12.1",
                                                              "pip_packages": ["rich"]})), True)
    names = {layer.name: layer.steps[0].name for layer in plan.layers if layer.steps}
    installer = plan.layer("python").steps[0].http_files[0].filename
    names["miniconda"] = f"download {installer}"
    return names


@pytest.mark.parametrize(
    ("layer", "flag"),
    [
        ("miniconda", "--miniconda-url URL ([mirrors] miniconda_url in llbgen.toml)"),
        ("os", "--apt-mirror URL ([mirrors] apt in llbgen.toml)"),
        ("jupyter", "--pip-index-url URL ([mirrors] pip_index_url in llbgen.toml)"),
        ("extras", "--pip-index-url URL ([mirrors] pip_index_url in llbgen.toml)"),
        ("torch", "--torch-index-url URL ([mirrors] torch_index_url in llbgen.toml"),
    ],
)
def test_failed_download_step_ends_with_the_flag_that_replaces_its_source(layer, flag):
    name = seed_step_names()[layer]
    assert flag in step_hint(f"step {name} failed with exit code 100")


def test_miniconda_hint_also_names_another_installer():
    name = seed_step_names()["miniconda"]
    assert "--miniconda-installer FILE --miniconda-sha256 SHA256" in step_hint(f"step {name} failed: dial tcp")


def test_steps_that_fetch_nothing_get_no_hint():
    assert step_hint(f"step {seed_step_names()['python']} failed with exit code 1") == ""
    assert step_hint("build failed: export failed") == ""
