"""The image spec: the seed's image resolves exactly, every row of the
compatibility data resolves to a consistent image, bad input fails once with
every problem named, llbgen.toml loads under flag overrides, and the generated
files (compat_data.json, schema.json) match their sources."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from llbgen.errors import UsageError
from llbgen.spec import ImageSpec, Mirrors, Proxy, ResolvedSpec, compat, load_spec, resolve_spec, resolve_values

ROOT = Path(__file__).resolve().parents[2]
SPEC_DIR = ROOT / "llbgen" / "spec"


def _error(values: dict) -> str:
    with pytest.raises(UsageError) as info:
        resolve_values(values)
    return str(info.value)


# --- the seed's image ----------------------------------------------------------


def test_seed_image_resolves_exactly() -> None:
    r = resolve_spec(ImageSpec(torch="2.3.0", cuda="12.1"))
    assert (r.torch, r.torchvision, r.torchaudio, r.python) == ("2.3.0", "0.18.0", "2.3.0", "3.8")
    assert (r.cuda, r.cuda_full, r.cudnn, r.variant, r.distro, r.flavour) == (
        "12.1",
        "12.1.0",
        "8",
        "cu121",
        "ubuntu22.04",
        "devel",
    )
    assert r.torch_index_url == "https://download.pytorch.org/whl/cu121"
    assert r.base_image == "nvidia/cuda:12.1.0-cudnn8-devel-ubuntu22.04"
    assert r.builder_image == "ubuntu:22.04"
    assert r.tag == "pytorch:2.3.0-python3.8-cuda12.1.0-cudnn8-devel-ubuntu22.04"
    assert r.pip_requirements == ("torch==2.3.0", "torchvision==0.18.0", "torchaudio==2.3.0")
    assert r.miniconda.filename == "Miniconda3-py38_23.11.0-2-Linux-x86_64.sh"
    assert r.miniconda.url == "https://repo.anaconda.com/miniconda/Miniconda3-py38_23.11.0-2-Linux-x86_64.sh"
    assert r.miniconda.sha256 == "cb908ddbd603d789d94076ea4dd3f8517b15866719e007725dca778a8dfab823"
    assert r.notes == ()


def test_default_cuda_of_2_3_0_is_the_seeds() -> None:
    assert resolve_values({"torch": "2.3.0"}).base_image == "nvidia/cuda:12.1.0-cudnn8-devel-ubuntu22.04"


@pytest.mark.parametrize("values", [{"torch": "2.3.0", "cpu": True}, {"torch": "2.3.0", "cuda": "cpu"}])
def test_cpu_image(values: dict) -> None:
    r = resolve_values(values)
    assert r.cpu and r.variant == "cpu"
    assert (r.cuda, r.cuda_full, r.cudnn) == (None, None, None)
    assert r.base_image == "ubuntu:22.04" == r.builder_image
    assert r.torch_index_url == "https://download.pytorch.org/whl/cpu"
    assert r.tag == "pytorch:2.3.0-python3.8-cpu-ubuntu22.04"


def test_cudnn_naming_changes_at_cuda_12_4() -> None:
    r = resolve_values({"torch": "2.4.0", "cuda": "12.4"})
    assert r.base_image == "nvidia/cuda:12.4.1-cudnn-devel-ubuntu22.04"
    assert r.tag == "pytorch:2.4.0-python3.8-cuda12.4.1-cudnn9-devel-ubuntu22.04"
    assert resolve_values({"torch": "2.4.0", "cuda": "11.8", "flavour": "runtime"}).base_image == (
        "nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04"
    )


def test_full_cuda_version_and_distro_choice() -> None:
    r = resolve_values({"torch": "2.3.0", "cuda": "12.1.1", "distro": "ubuntu20.04"})
    assert r.base_image == "nvidia/cuda:12.1.1-cudnn8-devel-ubuntu20.04"
    assert r.builder_image == "ubuntu:20.04"


# --- every row of the data -----------------------------------------------------

ROWS = [(rel, v) for rel in compat.torch_releases() for v in rel.variants]


@pytest.mark.parametrize(("rel", "variant"), ROWS, ids=[f"{r.version}-{v.name}" for r, v in ROWS])
def test_every_row_resolves_consistently(rel: compat.TorchRelease, variant: compat.WheelVariant) -> None:
    values = {"torch": rel.version, **({"cpu": True} if variant.cuda is None else {"cuda": variant.cuda})}
    r = resolve_values(values)
    assert r.variant == variant.name
    assert r.torch_index_url == f"https://download.pytorch.org/whl/{variant.name}" == variant.index_url
    assert r.python == rel.default_python and r.python in variant.pythons
    assert r.torchvision == rel.torchvision
    assert r.torchaudio == variant.torchaudio
    assert re.fullmatch(r"[0-9a-f]{64}", r.miniconda.sha256)
    assert f"py{r.python.replace('.', '')}_" in r.miniconda.filename
    if variant.cuda is None:
        assert r.base_image == compat.distro_image(r.distro)
    else:
        assert r.cuda_full is not None and compat.short_cuda(r.cuda_full) == variant.cuda
        base = compat.cuda_base(r.cuda_full)
        assert base is not None and r.distro in base.distros and r.cudnn == base.cudnn
        assert r.base_image == f"nvidia/cuda:{r.cuda_full}-{base.cudnn_tag}-devel-{r.distro}"
    for python in variant.pythons:  # every supported Python resolves too (there is an installer for it)
        assert resolve_values({**values, "python": python}).python == python


def test_every_release_has_one_default_variant_and_known_pairs() -> None:
    versions = compat.torch_versions()
    assert versions[0] == "1.13.0" and "2.3.0" in versions and "2.13.0" in versions
    assert list(versions) == sorted(versions, key=compat.version_key)
    for rel in compat.torch_releases():
        assert rel.default_variant.name == rel.default_variant_name
        assert rel.default_python in rel.pythons


# --- invalid input -------------------------------------------------------------


def test_wrong_cuda_names_the_valid_ones() -> None:
    assert _error({"torch": "2.3.0", "cuda": "12.4"}) == "cuda: torch 2.3.0 has no CUDA 12.4 build; valid: 11.8, 12.1, cpu"


def test_unknown_torch_lists_releases() -> None:
    message = _error({"torch": "2.99.0"})
    assert message.startswith("torch: unknown release 2.99.0; valid: 1.13.0, ")
    assert "2.3.0" in message and "\n" not in message


def test_malformed_versions() -> None:
    assert _error({"torch": "2.3"}) == "torch: '2.3' is not a release like 2.3.0; valid: 2.3.0, 2.3.1"
    assert _error({"torch": "2.3.0", "python": "three"}).startswith("python: 'three' is not a Python version")
    assert _error({"torch": "2.3.0", "cuda": "12"}).startswith("cuda: '12' is not a CUDA version")


def test_unsupported_python() -> None:
    assert _error({"torch": "2.3.0", "python": "3.13"}) == (
        "python: torch 2.3.0 has wheels for Python 3.8-3.12 only; valid: 3.8, 3.9, 3.10, 3.11, 3.12"
    )


def test_mismatched_torchvision_and_torchaudio() -> None:
    assert _error({"torch": "2.3.0", "torchvision": "0.19.0"}) == (
        "torchvision: torch 2.3.0 pairs with torchvision 0.18.0; valid: 0.18.0"
    )
    assert _error({"torch": "2.3.0", "torchaudio": "2.4.0"}) == (
        "torchaudio: torch 2.3.0 pairs with torchaudio 2.3.0; valid: 2.3.0, none"
    )


def test_several_problems_in_one_error() -> None:
    message = _error({"torch": "2.3.0", "cuda": "12.4", "python": "3.13", "torchvision": "0.19.0", "tag_template": "x:{nope}"})
    lines = message.splitlines()
    assert lines[0] == "4 problems:"
    assert [line.split(":")[0] for line in lines[1:]] == [" - cuda", " - python", " - torchvision", " - tag_template"]
    assert all(line.startswith(" - ") and "valid: " in line for line in lines[1:])


def test_shape_and_compatibility_problems_together() -> None:
    lines = _error({"torch": "2.3.0", "python": "3", "cuda": "12.4"}).splitlines()
    assert lines[0] == "2 problems:"
    assert any(line.startswith(" - python: '3'") for line in lines)
    assert any(line.startswith(" - cuda: torch 2.3.0 has no CUDA 12.4") for line in lines)


@pytest.mark.parametrize(
    ("values", "start"),
    [
        ({"torch": "2.3.0", "cpu": True, "cuda": "12.1"}, "cuda: 12.1 conflicts with cpu=true"),
        ({"torch": "2.3.0", "cuda": "12.1", "cudnn": "9"}, "cudnn: nvidia/cuda 12.1.0 images carry cuDNN 8; valid: 8"),
        ({"torch": "2.3.0", "cuda": "12.1.7"}, "cuda: no nvidia/cuda images for CUDA 12.1.7; valid: 12.1.0, 12.1.1"),
        (
            {"torch": "2.3.0", "distro": "ubuntu24.04"},
            "distro: nvidia/cuda 12.1.0 has no ubuntu24.04 images; valid: ubuntu20.04, ubuntu22.04",
        ),
        ({"torch": "2.3.0", "python": 3.8}, 'python: 3.8 must be a string (quote it: "3.8")'),
        ({"torch": "2.3.0", "colour": "red"}, "colour: unknown key; valid: torch, "),
        ({"torch": "2.3.0", "ca_cert": "/nonexistent/ca.pem"}, "ca_cert: no file at /nonexistent/ca.pem"),
        (
            {"torch": "2.13.0", "cuda": "13.2", "torchaudio": "2.11.0"},
            "torchaudio: the cu132 index has no torchaudio for torch 2.13.0",
        ),
    ],
)
def test_other_problems(values: dict, start: str) -> None:
    assert _error(values).startswith(start)


# --- optional parts and mirrors ------------------------------------------------


def test_torchaudio_can_be_skipped() -> None:
    for skip in ("none", ""):
        r = resolve_values({"torch": "2.3.0", "torchaudio": skip})
        assert r.torchaudio is None
        assert r.pip_requirements == ("torch==2.3.0", "torchvision==0.18.0")


def test_torchvision_can_be_skipped() -> None:
    for skip in ("none", ""):
        r = resolve_values({"torch": "2.3.0", "torchvision": skip, "torchaudio": "none"})
        assert r.torchvision is None
        assert r.pip_requirements == ("torch==2.3.0",)


def test_torchaudio_missing_from_an_index_is_skipped_with_a_note() -> None:
    r = resolve_values({"torch": "2.13.0", "cuda": "13.2"})
    assert r.torchaudio is None and "cu132" in r.notes[0]
    assert resolve_values({"torch": "2.13.0", "cpu": True}).torchaudio == "2.11.0"


def test_mirrors_replace_download_hosts() -> None:
    r = resolve_values(
        {
            "torch": "2.13.0",
            "cpu": True,
            "python": "3.11",
            "mirrors": {
                "torch_index_url": "http://127.0.0.1:8080/{variant}/simple",
                "miniconda_url": "http://127.0.0.1:8081/miniconda/",
            },
        }
    )
    assert r.torch_index_url == "http://127.0.0.1:8080/cpu/simple"
    assert r.miniconda.url == "http://127.0.0.1:8081/miniconda/Miniconda3-py311_26.5.3-1-Linux-x86_64.sh"
    assert r.miniconda.sha256 == compat.default_miniconda("3.11").sha256


def test_an_installer_without_a_published_checksum_needs_one() -> None:
    values = {"torch": "2.3.0", "cpu": True, "python": "3.11", "miniconda_installer": "standin-py311.sh"}
    assert _error(values) == "miniconda_sha256: no published sha256 is recorded for standin-py311.sh; pass --miniconda-sha256"
    r = resolve_values({**values, "miniconda_sha256": "ab" * 32})
    assert (r.miniconda.filename, r.miniconda.sha256, r.miniconda.version) == ("standin-py311.sh", "ab" * 32, None)
    assert _error({"torch": "2.3.0", "miniconda_sha256": "ab" * 32}).startswith(
        "miniconda_sha256: differs from the published sha256 of Miniconda3-py38_23.11.0-2-Linux-x86_64.sh"
    )


def test_base_image_override_and_tag_template() -> None:
    r = resolve_values(
        {
            "torch": "2.3.0",
            "cpu": True,
            "base_image": "llbgen-test/debian:bookworm",
            "builder_image": "llbgen-test/builder:bookworm",
            "distro": "debian12",
            "tag_template": "registry.local:5000/pt:{torch}-{variant}-py{python}",
        }
    )
    assert (r.base_image, r.builder_image) == ("llbgen-test/debian:bookworm", "llbgen-test/builder:bookworm")
    assert r.tag == "registry.local:5000/pt:2.3.0-cpu-py3.8"


# --- the model -----------------------------------------------------------------


@pytest.mark.parametrize("model", [ImageSpec, Mirrors, Proxy, ResolvedSpec])
def test_models_are_frozen_strict_and_described(model: type[BaseModel]) -> None:
    assert model.model_config["frozen"] and model.model_config["extra"] == "forbid"
    assert all(field.description for field in model.model_fields.values())


def test_spec_is_immutable() -> None:
    spec = ImageSpec(torch="2.3.0")
    with pytest.raises(ValidationError):
        spec.torch = "2.4.0"  # type: ignore[misc]


def test_schema_is_committed_and_current() -> None:
    committed = json.loads((SPEC_DIR / "schema.json").read_text(encoding="utf-8"))
    assert committed == ImageSpec.model_json_schema(), "stale schema; run: .venv/bin/python scripts/gen_compat.py --schema"


def test_compat_data_matches_its_tables(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_compat.py"), "--out", str(tmp_path)], check=True, cwd=ROOT)
    fresh = (tmp_path / "compat_data.json").read_bytes()
    assert fresh == (SPEC_DIR / "compat_data.json").read_bytes(), "stale data; run: .venv/bin/python scripts/gen_compat.py"


# --- llbgen.toml -----------------------------------------------------------------

CONFIG = """
torch = "2.3.0"
cuda = "12.1"
pip-packages = ["transformers"]
ca_cert = "ca.pem"

[mirrors]
pip_index_url = "https://pypi.tuna.tsinghua.edu.cn/simple"
torch_index_url = "https://mirrors.aliyun.com/pytorch-wheels/{variant}/"

[proxy]
https_proxy = "http://proxy.local:3128"
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n", encoding="utf-8")
    path = tmp_path / "llbgen.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def test_toml_loads_into_the_spec(config: Path) -> None:
    r = load_spec(config)
    assert r.base_image == "nvidia/cuda:12.1.0-cudnn8-devel-ubuntu22.04"
    assert r.torch_index_url == "https://mirrors.aliyun.com/pytorch-wheels/cu121/"
    assert r.spec.pip_packages == ("transformers",)
    assert r.spec.ca_cert == config.parent / "ca.pem"
    assert r.spec.mirrors.pip_index_url == "https://pypi.tuna.tsinghua.edu.cn/simple"
    assert r.spec.proxy.https_proxy == "http://proxy.local:3128"


def test_flags_override_the_file(config: Path) -> None:
    r = load_spec(
        config,
        {
            "cuda": "11.8",
            "python": None,
            "mirrors.pip_index_url": "https://mirrors.aliyun.com/pypi/simple/",
            "proxy": {"no_proxy": "localhost"},
        },
    )
    assert r.variant == "cu118" and r.python == "3.8"  # None: flag not given
    assert r.torch_index_url == "https://mirrors.aliyun.com/pytorch-wheels/cu118/"
    assert r.spec.mirrors.pip_index_url == "https://mirrors.aliyun.com/pypi/simple/"
    assert r.spec.mirrors.torch_index_url is not None  # the rest of the table stays
    assert (r.spec.proxy.https_proxy, r.spec.proxy.no_proxy) == ("http://proxy.local:3128", "localhost")
    assert load_spec(config, {"cpu": True, "cuda": "cpu"}).variant == "cpu"


def test_unknown_toml_keys_are_named_with_the_other_problems(config: Path) -> None:
    config.write_text('colour = "red"\n' + CONFIG.replace("[proxy]", '[proxy]\nsocks = "x"'), encoding="utf-8")
    with pytest.raises(UsageError) as info:
        load_spec(config, {"python": "3.13"})
    lines = str(info.value).splitlines()
    assert lines[0] == "3 problems:"
    assert " - llbgen.toml: colour: unknown key; valid: torch, torchvision, " in str(info.value)
    assert any(line.startswith(" - llbgen.toml: proxy.socks: unknown key; valid: http_proxy") for line in lines)
    assert any(line.startswith(" - python: torch 2.3.0 has wheels for Python 3.8-3.12 only") for line in lines)


def test_unknown_flag_keys_and_bad_files(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"^colour: unknown key"):
        load_spec(None, {"torch": "2.3.0", "colour": "red"})
    with pytest.raises(UsageError, match="config: no file at"):
        load_spec(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("torch = \n", encoding="utf-8")
    with pytest.raises(UsageError, match="is not valid TOML"):
        load_spec(broken)
    numeric = tmp_path / "numeric.toml"
    numeric.write_text('torch = "2.3.0"\npython = 3.10\n', encoding="utf-8")
    with pytest.raises(UsageError, match=r"^python: 3.1 must be a string"):
        load_spec(numeric)


# --- llbgen versions -------------------------------------------------------------


def _llbgen(*args: str) -> subprocess.CompletedProcess[str]:
    code = "from llbgen.cli.main import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], check=False, capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_versions_lists_the_table() -> None:
    done = _llbgen("versions")
    assert done.returncode == 0, done.stderr
    assert "2.3.0" in done.stdout and "0.18.0" in done.stdout and "12.1*" in done.stdout
    one = _llbgen("versions", "--torch", "2.3.0")
    assert one.returncode == 0 and "2.3.0" in one.stdout and "2.4.0" not in one.stdout


def test_versions_rejects_an_unknown_release() -> None:
    done = _llbgen("versions", "--torch", "9.9")
    assert done.returncode == 2
    assert done.stderr.startswith("llbgen: error: --torch: unknown release 9.9; valid: 1.13.0")
