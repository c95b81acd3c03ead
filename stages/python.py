"""The python layer, built on the neutral builder image: Miniconda in ``/root/miniconda3``.

The installer is an HTTP source pinned by its sha256: the builder fetches and
checks it, and once cached it is never fetched again (not even a HEAD request).
The installer runs with no network at all, which also proves the install is
self-contained — this layer is attached to bases that did not build it. Mirror
configuration for conda and pip is written into the prefix only when mirrors
are given.
"""

from __future__ import annotations

from dataclasses import dataclass

from llbgen import llb
from stages.context import StageContext
from stages.step import HttpFile, Step, WriteFile, run_steps, script

PREFIX = "/root/miniconda3"
INSTALLER_DIR = "/tmp/llbgen-miniconda"
PIP_CONF = f"{PREFIX}/pip.conf"  # pip's "site" config: sys.prefix/pip.conf
CONDARC = f"{PREFIX}/.condarc"  # conda's system config; ~/.condarc stays the user's


def pip_conf(index_url: str | None, extra_index_urls: tuple[str, ...]) -> str:
    lines = ["[global]"]
    if index_url:
        lines.append(f"index-url = {index_url}")
    if extra_index_urls:
        lines.append("extra-index-url =")
        lines += [f"    {url}" for url in extra_index_urls]
    return "\n".join(lines) + "\n"


def condarc(channels: tuple[str, ...]) -> str:
    return "channels:\n" + "".join(f"  - {c}\n" for c in channels) + "show_channel_urls: true\n"


@dataclass(frozen=True)
class PythonStage:
    """Miniconda (and so Python) from a checksummed installer."""

    python: str
    installer_url: str
    installer_sha256: str
    installer_filename: str
    pip_index_url: str | None = None
    pip_extra_index_urls: tuple[str, ...] = ()
    conda_channels: tuple[str, ...] = ()

    @classmethod
    def from_context(cls, ctx: StageContext) -> PythonStage:
        m = ctx.spec.miniconda
        return cls(python=ctx.spec.python, installer_url=m.url, installer_sha256=m.sha256,
                   installer_filename=m.filename, pip_index_url=ctx.mirrors.pip_index_url,
                   pip_extra_index_urls=tuple(ctx.mirrors.pip_extra_index_urls),
                   conda_channels=tuple(ctx.mirrors.conda_channels))

    def depends_on(self) -> dict[str, str]:
        deps = {"python": self.python, "installer": self.installer_filename,
                "sha256": self.installer_sha256[:12] + "…"}
        if self.pip_index_url or self.pip_extra_index_urls:
            deps["pip.conf"] = " ".join(filter(None, (self.pip_index_url, *self.pip_extra_index_urls)))
        if self.conda_channels:
            deps[".condarc"] = " ".join(self.conda_channels)
        return deps

    def writes(self) -> tuple[WriteFile, ...]:
        files = []
        if self.pip_index_url or self.pip_extra_index_urls:
            files.append(WriteFile(PIP_CONF, pip_conf(self.pip_index_url, self.pip_extra_index_urls)))
        if self.conda_channels:
            files.append(WriteFile(CONDARC, condarc(self.conda_channels)))
        return tuple(files)

    def steps(self) -> tuple[Step, ...]:
        installer = HttpFile(self.installer_url, self.installer_sha256, self.installer_filename, INSTALLER_DIR)
        body = script(
            f"bash {installer.path} -b -p {PREFIX}",
            f"{PREFIX}/bin/python --version",
            # The stand-in installers of the tests have no conda; Miniconda's does.
            f"if [ -x {PREFIX}/bin/conda ]; then {PREFIX}/bin/conda clean --all --force-pkgs-dirs --yes; fi",
            "rm -rf /root/.cache",
        )
        return (Step(name=f"python: install {self.installer_filename} to {PREFIX}", script=body,
                     network="offline", http_files=(installer,), writes=self.writes()),)

    def build(self, ctx: StageContext, on: llb.State) -> llb.State:
        return run_steps(on, self.steps(), ctx)
