"""The torch step: torch only from the torch index, and the check that the installed build is the variant.

The check program is run exactly as the step embeds it (``python -c SOURCE ARGS``), against
stand-in ``torch`` packages and dist-info directories on ``PYTHONPATH`` (the real torch is
checked by the image-build integration tests).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from llbgen.spec import load_spec
from stages import StageContext, TorchStage
from stages.torch import WHEEL_DIR, check_program
from stages.torch_check import problems


def torch_step(values: dict):
    (step,) = TorchStage.from_context(StageContext.create(load_spec(None, values))).steps()
    return step


def test_torch_comes_from_the_torch_index_alone():
    step = torch_step({"torch": "2.3.0", "cuda": "12.1", "mirrors.pip_index_url": "https://pypi.tuna.tsinghua.edu.cn/simple",
                       "mirrors.pip_extra_index_urls": ("https://extra.example/simple",)})
    lines = step.script.splitlines()
    download = next(line for line in lines if " pip download " in line)
    # No pip.conf (its extra-index-url), no extra index, no dependencies: the three wheels or a failure.
    assert download.startswith("PIP_CONFIG_FILE=/dev/null ")
    assert "--no-deps" in download and "--extra-index-url" not in download and "tuna" not in download
    assert "--index-url https://download.pytorch.org/whl/cu121 torch==2.3.0 torchvision==0.18.0 torchaudio==2.3.0" in download
    assert "has no such wheel for this Python, or cannot be reached" in download and download.endswith("exit 1; }")
    install = next(line for line in lines if " pip install " in line)
    assert install.endswith(f"--index-url https://pypi.tuna.tsinghua.edu.cn/simple --extra-index-url "
                            f"https://extra.example/simple {WHEEL_DIR}/*.whl")
    assert lines.index(download) < lines.index(install) < lines.index(f"rm -rf {WHEEL_DIR}", 2)
    assert step.script.endswith("' cu121 12.1 torch==2.3.0 torchvision==0.18.0 torchaudio==2.3.0")


def test_cpu_step_checks_for_no_cuda():
    step = torch_step({"torch": "2.3.0", "cpu": True, "torchaudio": "none"})
    assert step.script.endswith("' cpu none torch==2.3.0 torchvision==0.18.0")


@pytest.mark.parametrize(("variant", "cuda", "torch_cuda", "found", "expected"), [
    ("cpu", None, None, {"torch": "2.13.0+cpu"}, []),
    ("cu121", "12.1", "12.1", {"torch": "2.3.0+cu121", "torchvision": "0.18.0+cu121"}, []),
    # A mirror of PyPI's plain wheels: no local label, torch.version.cuda decides.
    ("cu121", "12.1", "12.1", {"torch": "2.3.0", "torchvision": "0.18.0"}, []),
    # The fallback this check exists for: PyPI's CUDA torch in a CPU image.
    ("cpu", None, "12.1", {"torch": "2.3.0"}, ["torch 2.3.0 is a CUDA 12.1 build, expected cpu (CPU)"]),
    ("cu126", "12.6", None, {"torch": "2.13.0+cpu"}, ["torch 2.13.0+cpu is a CPU build, expected cu126 (CUDA 12.6)"]),
    ("cu118", "11.8", "12.1", {"torch": "2.3.0+cu121"}, ["torch 2.3.0+cu121 is a CUDA 12.1 build, expected cu118 (CUDA 11.8)"]),
    ("cu121", "12.1", "12.1", {"torch": "2.3.0+cu121", "torchvision": "0.18.0+cu118"},
     ["torchvision 0.18.0+cu118 is installed, expected 0.18.0+cu121"]),
    ("cu121", "12.1", "12.1", {"torch": "2.3.0+cu121", "torchvision": "0.17.0+cu121"},
     ["torchvision 0.17.0+cu121 is installed, expected 0.18.0+cu121"]),
    ("cu121", "12.1", "12.1", {"torch": "2.3.0+cu121", "torchvision": None},
     ["torchvision is not installed, expected 0.18.0+cu121"]),
])
def test_problems(variant, cuda, torch_cuda, found, expected):
    pinned = {"torch": found["torch"].split("+")[0], **({"torchvision": "0.18.0"} if "torchvision" in found else {})}
    assert problems(variant, cuda, torch_cuda, pinned, found) == expected


def fake_site(root: Path, torch_version: str, torch_cuda: str | None, **dists: str) -> Path:
    """A directory with a stand-in ``torch`` package and a dist-info for each of ``dists``."""
    (root / "torch").mkdir(parents=True)
    (root / "torch" / "__init__.py").write_text(f"__version__ = {torch_version!r}\nfrom torch import version\n")
    (root / "torch" / "version.py").write_text(f"cuda = {torch_cuda!r}\n")
    for name, version in dists.items():
        info = root / f"{name}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return root


def run_check(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([sys.executable, "-c", check_program(), *args], capture_output=True, text=True, env=env,
                          timeout=60)


def test_check_program_fails_naming_expected_and_found(tmp_path: Path):
    site = fake_site(tmp_path, "2.13.0+cpu", None)
    result = run_check(site, "cu126", "12.6", "torch==2.13.0")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "llbgen: the torch index served another build: torch 2.13.0+cpu is a CPU build, expected cu126 (CUDA 12.6) "
        "(check --torch-index-url)"]


def test_check_program_passes_the_asked_build(tmp_path: Path):
    site = fake_site(tmp_path, "2.3.0+cu121", "12.1", torchvision="0.18.0+cu121", torchaudio="2.3.0+cu121")
    result = run_check(site, "cu121", "12.1", "torch==2.3.0", "torchvision==0.18.0", "torchaudio==2.3.0")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ("llbgen: installed torch 2.3.0+cu121, torchvision 0.18.0+cu121, "
                                     "torchaudio 2.3.0+cu121 (CUDA 12.1 build, as the image says)")


def test_check_program_names_a_mismatched_companion(tmp_path: Path):
    site = fake_site(tmp_path, "2.3.0+cpu", None, torchvision="0.18.0")  # PyPI's plain torchvision
    result = run_check(site, "cpu", "none", "torch==2.3.0", "torchvision==0.18.0", "torchaudio==2.3.0")
    assert result.returncode == 1
    assert "torchaudio is not installed, expected 2.3.0+cpu" in result.stderr
    assert "torchvision" not in result.stderr  # a plain version of the right release passes


def test_check_program_reports_an_unimportable_torch(tmp_path: Path):
    result = run_check(tmp_path, "cpu", "none", "torch==2.3.0")
    assert result.returncode == 1
    assert result.stderr.startswith("llbgen: the installed torch cannot be imported: ")
