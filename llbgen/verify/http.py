"""HTTP checks against the published Jupyter and TensorBoard ports: plain urllib, no redirects followed, no proxies.

``classify_lab`` says what a ``/jupyter/lab`` answer means, so the rule is testable without a server.

>>> classify_lab(302, "/jupyter/login?next=%2Fjupyter%2Flab", "")
('login', 'redirect to /jupyter/login?next=%2Fjupyter%2Flab')
>>> classify_lab(200, None, '<script id="jupyter-config-data">{}</script><title>JupyterLab</title>')[0]
'lab'
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from dataclasses import dataclass


@dataclass(frozen=True)
class Answer:
    status: int  # 0 when nothing answered
    headers: dict[str, str]
    body: str
    error: str = ""

    @property
    def location(self) -> str | None:
        return self.headers.get("location")

    def describe(self) -> str:
        if not self.status:
            return f"no answer ({self.error})"
        where = f" -> {self.location}" if self.location else ""
        return f"HTTP {self.status}{where}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001 - urllib's signature
        return None


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def get(url: str, *, headers: dict[str, str] | None = None, timeout: float = 10.0) -> Answer:
    """GET ``url`` once; HTTP errors are answers too (status, headers, body)."""
    request = urllib.request.Request(url, headers={"User-Agent": "llbgen-verify", **(headers or {})})
    try:
        with _OPENER.open(request, timeout=timeout) as resp:
            body = resp.read(1 << 20).decode("utf-8", "replace")
            return Answer(resp.status, {k.lower(): v for k, v in resp.headers.items()}, body)
    except urllib.error.HTTPError as err:
        body = err.read(1 << 20).decode("utf-8", "replace") if err.fp else ""
        return Answer(err.code, {k.lower(): v for k, v in (err.headers or {}).items()}, body)
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        return Answer(0, {}, "", str(reason))


def wait_for(url: str, deadline: float, *, want: int = 200, interval: float = 1.0) -> Answer:
    """Poll ``url`` until it answers ``want`` or ``deadline`` (a time.monotonic() value) passes; the last answer."""
    while True:
        answer = get(url, timeout=min(10.0, max(1.0, deadline - time.monotonic())))
        if answer.status == want or time.monotonic() >= deadline:
            return answer
        time.sleep(interval)


def is_lab_page(body: str) -> bool:
    """True for the JupyterLab application page (not the login form)."""
    return "jupyter-config-data" in body and ("JupyterLab" in body or "jupyterlab" in body.lower()) and 'name="password"' not in body


def classify_lab(status: int, location: str | None, body: str) -> tuple[str, str]:
    """What a ``/jupyter/lab`` answer is: ``lab`` (the application), ``login`` (demands a token) or ``other``."""
    if status in (301, 302, 303, 307, 308):
        target = location or ""
        if "/login" in target:
            return "login", f"redirect to {target}"
        return "other", f"redirect to {target or '(no Location)'}"
    if status in (401, 403):
        return "login", f"HTTP {status}"
    if status == 200:
        if is_lab_page(body):
            return "lab", "HTTP 200, the JupyterLab page"
        if 'name="password"' in body or ("token" in body.lower() and "<form" in body):
            return "login", "HTTP 200, a login form"
        return "other", "HTTP 200, not the JupyterLab page"
    return "other", f"HTTP {status}" if status else "no answer"
