"""What the image should contain (its ``io.llbgen.spec`` label) against what it does contain.

The label holds the resolved spec as JSON (``ResolvedSpec``). It is read leniently: only the
version fields are needed, so a label written by an older or newer llbgen still verifies.
``PROBE`` runs inside the container with the image's ``python`` and prints one JSON line;
``compare`` turns the two into report rows. Pure functions, no Docker here.

>>> public_version("2.13.0+cpu")
'2.13.0'
>>> cudnn_major(8902), cudnn_major(90100)
('8', '9')
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from llbgen.verify.report import CheckResult, Status

SPEC_LABEL = "io.llbgen.spec"
PROBE_MARK = "LLBGEN-VERIFY-PROBE "

# Runs inside the container (python -c): versions from the installed distributions, then the
# imports themselves (a wheel that installs but does not import is a failure), then CUDA.
PROBE = r"""
import json, sys
from importlib import metadata
out = {"python": "%d.%d.%d" % sys.version_info[:3], "executable": sys.executable}
for name in ("torch", "torchvision", "torchaudio"):
    try:
        out[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        out[name] = None
    if out[name] is not None:
        try:
            __import__(name)
        except Exception as err:
            out[name + "_error"] = "%s: %s" % (type(err).__name__, err)
try:
    import torch
    out["cuda_available"] = bool(torch.cuda.is_available())
    out["torch_cuda"] = torch.version.cuda
    out["cudnn"] = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    out["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if out["cuda_available"] else []
except Exception as err:
    out.setdefault("torch_error", "%s: %s" % (type(err).__name__, err))
print("LLBGEN-VERIFY-PROBE " + json.dumps(out))
"""


@dataclass(frozen=True)
class Expected:
    """The versions the spec label promises; ``None`` means "not in this image"."""

    python: str | None
    torch: str | None
    torchvision: str | None
    torchaudio: str | None
    cpu: bool
    cuda: str | None
    cuda_full: str | None
    cudnn: str | None
    tag: str | None = None

    @classmethod
    def from_label(cls, text: str) -> Expected:
        """Parse the label's JSON; ValueError names what is wrong with it."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{SPEC_LABEL} is not JSON: {err}") from None
        if not isinstance(data, dict):
            raise ValueError(f"{SPEC_LABEL} is not a JSON object")
        for required in ("python", "torch"):
            if not isinstance(data.get(required), str):
                raise ValueError(f"{SPEC_LABEL} has no {required!r} version")

        def opt(key: str) -> str | None:
            value = data.get(key)
            return str(value) if value not in (None, "", "none") else None

        cuda = opt("cuda")
        return cls(
            python=opt("python"),
            torch=opt("torch"),
            torchvision=opt("torchvision"),
            torchaudio=opt("torchaudio"),
            cpu=bool(data.get("cpu", cuda is None)),
            cuda=cuda,
            cuda_full=opt("cuda_full"),
            cudnn=opt("cudnn"),
            tag=opt("tag"),
        )

    def describe(self) -> str:
        parts = [f"python {self.python}", f"torch {self.torch}"]
        parts += [f"torchvision {self.torchvision}"] if self.torchvision else ["no torchvision"]
        parts += [f"torchaudio {self.torchaudio}"] if self.torchaudio else ["no torchaudio"]
        parts += ["CPU"] if self.cpu else [f"CUDA {self.cuda_full or self.cuda}", f"cuDNN {self.cudnn or '?'}"]
        return ", ".join(parts)


def public_version(version: str) -> str:
    """The version without its local label: ``2.13.0+cpu`` -> ``2.13.0``."""
    return version.split("+", 1)[0]


def cudnn_major(version: int | None) -> str | None:
    """torch.backends.cudnn.version() as a major version: 8902 -> 8, 90100 -> 9."""
    if not version:
        return None
    return str(version // 10000 if version >= 10000 else version // 1000)


def short_cuda(version: str | None) -> str | None:
    """``12.1.0`` or ``12.1`` -> ``12.1``."""
    return ".".join(version.split(".")[:2]) if version else None


def parse_probe(output: str) -> dict[str, Any]:
    """The JSON object of the probe's marked line; ValueError when it is missing."""
    for line in output.splitlines():
        if line.startswith(PROBE_MARK):
            return json.loads(line[len(PROBE_MARK):])
    raise ValueError("no probe output: " + (output.strip()[-300:] or "(nothing printed)"))


def python_matches(expected: str, found: str) -> bool:
    """A spec's ``3.11`` matches ``3.11.7``; a full ``3.11.7`` must match exactly."""
    return found == expected or found.startswith(expected + ".")


def compare(expected: Expected, found: dict[str, Any], *, gpus: bool) -> list[CheckResult]:
    """Report rows for Python, torch, torchvision, torchaudio and (with ``gpus``) CUDA and cuDNN."""
    rows: list[CheckResult] = []
    where = found.get("executable") or "python"
    if expected.python:
        ok = python_matches(expected.python, found.get("python", ""))
        rows.append(CheckResult("python version", Status.PASS if ok else Status.FAIL,
                                f"{found.get('python')} at {where} (spec {expected.python})"))
    for name in ("torch", "torchvision", "torchaudio"):
        want, have, error = getattr(expected, name), found.get(name), found.get(name + "_error")
        label = f"{name} version"
        if want is None:
            if have is None:
                rows.append(CheckResult(label, Status.SKIP, "not in the spec, not installed"))
            else:
                rows.append(CheckResult(label, Status.SKIP, f"not in the spec; {have} installed anyway"))
            continue
        if have is None:
            rows.append(CheckResult(label, Status.FAIL, f"not installed (spec {want})"))
        elif public_version(have) != want:
            rows.append(CheckResult(label, Status.FAIL, f"{have} installed, spec says {want}"))
        elif error:
            rows.append(CheckResult(label, Status.FAIL, f"{have} installed but import fails: {error}"))
        else:
            rows.append(CheckResult(label, Status.PASS, f"{have} (spec {want}), imports"))
    rows += _cuda_rows(expected, found, gpus=gpus)
    return rows


def _cuda_rows(expected: Expected, found: dict[str, Any], *, gpus: bool) -> list[CheckResult]:
    available = found.get("cuda_available")
    if expected.cpu:
        cuda_build = found.get("torch_cuda")
        detail = "CPU image" + (f"; but torch is a CUDA {cuda_build} build" if cuda_build else "; torch is a CPU build")
        status = Status.FAIL if cuda_build else Status.PASS
        return [CheckResult("CUDA", status, detail)]
    if not gpus:
        return [CheckResult("CUDA / cuDNN / GPU", Status.SKIP, "run with --gpus all on a GPU host to check them")]
    rows = []
    want_cuda, have_cuda = short_cuda(expected.cuda_full or expected.cuda), short_cuda(found.get("torch_cuda"))
    rows.append(CheckResult("torch CUDA version", Status.PASS if have_cuda == want_cuda else Status.FAIL,
                            f"torch built for CUDA {have_cuda or 'none'} (spec {want_cuda})"))
    have_cudnn = cudnn_major(found.get("cudnn"))
    if expected.cudnn is None:
        rows.append(CheckResult("cuDNN version", Status.SKIP if have_cudnn else Status.FAIL,
                                f"cuDNN {found.get('cudnn')} (the spec names none)"))
    else:
        rows.append(CheckResult("cuDNN version", Status.PASS if have_cudnn == expected.cudnn else Status.FAIL,
                                f"cuDNN {found.get('cudnn')} (spec {expected.cudnn})"))
    gpu_names = ", ".join(found.get("gpus") or []) or "none"
    rows.append(CheckResult("torch.cuda.is_available()", Status.PASS if available else Status.FAIL,
                            f"{bool(available)}; GPUs: {gpu_names}"))
    return rows
