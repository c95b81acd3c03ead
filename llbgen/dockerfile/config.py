"""The image config as Dockerfile instructions: the config ``stages.plan.with_image_config`` gives.

Read from the plan's final State (the config ``llbgen build`` exports), so the two
cannot disagree: ENV, WORKDIR, EXPOSE, LABEL, ENTRYPOINT, CMD and HEALTHCHECK.
What the base image brings (its PATH, CUDA and NVIDIA variables, labels) the
Dockerfile inherits by itself; PATH is written as ``/root/miniconda3/bin:${PATH}`` so the
base's directories stay, as ``image_path`` keeps them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llbgen.dockerfile.text import exec_form, quoted
from llbgen.fingerprint import FINGERPRINT_LABEL
from llbgen.llb import State
from stages.plan import image_path
from stages.python import PREFIX

_NS = 1_000_000_000


def _duration(ns: int) -> str:
    seconds = ns / _NS
    return f"{int(seconds)}s" if seconds == int(seconds) else f"{seconds}s"


def env_value(name: str, value: str, base: State) -> str:
    """``value`` as the ENV instruction writes it; PATH prepends Miniconda to the base's own."""
    if name == "PATH" and value == image_path(base.get_env("PATH")):
        return f"{PREFIX}/bin:${{PATH}}"
    return quoted(value)


def config_instructions(image: State, base: State) -> list[str]:
    """ENV … HEALTHCHECK for ``image``'s config (``base``: the unresolved base it was made on)."""
    config: Mapping[str, Any] = image.image_config()["config"]
    inherited = dict(base.env)
    lines: list[str] = []
    env = [(k, v) for k, v in (item.split("=", 1) for item in config.get("Env", [])) if inherited.get(k) != v]
    if env:
        lines.append("ENV " + " \\\n    ".join(f"{k}={env_value(k, v, base)}" for k, v in env))
    if config.get("WorkingDir"):
        lines.append(f"WORKDIR {config['WorkingDir']}")
    if config.get("User"):
        lines.append(f"USER {config['User']}")
    if config.get("ExposedPorts"):
        lines.append("EXPOSE " + " ".join(sorted(config["ExposedPorts"], key=lambda p: int(p.split("/")[0]))))
    # The build fingerprint vouches for llbgen's own graph; a Dockerfile build is another graph.
    labels = {k: v for k, v in (config.get("Labels") or {}).items() if k != FINGERPRINT_LABEL}
    if labels:
        lines.append("LABEL " + " \\\n      ".join(f"{k}={quoted(v)}" for k, v in sorted(labels.items())))
    if config.get("Entrypoint") is not None:
        lines.append(f"ENTRYPOINT {exec_form(config['Entrypoint'])}")
    if config.get("Cmd") is not None:
        lines.append(f"CMD {exec_form(config['Cmd'])}")
    hc = config.get("Healthcheck")
    if hc:
        test = list(hc["Test"])
        flags = [f"--interval={_duration(hc['Interval'])}", f"--timeout={_duration(hc['Timeout'])}"]
        if hc.get("StartPeriod"):
            flags.append(f"--start-period={_duration(hc['StartPeriod'])}")
        flags.append(f"--retries={hc['Retries']}")
        if test[0] == "CMD":
            lines.append(f"HEALTHCHECK {' '.join(flags)} CMD {exec_form(test[1:])}")
        elif test[0] == "CMD-SHELL":
            lines.append(f"HEALTHCHECK {' '.join(flags)} CMD {test[1]}")
        elif test[0] == "NONE":
            lines.append("HEALTHCHECK NONE")
    return lines
