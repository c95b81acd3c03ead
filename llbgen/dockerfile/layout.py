"""The stage layout: the layer plan of ``llbgen build`` in the terms Dockerfile syntax has.

``llbgen build`` makes the image as ``merge(base+os, diff(python), diff(jupyter),
diff(torch), init)`` with python, jupyter and torch built on the neutral builder
image. The Dockerfile keeps what it can of that:

- ``builder`` → ``python`` → ``jupyter`` → ``torch`` (→ ``extras``): the same stages, each
  ``FROM`` the one below, the first ``FROM`` the builder image, never the base — so their
  build cache does not depend on the CUDA base;
- ``<stage>-layer``: what that stage changed under ``/root/miniconda3``, as a directory
  tree made by ``llbgen-layers.py diff`` (Dockerfile has no DiffOp);
- ``image``: the base, the os step, each ``<stage>-layer`` attached with ``COPY --link`` (a
  layer of its own whose digest does not depend on the base, as with MergeOp), a prune
  step for what a later stage deleted, the init files, the image config.

Every RUN comes from a ``Step`` of the stage objects (``run.py``), never from LLB.
"""

from __future__ import annotations

from dataclasses import dataclass

import llbgen
from llbgen.dockerfile.args import ArgRegistry, parametrize
from llbgen.dockerfile.config import config_instructions
from llbgen.dockerfile.run import download_stage, lower_step
from llbgen.dockerfile.text import comment, heredoc, instruction, word
from llbgen.spec.resolve import known_distro
from stages.context import StageContext
from stages.init import IMAGE_INFO, INIT_DIR, InitStage
from stages.network import step_network
from stages.plan import Layer, LayerPlan
from stages.python import PREFIX
from stages.step import HttpFile
from stages.torch import ExtrasStage, TorchStage

SYNTAX_LINE = "# syntax=docker/dockerfile:1"
LAYERS_TOOL = "llbgen-layers.py"  # beside the Dockerfile; bound into the steps that run it
LAYER_OUT = "/llbgen/layer"
_TOOL_MOUNT = f"--mount=type=bind,source={LAYERS_TOOL},target=/llbgen/layers.py"
_PYTHON = f"{PREFIX}/bin/python -I -B /llbgen/layers.py"

# The paths each stage built on the builder writes; its layer is what changed under them.
OWNED_PATHS = {"python": (PREFIX,), "jupyter": (PREFIX,), "torch": (PREFIX,), "extras": (PREFIX,)}

PURPOSE = {
    "builder": "The neutral builder image: the distro family of the base, without CUDA. python, jupyter and "
               "torch are built on it, never on the base, so their build cache and their layers do not depend "
               "on the CUDA base: another CUDA version of the same spec reuses all three.",
    "python": "Miniconda in /root/miniconda3, from its installer (fetched by the builder and checked by its "
              "sha256). The installer runs with no network at all, which also proves the install is "
              "self-contained: this layer goes onto a base that did not build it.",
    "jupyter": "JupyterLab with its zh-CN language pack, jupyterlab_pygments and TensorBoard, into Miniconda's "
               "Python. pip's wheel cache is a cache mount, never in a layer.",
    "torch": "torch, torchvision and torchaudio from the resolved wheel index. Built on jupyter so pip keeps one "
             "coherent set of versions; a change of torch or CUDA reruns only this stage.",
    "extras": "The spec's extra pip packages, after torch, in a layer of their own.",
    "image": "The image: the base, the os step on it (apt non-interactively with apt's caches on cache mounts, "
             "zh_CN.UTF-8, Asia/Shanghai, sshd without host keys: each container makes its own at first boot), "
             "then the layers of the stages above, the runtime files and the image config.",
}

LAYERS_EXPLAINED = (
    "The layers. llbgen build attaches python, jupyter and torch with BuildKit's DiffOp and MergeOp: each "
    "layer is exactly what its stage changed. A Dockerfile has no DiffOp, and the obvious substitutes lose "
    "something: COPY --from=torch /root/miniconda3 has the right files but makes one layer of all three "
    "stages (a torch change ships Python and Jupyter again); copying /root/miniconda3 from each stage stores "
    "Python three times. So each <stage>-layer stage runs llbgen-layers.py diff, which copies what the "
    "stage added or changed under /root/miniconda3 (compared with the stage below it, bound read-only) to "
    f"{LAYER_OUT}, with the parent directories' modes, and the image attaches that tree with COPY --link: a "
    "layer of its own whose digest does not depend on the base. What a stage deleted (pip removing the "
    "older version of a package it upgrades) COPY cannot express: the prune step after the layers removes "
    "it and checks that /root/miniconda3 is the last stage's, entry for entry."
)


@dataclass(frozen=True)
class ContextFile:
    """A file of the build context the Dockerfile reads (``init/…``, ``llbgen-layers.py``)."""

    path: str  # relative to the context, POSIX
    mode: int
    data: bytes


@dataclass(frozen=True)
class Dockerfile:
    text: str
    context_files: tuple[ContextFile, ...]
    args: tuple[tuple[str, str, str], ...]  # (name, default, help) of every ARG, in order
    stages: tuple[str, ...]
    host_network_steps: bool = False  # some RUN has --network=host: the build must allow network.host


def _rule(title: str) -> list[str]:
    return ["", f"# ---- {title} " + "-" * max(4, 96 - len(title))]


def _depends(layer: Layer) -> list[str]:
    return comment("Cache key: " + layer.depends_text() + ".")


class _Renderer:
    def __init__(self, plan: LayerPlan, ctx: StageContext) -> None:
        self.plan, self.ctx = plan, ctx
        self.args = ArgRegistry()
        self.stage_names: list[str] = []
        self.host_network_steps = False

    def stage_args(self, names: tuple[str, ...]) -> list[str]:
        return [f"ARG {name}" for name in dict.fromkeys(names)]

    def steps(self, layer: Layer, downloads: dict[HttpFile, str]) -> tuple[list[str], tuple[str, ...]]:
        """The layer's steps as instructions, and the ARGs their scripts use."""
        lines: list[str] = []
        used: list[str] = []
        stage = layer.stage
        for step in layer.steps:
            script, names = step.script, ()
            if isinstance(stage, TorchStage):
                script, names = parametrize(script, self.args, requirements=stage.requirements,
                                            index_url=stage.index_url)
            elif isinstance(stage, ExtrasStage):
                script, names = parametrize(script, self.args, requirements=stage.keep)
            used += names
            # With --network host (build.sh) every RUN is on the host's network already.
            host = self.ctx.network != "host" and step_network(step, self.ctx) == "host"
            self.host_network_steps |= host
            lines += lower_step(step, script, ca_secret_id=self.ctx.ca_secret_id, downloads=downloads,
                                host_network=host)
        return lines, tuple(used)

    def downloads(self, layer: Layer) -> tuple[list[str], dict[HttpFile, str]]:
        lines: list[str] = []
        names: dict[HttpFile, str] = {}
        files = [f for step in layer.steps for f in step.http_files]
        for i, f in enumerate(files):
            name = f"{layer.name}-download" + (f"-{i + 1}" if len(files) > 1 else "")
            if layer.name == "python" and len(files) == 1:
                url = self.args.use("MINICONDA_URL", f.url)
                sha = self.args.use("MINICONDA_SHA256", f.sha256)
                declared = ["ARG MINICONDA_URL", "ARG MINICONDA_SHA256"]
            else:
                url, sha, declared = word(f.url), f.sha256, []  # data: ADD expands $ and reads quotes
            stage = download_stage(name, f, url, sha)
            lines += comment(f"{f.filename}, fetched and checked by the builder; bound read-only into the step "
                             "that runs it, never part of the image.")
            lines += [stage[0], *declared, *stage[1:], ""]
            names[f] = name
            self.stage_names.append(name)
        return lines, names

    def stacked(self, layer: Layer, below: str) -> list[str]:
        lines = _rule(layer.name)
        lines += comment(PURPOSE.get(layer.name, layer.name))
        lines += _depends(layer)
        lines.append("")
        download_lines, downloads = self.downloads(layer)
        lines += download_lines
        body, used = self.steps(layer, downloads)
        lines.append(f"FROM {below} AS {layer.name}")
        self.stage_names.append(layer.name)
        lines += self.stage_args(used)
        return lines + body

    def layer_stage(self, layer: Layer, below: str) -> list[str]:
        roots = OWNED_PATHS[layer.name]
        name = f"{layer.name}-layer"
        self.stage_names.append(name)
        flags = ["--network=none", f"--mount=type=bind,from={below},target=/llbgen/lower", _TOOL_MOUNT]
        return [
            *comment(f"What {layer.name} changed under {' '.join(roots)} (compared with {below})."),
            f"FROM {layer.name} AS {name}",
            *instruction("RUN", flags, f"{_PYTHON} diff /llbgen/lower {LAYER_OUT} {' '.join(roots)}"),
        ]

    def image(self, stacked: list[Layer], os_layer: Layer, init: InitStage) -> tuple[list[str], list[ContextFile]]:
        lines = _rule("image")
        lines += comment(PURPOSE["image"])
        lines += _depends(os_layer)
        lines.append("")
        base = self.args.use("BASE_IMAGE", self.ctx.spec.base_image)
        lines.append(f"FROM {base} AS image")
        self.stage_names.append("image")
        body, _ = self.steps(os_layer, {})
        lines += body
        lines += comment("The layers of the stages built on the builder image, in order (see above).")
        for layer in stacked:
            lines.append(f"COPY --link --from={layer.name}-layer {LAYER_OUT}/ /")
        if stacked:
            last = stacked[-1].name
            roots = sorted({p for layer in stacked for p in OWNED_PATHS[layer.name]})
            flags = ["--network=none", f"--mount=type=bind,from={last},target=/llbgen/final", _TOOL_MOUNT]
            lines += comment(f"Remove what a later stage deleted; check {' '.join(roots)} is the {last} stage's.")
            lines += instruction("RUN", flags, f"{_PYTHON} prune /llbgen/final {' '.join(roots)}")
        init_lines, files = self.init(init)
        lines += init_lines
        lines.append("")
        lines += comment("Image config: what llbgen build gives the image (the base's own is inherited).")
        lines += config_instructions(self.plan.image, self.ctx.base)
        return lines, files

    def init(self, init: InitStage) -> tuple[list[str], list[ContextFile]]:
        """The runtime files at /init (and the ones under init/etc/ also at /etc), then image-info.env."""
        files = [ContextFile(f"init/{f.path}", f.mode, f.data) for f in init.files]
        lines = [""]
        lines += comment(f"Runtime files (llbgen's init/) at {INIT_DIR}, those of init/etc/ also under /etc; "
                         f"{IMAGE_INFO} says what this image is. Nothing is fetched at boot.")
        lines.append(f"COPY --link init/ {INIT_DIR}/")
        covered = {f"{INIT_DIR}/{f.path}" for f in init.files}
        if any(f.path.startswith("etc/") for f in init.files):
            lines.append("COPY --link init/etc/ /etc/")
            covered |= {f"/{f.path}" for f in init.files if f.path.startswith("etc/")}
        opener, body = heredoc(init.info_env)
        lines += [f"COPY --link --chmod=644 {opener} {IMAGE_INFO}", *body]
        covered.add(IMAGE_INFO)
        missing = sorted({path for path, _, _ in init.outputs()} - covered)
        if missing:
            raise ValueError(f"the init stage writes files the Dockerfile does not: {missing}")
        return lines, files

    def render(self, syntax_line: bool) -> Dockerfile:
        layers = {layer.name: layer for layer in self.plan.layers}
        os_layer, init_layer = layers["os"], layers["init"]
        stacked = [layer for layer in self.plan.layers if layer.name not in ("os", "init")]
        unknown = [layer.name for layer in stacked if layer.name not in OWNED_PATHS]
        if unknown:
            raise ValueError(f"no Dockerfile layout for the stages {unknown}: add them to OWNED_PATHS")

        self.args.use("BASE_IMAGE", self.ctx.spec.base_image)
        builder = self.args.use("BUILDER_IMAGE", self.ctx.spec.builder_image)
        body = _rule("builder") + comment(PURPOSE["builder"]) + [f"FROM {builder} AS builder"]
        self.stage_names.append("builder")
        below = "builder"
        for layer in stacked:
            body += self.stacked(layer, below)
            below = layer.name
        if stacked:
            body += _rule("layers") + comment(LAYERS_EXPLAINED)
            below = "builder"
            for layer in stacked:
                body += ["", *self.layer_stage(layer, below)]
                below = layer.name
        image_lines, files = self.image(stacked, os_layer, init_layer.stage)  # type: ignore[arg-type]
        body += image_lines

        head = [SYNTAX_LINE] if syntax_line else []
        head += comment(self.header())
        head.append("")
        head += comment("Versions and sources as llbgen resolved them; --build-arg overrides one (README.md "
                        "says when that is safe).")
        for arg in self.args.args.values():
            head += [*comment(f"{arg.name}: {arg.help}"), arg.declaration()]
        text = "\n".join([*head, *body]) + "\n"
        tool = ContextFile(LAYERS_TOOL, 0o755, _layers_tool_source())
        return Dockerfile(text=text, context_files=(*files, tool),
                          args=tuple((a.name, a.default, a.help) for a in self.args.args.values()),
                          stages=tuple(self.stage_names), host_network_steps=self.host_network_steps)

    def header(self) -> str:
        s = self.ctx.spec
        build = f"CUDA {s.cuda_full}, cuDNN {s.cudnn}" if s.cuda_full else "CPU"
        lines = [
            f"{self.ctx.image_tag}: PyTorch {s.torch}, Python {s.python}, {build}, {known_distro(s) or s.base_image}.",
            f"Generated by llbgen {llbgen.__version__} (llbgen export-dockerfile) from the stage objects "
            "llbgen build uses, so both build the same image. Build it with ./build.sh (docker buildx build); "
            "the frontend built into BuildKit >= 0.10 (Docker Engine >= 23) reads it: COPY --link, RUN --mount, "
            "heredocs and ADD --checksum need no '# syntax=' line, so nothing is pulled from Docker Hub.",
        ]
        if self.ctx.ca:
            lines.append("Download steps trust a CA bundle given as the build secret 'llbgen-ca' "
                         "(build.sh: --secret id=llbgen-ca,src=FILE), mounted for those steps only; it is in no "
                         "layer.")
        if self.ctx.proxy_env:
            lines.append("Proxies reach the build as Docker's predefined proxy build arguments (build.sh), "
                         "which stay out of the image's config and history.")
        return "\n".join(lines)


def _layers_tool_source() -> bytes:
    from importlib import resources

    return resources.files("llbgen.dockerfile").joinpath("layers_tool.py").read_bytes()


def render_dockerfile(plan: LayerPlan, ctx: StageContext, *, syntax_line: bool = False) -> Dockerfile:
    """The Dockerfile (and the context files it reads) for ``plan``, a MergeOp/DiffOp plan of ``ctx``.

    >>> ctx = StageContext.create(load_spec(None, {"torch": "2.3.0", "cuda": "12.1"}))
    >>> df = render_dockerfile(layer_plan(ctx, merge_supported=True), ctx)
    >>> df.stages
    ('builder', 'python-download', 'python', 'jupyter', 'torch', 'python-layer', ..., 'image')
    """
    if not plan.merged:
        raise ValueError("render_dockerfile needs the MergeOp/DiffOp plan (layer_plan(ctx, merge_supported=True))")
    return _Renderer(plan, ctx).render(syntax_line)
