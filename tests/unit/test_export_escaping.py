"""``export-dockerfile``: every value is data in build.sh, the Dockerfile and README.md, and no proxy password
is written anywhere.

build.sh is run for real with a stand-in ``docker`` first on PATH that records its arguments and the
proxy variables it was given, so the test sees exactly what ``docker buildx build`` would.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from llbgen.dockerfile import render_export, write_export
from llbgen.dockerfile.text import arg_defaults
from llbgen.errors import UsageError
from llbgen.spec import load_spec

PASSWORD = "s3cr3t-Pa55"
PROXY = f"http://builder:{PASSWORD}@proxy.example:3128"
# Characters a URL may hold that mean something to sh, to Dockerfile ARG parsing and to Markdown.
ODD_URL = "https://mirror.example/conda?a=1&b='x'$HOME;`id`|\"q\"\\"

FAKE_DOCKER = """#!/bin/sh
out="$DOCKER_ARGS_OUT"
: > "$out"
for arg in "$@"; do printf '%s\\n' "$arg" >> "$out"; done
printf 'ENV https_proxy=%s\\n' "${https_proxy-<unset>}" >> "$out"
printf 'ENV HTTPS_PROXY=%s\\n' "${HTTPS_PROXY-<unset>}" >> "$out"
printf 'ENV no_proxy=%s\\n' "${no_proxy-<unset>}" >> "$out"
"""


def exported(tmp_path: Path, **spec) -> Path:
    resolved = load_spec(None, {"torch": "2.3.0", "cpu": True, **spec})
    out = tmp_path / "ctx"
    write_export(render_export(resolved, tag="127.0.0.1:5000/llbgen-test/escaping:1"), out)
    return out


def run_build_script(ctx: Path, tmp_path: Path, env: dict[str, str], *args: str):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "docker").write_text(FAKE_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    record = tmp_path / "docker-args"
    base = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "no_proxy")}
    base.update({"PATH": f"{bin_dir}:/usr/bin:/bin", "DOCKER_ARGS_OUT": str(record), **env})
    proc = subprocess.run(["sh", str(ctx / "build.sh"), *args], capture_output=True, text=True, env=base, timeout=60)
    return proc, (record.read_text().splitlines() if record.exists() else [])


def test_no_proxy_password_in_any_generated_file(tmp_path: Path) -> None:
    ctx = exported(tmp_path, **{"proxy.https_proxy": PROXY, "proxy.http_proxy": PROXY})
    files = [p for p in ctx.rglob("*") if p.is_file()]
    assert len(files) > 5
    for path in files:
        assert PASSWORD.encode() not in path.read_bytes(), path
    script = (ctx / "build.sh").read_text()
    assert "--build-arg https_proxy \\\n" in script and "--build-arg HTTP_PROXY \\\n" in script


def test_build_script_takes_the_proxy_from_the_environment(tmp_path: Path) -> None:
    ctx = exported(tmp_path, **{"proxy.https_proxy": PROXY, "proxy.no_proxy": "localhost,.corp"})
    proc, args = run_build_script(ctx, tmp_path, {"HTTPS_PROXY": PROXY}, "--progress", "plain")
    assert proc.returncode == 0, proc.stderr
    assert args[:2] == ["buildx", "build"]
    # by name only: docker reads the value from the environment it is given
    assert [args[i + 1] for i, a in enumerate(args) if a == "--build-arg" and "proxy" in args[i + 1].lower()] == [
        "https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY"]
    assert f"ENV https_proxy={PROXY}" in args and f"ENV HTTPS_PROXY={PROXY}" in args  # either spelling given
    assert "ENV no_proxy=localhost,.corp" in args  # not a secret: the export's value is the default
    assert args[-6:-3] == ["--progress", "plain", "."]


def test_build_script_stops_when_a_proxy_with_a_password_is_not_set(tmp_path: Path) -> None:
    ctx = exported(tmp_path, **{"proxy.https_proxy": PROXY})
    proc, args = run_build_script(ctx, tmp_path, {})
    assert proc.returncode == 2 and args == []  # docker never ran
    assert "build.sh: set https_proxy to the proxy the download steps need" in proc.stderr


def test_a_proxy_without_credentials_is_the_default(tmp_path: Path) -> None:
    ctx = exported(tmp_path, **{"proxy.https_proxy": "http://proxy.example:3128"})
    proc, args = run_build_script(ctx, tmp_path, {})
    assert proc.returncode == 0, proc.stderr
    assert "ENV https_proxy=http://proxy.example:3128" in args


def test_values_reach_docker_as_data(tmp_path: Path) -> None:
    """An odd (but accepted) Miniconda URL is one argument, unchanged: nothing in it runs."""
    ctx = exported(tmp_path, **{"mirrors.miniconda_url": ODD_URL})
    for shell in ("sh", "bash"):
        assert subprocess.run([shell, "-n", str(ctx / "build.sh")]).returncode == 0
    proc, args = run_build_script(ctx, tmp_path, {})
    assert proc.returncode == 0, proc.stderr
    expected = f"MINICONDA_URL={ODD_URL}/Miniconda3-py38_23.11.0-2-Linux-x86_64.sh"
    assert expected in args
    # The Dockerfile's ARG default is the same value (double-quoted, \ " $ escaped: Dockerfile reads it back).
    assert arg_defaults((ctx / "Dockerfile").read_text())["MINICONDA_URL"] == expected.split("=", 1)[1]
    # README.md: a code span with a longer fence than the backticks in the value, | escaped for the table.
    readme = (ctx / "README.md").read_text()
    assert "| `MINICONDA_URL` | ``" + expected.split("=", 1)[1].replace("|", "\\|") + "`` |" in readme


def test_a_tag_is_checked_before_it_is_written(tmp_path: Path) -> None:
    resolved = load_spec(None, {"torch": "2.3.0", "cpu": True})
    for tag in ("x:1\ntouch /tmp/pwned", "UPPER/x:1", "", "x:1 y"):
        with pytest.raises(UsageError, match="is not an image reference"):
            render_export(resolved, tag=tag)


def test_a_download_url_that_is_no_arg_is_quoted_in_add() -> None:
    """ADD expands ``$`` and reads quotes in its source: a URL written there directly is quoted as data
    (a URL that is an ARG, like MINICONDA_URL, is quoted in its ARG default instead)."""
    from types import SimpleNamespace

    from llbgen.dockerfile.layout import _Renderer
    from stages import StageContext, layer_plan
    from stages.step import HttpFile

    resolved = load_spec(None, {"torch": "2.3.0", "cpu": True})
    ctx = StageContext.create(resolved)
    renderer = _Renderer(layer_plan(ctx, merge_supported=True), ctx)
    url = "https://files.example/a?b=1&c=$HOME\"x"
    wheel = HttpFile(url, "0" * 64, "a.whl", "/tmp/d")
    layer = SimpleNamespace(name="torch", steps=[SimpleNamespace(http_files=(wheel,))])
    lines, _ = renderer.downloads(layer)
    assert f'ADD --checksum=sha256:{"0" * 64} "https://files.example/a?b=1&c=\\$HOME\\"x" /a.whl' in lines
