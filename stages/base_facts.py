"""What the resolved base image says about itself, and where the spec claims otherwise.

A base resolved by a builder carries its config: nvidia/cuda images set ``CUDA_VERSION``
and ``NV_CUDNN_VERSION`` (older ones ``CUDNN_VERSION``), and Ubuntu-based images label
their distro (``org.opencontainers.image.ref.name`` ``ubuntu``, ``.version`` ``22.04``).
The image's labels and ``/init/image-info.env`` state these facts, not the spec's
assumptions; a spec that disagrees with its base is a warning before the build. Not an
error: pip's CUDA wheels bring their own CUDA runtime, so a CUDA 12.1 torch on a CUDA 11.8
base can be exactly what a user wants; what must not happen is an image that says so
silently. An unresolved base (dry runs, ``export-dockerfile``) tells nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from llbgen import llb
from llbgen.spec import ResolvedSpec
from llbgen.spec.resolve import known_distro

CUDNN_ENV = ("NV_CUDNN_VERSION", "CUDNN_VERSION")
DISTRO_LABELS = ("org.opencontainers.image.ref.name", "org.opencontainers.image.version")


@dataclass(frozen=True)
class BaseFacts:
    """``known`` is False for an unresolved base; then every other field is None."""

    known: bool
    cuda: str | None = None  # CUDA_VERSION, e.g. 12.1.0
    cudnn: str | None = None  # major version, e.g. 8
    distro: str | None = None  # e.g. ubuntu22.04


def base_facts(base: llb.State) -> BaseFacts:
    if not base.env and not base.config.labels:  # llb.image() without a builder's config
        return BaseFacts(known=False)
    cudnn = next((base.get_env(name) for name in CUDNN_ENV if base.get_env(name)), None)
    labels = dict(base.config.labels)
    name, version = (labels.get(key, "") for key in DISTRO_LABELS)
    return BaseFacts(known=True, cuda=base.get_env("CUDA_VERSION") or None,
                     cudnn=cudnn.split(".", 1)[0] if cudnn else None,
                     distro=f"{name}{version}" if name.isalpha() and version[:1].isdigit() else None)


def image_cuda(spec: ResolvedSpec, facts: BaseFacts) -> tuple[str | None, str | None, str | None]:
    """(CUDA, cuDNN major, distro) the image really has: the base's when it was read, else the spec's."""
    if not facts.known:
        return spec.cuda_full, spec.cudnn, known_distro(spec)
    return facts.cuda, facts.cudnn, facts.distro or known_distro(spec)


def base_warnings(spec: ResolvedSpec, facts: BaseFacts, tag: str) -> list[str]:
    """One line per way the spec disagrees with what the base says it is, each with its fix."""
    if not facts.known:
        return []
    base, warnings = spec.base_image, []
    asked = f"the spec asks for CUDA {spec.cuda_full} ({spec.variant} wheels){_tag_says(tag, spec.cuda_full)}"
    if not spec.cpu and facts.cuda is None:
        warnings.append(f"base {base} has no CUDA (no CUDA_VERSION in its environment) but {asked}: build with "
                        f"--cpu, or give a CUDA {spec.cuda} base such as nvidia/cuda:{spec.cuda_full}-…")
    elif not spec.cpu and facts.cuda != spec.cuda_full:
        warnings.append(f"base {base} has CUDA {facts.cuda} but {asked}: give --cuda {facts.cuda}, "
                        f"or a CUDA {spec.cuda_full} base")
    elif spec.cpu and facts.cuda is not None:
        warnings.append(f"base {base} has CUDA {facts.cuda} but the spec is CPU-only (cpu wheels): torch will not "
                        "use the GPU; drop --cpu for the CUDA wheels, or give a base without CUDA")
    if not spec.cpu and facts.cuda is not None and facts.cudnn != spec.cudnn:
        has = f"cuDNN {facts.cudnn}" if facts.cudnn else "no cuDNN (no NV_CUDNN_VERSION in its environment)"
        fix = f"give --cudnn {facts.cudnn}" if facts.cudnn else f"give a base with cuDNN {spec.cudnn}"
        warnings.append(f"base {base} has {has} but the spec says cuDNN {spec.cudnn}"
                        f"{_tag_says(tag, f'cudnn{spec.cudnn}')}: {fix}")
    if facts.distro and known_distro(spec) and facts.distro != spec.distro:
        warnings.append(f"base {base} is {facts.distro} but the spec says {spec.distro}"
                        f"{_tag_says(tag, spec.distro)}: give --distro {facts.distro} (it also picks the builder image)")
    return warnings


def _tag_says(tag: str, claim: str | None) -> str:
    return f", and so does the tag {tag}" if claim and claim in tag else ""
