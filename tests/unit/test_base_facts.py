"""Tags, labels and /init/image-info.env say what the base really is, and a spec that disagrees is warned about."""

from __future__ import annotations

from llbgen import llb
from llbgen.bake.variants import tag_values
from llbgen.spec import resolve_values
from stages import StageContext, layer_plan
from stages.base_facts import BaseFacts, base_facts, base_warnings
from stages.context import PLATFORM
from stages.init import InitStage
from stages.plan import image_labels

DEBIAN = "llbgen-test/debian:bookworm"
NVIDIA_118 = {"config": {
    "Env": ["PATH=/usr/local/cuda/bin:/usr/bin:/bin", "CUDA_VERSION=11.8.0", "NV_CUDNN_VERSION=8.9.6.50"],
    "Labels": {"org.opencontainers.image.ref.name": "ubuntu", "org.opencontainers.image.version": "22.04"}}}
PLAIN = {"config": {"Env": ["PATH=/usr/bin:/bin"]}}


def base(ref: str, config: dict | None) -> llb.State:
    return llb.image(ref, platform=PLATFORM, digest="sha256:" + "1" * 64 if config else None, config=config)


def info(values: dict, config: dict | None) -> dict[str, str]:
    resolved = resolve_values(values)
    ctx = StageContext.create(resolved, base=base(resolved.base_image, config))
    return dict(InitStage.from_context(ctx, files=()).info)


# --- the tag, before any builder ------------------------------------------------------------------


def test_default_tag_names_the_base_when_its_distro_is_unknown() -> None:
    r = resolve_values({"torch": "2.3.0", "cpu": True, "base_image": DEBIAN})
    assert r.tag == "pytorch:2.3.0-python3.8-cpu-debian-bookworm"
    assert any("distro of base_image llbgen-test/debian:bookworm is not known" in n for n in r.notes)
    assert tag_values(r)["distro"] == "debian-bookworm"  # bake's {distro} says the same
    pinned = resolve_values({"torch": "2.3.0", "cuda": "12.1", "base_image": "reg:5000/a/cuda@sha256:" + "ab" * 32})
    assert pinned.tag == "pytorch:2.3.0-python3.8-cuda12.1.0-cudnn8-devel-cuda-abababababab"
    # A distro the user names, or the base llbgen picks itself, is known: the tag says it.
    named = resolve_values({"torch": "2.3.0", "cpu": True, "base_image": DEBIAN, "distro": "debian12"})
    assert named.tag == "pytorch:2.3.0-python3.8-cpu-debian12" and not named.notes
    assert resolve_values({"torch": "2.3.0", "cuda": "12.1"}).tag.endswith("-devel-ubuntu22.04")


# --- what a resolved base says ------------------------------------------------------------------------


def test_facts_come_from_the_resolved_config_only() -> None:
    assert base_facts(base("nvidia/cuda:11.8.0-cudnn8-devel-ubuntu22.04", NVIDIA_118)) == BaseFacts(
        known=True, cuda="11.8.0", cudnn="8", distro="ubuntu22.04")
    assert base_facts(base(DEBIAN, PLAIN)) == BaseFacts(known=True)
    assert base_facts(base(DEBIAN, None)) == BaseFacts(known=False)  # a dry run knows nothing


def test_cuda_spec_on_a_base_without_cuda_is_a_warning_naming_cpu() -> None:
    r = resolve_values({"torch": "2.3.0", "cuda": "12.1", "base_image": DEBIAN})
    [warning] = base_warnings(r, base_facts(base(DEBIAN, PLAIN)), r.tag)
    assert warning.startswith(f"base {DEBIAN} has no CUDA (no CUDA_VERSION in its environment) but the spec asks "
                              "for CUDA 12.1.0 (cu121 wheels), and so does the tag pytorch:")
    assert warning.endswith("build with --cpu, or give a CUDA 12.1 base such as nvidia/cuda:12.1.0-…")
    assert base_warnings(r, base_facts(base(DEBIAN, None)), r.tag) == []


def test_cuda_mismatch_is_a_warning_with_the_fix() -> None:
    ref = "nvidia/cuda:11.8.0-cudnn8-devel-ubuntu22.04"
    r = resolve_values({"torch": "2.3.0", "cuda": "12.1", "base_image": ref, "distro": "ubuntu22.04"})
    [warning] = base_warnings(r, base_facts(base(ref, NVIDIA_118)), "my/pytorch:latest")
    assert warning == (f"base {ref} has CUDA 11.8.0 but the spec asks for CUDA 12.1.0 (cu121 wheels): "
                       "give --cuda 11.8.0, or a CUDA 12.1.0 base")
    same = resolve_values({"torch": "2.3.0", "cuda": "11.8", "base_image": ref, "distro": "ubuntu22.04"})
    assert base_warnings(same, base_facts(base(ref, NVIDIA_118)), same.tag) == []
    cpu = resolve_values({"torch": "2.3.0", "cpu": True, "base_image": ref})
    [warning] = base_warnings(cpu, base_facts(base(ref, NVIDIA_118)), cpu.tag)
    assert "has CUDA 11.8.0 but the spec is CPU-only" in warning and "drop --cpu" in warning
    other = resolve_values({"torch": "2.3.0", "cuda": "11.8", "base_image": ref, "distro": "ubuntu20.04"})
    [warning] = base_warnings(other, base_facts(base(ref, NVIDIA_118)), other.tag)
    assert warning.startswith(f"base {ref} is ubuntu22.04 but the spec says ubuntu20.04, and so does the tag")


# --- labels and image-info state the base's facts ---------------------------------------------------------


def test_image_info_and_labels_state_the_base_not_the_spec() -> None:
    gpu_on_debian = {"torch": "2.3.0", "cuda": "12.1", "base_image": DEBIAN}
    said = info(gpu_on_debian, PLAIN)
    assert "CUDA_VERSION" not in said and "CUDNN_VERSION" not in said and "DISTRO" not in said, said
    assert said["WHEEL_VARIANT"] == "cu121"
    ref = "nvidia/cuda:11.8.0-cudnn8-devel-ubuntu22.04"
    said = info({"torch": "2.3.0", "cuda": "12.1", "base_image": ref}, NVIDIA_118)
    assert (said["CUDA_VERSION"], said["CUDNN_VERSION"], said["DISTRO"]) == ("11.8.0", "8", "ubuntu22.04")
    # Unresolved (dry run, export-dockerfile): the spec's values, as before.
    said = info({"torch": "2.3.0", "cuda": "12.1"}, None)
    assert (said["CUDA_VERSION"], said["CUDNN_VERSION"], said["DISTRO"]) == ("12.1.0", "8", "ubuntu22.04")

    resolved = resolve_values(gpu_on_debian)
    ctx = StageContext.create(resolved, base=base(DEBIAN, PLAIN))
    description = image_labels(ctx)["org.opencontainers.image.description"]
    assert description == ("PyTorch 2.3.0 (Python 3.8, cu121 wheels on a base without CUDA, llbgen-test/debian:bookworm)"
                           " with JupyterLab, TensorBoard and SSH")
    plan = layer_plan(ctx, merge_supported=True)
    assert len(plan.warnings) == 1 and "has no CUDA" in plan.warnings[0]


def test_exported_dockerfile_and_readme_do_not_guess_the_distro() -> None:
    from llbgen.dockerfile import render_export

    export = render_export(resolve_values({"torch": "2.3.0", "cpu": True, "base_image": DEBIAN}))
    dockerfile, readme = (export.files[name][1].decode() for name in ("Dockerfile", "README.md"))
    header = " ".join(line.removeprefix("# ") for line in dockerfile.splitlines()[:2])
    assert header == f"pytorch:2.3.0-python3.8-cpu-debian-bookworm: PyTorch 2.3.0, Python 3.8, CPU, {DEBIAN}.", header
    assert f"PyTorch 2.3.0, Python 3.8, CPU, {DEBIAN}, with SSH" in readme, readme[:800]
