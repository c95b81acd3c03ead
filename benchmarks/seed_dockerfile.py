"""Contender (c) of the benchmark: the seed's linear Dockerfile, rendered for an llbgen spec.

The seed (matrix-dc/mlops-images, the Chinese README this project started from) builds one
chain per image::

    FROM base → RUN apt → RUN timezone → RUN locale → RUN sshd → RUN Miniconda (curl | bash)
              → RUN pip jupyterlab/tensorboard → COPY init → RUN pip torch

so every layer above the base depends on the base, and a second base or a second torch
rebuilds everything above the point of change. This module renders that layout for the same
resolved spec ``llbgen build`` gets, from the same stage objects (``stages.*.from_context``):
the same apt packages, the same installer URL and sha256, the same pip requirements and
indexes, the CA bundle as the same build secret, the same apt/pip cache mounts, and
``--network host`` for the loopback mirrors. Only the layout differs.

What was changed from the seed, and why (everything else keeps its structure):

- ``DEBIAN_FRONTEND=noninteracti`` (typo) → ``noninteractive``: ``noninteracti`` is no debconf
  frontend, so debconf falls back to an interactive one and tzdata prompts for a time zone
  (the way such builds are known to stall).
- ``ENV TZ`` moved before the ``RUN`` that links ``/etc/localtime`` (the seed reads ``$TZ``
  one line before it sets it, linking /etc/localtime to a directory).
- ``locale-gen zh_CN.UTF-8`` → llbgen's locale script: Debian's ``locale-gen`` ignores its
  argument, so the seed's ``update-locale LANG=zh_CN.UTF-8`` fails on a Debian base
  ("invalid locale settings", exit 255; checked on the test base).
- ``echo root:123456 | chpasswd`` dropped: no image with a known root password goes into the
  shared registry; it is one trivial command either way.
- Miniconda: ``curl`` then ``sha256sum -c`` (the seed does not check the installer), from the
  spec's installer URL; pip's ``pip.conf`` written as llbgen writes it.
- Apt and pip steps get the same cache mounts, CA secret mount and retry options as llbgen's
  steps (so the pip download cache helps (c) exactly as it helps (a) and (b)); the seed's
  ``apt-get clean``/``rm -r /root/.cache/pip`` are then pointless (caches are mounts, never in
  a layer) and dropped.
- ``COPY init`` comes *last*, after torch (the seed copies it before torch): the init files
  carry the image's tag, so the seed's order would rebuild torch for every tag. This favours (c).
- The spec's extra pip packages get a ``RUN`` of their own after torch, as in llbgen.
- The image config (ENTRYPOINT tini, CMD boot.sh, HEALTHCHECK, ports, env) is llbgen's, so the
  image runs like the others; config instructions make no layers.

Run it alone to look at the Dockerfile::

    python benchmarks/seed_dockerfile.py -o /tmp/seed torch=2.13.0 cpu=true python=3.11 ...
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the top-level ``stages`` package, as llbgen's CLI imports it
    sys.path.insert(0, str(REPO))

from llbgen.spec import ResolvedSpec  # noqa: E402
from stages import plan as plan_mod  # noqa: E402
from stages.context import CA_SECRET_ID, StageContext  # noqa: E402
from stages.init import InitStage  # noqa: E402
from stages.jupyter import JupyterStage  # noqa: E402
from stages.os import LOCALE, LOCALE_SCRIPT, TIMEZONE, OsStage  # noqa: E402
from stages.python import PREFIX, PythonStage  # noqa: E402
from stages.step import CA_PATH, PIP_CACHE_DEST, pip_env, pip_install  # noqa: E402
from stages.torch import PYPI, ExtrasStage, TorchStage  # noqa: E402

SEED_CACHE_PREFIX = "bench-seed"


@dataclass(frozen=True)
class SeedContext:
    """The Dockerfile text and the context files (path relative to the context, mode, bytes)."""

    dockerfile: str
    files: tuple[tuple[str, int, bytes], ...]

    def write(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "Dockerfile").write_text(self.dockerfile)
        for rel, mode, data in self.files:
            path = directory / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            path.chmod(mode)
        return directory


def _run(lines: list[str], mounts: list[str], env: dict[str, str] | None = None) -> str:
    """One ``RUN`` with its mounts, step-only env as a prefix, and `&&`-joined commands."""
    prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in (env or {}).items())
    body = " && \\\n    ".join(lines)
    mount_text = "".join(f"--mount={m} \\\n    " for m in mounts)
    return f"RUN {mount_text}{'export ' + prefix + ' && ' if prefix else ''}{body}"


def render(spec: ResolvedSpec, tag: str | None = None, *, cache_mounts: bool = True) -> SeedContext:
    """The seed's linear Dockerfile for ``spec`` (see the module docstring for what changed)."""
    ctx = StageContext.create(spec, image_tag=tag or spec.tag, network="host")
    os_stage = OsStage.from_context(ctx)
    py = PythonStage.from_context(ctx)
    jup = JupyterStage.from_context(ctx)
    torch = TorchStage.from_context(ctx)
    extras = ExtrasStage.from_context(ctx)
    init = InitStage.from_context(ctx)

    ca = [f"type=secret,id={CA_SECRET_ID},target={CA_PATH},mode=0444"] if ctx.ca else []
    pip_cache = ([f"type=cache,target={PIP_CACHE_DEST},id={SEED_CACHE_PREFIX}-pip-py{spec.python},sharing=shared"]
                 if cache_mounts else [])
    apt_caches = ([f"type=cache,target=/var/cache/apt,id={SEED_CACHE_PREFIX}-apt-cache-{spec.distro},sharing=locked",
                   f"type=cache,target=/var/lib/apt,id={SEED_CACHE_PREFIX}-apt-lib-{spec.distro},sharing=locked"]
                  if cache_mounts else [])
    apt = "apt-get -o Acquire::Retries=5" + (f" -o Acquire::https::CAInfo={CA_PATH}" if ctx.ca else "")
    pip_environment = dict(pip_env(ctx.ca))
    installer_url = f"{py.installer_url}"
    torch_extra = (torch.pip_index_url or PYPI, *torch.pip_extra_index_urls)

    out: list[str] = [
        "# Contender (c) of benchmarks/run.py: the seed's linear layout (one chain, every layer on the base).",
        "# Rendered by benchmarks/seed_dockerfile.py for the same spec llbgen builds; see its docstring",
        "# for what was changed from the seed and why. No '# syntax=' line: the built-in frontend is used.",
        f"ARG BASE_IMAGE={spec.base_image}",
        "FROM ${BASE_IMAGE}",
        "",
        "# 阶段1：基础镜像 + SSH + CST时区 + 中文支持 (stage 1: base + SSH, time zone, Chinese locale)",
        "WORKDIR /root",
        "ENV SHELL=/bin/bash",
        "ENV USER=root",
        "ENV MOTD_SHOWN=pam",
        "",
        "# seed: DEBIAN_FRONTEND=noninteracti (typo), apt-get clean + rm lists (caches are mounts here)",
        _run([
            "set -eu",
            "if [ -f /etc/apt/apt.conf.d/docker-clean ]; then mv /etc/apt/apt.conf.d/docker-clean /tmp/docker-clean; fi",
            f"{apt} update",
            f"DEBIAN_FRONTEND=noninteractive {apt} install -y --no-install-recommends {' '.join(os_stage.packages)}",
            "if [ -f /tmp/docker-clean ]; then mv /tmp/docker-clean /etc/apt/apt.conf.d/docker-clean; fi",
        ], apt_caches + ca),
        "",
        "# seed: ENV TZ came after this RUN",
        f"ENV TZ={TIMEZONE}",
        "RUN ln -snf /usr/share/zoneinfo/$TZ /etc/localtime && echo $TZ > /etc/timezone",
        "",
        "# seed: locale-gen zh_CN.UTF-8 (Debian's locale-gen ignores the argument; update-locale then fails)",
        "RUN " + json.dumps(["/bin/sh", "-c", "set -eu\n" + LOCALE_SCRIPT]),
        f"ENV LANG={LOCALE}",
        "",
        "# seed: also `echo root:123456 | chpasswd` (dropped: no known root password in a pushed image)",
        "RUN mkdir -p /var/run/sshd && \\\n"
        "    sed -i 's/#PermitRootLogin prohibit-password/PermitRootLogin yes/' /etc/ssh/sshd_config && \\\n"
        "    echo \"source /etc/profile\" >> /root/.bashrc",
        "EXPOSE 22",
        "",
        "# 阶段2：Miniconda + JupyterLab + TensorBoard (stage 2); installer checked against the spec's sha256",
        f"ENV PATH={PREFIX}/bin:$PATH",
        _run([
            f"curl -fsSL --retry 5 -o /tmp/miniconda.sh {shlex.quote(installer_url)}",
            f"echo '{py.installer_sha256}  /tmp/miniconda.sh' | sha256sum -c -",
            f"bash /tmp/miniconda.sh -b -p {PREFIX}",
            "rm /tmp/miniconda.sh",
            f"if [ -x {PREFIX}/bin/conda ]; then {PREFIX}/bin/conda clean --all --force-pkgs-dirs --yes; fi",
            # one argument per line: a Dockerfile instruction cannot hold a raw newline
            *([f"printf '%s\\n' {' '.join(shlex.quote(x) for x in w.content.splitlines())} > {w.path}"
               for w in py.writes()]),
            'echo "PATH=$PATH" >> /etc/profile',
        ], ca, {"CURL_CA_BUNDLE": CA_PATH} if ctx.ca else None),
        "",
        _run([pip_install(jup.requirements, index_url=jup.pip_index_url, extra_index_urls=jup.pip_extra_index_urls)],
             pip_cache + ca, pip_environment),
        "EXPOSE 8888 6006",
        "",
        "# 阶段3：PyTorch (stage 3)",
        _run([pip_install(torch.requirements, index_url=torch.index_url, extra_index_urls=torch_extra)],
             pip_cache + ca, pip_environment),
    ]
    if extras is not None:
        out += ["", "# the spec's extra pip packages (llbgen: the extras layer)",
                _run([pip_install((*extras.packages, *extras.keep), index_url=extras.pip_index_url,
                                  extra_index_urls=extras.pip_extra_index_urls)], pip_cache + ca, pip_environment)]
    files: list[tuple[str, int, bytes]] = []
    for path, mode, data in init.outputs():
        if path.startswith("/init/"):
            files.append((path.lstrip("/"), mode, data))
    out += [
        "",
        "# seed: COPY ./init/ /init/ came before torch (see the docstring)",
        "COPY init/ /init/",
        "COPY init/etc/ /etc/",
        "RUN chmod 755 /init/boot/*.sh && chmod 755 /init/bin/*",
        "",
        f"ENTRYPOINT {json.dumps(list(plan_mod.ENTRYPOINT))}",
        f"CMD {json.dumps(list(plan_mod.CMD))}",
        "HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 CMD [\"/init/bin/healthcheck\"]",
        "",
    ]
    return SeedContext("\n".join(out), tuple(files))


def buildx_args(context: Path, tag: str, *, ca_cert: str | None, network: str = "host") -> list[str]:
    """``docker buildx build`` arguments for a rendered context (image into the engine's store)."""
    args = ["buildx", "build", "--progress", "plain", "--network", network, "-t", tag, "--load"]
    if ca_cert:
        args += ["--secret", f"id={CA_SECRET_ID},src={ca_cert}"]
    return [*args, str(context)]


def main(argv: list[str] | None = None) -> int:
    from llbgen.spec import load_spec

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-o", "--output", type=Path, required=True, help="context directory to write")
    parser.add_argument("-t", "--tag", help="image tag (default: the spec's)")
    parser.add_argument("overrides", nargs="*", help="spec keys as KEY=VALUE (llbgen.toml names; dotted for tables)")
    args = parser.parse_args(argv)
    overrides: dict[str, object] = {}
    for item in args.overrides:
        key, _, value = item.partition("=")
        if key.endswith(("packages", "urls", "channels")):  # list-valued keys: comma-separated
            overrides[key] = tuple(v for v in value.split(",") if v)
        else:
            overrides[key] = {"true": True, "false": False}.get(value, value)
    spec = load_spec(None, overrides)
    render(spec, args.tag).write(args.output)
    print(args.output / "Dockerfile")
    return 0


if __name__ == "__main__":
    sys.exit(main())
