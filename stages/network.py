"""Which network a step runs on: none, the builder's sandbox, or the host's.

A build step runs in a network namespace of its own, where ``127.0.0.1`` is the
step itself: a mirror on the build machine's loopback (``127.0.0.1``, ``localhost``,
``::1``) is out of its reach. So a step that reaches such a URL (its mirrors and
indexes, or the proxy it is given) runs on the host's network, and only that step:
the network mode is part of a step's cache key, and the other steps keep theirs.
``--network host`` still puts every download step on the host's network.

Private addresses (10/8, 172.16/12, 192.168/16) need nothing: the sandbox reaches
them through the builder's bridge like any other host. BuildKit's HTTP sources (the
Miniconda installer) are fetched by the daemon, on the host, so they need nothing
either.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from stages.context import StageContext
    from stages.step import Step

StepNetwork = Literal["none", "sandbox", "host"]


def is_loopback_url(url: str) -> bool:
    """Whether ``url``'s host is this machine's loopback (``127.0.0.0/8``, ``::1``, ``localhost``, ``0.0.0.0``)."""
    try:
        host = urllib.parse.urlsplit(url).hostname
    except ValueError:  # a malformed bracketed host: not a loopback we can reach anyway
        return False
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


def loopback_urls(step: Step, ctx: StageContext) -> tuple[str, ...]:
    """The URLs ``step`` reaches (its own and the build's proxies) that are on the loopback."""
    if step.network == "offline":
        return ()
    proxy = ctx.spec.spec.proxy
    urls: Iterable[str | None] = (*step.urls, proxy.http_proxy, proxy.https_proxy)
    return tuple(u for u in urls if u and is_loopback_url(u))


def loopback_note(step: Step, ctx: StageContext) -> str | None:
    """Why ``step`` alone runs on the host's network, for the plan; None when it does not.

    Names hosts only: a URL's user info and path, and a proxy's whole value, may be secret.
    """
    if ctx.network == "host":
        return None
    proxy = ctx.spec.spec.proxy
    proxies = {proxy.http_proxy, proxy.https_proxy}
    urls = loopback_urls(step, ctx)
    hosts = [urllib.parse.urlsplit(u).netloc.rpartition("@")[2] for u in urls if u not in proxies]
    hosts += ["the proxy"] if any(u in proxies for u in urls) else []
    if not hosts:
        return None
    stage = step.name.split(":", 1)[0]
    return f"{stage}: runs on the host's network to reach {', '.join(dict.fromkeys(hosts))} (on the loopback)"


def step_network(step: Step, ctx: StageContext) -> StepNetwork:
    """``none`` for an offline step; ``host`` with ``--network host`` or a loopback URL; else ``sandbox``."""
    if step.network == "offline":
        return "none"
    if ctx.network == "host" or loopback_urls(step, ctx):
        return "host"
    return "sandbox"


def needs_host_network(steps: Iterable[Step], ctx: StageContext) -> bool:
    """Whether any of ``steps`` runs on the host's network (the solve must then grant ``network.host``)."""
    return any(step_network(step, ctx) == "host" for step in steps)
