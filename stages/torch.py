"""The torch layer: torch, torchvision and torchaudio from the resolved wheel index.

Built on builder + python + jupyter, so pip sees what Jupyter installed and
keeps one coherent set of versions, while a change of torch or CUDA rebuilds
only this layer. The wheel index (``…/whl/cu121``, or a mirror) is the primary
index; dependencies it does not carry come from the pip index (PyPI or the
mirror). Local-version wheels (``2.3.0+cu121``) sort above PyPI's plain
``2.3.0``, so ``torch==2.3.0`` picks the index's build.
"""

from __future__ import annotations

from dataclasses import dataclass

from llbgen import llb
from stages.context import StageContext
from stages.step import Step, pip_cache, pip_env, pip_install, run_steps, script

PYPI = "https://pypi.org/simple"


@dataclass(frozen=True)
class TorchStage:
    python: str
    requirements: tuple[str, ...]  # ("torch==2.3.0", "torchvision==0.18.0", "torchaudio==2.3.0")
    index_url: str
    pip_index_url: str | None = None
    pip_extra_index_urls: tuple[str, ...] = ()
    ca: bool = False

    @classmethod
    def from_context(cls, ctx: StageContext) -> TorchStage:
        return cls(python=ctx.spec.python, requirements=tuple(ctx.spec.pip_requirements),
                   index_url=ctx.spec.torch_index_url, pip_index_url=ctx.mirrors.pip_index_url,
                   pip_extra_index_urls=tuple(ctx.mirrors.pip_extra_index_urls), ca=ctx.ca)

    def depends_on(self) -> dict[str, str]:
        return {"jupyter layer": f"Python {self.python} + Jupyter", "packages": " ".join(self.requirements),
                "index": self.index_url}

    def steps(self) -> tuple[Step, ...]:
        install = pip_install(self.requirements, index_url=self.index_url,
                              extra_index_urls=(self.pip_index_url or PYPI, *self.pip_extra_index_urls))
        return (Step(name=f"torch: pip install {' '.join(self.requirements)} from {self.index_url}",
                     script=script(install), env=pip_env(self.ca), caches=(pip_cache(self.python),),
                     network="download",
                     urls=tuple(filter(None, (self.index_url, self.pip_index_url, *self.pip_extra_index_urls)))),)

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

    @classmethod
    def from_context(cls, ctx: StageContext) -> ExtrasStage | None:
        if not ctx.spec.spec.pip_packages:
            return None
        from stages.jupyter import numpy_pin

        numpy = numpy_pin(ctx.spec.torch)
        return cls(python=ctx.spec.python, packages=tuple(ctx.spec.spec.pip_packages),
                   keep=tuple(ctx.spec.pip_requirements) + ((numpy,) if numpy else ()),
                   pip_index_url=ctx.mirrors.pip_index_url,
                   pip_extra_index_urls=tuple(ctx.mirrors.pip_extra_index_urls), ca=ctx.ca)

    def depends_on(self) -> dict[str, str]:
        return {"torch layer": " ".join(self.keep), "packages": " ".join(self.packages),
                "pip index": " ".join(filter(None, (self.pip_index_url, *self.pip_extra_index_urls))) or "PyPI"}

    def steps(self) -> tuple[Step, ...]:
        install = pip_install((*self.packages, *self.keep), index_url=self.pip_index_url,
                              extra_index_urls=self.pip_extra_index_urls)
        return (Step(name=f"extras: pip install {' '.join(self.packages)}", script=script(install),
                     env=pip_env(self.ca), caches=(pip_cache(self.python),), network="download",
                     urls=tuple(filter(None, (self.pip_index_url, *self.pip_extra_index_urls)))),)

    def build(self, ctx: StageContext, on: llb.State) -> llb.State:
        return run_steps(on, self.steps(), ctx)
