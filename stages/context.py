"""``StageContext``: everything the stages share for one build.

The resolved spec, the two starting points (the base the os layer is built on,
and the neutral builder image the python, jupyter and torch layers are built
on), the mirrors, and how download steps reach the network: network mode,
the CA bundle's secret id, the proxy variables' secret ids and the mirror logins
(``spec.logins``, served as a netrc for pip and an auth.conf for apt).

Base and builder are States: pinned and carrying their image config when a
builder resolved them (``Builder.resolve``), plain ``llb.image(...)`` for dry
runs. Nothing here talks to a builder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import llbgen
from llbgen import llb
from llbgen.errors import UsageError
from llbgen.spec import Mirrors, ResolvedSpec
from llbgen.spec.credentials import APT_FIELDS, PIP_FIELDS, apt_auth_text, netrc_text
from stages.step import APT_AUTH, PIP_NETRC

# The images llbgen builds are x86-64 (the Miniconda installers it picks are).
PLATFORM = llb.Platform("linux", "amd64")

CA_SECRET_ID = "llbgen-ca"
# Proxy variables reach download steps as secret environment variables: a proxy URL
# may hold credentials, and a proxy change must not invalidate every layer.
PROXY_SECRETS = {"http_proxy": "llbgen-http-proxy", "https_proxy": "llbgen-https-proxy",
                 "no_proxy": "llbgen-no-proxy"}
RESERVED_SECRET_IDS = frozenset({CA_SECRET_ID, *PROXY_SECRETS.values(), PIP_NETRC.id, APT_AUTH.id})

NetworkMode = Literal["sandbox", "host"]


@dataclass(frozen=True)
class StageContext:
    """What every stage of one image build shares."""

    spec: ResolvedSpec
    base: llb.State
    builder: llb.State
    image_tag: str
    network: NetworkMode = "sandbox"
    ca_secret_id: str | None = None
    # (environment variable, secret id), both spellings of each given proxy variable
    proxy_env: tuple[tuple[str, str], ...] = ()
    llbgen_version: str = llbgen.__version__

    @classmethod
    def create(
        cls,
        spec: ResolvedSpec,
        *,
        base: llb.State | None = None,
        builder: llb.State | None = None,
        image_tag: str | None = None,
        network: NetworkMode = "sandbox",
    ) -> StageContext:
        """A context for ``spec``; unresolved ``llb.image`` states when no base/builder is given.

        >>> ctx = StageContext.create(load_spec(None, {"torch": "2.3.0", "cuda": "12.1"}))
        """
        if network not in ("sandbox", "host"):
            raise UsageError(f"--network {network!r}: use host or default")
        proxy_env: list[tuple[str, str]] = []
        for name, secret_id in PROXY_SECRETS.items():
            if getattr(spec.spec.proxy, name):
                proxy_env += [(name, secret_id), (name.upper(), secret_id)]
        return cls(
            spec=spec,
            base=base if base is not None else llb.image(spec.base_image, platform=PLATFORM),
            builder=builder if builder is not None else llb.image(spec.builder_image, platform=PLATFORM),
            image_tag=image_tag or spec.tag,
            network=network,
            ca_secret_id=CA_SECRET_ID if spec.spec.ca_cert is not None else None,
            proxy_env=tuple(proxy_env),
        )

    @property
    def mirrors(self) -> Mirrors:
        return self.spec.spec.mirrors

    @property
    def ca(self) -> bool:
        return self.ca_secret_id is not None

    @property
    def pip_login(self) -> bool:
        """Whether a pip index was given with a login (pip steps then mount the netrc secret)."""
        return any(x.field in PIP_FIELDS for x in self.spec.logins)

    @property
    def apt_login(self) -> bool:
        return any(x.field in APT_FIELDS for x in self.spec.logins)

    def secrets(self) -> dict[str, bytes]:
        """The session secrets the steps need: the CA bundle, the proxy values (read now) and the mirror logins."""
        values: dict[str, bytes] = {}
        ca_cert = self.spec.spec.ca_cert
        if self.ca_secret_id and ca_cert is not None:
            try:
                values[self.ca_secret_id] = Path(ca_cert).read_bytes()
            except OSError as err:
                raise UsageError(f"ca_cert: cannot read {ca_cert}: {err.strerror}") from None
        for name, secret_id in PROXY_SECRETS.items():
            value = getattr(self.spec.spec.proxy, name)
            if value:
                values[secret_id] = value.encode()
        logins = self.spec.logins
        if self.pip_login:
            values[PIP_NETRC.id] = netrc_text(tuple(x for x in logins if x.field in PIP_FIELDS)).encode()
        if self.apt_login:
            values[APT_AUTH.id] = apt_auth_text(tuple(x for x in logins if x.field in APT_FIELDS)).encode()
        return values
