"""From what the user asked (``ImageSpec``) to everything a build needs (``ResolvedSpec``).

Every default is filled from the compatibility data, and every combination is
checked against it. Problems are collected, not raised one by one: a spec with
three mistakes fails once, with all three, each naming its field and what
would be valid instead. Nothing here touches the network or a builder.

>>> r = resolve_spec(ImageSpec(torch="2.3.0", cuda="12.1"))
>>> r.base_image, r.torch_index_url
('nvidia/cuda:12.1.0-cudnn8-devel-ubuntu22.04', 'https://download.pytorch.org/whl/cu121')
>>> r.tag
'pytorch:2.3.0-python3.8-cuda12.1.0-cudnn8-devel-ubuntu22.04'
"""

from __future__ import annotations

import re
import string
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llbgen.errors import UsageError
from llbgen.reference import check_tag
from llbgen.spec import compat
from llbgen.spec.credentials import MirrorLogin, login_notes, strip_logins
from llbgen.spec.model import (
    DEFAULT_CPU_TAG_TEMPLATE,
    DEFAULT_TAG_TEMPLATE,
    TAG_PLACEHOLDERS,
    ImageSpec,
    describe_validation_error,
    format_problems,
)

ARCH = "x86_64"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MinicondaPick(_Frozen):
    """The Miniconda installer the python layer fetches and checks."""

    filename: str = Field(description="Installer file name, e.g. Miniconda3-py38_23.11.0-2-Linux-x86_64.sh.")
    version: str | None = Field(description="Miniconda release, e.g. 23.11.0-2 (None when the file name does not say).")
    url: str = Field(description="Where it is downloaded from (the mirror when one is given).")
    sha256: str = Field(description="Expected sha256: the published one, or the user's.")


class ResolvedSpec(_Frozen):
    """Everything a build needs, with every default filled in and every combination checked."""

    spec: ImageSpec = Field(
        description="The spec as the user gave it (mirrors, proxy, packages and CA bundle are read from here), "
        "its mirror URLs without credentials."
    )
    torch: str = Field(description="torch release.")
    torchvision: str | None = Field(description="torchvision release paired with torch, or None when none is installed.")
    torchaudio: str | None = Field(description="torchaudio release, or None when none is installed.")
    python: str = Field(description="Python version Miniconda installs.")
    cpu: bool = Field(description="True for a CPU-only image.")
    cuda: str | None = Field(description="Short CUDA version (12.1); None for CPU.")
    cuda_full: str | None = Field(description="Full CUDA version of the base image (12.1.0); None for CPU.")
    cudnn: str | None = Field(description="cuDNN major version in the base image; None for CPU.")
    variant: str = Field(description="Wheel variant: cu121, cpu, ...")
    distro: str = Field(description="Base distro, e.g. ubuntu22.04.")
    flavour: str = Field(description="devel or runtime.")
    base_image: str = Field(description="Image the os layer is built on.")
    builder_image: str = Field(description="Neutral image the python, jupyter and torch layers are built on.")
    torch_index_url: str = Field(description="Index torch, torchvision and torchaudio are installed from.")
    miniconda: MinicondaPick = Field(description="The Miniconda installer.")
    tag: str = Field(description="Image tag rendered from the tag template.")
    pip_requirements: tuple[str, ...] = Field(
        description="Pinned torch packages, e.g. ('torch==2.3.0', 'torchvision==0.18.0', ...)."
    )
    notes: tuple[str, ...] = Field((), description="Things resolution decided that the user may want to know.")
    # Never dumped (the spec label, bake's --print) nor shown: they reach build steps as secrets only.
    logins: tuple[MirrorLogin, ...] = Field((), exclude=True, repr=False,
                                            description="Credentials taken out of the mirror URLs.")


def resolve_spec(spec: ImageSpec) -> ResolvedSpec:
    """Fill defaults and check ``spec`` against the compatibility data; one ``UsageError`` lists every problem."""
    spec, logins, problems = strip_logins(spec)
    resolved, more = _Resolution(spec.model_dump(), bad=set()).run()
    if problems or more:
        raise UsageError(format_problems(problems + more))
    return _resolved(spec, logins, resolved)


def check_values(values: Mapping[str, Any]) -> tuple[ResolvedSpec | None, list[str]]:
    """Validate and resolve raw values; the resolved spec, or None and every problem found."""
    try:
        spec = ImageSpec.model_validate(dict(values))
    except ValidationError as err:
        problems = [_with_torch_choices(p, values.get("torch")) for p in describe_validation_error(err)]
        bad = {str(e["loc"][0]) for e in err.errors() if e["loc"]}
        _, more = _Resolution(dict(values), bad).run()
        return None, problems + [p for p in more if p not in problems]
    spec, logins, problems = strip_logins(spec)
    resolved, more = _Resolution(spec.model_dump(), bad=set()).run()
    if problems or more:
        return None, problems + more
    return _resolved(spec, logins, resolved), []


def _resolved(spec: ImageSpec, logins: tuple[MirrorLogin, ...], resolved: dict[str, Any]) -> ResolvedSpec:
    return ResolvedSpec(spec=spec, logins=logins, **{**resolved, "notes": resolved["notes"] + login_notes(logins)})


def resolve_values(values: Mapping[str, Any]) -> ResolvedSpec:
    """Validate raw values and resolve them; shape and compatibility problems are reported together."""
    resolved, problems = check_values(values)
    if problems or resolved is None:
        raise UsageError(format_problems(problems))
    return resolved


def known_distro(resolved: ResolvedSpec) -> str | None:
    """The base's distro when llbgen knows it: it picked the base, or the user named the distro of theirs.

    With ``base_image`` and no ``distro`` the resolved distro is only the one assumed for the
    builder image; nothing says the base is that distro.
    """
    return resolved.distro if resolved.spec.base_image is None or resolved.spec.distro else None


def base_image_name(ref: str) -> str:
    """A tag-safe name for an image reference: ``llbgen-test/debian:bookworm`` -> ``debian-bookworm``."""
    name, _, digest = ref.rsplit("/", 1)[-1].partition("@")
    return name.replace(":", "-") + (f"-{digest.split(':', 1)[-1][:12]}" if digest else "")


def tag_distro(resolved: ResolvedSpec) -> str:
    """What ``{distro}`` in a tag names: the known distro, else the base image itself."""
    return known_distro(resolved) or base_image_name(resolved.base_image)


def _with_torch_choices(problem: str, torch: Any) -> str:
    """A malformed torch version gets the releases it may have meant (``2.3`` -> 2.3.0, 2.3.1)."""
    if not problem.startswith("torch: ") or not isinstance(torch, str):
        return problem
    series = [v for v in compat.torch_versions() if v.startswith(torch.rstrip(".") + ".")]
    return f"{problem}; valid: {_listing(series or compat.torch_versions())}"


def _listing(items: Collection[str]) -> str:
    return ", ".join(items) if items else "(none)"


def _py_range(pythons: tuple[str, ...]) -> str:
    return f"{pythons[0]}-{pythons[-1]}" if len(pythons) > 1 else pythons[0]


class _Resolution:
    """One pass over the field values: each step fills its defaults or records problems.

    Fields named in ``bad`` failed validation; steps that need them are skipped,
    so the problems reported are the ones independent of those fields.
    """

    def __init__(self, fields: Mapping[str, Any], bad: set[str]) -> None:
        self.f, self.bad = fields, bad
        self.problems: list[str] = []
        self.notes: list[str] = []
        self.release: compat.TorchRelease | None = None
        self.variant: compat.WheelVariant | None = None
        self.cuda_base: compat.CudaBase | None = None
        self.cpu = bool(fields.get("cpu")) or fields.get("cuda") == "cpu"
        self.cuda: str | None = None if fields.get("cuda") == "cpu" else fields.get("cuda")
        self.cuda_full: str | None = None
        self.cudnn: str | None = fields.get("cudnn")
        self.python: str | None = fields.get("python")
        self.torchvision: str | None = fields.get("torchvision")
        self.torchaudio: str | None = fields.get("torchaudio")
        self.distro: str | None = fields.get("distro") if self.ok("distro") else None
        self.flavour: str = fields.get("flavour") or "devel"
        self.base_override: str | None = fields.get("base_image") if self.ok("base_image") else None

    def ok(self, *names: str) -> bool:
        return not self.bad.intersection(names)

    def run(self) -> tuple[dict[str, Any], list[str]]:
        for step in (self._release, self._build, self._python, self._companions, self._cuda_base, self._cudnn, self._distro):
            step()
        images = self._images()
        miniconda = self._miniconda()
        index_url = self._index_url()
        self._ca_cert()
        tag = self._tag()
        if self.problems or self.bad:
            return {}, self.problems
        rel, variant = self.release, self.variant
        assert rel is not None and variant is not None and self.python and self.distro and images and index_url
        requirements = [f"torch=={rel.version}"]
        requirements += [f"torchvision=={self.torchvision}"] if self.torchvision else []
        requirements += [f"torchaudio=={self.torchaudio}"] if self.torchaudio else []
        return {
            "torch": rel.version,
            "torchvision": self.torchvision,
            "torchaudio": self.torchaudio,
            "python": self.python,
            "cpu": variant.cuda is None,
            "cuda": variant.cuda,
            "cuda_full": self.cuda_full,
            "cudnn": self.cudnn,
            "variant": variant.name,
            "distro": self.distro,
            "flavour": self.flavour,
            "base_image": images[0],
            "builder_image": images[1],
            "torch_index_url": index_url,
            "miniconda": miniconda,
            "tag": tag,
            "pip_requirements": tuple(requirements),
            "notes": tuple(self.notes),
        }, []

    def _release(self) -> None:
        torch = self.f.get("torch")
        if not self.ok("torch") or torch is None:
            return
        self.release = compat.torch_release(torch)
        if self.release is None:
            series = [v for v in compat.torch_versions() if v.startswith(torch.rsplit(".", 1)[0] + ".")]
            self.problems.append(f"torch: unknown release {torch}; valid: {_listing(series or compat.torch_versions())}")

    def _build(self) -> None:
        """CPU, the CUDA asked for, or the release's default CUDA."""
        rel = self.release
        if not self.ok("cuda", "cpu"):
            return
        if self.cpu and self.cuda:
            self.problems.append(f"cuda: {self.cuda} conflicts with cpu=true; give one of them")
            return
        if rel is None:
            return
        valid = _listing([*rel.cuda_versions, *(["cpu"] if rel.has_cpu else [])])
        if self.cpu:
            self.variant = rel.variant("cpu")
            if self.variant is None:
                self.problems.append(f"cpu: torch {rel.version} has no CPU build; valid: {valid}")
        elif self.cuda is None:
            self.variant = rel.default_variant
        else:
            self.variant = rel.cuda_variant(self.cuda)
            if self.variant is None:
                short = compat.short_cuda(self.cuda)
                self.problems.append(f"cuda: torch {rel.version} has no CUDA {short} build; valid: {valid}")

    def _python(self) -> None:
        rel, variant = self.release, self.variant
        if rel is None or not self.ok("python"):
            return
        pythons = variant.pythons if variant is not None else rel.pythons
        if self.python is None:
            self.python = rel.default_python
        elif self.python not in pythons:
            build = f" ({variant.name})" if variant is not None and variant.pythons != rel.pythons else ""
            self.problems.append(
                f"python: torch {rel.version}{build} has wheels for Python {_py_range(pythons)} only; valid: {_listing(pythons)}"
            )

    def _companions(self) -> None:
        """torchvision and torchaudio: the releases paired with torch, on this build's index."""
        rel, variant = self.release, self.variant
        if rel is None:
            return
        if self.torchvision in ("none", ""):
            self.torchvision = None
        elif self.ok("torchvision"):
            if self.torchvision is None:
                self.torchvision = rel.torchvision
            elif self.torchvision != rel.torchvision:
                self.problems.append(
                    f"torchvision: torch {rel.version} pairs with torchvision {rel.torchvision}; valid: {rel.torchvision}"
                )
        if self.torchaudio in ("none", ""):
            self.torchaudio = None
            return
        if not self.ok("torchaudio", "cuda", "cpu"):
            return
        on_index = variant.torchaudio if variant is not None else rel.torchaudio
        if self.torchaudio is None:
            self.torchaudio = on_index
            if variant is not None and on_index is None and rel.torchaudio:
                self.notes.append(f"torchaudio skipped: the {variant.name} index has no torchaudio for torch {rel.version}")
        elif self.torchaudio != rel.torchaudio:
            valid = _listing([*([rel.torchaudio] if rel.torchaudio else []), "none"])
            self.problems.append(
                f"torchaudio: torch {rel.version} pairs with torchaudio {rel.torchaudio or '(none)'}; valid: {valid}"
            )
        elif variant is not None and on_index is None:
            with_audio = [v.cuda or "cpu" for v in rel.variants if v.torchaudio]
            self.problems.append(
                f"torchaudio: the {variant.name} index has no torchaudio for torch {rel.version}; "
                f"valid: none, or cuda {_listing(with_audio)}"
            )

    def _cuda_base(self) -> None:
        """The nvidia/cuda full version: the one asked for (12.1.1) or the short version's default."""
        variant = self.variant
        if variant is None or variant.cuda is None or not self.ok("cuda"):
            return
        if self.cuda is None or self.cuda.count(".") < 2:
            self.cuda_base = compat.default_cuda_base(variant.cuda)
            self.cuda_full = self.cuda_base.cuda if self.cuda_base else None
            return
        self.cuda_full = self.cuda
        self.cuda_base = compat.cuda_base(self.cuda)
        if self.cuda_base is not None:
            return
        if self.base_override:  # a base llbgen knows nothing about: assume the usual cuDNN for the tag
            usual = compat.default_cuda_base(variant.cuda)
            self.cudnn = self.cudnn or (usual.cudnn if usual else None)
        else:
            fulls = [b.cuda for b in compat.cuda_bases(variant.cuda)]
            self.problems.append(f"cuda: no nvidia/cuda images for CUDA {self.cuda}; valid: {_listing(fulls)}")

    def _cudnn(self) -> None:
        base = self.cuda_base
        if not self.ok("cudnn", "cuda", "cpu"):
            return
        if self.cpu:
            if self.cudnn is not None:
                self.problems.append("cudnn: a CPU image has no cuDNN; drop cudnn or choose a CUDA version")
            self.cudnn = None
        elif base is not None:
            if self.cudnn is None:
                self.cudnn = base.cudnn
            elif self.cudnn != base.cudnn and not self.base_override:
                self.problems.append(f"cudnn: nvidia/cuda {base.cuda} images carry cuDNN {base.cudnn}; valid: {base.cudnn}")

    def _distro(self) -> None:
        base = self.cuda_base
        if not self.ok("distro"):
            return
        allowed = base.distros if base is not None else (compat.cpu_distros() if self.cpu else ())
        if self.distro is None:
            if base is not None:
                self.distro = base.default_distro
            elif self.cpu:
                preferred = compat.preferred_distro()
                self.distro = preferred if preferred in allowed else allowed[-1]
            elif self.base_override and self.cuda_full:
                self.distro = compat.preferred_distro()
        elif allowed and self.distro not in allowed and not self.base_override:
            what = f"nvidia/cuda {base.cuda} has no {self.distro} images" if base else f"no CPU base for {self.distro}"
            self.problems.append(f"distro: {what}; valid: {_listing(allowed)} (or give base_image)")

    def _images(self) -> tuple[str, str] | None:
        """The base (nvidia/cuda for GPU, the distro's own image for CPU) and the neutral builder."""
        if self.distro is None:
            return None
        base = self.base_override or (
            self.cuda_base.image(self.flavour, self.distro) if self.cuda_base else compat.distro_image(self.distro)
        )
        builder = (self.f.get("builder_image") if self.ok("builder_image") else None) or compat.distro_image(self.distro)
        return base, builder

    def _miniconda(self) -> MinicondaPick | None:
        """The installer for this Python and its checksum (published, or the user's)."""
        python = self.python
        if python is None or not self.ok("python", "miniconda_installer", "miniconda_sha256", "mirrors"):
            return None
        name, sha = self.f.get("miniconda_installer"), self.f.get("miniconda_sha256")
        if name:
            known = compat.miniconda_by_filename(name)
            m = re.match(r"Miniconda3-py3(\d+)_", name)
            if m and f"3.{m.group(1)}" != python:
                self.problems.append(f"miniconda_installer: {name} installs Python 3.{m.group(1)}, not {python}")
                return None
        else:
            known = compat.default_miniconda(python, ARCH)
            if known is None:
                self.problems.append(
                    f"python: no Miniconda installer recorded for Python {python}; "
                    f"valid: {_listing(compat.miniconda_pythons(ARCH))} (or give miniconda_installer and miniconda_sha256)"
                )
                return None
            name = known.filename
        published = known.sha256 if known else None
        if sha and published and sha != published:
            self.problems.append(f"miniconda_sha256: differs from the published sha256 of {name}; valid: {published}")
            return None
        if not (sha or published):
            self.problems.append(f"miniconda_sha256: no published sha256 is recorded for {name}; pass --miniconda-sha256")
            return None
        base = ((self.f.get("mirrors") or {}).get("miniconda_url") or compat.miniconda_base_url()).rstrip("/")
        m = re.search(r"_(\d+\.\d+\.\d+-\d+)-Linux", name)
        version = known.version if known else (m.group(1) if m else None)
        return MinicondaPick(filename=name, version=version, url=f"{base}/{name}", sha256=sha or published)

    def _index_url(self) -> str | None:
        """The variant's index on download.pytorch.org, or the mirror's with {variant} filled in."""
        if self.variant is None:
            return None
        mirror = (self.f.get("mirrors") or {}).get("torch_index_url") if self.ok("mirrors") else None
        if not mirror:
            return self.variant.index_url
        extra = {name for _, name, _, _ in string.Formatter().parse(mirror) if name} - {"variant"}
        if extra:
            self.problems.append(f"mirrors.torch_index_url: unknown placeholder {{{min(extra)}}}; valid: {{variant}}")
            return None
        return mirror.replace("{variant}", self.variant.name)

    def _ca_cert(self) -> None:
        ca_cert = self.f.get("ca_cert")
        if ca_cert is not None and self.ok("ca_cert") and not Path(ca_cert).is_file():
            self.problems.append(f"ca_cert: no file at {ca_cert}")

    def _tag(self) -> str | None:
        if not self.ok("tag_template"):
            return None
        template = self.f.get("tag_template") or (DEFAULT_CPU_TAG_TEMPLATE if self.cpu else DEFAULT_TAG_TEMPLATE)
        try:
            names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
        except ValueError as err:
            self.problems.append(f"tag_template: {err}")
            return None
        unknown = [n for n in names if n not in TAG_PLACEHOLDERS]
        if unknown:
            valid = ", ".join("{" + p + "}" for p in TAG_PLACEHOLDERS)
            self.problems.append(f"tag_template: unknown placeholder {{{unknown[0]}}}; valid: {valid}")
            return None
        variant = self.variant
        distro = self.distro
        if self.base_override and not self.f.get("distro") and "distro" in names:
            # The base's distro is unknown: the tag names the base rather than a guess.
            distro = base_image_name(self.base_override)
            self.notes.append(f"distro: the distro of base_image {self.base_override} is not known; the tag names "
                              f"the base ({distro}); give distro to name it (it also picks the builder image)")
        values = {
            "torch": self.release.version if self.release else None,
            "torchvision": self.torchvision or "none",
            "torchaudio": self.torchaudio or "none",
            "python": self.python,
            "cuda": (variant.cuda or "cpu") if variant else None,
            "cuda_full": self.cuda_full or "cpu",
            "cudnn": self.cudnn or "",
            "flavour": self.flavour,
            "distro": distro,
            "variant": variant.name if variant else None,
        }
        if any(values[n] is None for n in names):
            return None  # what it needs is already reported as a problem
        tag = template.format(**values)
        try:
            return check_tag(tag)
        except ValueError as err:
            self.problems.append(f"tag_template: the rendered tag {err}")
            return None
