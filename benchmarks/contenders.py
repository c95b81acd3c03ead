"""The three contenders, the variants they build, and running builds (bounded, timed, logged).

(a) ``llbgen build`` per variant (python -m llbgen, talking to the engine's BuildKit);
(b) llbgen's exported Dockerfile (``llbgen.dockerfile.export_dockerfile``, the code behind
    ``llbgen export-dockerfile``), built by its own ``build.sh`` (``docker buildx build``);
(c) the seed's linear layout (``benchmarks/seed_dockerfile.py``) built by ``docker buildx build``.

Every variant of every contender gets the same resolved spec: the same bases, installer
(URL and sha256), indexes, CA bundle (a build secret) and ``--network host``.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.engine import REGISTRY, REPO, Engine

PYPI = "https://pypi.org/simple"


@dataclass(frozen=True)
class Inputs:
    """What every variant shares: the mirrors, the installer, the CA bundle, Python."""

    miniconda_url: str
    installer_name: str
    installer_sha256: str
    torch_index_url: str
    pip_index_url: str
    ca_cert: str
    python: str = "3.11"


@dataclass(frozen=True)
class TorchBuild:
    """One value of the torch axis."""

    key: str
    torch: str
    pip_packages: tuple[str, ...] = ()
    torch_index_url: str | None = None  # None: the Inputs' (the loopback index)

    @property
    def label(self) -> str:
        return f"torch {self.torch}" + "".join(f" + {p}" for p in self.pip_packages)


@dataclass(frozen=True)
class Base:
    key: str
    ref: str
    label: str


@dataclass(frozen=True)
class Variant:
    base: Base
    torch: TorchBuild
    builder_image: str

    @property
    def name(self) -> str:
        return f"{self.base.key}-{self.torch.key}"

    def overrides(self, inputs: Inputs) -> dict[str, object]:
        """The spec as ``llbgen.spec.load_spec`` overrides (the llbgen.toml key names)."""
        return {
            "torch": self.torch.torch, "torchvision": "none", "torchaudio": "none", "cpu": True,
            "python": inputs.python, "base_image": self.base.ref, "builder_image": self.builder_image,
            "mirrors.miniconda_url": inputs.miniconda_url, "miniconda_installer": inputs.installer_name,
            "miniconda_sha256": inputs.installer_sha256,
            "mirrors.torch_index_url": self.torch.torch_index_url or inputs.torch_index_url,
            "mirrors.pip_index_url": inputs.pip_index_url, "ca_cert": inputs.ca_cert,
            "pip_packages": tuple(self.torch.pip_packages),
        }

    def llbgen_flags(self, inputs: Inputs) -> list[str]:
        """The same spec as ``llbgen build`` flags."""
        flags = [
            "--network", "host", "--cpu", "--torch", self.torch.torch, "--python", inputs.python,
            "--torchvision", "none", "--torchaudio", "none",
            "--base-image", self.base.ref, "--builder-image", self.builder_image,
            "--miniconda-url", inputs.miniconda_url, "--miniconda-installer", inputs.installer_name,
            "--miniconda-sha256", inputs.installer_sha256,
            "--torch-index-url", self.torch.torch_index_url or inputs.torch_index_url,
            "--pip-index-url", inputs.pip_index_url, "--ca-cert", inputs.ca_cert,
        ]
        for package in self.torch.pip_packages:
            flags += ["--pip-package", package]
        return flags


@dataclass
class Job:
    """One build: its command, where it runs, where its log goes."""

    contender: str
    variant: Variant
    tag: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    log: Path


@dataclass
class BuildResult:
    contender: str
    variant: str
    tag: str
    seconds: float
    ok: bool
    log: Path
    steps_run: int = 0
    steps_cached: int = 0
    error: str = ""


@dataclass
class Contender:
    """How one contender turns a variant into a build command."""

    key: str
    label: str
    inputs: Inputs
    workdir: Path
    available: bool = True
    why_not: str = ""
    _contexts: dict[str, Path] = field(default_factory=dict)

    def tag(self, variant: Variant) -> str:
        return f"{REGISTRY}/llbgen-bench/{self.key}:{variant.name}"

    def job(self, variant: Variant, engine: Engine, *, cache_to: str | None = None,
            cache_from: str | None = None, log_name: str = "") -> Job:
        tag = self.tag(variant)
        log = self.workdir / "logs" / f"{self.key}-{variant.name}-{engine.name}{log_name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        argv, cwd = self.command(variant, tag, engine)
        if cache_to:
            argv += ["--cache-to", cache_to]
        if cache_from:
            argv += ["--cache-from", cache_from]
        return Job(self.key, variant, tag, argv, engine.env(), cwd, log)

    def command(self, variant: Variant, tag: str, engine: Engine) -> tuple[list[str], Path]:
        raise NotImplementedError


class Llbgen(Contender):
    def command(self, variant: Variant, tag: str, engine: Engine) -> tuple[list[str], Path]:
        argv = [sys.executable, "-m", "llbgen", "build", *variant.llbgen_flags(self.inputs),
                "--builder", engine.builder, "--progress", "plain", "-t", tag]
        return argv, REPO


class ExportedDockerfile(Contender):
    """llbgen's export, written once per variant (before the clock starts), built by its build.sh."""

    def context(self, variant: Variant, tag: str) -> Path:
        from llbgen.dockerfile import export_dockerfile
        from llbgen.spec import load_spec

        directory = self.workdir / "contexts" / self.key / variant.name
        if variant.name not in self._contexts:
            shutil.rmtree(directory, ignore_errors=True)
            export_dockerfile(load_spec(None, variant.overrides(self.inputs)), directory, tag=tag, network="host")
            self._contexts[variant.name] = directory
        return directory

    def command(self, variant: Variant, tag: str, engine: Engine) -> tuple[list[str], Path]:
        directory = self.context(variant, tag)
        # build.sh: docker buildx build --build-arg ... --secret id=llbgen-ca --network host --load -t TAG "$@" .
        return ["sh", str(directory / "build.sh"), "--progress", "plain", "--provenance=false"], directory


class SeedLayout(Contender):
    """The seed's linear Dockerfile (benchmarks/seed_dockerfile.py), built by docker buildx build."""

    def context(self, variant: Variant, tag: str) -> Path:
        from benchmarks.seed_dockerfile import render
        from llbgen.spec import load_spec

        directory = self.workdir / "contexts" / self.key / variant.name
        if variant.name not in self._contexts:
            shutil.rmtree(directory, ignore_errors=True)
            render(load_spec(None, variant.overrides(self.inputs)), tag).write(directory)
            self._contexts[variant.name] = directory
        return directory

    def command(self, variant: Variant, tag: str, engine: Engine) -> tuple[list[str], Path]:
        from benchmarks.seed_dockerfile import buildx_args

        directory = self.context(variant, tag)
        return ["docker", *buildx_args(directory, tag, ca_cert=self.inputs.ca_cert), "--provenance=false"], directory


def exportable() -> tuple[bool, str]:
    """Whether contender (b) can run: llbgen's Dockerfile export is importable."""
    try:
        from llbgen.dockerfile import export_dockerfile  # noqa: F401
    except ImportError as err:
        return False, f"llbgen.dockerfile is not importable ({err}); export-dockerfile not there yet"
    return True, ""


# --------------------------------------------------------------------------- running builds

_VERTEX = re.compile(r"^#(\d+) (.*)$")
# A step that runs a command: a Dockerfile RUN, or an llbgen stage's exec (its file writes excluded).
_EXEC = re.compile(r"(\] RUN )|^(os|python|jupyter|torch|extras): (?!.*: write )")


def count_steps(progress: str) -> tuple[int, int]:
    """(command steps executed, command steps CACHED) from buildx-style plain progress."""
    names: dict[str, str] = {}
    cached: set[str] = set()
    done: set[str] = set()
    for line in progress.splitlines():
        m = _VERTEX.match(line)
        if not m:
            continue
        vertex, rest = m.groups()
        if rest == "CACHED":
            cached.add(vertex)
        elif rest.startswith("DONE"):
            done.add(vertex)
        elif vertex not in names and not re.match(r"^(\d+(\.\d+)?|ERROR|CANCELED|\.\.\.)\b", rest):
            names[vertex] = rest
    execs = {v for v, name in names.items() if _EXEC.search(name)}
    return len(execs & done - cached), len(execs & cached)


def run_job(job: Job, timeout: float) -> BuildResult:
    start = time.monotonic()
    with job.log.open("w") as log:
        log.write("$ " + " ".join(job.argv) + "\n")
        log.flush()
        try:
            proc = subprocess.run(job.argv, cwd=job.cwd, env=job.env, stdout=log, stderr=subprocess.STDOUT,
                                  timeout=timeout, check=False)
            rc: int | str = proc.returncode
        except subprocess.TimeoutExpired:
            rc = f"timeout after {timeout:.0f}s"
    seconds = time.monotonic() - start
    text = job.log.read_text(errors="replace")
    run, cached = count_steps(text)
    ok = rc == 0
    error = "" if ok else f"exit {rc}: " + " | ".join(text.strip().splitlines()[-3:])[-400:]
    return BuildResult(job.contender, job.variant.name, job.tag, seconds, ok, job.log, run, cached, error)


class LoadSampler:
    """Mean of the 1-minute load average while the builds run: how busy the machine was (other jobs too)."""

    def __init__(self, every: float = 5.0) -> None:
        self.every = every
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            with contextlib.suppress(OSError, ValueError, IndexError):
                self.samples.append(float(Path("/proc/loadavg").read_text().split()[0]))

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    @property
    def mean(self) -> float | None:
        return sum(self.samples) / len(self.samples) if self.samples else None


def run_jobs(jobs: Sequence[Job], parallel: int, timeout: float,
             load: LoadSampler | None = None) -> tuple[float, list[BuildResult]]:
    """Run ``jobs`` at most ``parallel`` at a time; (wall seconds, results in job order)."""
    start = time.monotonic()
    with load or LoadSampler(), ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        results = list(pool.map(lambda j: run_job(j, timeout), jobs))
    return time.monotonic() - start, results
