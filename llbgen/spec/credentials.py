"""Credentials in mirror URLs (``https://user:password@mirror/...``), kept apart from the URLs.

A private mirror (Artifactory, Nexus) is usually given with its login in the URL. The
URL itself ends up in many places — ``pip.conf``, the ``io.llbgen.spec`` label,
``/init/image-info.env``, step names, the plan — so the resolved spec keeps every
mirror URL *without* its credentials, and the credentials here, as ``MirrorLogin``
values that only ``stages.context`` turns into build secrets (a netrc for pip, an
``auth.conf`` for apt). Their values are never in the spec's dump or repr.

>>> url, login = split_login("https://me:s3cret@pypi.corp/simple", "mirrors.pip_index_url")
>>> url, login.host, login.username
('https://pypi.corp/simple', 'pypi.corp', 'me')
"""

from __future__ import annotations

import re
import urllib.parse

from pydantic import BaseModel, ConfigDict, SecretStr

from llbgen.spec.model import ImageSpec

# netrc and apt's auth.conf are whitespace-separated tokens; quoting differs between
# readers (Python 3.8's netrc has none), so what would need it is refused.
_UNQUOTABLE = re.compile(r"[\s\x00-\x1f\x7f\"'\\]")

# Which mirror fields a build step fetches from, and with what (conda channels are
# only written to .condarc: nothing fetches from them at build time).
PIP_FIELDS = ("mirrors.pip_index_url", "mirrors.pip_extra_index_urls", "mirrors.torch_index_url")
APT_FIELDS = ("mirrors.apt",)
UNUSED_FIELDS = ("mirrors.conda_channels",)


class MirrorLogin(BaseModel):
    """The login of one mirror URL: where it applies, and the user and password."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    field: str  # the spec field it came from, e.g. mirrors.pip_index_url
    scheme: str
    host: str  # host name, lowercase, without the port
    port: int | None
    username: str
    password: SecretStr


class CredentialProblem(ValueError):
    """A URL whose credentials llbgen cannot pass on safely (the message names the field and the fix)."""


def split_login(url: str, field: str) -> tuple[str, MirrorLogin | None]:
    """``url`` without its ``user:password@``, and that login (None when the URL has none)."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, hostport = parts.netloc.rpartition("@")
    clean = urllib.parse.urlunsplit(parts._replace(netloc=hostport))
    if ":" not in userinfo:
        raise CredentialProblem(f"{field}: {clean} has a user name but no password; give it as "
                                "https://USER:PASSWORD@host/...")
    username, password = (urllib.parse.unquote(p) for p in userinfo.split(":", 1))
    if not username or not password or _UNQUOTABLE.search(username + password):
        raise CredentialProblem(f"{field}: the user name or password in the URL of {clean} is empty or holds "
                                "spaces, quotes, backslashes or control characters, which netrc and apt's "
                                "auth.conf cannot carry; change the password")
    try:
        port = parts.port
    except ValueError:
        raise CredentialProblem(f"{field}: {clean} has an invalid port") from None
    return clean, MirrorLogin(field=field, scheme=parts.scheme.lower(), host=(parts.hostname or "").lower(),
                              port=port, username=username, password=SecretStr(password))


def netrc_text(logins: tuple[MirrorLogin, ...]) -> str:
    """A netrc (what pip reads through ``NETRC``): one ``machine`` line per host."""
    seen: dict[str, MirrorLogin] = {}
    for login in logins:
        seen.setdefault(login.host, login)
    return "".join(f"machine {h} login {x.username} password {x.password.get_secret_value()}\n"
                   for h, x in seen.items())


def apt_auth_text(logins: tuple[MirrorLogin, ...]) -> str:
    """apt's ``auth.conf`` (apt_auth.conf(5)); the scheme is explicit, else apt uses it for https only."""
    lines = []
    for x in logins:
        machine = f"{x.scheme}://{x.host}" + (f":{x.port}" if x.port else "")
        lines.append(f"machine {machine} login {x.username} password {x.password.get_secret_value()}\n")
    return "".join(lines)


def check_hosts(logins: tuple[MirrorLogin, ...]) -> list[str]:
    """A problem per host given two different logins for pip (a netrc holds one per host)."""
    problems = []
    first: dict[str, MirrorLogin] = {}
    for login in logins:
        known = first.setdefault(login.host, login)
        if (known.username, known.password) != (login.username, login.password):
            problems.append(f"{login.field}: {login.host} is given two different logins ({known.field} and "
                            f"{login.field}); pip takes one login per host, give the same one")
    return problems


def strip_logins(spec: ImageSpec) -> tuple[ImageSpec, tuple[MirrorLogin, ...], list[str]]:
    """``spec`` with every mirror URL without credentials, the logins taken out, and the problems found."""
    m = spec.mirrors
    logins: list[MirrorLogin] = []
    problems: list[str] = []

    def clean(url: str | None, field: str) -> str | None:
        if url is None:
            return None
        try:
            url, login = split_login(url, field)
        except CredentialProblem as err:
            problems.append(str(err))
            return url
        if login is not None:
            logins.append(login)
        return url

    if m.miniconda_url and has_login(m.miniconda_url):
        problems.append("mirrors.miniconda_url: a login in the URL cannot reach the builder, which fetches the "
                        "installer itself (a login there would be in the build graph); serve "
                        "the installer without a login: it is checked by its sha256")
    mirrors = m.model_copy(update={
        "apt": clean(m.apt, "mirrors.apt"),
        "pip_index_url": clean(m.pip_index_url, "mirrors.pip_index_url"),
        "pip_extra_index_urls": tuple(clean(u, "mirrors.pip_extra_index_urls") for u in m.pip_extra_index_urls),
        "conda_channels": tuple(clean(u, "mirrors.conda_channels") for u in m.conda_channels),
        "torch_index_url": clean(m.torch_index_url, "mirrors.torch_index_url"),
    })
    found = tuple(logins)
    problems += check_hosts(tuple(x for x in found if x.field in PIP_FIELDS))
    return (spec.model_copy(update={"mirrors": mirrors}) if found else spec), found, problems


def has_login(url: str) -> bool:
    """Whether ``url`` has a ``user@`` or ``user:password@`` part."""
    return "@" in urllib.parse.urlsplit(url).netloc


def login_notes(logins: tuple[MirrorLogin, ...]) -> tuple[str, ...]:
    """What the user should know about the logins given (printed with the plan)."""
    if any(x.field in UNUSED_FIELDS for x in logins):
        return ("conda channel logins are left out of the image's .condarc (nothing fetches from the channels "
                "while building); give them at run time, e.g. in ~/.netrc",)
    return ()
