"""State: an immutable point in the graph plus what runs there inherit.

Every method returns a new State; nothing talks to a daemon. A State holds the
output it points at (``None`` is scratch), the env/cwd/user that exec steps
inherit and that the exported image gets, the platform, and the rest of the
image config.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from llbgen.llb.exec import ExecOp, Mount, NetworkMode, SecretEnv, SecurityMode, exec_caps
from llbgen.llb.fileop import FileAction, FileOp, file_caps
from llbgen.llb.imageconfig import ImageConfig, oci_image_config
from llbgen.llb.metadata import OpMetadata
from llbgen.llb.platform import Platform
from llbgen.llb.vertex import Output


@dataclass(frozen=True)
class State:
    """A filesystem state in the graph and the settings later steps inherit."""

    output: Output | None = None
    env: tuple[tuple[str, str], ...] = ()
    cwd: str = "/"
    user: str = ""
    platform: Platform = field(default_factory=Platform.host)
    config: ImageConfig = field(default_factory=ImageConfig)

    # --- settings -----------------------------------------------------------------
    def get_env(self, key: str) -> str | None:
        return dict(self.env).get(key)

    def with_env(self, key: str, value: str) -> State:
        """Set one variable (replacing it in place if already set, keeping order)."""
        if not key or "=" in key:
            raise ValueError(f"invalid environment variable name {key!r}")
        items = [(k, value if k == key else v) for k, v in self.env]
        if key not in dict(self.env):
            items.append((key, value))
        return replace(self, env=tuple(items))

    def with_envs(self, values: Mapping[str, str]) -> State:
        state = self
        for k, v in values.items():
            state = state.with_env(k, v)
        return state

    def with_cwd(self, path: str) -> State:
        """Change the working directory (relative paths resolve against the current one)."""
        return replace(self, cwd=posixpath.normpath(posixpath.join(self.cwd, path)))

    def with_user(self, user: str) -> State:
        return replace(self, user=user)

    def with_platform(self, platform: Platform) -> State:
        return replace(self, platform=platform)

    def with_config(self, **changes: Any) -> State:
        """Change image-config fields: entrypoint, cmd, exposed_ports, labels, healthcheck, ..."""
        return replace(self, config=replace(self.config, **changes))

    def with_output(self, output: Output | None) -> State:
        return replace(self, output=output)

    def image_config(self) -> dict[str, Any]:
        """The OCI image config an exported image of this state gets."""
        return oci_image_config(platform=self.platform, env=self.env, workdir=self.cwd, user=self.user,
                                config=self.config)

    # --- operations ---------------------------------------------------------------
    def run(
        self,
        args: str | Sequence[str],
        *,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        user: str | None = None,
        hostname: str = "",
        mounts: Sequence[Mount] = (),
        secret_env: Sequence[SecretEnv] = (),
        network: NetworkMode = "sandbox",
        security: SecurityMode = "sandbox",
        valid_exit_codes: Sequence[int] = (),
        extra_hosts: Mapping[str, str] | None = None,
        readonly_root: bool = False,
        ignore_cache: bool = False,
    ) -> ExecState:
        """Run a command on this state; a string runs under ``/bin/sh -c``.

        ``env``/``cwd``/``user`` apply to this step only; the result inherits
        this state's own settings.

        >>> image("debian").run("apt-get update", name="apt update").root
        """
        argv = ("/bin/sh", "-c", args) if isinstance(args, str) else tuple(args)
        step_env = self.with_envs(env or {}).env
        root = Mount("/", source=self.output, readonly=readonly_root)
        all_mounts = tuple(sorted((root, *mounts), key=lambda m: m.dest))
        op = ExecOp(
            args=argv,
            env=tuple(f"{k}={v}" for k, v in step_env),
            cwd=posixpath.normpath(posixpath.join(self.cwd, cwd)) if cwd else self.cwd,
            user=self.user if user is None else user,
            platform=self.platform,
            mounts=all_mounts,
            hostname=hostname,
            network=network,
            security=security,
            secret_env=tuple(secret_env),
            valid_exit_codes=tuple(valid_exit_codes),
            extra_hosts=tuple(sorted((extra_hosts or {}).items())),
        )
        op = replace(op, metadata=OpMetadata(name=name or " ".join(argv), ignore_cache=ignore_cache,
                                             caps=exec_caps(op)))
        root_output = None if readonly_root else Output(op, op.output_index("/"))
        return ExecState(output=root_output, env=self.env, cwd=self.cwd, user=self.user,
                         platform=self.platform, config=self.config, exec_op=op)

    def file(self, action: FileAction, *, name: str | None = None, ignore_cache: bool = False) -> State:
        """Apply a chain of file actions (``mkdir(...).mkfile(...).copy(...)``) in one op."""
        op = FileOp(base=self.output, action=action, parent_dir=self.cwd,
                    metadata=OpMetadata(name=name or _describe(action), ignore_cache=ignore_cache,
                                        caps=file_caps(action)))
        return self.with_output(Output(op, 0))


@dataclass(frozen=True)
class ExecState(State):
    """The root filesystem after an exec; ``mount_state`` reaches its other writable mounts."""

    exec_op: ExecOp | None = None

    @property
    def root(self) -> State:
        """This result as a plain State."""
        return State(self.output, self.env, self.cwd, self.user, self.platform, self.config)

    def mount_state(self, dest: str) -> State:
        """The content of the writable bind mount at ``dest`` after the command ran."""
        assert self.exec_op is not None
        return self.root.with_output(Output(self.exec_op, self.exec_op.output_index(dest)))


def _describe(action: FileAction) -> str:
    parts = []
    for a in action.chain():
        parts.append(f"{a.kind} {a.path}" + (f" {a.dest}" if a.kind == "copy" else ""))
    text = "; ".join(parts)
    return text if len(text) <= 80 else text[:77] + "..."
