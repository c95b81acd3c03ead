"""A build step as plain data, and its lowering to LLB.

Every command a stage runs is a ``Step``: the shell script, its step-only
environment, its cache directories, the files it reads by URL and the files it
writes afterwards. Stages only *describe* steps; ``run_steps`` lowers them to
LLB here, and a Dockerfile lowering can read the very same values (a Step maps
to one ``RUN --mount=...`` plus ``COPY <<EOF`` heredocs), so the two never drift.

What a step reaches on the network is decided here, not by the stage: a
``download`` step gets its network (``network.step_network``: the host's with
``--network host`` or when one of its ``urls`` is on the loopback), the proxy
variables (as secret environment variables, so they are neither in the cache key
nor in the definition), the CA bundle and the step's mirror logins (secret mounts
for that step only).
An ``offline`` step runs with no network at all.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from llbgen import llb
from stages.network import step_network

if TYPE_CHECKING:
    from stages.context import StageContext

# Where a download step finds the build's CA bundle (a secret mount, never a layer).
CA_PATH = "/run/secrets/llbgen-ca"



@dataclass(frozen=True)
class SecretFile:
    """A build secret mounted for one step only (a mirror login): in no layer, its value in no cache key."""

    id: str
    path: str
    mode: int = 0o400


# Logins taken out of mirror URLs: a netrc pip reads (through NETRC), and apt's auth.conf
# (readable by all: apt's download methods run as _apt).
PIP_NETRC = SecretFile("llbgen-pip-netrc", "/run/secrets/llbgen-pip-netrc")
APT_AUTH = SecretFile("llbgen-apt-auth", "/run/secrets/llbgen-apt-auth", 0o444)

# Fixed mtime for files llbgen writes itself, so those layers are byte-for-byte reproducible.
FILE_TIMESTAMP_NS = 0


@dataclass(frozen=True)
class CacheDir:
    """A persistent cache directory for one step (apt archives, pip wheels); never in a layer."""

    dest: str
    id: str
    sharing: Literal["shared", "private", "locked"] = "shared"


@dataclass(frozen=True)
class HttpFile:
    """A file fetched by the builder by URL and checksum, mounted read-only at ``dest_dir/filename``."""

    url: str
    sha256: str
    filename: str
    dest_dir: str

    @property
    def path(self) -> str:
        return f"{self.dest_dir}/{self.filename}"


@dataclass(frozen=True)
class WriteFile:
    """A file written after the step's script (config files: pip.conf, .condarc)."""

    path: str
    content: str
    mode: int = 0o644


@dataclass(frozen=True)
class Step:
    """One shell step: ``script`` runs under ``/bin/sh -c`` with ``set -eu``."""

    name: str
    script: str
    env: tuple[tuple[str, str], ...] = ()
    caches: tuple[CacheDir, ...] = ()
    network: Literal["download", "offline"] = "download"
    http_files: tuple[HttpFile, ...] = ()
    writes: tuple[WriteFile, ...] = ()
    secret_files: tuple[SecretFile, ...] = ()  # mounted only when the step downloads
    # The mirrors and indexes the script reaches: a loopback one puts the step on the host's network.
    urls: tuple[str, ...] = ()

    @property
    def argv(self) -> tuple[str, ...]:
        return ("/bin/sh", "-c", self.script)

    @property
    def description(self) -> str:
        """How BuildKit describes this step's result in its cache records (``DiskUsage``)."""
        return "mount / from exec " + " ".join(self.argv)


def script(*lines: str) -> str:
    """A step script: ``set -eu`` and the given lines (empty ones dropped)."""
    return "\n".join(("set -eu", *(line for line in lines if line)))


def quote(words: Iterable[str]) -> str:
    return " ".join(shlex.quote(w) for w in words)


def pip_command(command: str) -> list[str]:
    """Miniconda's pip running ``command``, retries and timeouts set."""
    return ["/root/miniconda3/bin/python", "-m", "pip", command, "--retries", "5", "--timeout", "60"]


def pip_install(requirements: Sequence[str], *, index_url: str | None, extra_index_urls: Sequence[str] = ()) -> str:
    """The one pip command line every stage uses (Miniconda's pip, retries and timeouts set)."""
    args = pip_command("install")
    if index_url:
        args += ["--index-url", index_url]
    for url in extra_index_urls:
        args += ["--extra-index-url", url]
    return quote([*args, *requirements])


PIP_CACHE_DEST = "/root/.cache/pip"


def pip_env(ca: bool, netrc: bool = False) -> tuple[tuple[str, str], ...]:
    env = [("PIP_DISABLE_PIP_VERSION_CHECK", "1"), ("PIP_NO_INPUT", "1"), ("PIP_PROGRESS_BAR", "off"),
           ("PIP_ROOT_USER_ACTION", "ignore")]
    if ca:
        env.append(("PIP_CERT", CA_PATH))
    if netrc:  # the index logins: pip's requests reads the netrc NETRC names
        env.append(("NETRC", PIP_NETRC.path))
    return tuple(env)


def pip_secrets(netrc: bool) -> tuple[SecretFile, ...]:
    return (PIP_NETRC,) if netrc else ()


def pip_cache(python: str) -> CacheDir:
    # Wheels are tagged for one Python, so the cache is too; pip's cache is safe to share.
    return CacheDir(PIP_CACHE_DEST, f"llbgen-pip-py{python}", "shared")


def run_step(state: llb.State, step: Step, ctx: StageContext) -> llb.State:
    """Lower one step onto ``state``: the exec with its mounts, then its file writes."""
    mounts: list[llb.Mount] = [llb.cache_mount(c.dest, c.id, sharing=c.sharing) for c in step.caches]
    for f in step.http_files:
        source = llb.http(f.url, checksum=f"sha256:{f.sha256}", filename=f.filename, name=f"download {f.filename}")
        mounts.append(llb.bind(f.dest_dir, source, readonly=True))
    secret_env: list[llb.SecretEnv] = []
    if step.network == "download":
        if ctx.ca_secret_id:
            mounts.append(llb.secret_mount(CA_PATH, ctx.ca_secret_id, mode=0o444))
        mounts += [llb.secret_mount(f.path, f.id, mode=f.mode) for f in step.secret_files]
        secret_env = [llb.SecretEnv(secret_id, env) for env, secret_id in ctx.proxy_env]
    network = step_network(step, ctx)
    result = state.run(step.argv, name=step.name, env=dict(step.env), mounts=mounts, secret_env=secret_env,
                       network=network).root  # type: ignore[arg-type]
    if step.writes:
        action: llb.FileAction | None = None
        for w in step.writes:
            action = (llb.mkfile(w.path, w.mode, w.content, timestamp_ns=FILE_TIMESTAMP_NS) if action is None
                      else action.mkfile(w.path, w.mode, w.content, timestamp_ns=FILE_TIMESTAMP_NS))
        assert action is not None
        result = result.file(action, name=f"{step.name}: write " + ", ".join(w.path for w in step.writes))
    return result


def run_steps(state: llb.State, steps: Iterable[Step], ctx: StageContext) -> llb.State:
    for step in steps:
        state = run_step(state, step, ctx)
    return state
