"""The layer plan: how the stages become one image, and the image's config.

With MergeOp/DiffOp the os layer is built on the base, while python, jupyter
and torch are built on the neutral builder image and cut out with DiffOp::

    python  = diff(builder,        P = python steps on builder)
    jupyter = diff(P,              J = jupyter steps on P)
    torch   = diff(J,              T = torch steps on J)
    image   = merge(base+os, python, jupyter, torch, [extras], init)

so the python, jupyter and torch layers have the same digests (and cache keys)
under any base: a second CUDA version reuses all three. Each stage runs on the
previous stage's own result, not on a merge of the layers so far: a merge that a
step runs on must be materialized as a new snapshot (on Docker's containerd store,
by copying: 14 s for builder+python+jupyter+torch with the CPU wheel), while a step's
own result is a plain snapshot chain, and the diff between a step's input and its
result is just the layers the step made. Without MergeOp/DiffOp the same steps run
as one linear chain on base+os, and every layer depends on the base.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from llbgen import llb
from llbgen.fingerprint import with_fingerprint
from stages.base_facts import base_facts, base_warnings, image_cuda
from stages.context import StageContext
from stages.init import InitStage
from stages.jupyter import JupyterStage
from stages.network import loopback_note
from stages.os import LOCALE, TIMEZONE, OsStage
from stages.python import PREFIX, PythonStage
from stages.step import Step
from stages.torch import ExtrasStage, TorchStage

LINEAR_NOTICE = ("no MergeOp/DiffOp: building one linear chain with the same content "
                 "(python, jupyter and torch layers depend on the base and are not shared across bases)")

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# entry.sh moves the secret inputs out of the environment, then execs tini as PID 1 (init/README.md).
ENTRYPOINT = ("/init/boot/entry.sh", "/usr/bin/tini", "-g", "--")
CMD = ("/init/boot/boot.sh",)
HEALTHCHECK = llb.Healthcheck(("CMD", "/init/bin/healthcheck"), interval_s=30, timeout_s=10, start_period_s=60,
                              retries=3)
PORTS = (22, 8888, 6006)
WORKDIR = "/root"
SPEC_LABEL = "io.llbgen.spec"


class Stage(Protocol):
    def depends_on(self) -> dict[str, str]: ...


@dataclass(frozen=True)
class Layer:
    """One layer of the image: its stage, what its cache key depends on, its State and digest."""

    name: str
    stage: Stage
    depends_on: Mapping[str, str]
    state: llb.State
    digest: str
    steps: tuple[Step, ...] = ()

    def depends_text(self) -> str:
        return "; ".join(f"{k}: {v}" for k, v in self.depends_on.items())


@dataclass(frozen=True)
class LayerPlan:
    """The layers in image order, the final image State (with its config), and how they were joined."""

    layers: tuple[Layer, ...]
    image: llb.State
    base: llb.State
    merged: bool
    notice: str | None = None
    notes: tuple[str, ...] = field(default=())
    warnings: tuple[str, ...] = field(default=())  # where the spec disagrees with the resolved base

    def layer(self, name: str) -> Layer:
        return next(layer for layer in self.layers if layer.name == name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(layer.name for layer in self.layers)

    def digests(self) -> dict[str, str]:
        return {layer.name: layer.digest for layer in self.layers}

    def steps(self) -> tuple[Step, ...]:
        return tuple(step for layer in self.layers for step in layer.steps)


def _digest(state: llb.State) -> str:
    head = llb.marshal(state).head
    assert head is not None
    return head


def layer_plan(ctx: StageContext, merge_supported: bool) -> LayerPlan:
    """Lower every stage and join the layers (MergeOp/DiffOp when supported, else a linear chain).

    >>> plan = layer_plan(StageContext.create(spec), merge_supported=True)
    >>> [layer.name for layer in plan.layers]
    ['os', 'python', 'jupyter', 'torch', 'init']
    """
    os_stage = OsStage.from_context(ctx)
    stacked = [("python", PythonStage.from_context(ctx)), ("jupyter", JupyterStage.from_context(ctx)),
               ("torch", TorchStage.from_context(ctx))]
    extras = ExtrasStage.from_context(ctx)
    if extras is not None:
        stacked.append(("extras", extras))
    init = InitStage.from_context(ctx)

    layers: list[Layer] = []
    os_state = os_stage.build(ctx, ctx.base)
    layers.append(Layer("os", os_stage, os_stage.depends_on(), os_state, _digest(os_state), os_stage.steps()))

    if merge_supported:
        lower = ctx.builder
        for name, stage in stacked:
            upper = stage.build(ctx, lower)  # type: ignore[attr-defined]
            layer_state = llb.diff(lower, upper, name=f"{name} layer")
            deps = {"builder": ctx.spec.builder_image, **stage.depends_on()}
            layers.append(Layer(name, stage, deps, layer_state, _digest(layer_state), stage.steps()))  # type: ignore[attr-defined]
            lower = upper
        init_state = init.build(ctx)
        layers.append(Layer("init", init, init.depends_on(), init_state, _digest(init_state)))
        image = llb.merge([os_state, *(layer.state for layer in layers[1:])], name="image")
        notice = None
    else:
        state = os_state
        for name, stage in stacked:
            state = stage.build(ctx, state)  # type: ignore[attr-defined]
            deps = {"below": "base + os" + "".join(f" + {n}" for n, _ in stacked[: stacked.index((name, stage))]),
                    **stage.depends_on()}
            layers.append(Layer(name, stage, deps, state, _digest(state), stage.steps()))  # type: ignore[attr-defined]
        state = init.build(ctx, state)
        layers.append(Layer("init", init, {"below": "every layer above", **init.depends_on()}, state,
                            _digest(state)))
        image = state
        notice = LINEAR_NOTICE
    return LayerPlan(layers=tuple(layers), image=with_fingerprint(with_image_config(image, ctx)), base=ctx.base,
                     merged=merge_supported, notice=notice,
                     notes=(*ctx.spec.notes, *filter(None, (loopback_note(step, ctx)
                                                            for layer in layers for step in layer.steps))),
                     warnings=tuple(base_warnings(ctx.spec, base_facts(ctx.base), ctx.image_tag)))


def spec_label(ctx: StageContext) -> str:
    """The resolved spec as compact JSON, without what must not be in an image (proxies, the CA path)."""
    data = ctx.spec.model_dump(mode="json", exclude={"spec": {"proxy", "ca_cert"}})
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def image_labels(ctx: StageContext) -> dict[str, str]:
    s = ctx.spec
    cuda, cudnn, distro = image_cuda(s, base_facts(ctx.base))
    if cuda:
        build = f"CUDA {cuda}" + (f", cuDNN {cudnn}" if cudnn else "")
    else:
        build = "CPU" if s.cpu else f"{s.variant} wheels on a base without CUDA"
    labels = {
        "org.opencontainers.image.title": ctx.image_tag.rsplit("/", 1)[-1].split(":", 1)[0],
        "org.opencontainers.image.version": s.torch,
        "org.opencontainers.image.description": f"PyTorch {s.torch} (Python {s.python}, {build}, {distro or s.base_image}) "
                                                "with JupyterLab, TensorBoard and SSH",
        "org.opencontainers.image.base.name": s.base_image,
        "io.llbgen.version": ctx.llbgen_version,
        SPEC_LABEL: spec_label(ctx),
    }
    digest = _pinned_digest(ctx.base)
    if digest:
        labels["org.opencontainers.image.base.digest"] = digest
    return labels


def _pinned_digest(state: llb.State) -> str | None:
    if state.output is None:
        return None
    identifier = getattr(state.output.vertex, "identifier", "")
    return identifier.rsplit("@", 1)[1] if "@" in identifier else None


def image_path(inherited: str | None) -> str:
    """Miniconda first, then the base's PATH (CUDA and NVIDIA directories kept), no duplicates."""
    parts = [p for p in (inherited or DEFAULT_PATH).split(":") if p and p != f"{PREFIX}/bin"]
    return ":".join([f"{PREFIX}/bin", *dict.fromkeys(parts)])


def with_image_config(state: llb.State, ctx: StageContext) -> llb.State:
    """The base's config (kept: CUDA/NVIDIA variables, NVIDIA_REQUIRE_CUDA, labels) plus the image's own."""
    env = tuple((k, v) for k, v in ctx.base.env if k != "LC_ALL")  # LC_ALL would override LANG
    state = replace(state, env=env, config=ctx.base.config)
    state = state.with_envs({"PATH": image_path(ctx.base.get_env("PATH")), "LANG": LOCALE, "TZ": TIMEZONE,
                             "SHELL": "/bin/bash"}).with_cwd(WORKDIR).with_user("")
    config = state.config.with_ports(*PORTS).with_labels(image_labels(ctx))
    return state.with_config(entrypoint=ENTRYPOINT, cmd=CMD, healthcheck=HEALTHCHECK,
                             exposed_ports=config.exposed_ports, labels=config.labels)


def format_table(plan: LayerPlan, cached: Mapping[str, str] | None = None,
                 base_note: str = "") -> list[str]:
    """The plan as text lines: layer, digest, (cached), what it depends on."""
    rows: list[Sequence[str]] = []
    header = ["LAYER", "DIGEST"] + (["CACHED"] if cached is not None else []) + ["DEPENDS ON"]
    base_ref = getattr(plan.base.output.vertex, "identifier", "") if plan.base.output else "scratch"
    base_row = ["base", _digest(plan.base)[:19]] + (["-"] if cached is not None else [])
    rows.append(base_row + [base_ref.removeprefix("docker-image://") + (f" ({base_note})" if base_note else "")])
    for layer in plan.layers:
        row = [layer.name, layer.digest[:19]]
        if cached is not None:
            row.append(cached.get(layer.name, "unknown"))
        rows.append(row + [layer.depends_text()])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    return ["  ".join([*(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)), r[-1]]).rstrip() for r in [header, *rows]]
