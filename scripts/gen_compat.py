#!/usr/bin/env python3
"""Regenerate llbgen/spec/compat_data.json from the CSV tables in data/.

The compatibility knowledge lives in three reviewed tables; this script checks
them for consistency and writes the package data the library reads:

    data/torch-compat.csv   torch <-> torchvision/torchaudio <-> wheel variant <-> Python
    data/cuda-bases.csv     nvidia/cuda tags: full CUDA version, cuDNN, distros
    data/miniconda.csv      Miniconda installers and their published sha256

    python scripts/gen_compat.py             # rewrite llbgen/spec/compat_data.json
    python scripts/gen_compat.py --schema    # also rewrite llbgen/spec/schema.json
    python scripts/gen_compat.py --out DIR   # write into DIR instead (the drift tests do)
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
PACKAGE = ROOT / "llbgen" / "spec"
DATA_FILE = "compat_data.json"
SCHEMA_FILE = "schema.json"

PREFERRED_DISTRO = "ubuntu22.04"  # the seed's; used when a base offers it
MINICONDA_BASE_URL = "https://repo.anaconda.com/miniconda"
PYTORCH_INDEX = "https://download.pytorch.org/whl/"


class DataError(Exception):
    """A table is inconsistent; the message names the file and row."""


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.split(r"[.-]", version))


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        lines = [(n, line) for n, line in enumerate(fh, 1) if line.strip() and not line.startswith("#")]
    reader = csv.DictReader(line for _, line in lines)
    for (n, _), row in zip(lines[1:], reader, strict=True):
        yield n, {k: (v or "").strip() for k, v in row.items()}


def _fail(path: Path, line: int, message: str) -> DataError:
    return DataError(f"{path.relative_to(ROOT)}:{line}: {message}")


def load_torch(path: Path) -> list[dict]:
    releases: dict[str, dict] = {}
    for n, row in _rows(path):
        torch, variant = row["torch"], row["variant"]
        expected_cuda = "" if variant == "cpu" else f"{variant[2:-1]}.{variant[-1]}"
        if not re.fullmatch(r"cpu|cu\d{3}", variant) or row["cuda"] != expected_cuda:
            raise _fail(path, n, f"variant {variant!r} and cuda {row['cuda']!r} disagree")
        if row["index_url"] != PYTORCH_INDEX + variant:
            raise _fail(path, n, f"index_url should be {PYTORCH_INDEX + variant}")
        pythons = row["pythons"].split()
        if row["default_python"] not in pythons:
            raise _fail(path, n, f"default_python {row['default_python']} is not among {pythons}")
        rel = releases.setdefault(
            torch,
            {
                "version": torch,
                "torchvision": row["torchvision"],
                "torchaudio": None,
                "default_python": row["default_python"],
                "default_variant": None,
                "sources": row["source"].split(),
                "variants": [],
            },
        )
        if (rel["torchvision"], rel["default_python"]) != (row["torchvision"], row["default_python"]):
            raise _fail(path, n, f"torch {torch}: torchvision/default_python differ from its first row")
        audio = row["torchaudio"] or None
        if audio:
            if rel["torchaudio"] not in (None, audio):
                raise _fail(path, n, f"torch {torch}: two torchaudio versions")
            rel["torchaudio"] = audio
        if any(v["name"] == variant for v in rel["variants"]):
            raise _fail(path, n, f"torch {torch}: variant {variant} twice")
        if row["default"] == "yes":
            if rel["default_variant"]:
                raise _fail(path, n, f"torch {torch}: two default variants")
            rel["default_variant"] = variant
        rel["variants"].append(
            {
                "name": variant,
                "cuda": row["cuda"] or None,
                "index_url": row["index_url"],
                "pythons": sorted(pythons, key=_key),
                "torchaudio": audio,
            }
        )
    for rel in releases.values():
        if not rel["default_variant"]:
            raise DataError(f"{path.relative_to(ROOT)}: torch {rel['version']} has no default variant")
        rel["variants"].sort(key=lambda v: (v["cuda"] is None, _key(v["cuda"] or "0")))
        rel["pythons"] = sorted({p for v in rel["variants"] for p in v["pythons"]}, key=_key)
    return sorted(releases.values(), key=lambda r: _key(r["version"]))


def load_bases(path: Path) -> tuple[list[dict], list[str]]:
    bases: list[dict] = []
    cpu_distros: list[str] = []
    defaults: set[str] = set()
    for n, row in _rows(path):
        distros = sorted(row["distros"].split(), key=lambda d: _key(re.sub(r"^[a-z]+", "", d)))
        if row["cuda"] == "cpu":
            cpu_distros = distros
            continue
        full = row["cuda"]
        if not re.fullmatch(r"\d+\.\d+\.\d+", full):
            raise _fail(path, n, f"cuda {full!r} is not a full version like 12.1.0")
        short = ".".join(full.split(".")[:2])
        tag = row["cudnn_tag"]
        if tag not in (f"cudnn{row['cudnn']}", "cudnn"):
            raise _fail(path, n, f"cudnn_tag {tag!r} does not fit cuDNN {row['cudnn']}")
        is_default = row["default"] == "yes"
        if is_default:
            if short in defaults:
                raise _fail(path, n, f"CUDA {short} has two default full versions")
            defaults.add(short)
        bases.append(
            {
                "cuda": full,
                "short": short,
                "cudnn": row["cudnn"],
                "cudnn_tag": tag,
                "distros": distros,
                "default_distro": PREFERRED_DISTRO if PREFERRED_DISTRO in distros else distros[-1],
                "default": is_default,
            }
        )
    if not cpu_distros:
        raise DataError(f"{path.relative_to(ROOT)}: no `cpu` row")
    bases.sort(key=lambda b: _key(b["cuda"]))
    return bases, cpu_distros


def load_miniconda(path: Path) -> list[dict]:
    installers: list[dict] = []
    seen: set[str] = set()
    defaults: set[tuple[str, str]] = set()
    for n, row in _rows(path):
        py, arch, version, name = row["python"], row["arch"], row["version"], row["filename"]
        expected = f"Miniconda3-py{py.replace('.', '')}_{version}-Linux-{arch}.sh"
        if name != expected:
            raise _fail(path, n, f"filename should be {expected}")
        if name in seen:
            raise _fail(path, n, f"{name} twice")
        seen.add(name)
        sha = row["sha256"] or None
        if sha is not None and not re.fullmatch(r"[0-9a-f]{64}", sha):
            raise _fail(path, n, "sha256 is not 64 hex digits")
        if row["default"] == "yes":
            if (py, arch) in defaults:
                raise _fail(path, n, f"two default installers for Python {py} {arch}")
            defaults.add((py, arch))
        installers.append(
            {"python": py, "arch": arch, "version": version, "filename": name, "sha256": sha, "default": row["default"] == "yes"}
        )
    installers.sort(key=lambda i: (_key(i["python"]), i["arch"], _key(i["version"])))
    return installers


def build() -> dict:
    torch = load_torch(DATA / "torch-compat.csv")
    bases, cpu_distros = load_bases(DATA / "cuda-bases.csv")
    miniconda = load_miniconda(DATA / "miniconda.csv")
    default_shorts = {b["short"] for b in bases if b["default"]}
    pythons_with_installer = {i["python"] for i in miniconda if i["default"] and i["arch"] == "x86_64"}
    for rel in torch:
        for v in rel["variants"]:
            if v["cuda"] and v["cuda"] not in default_shorts:
                raise DataError(f"torch {rel['version']} {v['name']}: no default nvidia/cuda base for CUDA {v['cuda']}")
        if rel["default_python"] not in pythons_with_installer:
            raise DataError(f"torch {rel['version']}: no default Miniconda installer for Python {rel['default_python']}")
    return {
        "generated_by": "scripts/gen_compat.py from data/torch-compat.csv, data/cuda-bases.csv, data/miniconda.csv; do not edit",
        "preferred_distro": PREFERRED_DISTRO,
        "cpu_distros": cpu_distros,
        "miniconda_base_url": MINICONDA_BASE_URL,
        "torch": torch,
        "cuda_bases": bases,
        "miniconda": miniconda,
    }


def _dump(obj: object) -> str:
    return json.dumps(obj, indent=1, ensure_ascii=False) + "\n"


def schema_text() -> str:
    sys.path.insert(0, str(ROOT))
    from llbgen.spec.model import ImageSpec

    return _dump(ImageSpec.model_json_schema())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schema", action="store_true", help=f"also write {SCHEMA_FILE}")
    parser.add_argument("--out", type=Path, default=PACKAGE, help="directory to write into")
    args = parser.parse_args(argv)
    try:
        data = build()
    except DataError as err:
        print(f"gen_compat: {err}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / DATA_FILE).write_text(_dump(data), encoding="utf-8")
    if args.schema:
        (args.out / SCHEMA_FILE).write_text(schema_text(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
