"""The jupyter layer: JupyterLab (with its Chinese language pack) and TensorBoard.

Built on builder + python, so it depends on the Python install and nothing
about CUDA or torch — except one fact: torch releases before 2.4 were built
against NumPy 1.x and break under NumPy 2, so for them ``numpy<2`` is pinned
here, where NumPy is first installed (TensorBoard pulls it in).
"""

from __future__ import annotations

from dataclasses import dataclass

from llbgen import llb
from llbgen.spec.compat import version_key
from stages.context import StageContext
from stages.step import Step, pip_cache, pip_env, pip_install, pip_secrets, run_steps, script

PACKAGES = ("jupyterlab", "jupyterlab-language-pack-zh-CN", "jupyterlab_pygments", "tensorboard")
# The first torch release built against NumPy 2 (PyTorch 2.4.0 release notes: "NumPy 2.0 support").
FIRST_TORCH_WITH_NUMPY2 = "2.4.0"


def numpy_pin(torch: str) -> str | None:
    """``numpy<2`` for torch releases built against NumPy 1.x, else None."""
    return "numpy<2" if version_key(torch) < version_key(FIRST_TORCH_WITH_NUMPY2) else None


@dataclass(frozen=True)
class JupyterStage:
    python: str
    packages: tuple[str, ...] = PACKAGES
    numpy: str | None = None
    pip_index_url: str | None = None
    pip_extra_index_urls: tuple[str, ...] = ()
    ca: bool = False
    netrc: bool = False  # the pip indexes' logins, as a secret

    @classmethod
    def from_context(cls, ctx: StageContext) -> JupyterStage:
        return cls(python=ctx.spec.python, numpy=numpy_pin(ctx.spec.torch), pip_index_url=ctx.mirrors.pip_index_url,
                   pip_extra_index_urls=tuple(ctx.mirrors.pip_extra_index_urls), ca=ctx.ca, netrc=ctx.pip_login)

    @property
    def requirements(self) -> tuple[str, ...]:
        return self.packages + ((self.numpy,) if self.numpy else ())

    def depends_on(self) -> dict[str, str]:
        deps = {"python layer": f"Python {self.python}", "packages": " ".join(self.requirements)}
        if self.numpy:
            deps["numpy<2"] = f"torch < {FIRST_TORCH_WITH_NUMPY2}"
        deps["pip index"] = " ".join(filter(None, (self.pip_index_url, *self.pip_extra_index_urls))) or "PyPI"
        if self.netrc:
            deps["pip login"] = "secret mount (not in the key)"
        return deps

    def steps(self) -> tuple[Step, ...]:
        install = pip_install(self.requirements, index_url=self.pip_index_url,
                              extra_index_urls=self.pip_extra_index_urls)
        return (Step(name=f"jupyter: pip install {' '.join(self.requirements)}", script=script(install),
                     env=pip_env(self.ca, self.netrc), caches=(pip_cache(self.python),), network="download",
                     urls=tuple(filter(None, (self.pip_index_url, *self.pip_extra_index_urls))),
                     secret_files=pip_secrets(self.netrc)),)

    def build(self, ctx: StageContext, on: llb.State) -> llb.State:
        return run_steps(on, self.steps(), ctx)
