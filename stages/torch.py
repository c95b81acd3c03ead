"""The torch layer: torch, torchvision and torchaudio from the resolved wheel index, and proof of it.

Built on builder + python + jupyter, so pip sees what Jupyter installed and
keeps one coherent set of versions, while a change of torch or CUDA rebuilds
only this layer. One step, three commands:

1. ``pip download --no-deps`` of the pinned torch packages from the wheel index
   (``…/whl/cu121``, or a mirror) and from nowhere else — no extra index, no
   pip.conf — so an unreachable or incomplete index fails here, naming it,
   instead of pip falling back to PyPI's torch (a CUDA build, whatever the image);
2. ``pip install`` of those files, their dependencies from the pip index;
3. ``torch_check.py``: the installed torch is the variant's build (CPU, or that
   CUDA), or the step fails naming what was expected and what was found.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from llbgen import llb
from stages.context import StageContext
from stages.python import PREFIX
from stages.step import Step, pip_cache, pip_command, pip_env, pip_install, pip_secrets, quote, run_steps, script

# Where the torch wheels wait between download and install; removed in the same step, so never in the layer.
WHEEL_DIR = "/tmp/llbgen-torch-wheels"


def check_program() -> str:
    """``torch_check.py`` without its module docstring: the Python the step runs after installing."""
    source = resources.files("stages").joinpath("torch_check.py").read_text(encoding="utf-8")
    return source[source.index("import sys"):]


@dataclass(frozen=True)
class TorchStage:
    python: str
    requirements: tuple[str, ...]  # ("torch==2.3.0", "torchvision==0.18.0", "torchaudio==2.3.0")
    index_url: str
    variant: str  # cu121, cpu: the build the check demands
    cuda: str | None  # 12.1; None for cpu
    pip_index_url: str | None = None
    pip_extra_index_urls: tuple[str, ...] = ()
    ca: bool = False
    netrc: bool = False  # the indexes' logins, as a secret

    @classmethod
    def from_context(cls, ctx: StageContext) -> TorchStage:
        return cls(python=ctx.spec.python, requirements=tuple(ctx.spec.pip_requirements),
                   index_url=ctx.spec.torch_index_url, variant=ctx.spec.variant, cuda=ctx.spec.cuda,
                   pip_index_url=ctx.mirrors.pip_index_url,
                   pip_extra_index_urls=tuple(ctx.mirrors.pip_extra_index_urls), ca=ctx.ca, netrc=ctx.pip_login)

    def depends_on(self) -> dict[str, str]:
        deps = {"jupyter layer": f"Python {self.python} + Jupyter", "packages": " ".join(self.requirements),
                "index": self.index_url, "checked build": self.variant}
        if self.netrc:
            deps["pip login"] = "secret mount (not in the key)"
        return deps

    def steps(self) -> tuple[Step, ...]:
        # PIP_CONFIG_FILE=/dev/null: pip reads no pip.conf, whose extra-index-url would be a way around the index.
        download = "PIP_CONFIG_FILE=/dev/null " + quote([
            *pip_command("download"), "--no-deps", "--only-binary=:all:", "--dest", WHEEL_DIR,
            "--index-url", self.index_url, *self.requirements])
        unreachable = quote(["printf", "llbgen: the torch index %s has no such wheel for this Python, or cannot be "
                             "reached; torch, torchvision and torchaudio come from it alone (check --torch-index-url)\\n",
                             self.index_url])
        install = pip_install((), index_url=self.pip_index_url, extra_index_urls=self.pip_extra_index_urls)
        check = quote([f"{PREFIX}/bin/python", "-I", "-c", check_program(), self.variant, self.cuda or "none",
                       *self.requirements])
        body = script(
            f"rm -rf {WHEEL_DIR}",
            f"{download} || {{ {unreachable} >&2; exit 1; }}",
            f"{install} {WHEEL_DIR}/*.whl",
            f"rm -rf {WHEEL_DIR}",
            check,
        )
        urls = tuple(filter(None, (self.index_url, self.pip_index_url, *self.pip_extra_index_urls)))
        return (Step(name=f"torch: pip install {' '.join(self.requirements)} from {self.index_url}, "
                          f"checked to be the {self.variant} build",
                     script=body, env=pip_env(self.ca, self.netrc), caches=(pip_cache(self.python),),
                     network="download", urls=urls, secret_files=pip_secrets(self.netrc)),)

    def build(self, ctx: StageContext, on: llb.State) -> llb.State:
        return run_steps(on, self.steps(), ctx)


@dataclass(frozen=True)
class ExtrasStage:
    """The spec's extra pip packages, installed after torch in a layer of their own.

    torch, torchvision and torchaudio are restated as requirements so that pip keeps
    the installed builds (a package that needs another torch fails loudly instead of
    replacing the CUDA build with PyPI's), and changing the extras never rebuilds torch.
    """

    python: str
    packages: tuple[str, ...]
    keep: tuple[str, ...]  # the torch requirements (and numpy<2) that must stay satisfied
    pip_index_url: str | None = None
    pip_extra_index_urls: tuple[str, ...] = ()
    ca: bool = False
    netrc: bool = False

    @classmethod
    def from_context(cls, ctx: StageContext) -> ExtrasStage | None:
        if not ctx.spec.spec.pip_packages:
            return None
        from stages.jupyter import numpy_pin

        numpy = numpy_pin(ctx.spec.torch)
        return cls(python=ctx.spec.python, packages=tuple(ctx.spec.spec.pip_packages),
                   keep=tuple(ctx.spec.pip_requirements) + ((numpy,) if numpy else ()),
                   pip_index_url=ctx.mirrors.pip_index_url,
                   pip_extra_index_urls=tuple(ctx.mirrors.pip_extra_index_urls), ca=ctx.ca, netrc=ctx.pip_login)

    def depends_on(self) -> dict[str, str]:
        deps = {"torch layer": " ".join(self.keep), "packages": " ".join(self.packages),
                "pip index": " ".join(filter(None, (self.pip_index_url, *self.pip_extra_index_urls))) or "PyPI"}
        if self.netrc:
            deps["pip login"] = "secret mount (not in the key)"
        return deps

    def steps(self) -> tuple[Step, ...]:
        install = pip_install((*self.packages, *self.keep), index_url=self.pip_index_url,
                              extra_index_urls=self.pip_extra_index_urls)
        return (Step(name=f"extras: pip install {' '.join(self.packages)}", script=script(install),
                     env=pip_env(self.ca, self.netrc), caches=(pip_cache(self.python),), network="download",
                     urls=tuple(filter(None, (self.pip_index_url, *self.pip_extra_index_urls))),
                     secret_files=pip_secrets(self.netrc)),)

    def build(self, ctx: StageContext, on: llb.State) -> llb.State:
        return run_steps(on, self.steps(), ctx)
