"""The container under test, through docker-py: start with published ports, exec, logs, removal.

Ports are published on 127.0.0.1 (random host ports) for a local engine; for a remote
engine (``tcp://HOST``, ``ssh://HOST``) on all of that host's interfaces, reached at HOST.
"""

from __future__ import annotations

import contextlib
import secrets
import time
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llbgen.errors import LlbgenError

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

PORTS = (22, 8888, 6006)
LABEL = "io.llbgen.verify"


class DockerUnavailable(LlbgenError):
    """The Docker Engine cannot be reached."""


def connect(docker_host: str | None, *, timeout: int = 120) -> docker.DockerClient:
    """A docker-py client for ``docker_host`` (default: $DOCKER_HOST, else the local socket)."""
    import docker
    from docker.errors import DockerException

    try:
        client = docker.DockerClient(base_url=docker_host, timeout=timeout) if docker_host else docker.from_env(timeout=timeout)
        client.ping()
    except DockerException as err:
        raise DockerUnavailable(f"cannot reach the Docker Engine ({docker_host or 'default'}): {err}") from None
    return client


def reachable_host(client: docker.DockerClient) -> tuple[str, str]:
    """(address to publish on, address to connect to) for this engine."""
    url = urllib.parse.urlsplit(client.api.base_url if hasattr(client, "api") else "")
    host = url.hostname or ""
    if url.scheme in ("http", "https", "tcp", "ssh") and host not in ("", "localhost", "127.0.0.1", "::1", "localunixsocket", "localnpipe"):
        return "0.0.0.0", host
    return "127.0.0.1", "127.0.0.1"


def image_labels(client: docker.DockerClient, image: str) -> dict[str, str]:
    """The image's labels; LlbgenError when the image is not in the engine."""
    from docker.errors import ImageNotFound

    try:
        img = client.images.get(image)
    except ImageNotFound:
        raise LlbgenError(f"image {image} not found in the Docker Engine (build it with llbgen build, or docker pull it)") from None
    return dict((img.attrs.get("Config") or {}).get("Labels") or {})


def ls_fresh(client: docker.DockerClient, image: str, directory: str) -> tuple[int, list[str]]:
    """``ls -1A DIRECTORY`` in a fresh container of ``image`` whose entrypoint is ls (boot never runs); (exit code, names)."""
    container = client.containers.create(image, entrypoint=["ls"], command=["-1A", directory], labels={LABEL: "ls"},
                                         network_mode="none")
    try:
        container.start()
        code = container.wait(timeout=60).get("StatusCode", 1)
        out = container.logs(stdout=True, stderr=False).decode("utf-8", "replace")
        return code, [line for line in out.splitlines() if line]
    finally:
        container.remove(force=True)


def gpu_requests(gpus: str | None) -> list:
    """``--gpus`` as docker-py device requests: ``all``, a count, or ``device=0,1``."""
    if not gpus:
        return []
    from docker.types import DeviceRequest

    if gpus == "all":
        return [DeviceRequest(count=-1, capabilities=[["gpu"]])]
    if gpus.isdigit():
        return [DeviceRequest(count=int(gpus), capabilities=[["gpu"]])]
    if gpus.startswith("device="):
        return [DeviceRequest(device_ids=gpus[len("device="):].split(","), capabilities=[["gpu"]])]
    raise LlbgenError(f"--gpus {gpus!r}: use all, a number, or device=ID[,ID]")


@dataclass
class Exec:
    exit_code: int
    stdout: str
    stderr: str


class RunningContainer:
    """One container of the image under test; ``remove()`` ends it."""

    def __init__(self, client: docker.DockerClient, container: Container, connect_host: str) -> None:
        self.client, self.container, self.host = client, container, connect_host
        self.ports: dict[int, int] = {}

    @classmethod
    def start(cls, client: docker.DockerClient, image: str, *, environment: dict[str, str], gpus: str | None = None,
              name: str | None = None) -> RunningContainer:
        bind, connect_host = reachable_host(client)
        container = client.containers.run(
            image,
            detach=True,
            name=name or f"llbgen-verify-{secrets.token_hex(4)}",
            environment=environment,
            ports={f"{p}/tcp": (bind, None) for p in PORTS},
            labels={LABEL: "1"},
            device_requests=gpu_requests(gpus) or None,
        )
        return cls(client, container, connect_host)

    @property
    def name(self) -> str:
        return self.container.name

    @property
    def short_id(self) -> str:
        return self.container.short_id

    def status(self) -> str:
        self.container.reload()
        return self.container.status

    def published_ports(self, deadline: float) -> dict[int, int]:
        """container port -> host port, once Docker has assigned them all."""
        while True:
            self.container.reload()
            mapping = (self.container.attrs.get("NetworkSettings") or {}).get("Ports") or {}
            found = {}
            for port in PORTS:
                bindings = mapping.get(f"{port}/tcp") or []
                if bindings:
                    found[port] = int(bindings[0]["HostPort"])
            if len(found) == len(PORTS) or time.monotonic() >= deadline or self.container.status != "running":
                self.ports = found
                return found
            time.sleep(0.5)

    def exec(self, argv: list[str], *, environment: dict[str, str] | None = None) -> Exec:
        code, (out, err) = self.container.exec_run(argv, environment=environment, demux=True)
        return Exec(code if code is not None else -1, (out or b"").decode("utf-8", "replace"), (err or b"").decode("utf-8", "replace"))

    def logs_tail(self, lines: int = 30) -> str:
        try:
            return self.container.logs(tail=lines).decode("utf-8", "replace")
        except Exception as err:  # noqa: BLE001 - only for a failure's detail
            return f"(no logs: {err})"

    def remove(self) -> None:
        from docker.errors import NotFound

        with contextlib.suppress(NotFound):
            self.container.remove(force=True)
