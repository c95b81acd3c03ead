"""The OCI image config that travels with a State (Env, WorkingDir, Cmd, ...)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from llbgen.llb.platform import Platform

_NS = 1_000_000_000


@dataclass(frozen=True)
class Healthcheck:
    """Docker's HEALTHCHECK: ``test`` like ``("CMD", "/init/bin/healthcheck")``."""

    test: tuple[str, ...]
    interval_s: float = 30
    timeout_s: float = 10
    start_period_s: float = 0
    retries: int = 3

    def to_oci(self) -> dict[str, Any]:
        return {
            "Test": list(self.test),
            "Interval": int(self.interval_s * _NS),
            "Timeout": int(self.timeout_s * _NS),
            "StartPeriod": int(self.start_period_s * _NS),
            "Retries": self.retries,
        }


@dataclass(frozen=True)
class ImageConfig:
    """Config fields other than Env/WorkingDir/User, which the State itself tracks."""

    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    exposed_ports: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    healthcheck: Healthcheck | None = None
    stop_signal: str = ""
    volumes: tuple[str, ...] = ()
    extra: tuple[tuple[str, Any], ...] = field(default=(), compare=False)

    def with_labels(self, labels: Mapping[str, str]) -> ImageConfig:
        merged = dict(self.labels) | dict(labels)
        return replace(self, labels=tuple(sorted(merged.items())))

    def with_ports(self, *ports: str | int) -> ImageConfig:
        normalized = [p if "/" in str(p) else f"{p}/tcp" for p in map(str, ports)]
        return replace(self, exposed_ports=tuple(sorted(set(self.exposed_ports) | set(normalized))))

    @classmethod
    def from_oci_config(cls, config: Mapping[str, Any]) -> ImageConfig:
        """Take the non-env fields of a base image's ``config`` object."""
        hc = config.get("Healthcheck")
        return cls(
            entrypoint=tuple(config["Entrypoint"]) if config.get("Entrypoint") else None,
            cmd=tuple(config["Cmd"]) if config.get("Cmd") else None,
            exposed_ports=tuple(sorted(config.get("ExposedPorts") or {})),
            labels=tuple(sorted((config.get("Labels") or {}).items())),
            healthcheck=Healthcheck(
                tuple(hc["Test"]), hc.get("Interval", 0) / _NS, hc.get("Timeout", 0) / _NS,
                hc.get("StartPeriod", 0) / _NS, hc.get("Retries", 0),
            ) if hc and hc.get("Test") else None,
            stop_signal=config.get("StopSignal") or "",
            volumes=tuple(sorted(config.get("Volumes") or {})),
        )


def oci_image_config(
    *,
    platform: Platform,
    env: tuple[tuple[str, str], ...],
    workdir: str,
    user: str,
    config: ImageConfig,
) -> dict[str, Any]:
    """The image config JSON BuildKit's image exporter takes (rootfs and history are filled by BuildKit)."""
    body: dict[str, Any] = {"Env": [f"{k}={v}" for k, v in env]}
    if workdir:
        body["WorkingDir"] = workdir
    if user:
        body["User"] = user
    if config.entrypoint is not None:
        body["Entrypoint"] = list(config.entrypoint)
    if config.cmd is not None:
        body["Cmd"] = list(config.cmd)
    if config.exposed_ports:
        body["ExposedPorts"] = {p: {} for p in config.exposed_ports}
    if config.labels:
        body["Labels"] = dict(config.labels)
    if config.healthcheck:
        body["Healthcheck"] = config.healthcheck.to_oci()
    if config.stop_signal:
        body["StopSignal"] = config.stop_signal
    if config.volumes:
        body["Volumes"] = {v: {} for v in config.volumes}
    body.update(dict(config.extra))
    result: dict[str, Any] = {
        "architecture": platform.architecture,
        "os": platform.os,
        "config": body,
        "rootfs": {"type": "layers", "diff_ids": []},
    }
    if platform.variant:
        result["variant"] = platform.variant
    return result
