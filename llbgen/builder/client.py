"""``Builder``: the library entry point — connect, inspect, resolve bases, solve.

    with Builder.connect() as builder:
        base = builder.resolve("debian:bookworm")
        result = builder.solve(base.run("echo hi").root, SolveOptions(outputs=[Output("moby", {"name": "x"})]))
"""

from __future__ import annotations

from dataclasses import replace
from types import TracebackType

from llbgen.builder.address import BuilderAddress, resolve_builder_address
from llbgen.builder.capabilities import BuilderInfo, inspect_builder
from llbgen.builder.connection import BuilderConnection
from llbgen.builder.resolve import image_state, resolve_image
from llbgen.builder.solve import SolveOptions, SolveResult, solve
from llbgen.llb import Platform, State, marshal


class Builder:
    """An open connection to a BuildKit builder and what it can do."""

    def __init__(self, address: BuilderAddress) -> None:
        self.address = address
        self.connection = BuilderConnection(address)
        self._info: BuilderInfo | None = None

    @classmethod
    def connect(cls, address: str | BuilderAddress | None = None) -> Builder:
        addr = address if isinstance(address, BuilderAddress) else resolve_builder_address(address)
        return cls(addr)

    def __enter__(self) -> Builder:
        self.connection.open()
        try:
            self.connection.wait_ready()
        except BaseException:
            self.connection.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.connection.close()

    @property
    def info(self) -> BuilderInfo:
        if self._info is None:
            self._info = inspect_builder(self.connection)
        return self._info

    def resolve(self, ref: str, *, platform: Platform | None = None) -> State:
        """The base image ``ref`` pinned to the digest the builder resolves, inheriting its config."""
        return image_state(resolve_image(self.connection, ref, platform=platform, image_store=self.info.image_store),
                           platform)

    def solve(self, state: State, options: SolveOptions) -> SolveResult:
        """Marshal ``state`` and solve it; the exported image gets the state's image config."""
        if options.image_config is None:
            options = replace(options, image_config=state.image_config())
        return solve(self.connection, self.info, marshal(state), options)
