"""The init layer: the runtime files of top-level ``init/`` at ``/init``, by file ops alone.

Nothing is fetched at boot and nothing runs here: every file under ``init/``
is written with ``mkfile`` (executables 0755, the rest 0644), the files under
``init/etc/`` also at the same path under ``/etc`` (the sshd drop-in, the
profile.d hook; ``/init/boot/boot.sh`` installs them again at boot), and
``/init/image-info.env`` records what the image is (read by the login banner
and boot.sh). Timestamps are fixed, so the layer is reproducible.

The files ship inside the ``stages`` package as ``stages/runtime`` (a link to
``init/`` in the source tree), so a plain ``pip install`` carries them.
"""

from __future__ import annotations

import hashlib
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from llbgen import llb
from stages.base_facts import base_facts, image_cuda
from stages.context import StageContext
from stages.step import FILE_TIMESTAMP_NS

INIT_DIR = "/init"
IMAGE_INFO = f"{INIT_DIR}/image-info.env"
_SKIP_NAMES = {"__pycache__", ".git", ".gitignore", ".DS_Store"}
_SKIP_SUFFIXES = (".pyc", ".swp", "~", ".orig", ".rej")


def runtime_dir() -> Path:
    """Where the ``init/`` files are: ``stages/runtime``, installed package data or the link in the source tree."""
    return Path(__file__).resolve().parent / "runtime"


@dataclass(frozen=True)
class RuntimeFile:
    path: str  # relative to init/, POSIX
    mode: int
    data: bytes


def read_runtime_files(root: Path | None = None) -> tuple[RuntimeFile, ...]:
    """Every file under ``root`` (default: the packaged ``init/``), sorted, with its mode."""
    root = root or runtime_dir()
    if not root.is_dir():
        raise FileNotFoundError(f"llbgen's runtime files are missing: no directory {root}")
    files = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part in _SKIP_NAMES for part in rel.parts) or path.name.endswith(_SKIP_SUFFIXES):
            continue
        if path.is_file():
            executable = bool(path.stat().st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH))
            files.append(RuntimeFile(rel.as_posix(), 0o755 if executable else 0o644, path.read_bytes()))
    return tuple(files)


def image_info(ctx: StageContext) -> dict[str, str]:
    """KEY=value facts about the image for ``/init/image-info.env`` (empty values left out).

    CUDA, cuDNN and distro are the base's own when it was resolved (see base_facts).
    """
    s = ctx.spec
    cuda, cudnn, distro = image_cuda(s, base_facts(ctx.base))
    values = {
        "IMAGE": ctx.image_tag,
        "TORCH_VERSION": s.torch,
        "TORCHVISION_VERSION": s.torchvision or "",
        "TORCHAUDIO_VERSION": s.torchaudio or "",
        "PYTHON_VERSION": s.python,
        "CUDA_VERSION": cuda or "",
        "CUDNN_VERSION": cudnn or "",
        "WHEEL_VARIANT": s.variant,
        "DISTRO": distro or "",
        "BASE_IMAGE": s.base_image,
        "TORCH_INDEX_URL": s.torch_index_url,
        "LLBGEN_VERSION": ctx.llbgen_version,
    }
    return {k: v for k, v in values.items() if v}


@dataclass(frozen=True)
class InitStage:
    files: tuple[RuntimeFile, ...]
    info: tuple[tuple[str, str], ...]

    @classmethod
    def from_context(cls, ctx: StageContext, files: tuple[RuntimeFile, ...] | None = None) -> InitStage:
        return cls(files=files if files is not None else read_runtime_files(), info=tuple(image_info(ctx).items()))

    @property
    def info_env(self) -> str:
        return "".join(f"{k}={v}\n" for k, v in self.info)

    def file_outputs(self) -> tuple[tuple[str, int, bytes], ...]:
        """(image path, mode, content) of the runtime files, sorted: the same for every image."""
        out = [(f"{INIT_DIR}/{f.path}", f.mode, f.data) for f in self.files]
        out += [(f"/{f.path}", f.mode, f.data) for f in self.files if f.path.startswith("etc/")]
        return tuple(sorted(out))

    def outputs(self) -> tuple[tuple[str, int, bytes], ...]:
        """(image path, mode, content) of every file this layer writes, sorted by path."""
        return tuple(sorted((*self.file_outputs(), (IMAGE_INFO, 0o644, self.info_env.encode()))))

    def depends_on(self) -> dict[str, str]:
        # "files": the runtime files layer alone, the same in every image; image-info is its own line.
        digest = hashlib.sha256()
        for path, mode, data in self.file_outputs():
            digest.update(f"{path}\0{mode:o}\0".encode() + hashlib.sha256(data).digest())
        info = dict(self.info)
        return {"files": f"{len(self.files)} files of init/ ({digest.hexdigest()[:12]})",
                "image-info": f"{info.get('IMAGE', '')}, llbgen {info.get('LLBGEN_VERSION', '')}"}

    def files_actions(self) -> llb.FileAction:
        """One chain: the directories (like ``mkdir -p``), then every runtime file."""
        return _write(self.file_outputs())

    def info_actions(self) -> llb.FileAction:
        return _write(((IMAGE_INFO, 0o644, self.info_env.encode()),))

    def build(self, ctx: StageContext, on: llb.State | None = None) -> llb.State:
        """The files on ``on`` (linear chain), or alone on scratch (a layer for MergeOp).

        Two file ops, so two layers: the runtime files, the same in every image llbgen
        makes with this init/ (built once, shared by a whole matrix, whatever the base),
        and image-info.env, which names the image and differs per image.
        """
        files_name = f"init: {len(self.files)} files to {INIT_DIR}"
        info_name = f"init: {IMAGE_INFO}"
        if on is not None:
            return on.file(self.files_actions(), name=files_name).file(self.info_actions(), name=info_name)
        scratch = llb.scratch(ctx.base.platform)
        return llb.merge([scratch.file(self.files_actions(), name=files_name),
                          scratch.file(self.info_actions(), name=info_name)], name="init files + image-info")


def _write(outputs: tuple[tuple[str, int, bytes], ...]) -> llb.FileAction:
    """``mkdir -p`` of every parent, then every file, all with the fixed timestamp."""
    dirs = sorted({str(p) for path, _, _ in outputs for p in PurePosixPath(path).parents if str(p) != "/"})
    action: llb.FileAction | None = None
    for d in dirs:
        action = (llb.mkdir(d, 0o755, make_parents=True, timestamp_ns=FILE_TIMESTAMP_NS) if action is None
                  else action.mkdir(d, 0o755, make_parents=True, timestamp_ns=FILE_TIMESTAMP_NS))
    for path, mode, data in outputs:
        assert action is not None
        action = action.mkfile(path, mode, data, timestamp_ns=FILE_TIMESTAMP_NS)
    assert action is not None
    return action
