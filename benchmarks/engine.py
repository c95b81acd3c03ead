"""What the benchmark measures on a Docker Engine and the local registry.

- ``Engine``: a Docker Engine by its socket (the main one, and the second one for the builder
  handoff), its build cache (prune, BuildKit ``DiskUsage`` through llbgen's connection), its
  images (remove, push);
- ``Registry``: manifests and blob sizes over the registry's HTTP API, and deleting what the
  benchmark pushed;
- ``machine_facts``: what the tables are recorded with (date, CPUs, memory, versions, load).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REGISTRY = "127.0.0.1:5000"
MAIN_SOCKET = "/var/run/docker.sock"
SECOND_SOCKET = "/var/run/llbgen-second/docker.sock"
SECOND_START_SCRIPT = REPO / ".ci" / "start-second-dockerd.sh"

MANIFEST_TYPES = ", ".join([
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
])
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")


@dataclass(frozen=True)
class Engine:
    """A Docker Engine, by name and socket."""

    name: str
    socket: str

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def builder(self) -> str:
        """llbgen's ``--builder`` for this engine's BuildKit."""
        return f"docker://{self.host}"

    def env(self) -> dict[str, str]:
        """Environment for the docker CLI (and buildx) to talk to this engine."""
        env = dict(os.environ)
        env["DOCKER_HOST"] = self.host
        env.pop("DOCKER_CONTEXT", None)
        env.pop("BUILDKIT_HOST", None)
        return env

    def docker(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker", *args], env=self.env(), capture_output=True, text=True, timeout=timeout,
                              check=check)

    def answers(self) -> bool:
        if not os.path.exists(self.socket):
            return False
        try:
            return self.docker("version", "--format", "{{.Server.Version}}", timeout=20, check=False).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def version(self) -> str:
        out = self.docker("version", "--format", "{{.Server.Version}}", timeout=30, check=False)
        return out.stdout.strip() or "?"

    def storage(self) -> str:
        out = self.docker("info", "--format", "{{.Driver}} {{json .DriverStatus}}", timeout=30, check=False)
        return out.stdout.strip()

    # -- build cache

    def prune_build_cache(self) -> str:
        """``docker builder prune -af``: every unused build-cache record, cache mounts included."""
        out = self.docker("builder", "prune", "-af", timeout=900, check=False)
        return (out.stdout.strip().splitlines() or [""])[-1]

    def disk_usage(self) -> list[tuple[int, float, str]]:
        """BuildKit's cache records as (size, created-at epoch seconds, description), via llbgen's connection."""
        from llbgen._proto.buildkit import control_pb2
        from llbgen.builder.client import Builder

        with Builder.connect(self.builder) as builder:
            response = builder.connection.control.DiskUsage(control_pb2.DiskUsageRequest(), timeout=120)
        return [(r.Size, r.CreatedAt.seconds + r.CreatedAt.nanos / 1e9, r.Description) for r in response.record]

    def cache_bytes_since(self, since: float) -> int:
        """Bytes of the cache records created since ``since`` (epoch seconds; daemon and we share the clock)."""
        return sum(size for size, created, _ in self.disk_usage() if created >= since - 1)

    # -- images

    def remove_images(self, refs: list[str]) -> None:
        for ref in refs:
            self.docker("image", "rm", "-f", ref, timeout=300, check=False)

    def has_image(self, ref: str) -> bool:
        return self.docker("image", "inspect", ref, timeout=60, check=False).returncode == 0

    def push(self, ref: str, timeout: float = 1800) -> float:
        """``docker push``; seconds taken. Raises on failure."""
        start = time.monotonic()
        out = self.docker("push", ref, timeout=timeout, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"docker push {ref} failed: {(out.stderr or out.stdout)[-1500:]}")
        return time.monotonic() - start


MAIN = Engine("A", MAIN_SOCKET)
SECOND = Engine("B", SECOND_SOCKET)


def engine_b(start: bool) -> tuple[Engine | None, str]:
    """The second engine if it answers (started with .ci/start-second-dockerd.sh when ``start``), and why not."""
    if SECOND.answers():
        return SECOND, f"{SECOND.host}"
    if not start:
        return None, f"no engine at {SECOND.host} (start it with {SECOND_START_SCRIPT.relative_to(REPO)} or pass --start-engine-b)"
    if not SECOND_START_SCRIPT.exists():
        return None, f"no engine at {SECOND.host} and no {SECOND_START_SCRIPT.relative_to(REPO)}"
    result = subprocess.run(["bash", str(SECOND_START_SCRIPT)], capture_output=True, text=True, timeout=600, check=False)
    if SECOND.answers():
        return SECOND, f"{SECOND.host} (started by {SECOND_START_SCRIPT.name})"
    return None, f"{SECOND_START_SCRIPT.name} did not bring up {SECOND.host}: {(result.stderr or result.stdout)[-300:]}"


# --------------------------------------------------------------------------- the registry


@dataclass(frozen=True)
class Manifest:
    """One image manifest in the registry: its digest, config and layers as (digest, size), base first."""

    ref: str
    digest: str
    config: tuple[str, int]
    layers: tuple[tuple[str, int], ...]

    @property
    def blobs(self) -> dict[str, int]:
        return dict((self.config, *self.layers))

    @property
    def layer_bytes(self) -> int:
        return sum(size for _, size in self.layers)


@dataclass
class Registry:
    address: str = REGISTRY
    pushed: set[str] = field(default_factory=set)  # refs to delete at the end

    def _split(self, ref: str) -> tuple[str, str]:
        assert ref.startswith(self.address + "/"), ref
        repo, _, tag = ref[len(self.address) + 1:].rpartition(":")
        return repo, tag

    def _get(self, path: str, accept: str = MANIFEST_TYPES, method: str = "GET") -> tuple[bytes, dict[str, str]]:
        req = urllib.request.Request(f"http://{self.address}{path}", method=method, headers={"Accept": accept})
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.read(), dict(resp.headers)

    def answers(self) -> bool:
        try:
            self._get("/v2/")
            return True
        except OSError:
            return False

    def manifest(self, ref: str) -> Manifest:
        """The linux/amd64 image manifest of ``ref`` (an index is resolved; attestations are skipped)."""
        repo, tag = self._split(ref)
        body, headers = self._get(f"/v2/{repo}/manifests/{tag}")
        doc = json.loads(body)
        digest = headers.get("Docker-Content-Digest", "")
        if doc.get("mediaType") in INDEX_TYPES or "manifests" in doc:
            picks = [m for m in doc["manifests"]
                     if m.get("platform", {}).get("architecture") == "amd64"
                     and m.get("platform", {}).get("os") == "linux"]
            if not picks:
                raise RuntimeError(f"{ref}: no linux/amd64 manifest in the index")
            digest = picks[0]["digest"]
            body, _ = self._get(f"/v2/{repo}/manifests/{digest}")
            doc = json.loads(body)
        return Manifest(ref, digest, (doc["config"]["digest"], doc["config"]["size"]),
                        tuple((layer["digest"], layer["size"]) for layer in doc["layers"]))

    def delete(self, ref: str) -> bool:
        """Delete the manifest ``ref`` names (the registry has deletion enabled); False when it could not."""
        repo, tag = self._split(ref)
        try:
            _, headers = self._get(f"/v2/{repo}/manifests/{tag}", method="HEAD")
            digest = headers.get("Docker-Content-Digest")
            if not digest:
                return False
            self._get(f"/v2/{repo}/manifests/{digest}", method="DELETE")
            return True
        except (urllib.error.HTTPError, urllib.error.URLError, OSError):
            return False

    def cleanup(self) -> list[str]:
        """Delete every manifest the benchmark pushed; the refs that could not be deleted."""
        failed = [ref for ref in sorted(self.pushed) if not self.delete(ref)]
        self.pushed.clear()
        return failed


def unique_bytes(manifests: list[Manifest]) -> int:
    """Bytes of the distinct blobs (layers and configs) the manifests reference: what the registry stores for them."""
    blobs: dict[str, int] = {}
    for m in manifests:
        blobs.update(m.blobs)
    return sum(blobs.values())


# --------------------------------------------------------------------------- machine facts


def _read(cmd: list[str], env: dict[str, str] | None = None) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, env=env)
        return (out.stdout or out.stderr).strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def machine_facts(engines: list[Engine]) -> dict[str, str]:
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    cpu = "?"
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    commit = _read(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = _read(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"])
    facts = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": f"{os.cpu_count()} ({cpu})",
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "buildx": _read(["docker", "buildx", "version"]),
        "llbgen": f"{commit}{' + uncommitted changes' if dirty else ''}",
        "load average at start": load_average(),
    }
    for engine in engines:
        facts[f"engine {engine.name}"] = f"Docker Engine {engine.version()} at {engine.host}, {engine.storage()}"
    return facts
