"""Bad input through the command line: one clear line, a non-zero exit, no traceback — before any build.

Each case runs ``python -m llbgen`` with no builder reachable (BUILDKIT_HOST and DOCKER_HOST point
at nothing, ``--builder`` at a closed port), so a check that happened only after connecting would
show up as a connection error instead of the problem named here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLOSED = "tcp://127.0.0.1:1"  # nothing listens: a check after connecting would report the connection
CPU = ("--torch", "2.3.0", "--cpu")


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BUILDKIT_", "DOCKER_"))}
    env.update({"BUILDKIT_HOST": "unix:///nonexistent.sock", "DOCKER_HOST": "unix:///nonexistent.sock",
                "PYTHONPATH": str(ROOT)})
    return subprocess.run([sys.executable, "-m", "llbgen", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=120)


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The single ``llbgen: error:`` line of a refused command (asserting that is all there is)."""
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("llbgen: error: "), lines[0]
    assert not any(ord(c) < 0x20 and c != "\t" for c in lines[0]), repr(lines[0])  # nothing raw to the terminal
    return lines[0]


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "distro.toml").write_text('torch = "2.3.0"\ndistro = "x/y"\n')
    (tmp_path / "base.toml").write_text('torch = "2.3.0"\ncpu = true\nbase_image = "a::b@@"\n')
    (tmp_path / "latin1.toml").write_bytes('torch = "2.3.0"\n# café\n'.encode("latin-1"))
    (tmp_path / "bell.toml").write_text('torch = "2.3.0"\ncpu = true\ntag_template = "x:{torch}\\u0007"\n')
    (tmp_path / "bake-latin1.toml").write_bytes('cpu = true\n# café\n[axes]\ntorch = ["2.3.0"]\n'.encode("latin-1"))
    (tmp_path / "raises.py").write_text("def graph():\n    raise RuntimeError('no base for you')\n")
    (tmp_path / "raises_with_resolve.py").write_text("def graph(resolve):\n    raise RuntimeError('never')\n")
    return tmp_path


# (command line, what the one line must say); {d} is the fixture's directory.
CASES = {
    # item 5: tags
    "build-tag-upper": (["build", *CPU, "-t", "UPPER/x:1", "--builder", CLOSED],
                        "--tag 'UPPER/x:1' is not an image reference: repository names must be lowercase"),
    "build-tag-empty": (["build", *CPU, "-t", "", "--builder", CLOSED], "--tag '' is not an image reference: it is empty"),
    "plan-tag-newline": (["plan", *CPU, "-t", "x\ntouch /tmp/pwned", "--builder", CLOSED], "control character"),
    "build-tag-digest": (["build", *CPU, "-t", "x@sha256:" + "a" * 64, "--dry-run", "--builder", CLOSED],
                         "has a digest"),
    "solve-tag-upper": (["solve", "examples/graphs/hello.py:graph", "-t", "Pytorch:1", "--builder", CLOSED],
                        "--tag 'Pytorch:1' is not an image reference"),
    "solve-output-name": (["solve", "examples/graphs/hello.py:graph", "--output", "type=image,name=A:1",
                           "--builder", CLOSED], "--output name='A:1' is not an image reference"),
    "solve-cache-ref": (["solve", "examples/graphs/hello.py:graph", "--output", "type=image,name=a:1",
                         "--cache-to", "type=registry,ref=reg.example.com/Cache:1", "--builder", CLOSED],
                        "--cache-to ref='reg.example.com/Cache:1' is not an image reference"),
    "export-tag-newline": (["export-dockerfile", *CPU, "-o", "{d}/out", "-t", "x:1\ntouch /tmp/pwned"],
                           "is not an image reference: it contains a space or a control character"),
    "export-tag-empty": (["export-dockerfile", *CPU, "-o", "{d}/out", "-t", ""], "it is empty"),
    "tag-template-upper": (["plan", *CPU, "--tag-template", "Pytorch:{torch}", "--builder", CLOSED],
                           "tag_template: the rendered tag 'Pytorch:2.3.0' is not an image reference: repository "
                           "names must be lowercase"),
    "verify-image": (["verify", "a::b@@"], "IMAGE 'a::b@@' is not an image reference"),
    # item 12: distro, base image, TOML, secrets, graphs, control characters
    "distro-flag": (["plan", *CPU, "--distro", "UBUNTU", "--builder", CLOSED],
                    "distro: 'UBUNTU' is not a distro like ubuntu22.04"),
    "distro-toml": (["plan", "--config", "{d}/distro.toml", "--builder", CLOSED],
                    "distro: 'x/y' is not a distro like ubuntu22.04"),
    "distro-export": (["export-dockerfile", *CPU, "--distro", "UBUNTU", "-o", "{d}/out"], "distro: 'UBUNTU'"),
    "base-flag": (["plan", *CPU, "--base-image", "a::b@@", "--builder", CLOSED],
                  "base_image: 'a::b@@' is not an image reference"),
    "base-toml": (["build", "--config", "{d}/base.toml", "--builder", CLOSED],
                  "base_image: 'a::b@@' is not an image reference"),
    "base-local-scheme": (["plan", *CPU, "--base-image", "local://x", "--builder", CLOSED],
                          "base_image: 'local://x' is not an image reference: a URL or a scheme"),
    "base-https": (["export-dockerfile", *CPU, "--base-image", "https://example.com/x.tar", "-o", "{d}/out"],
                   "base_image: 'https://example.com/x.tar' is not an image reference: a URL or a scheme"),
    "builder-image": (["plan", *CPU, "--builder-image", "Debian:12", "--builder", CLOSED],
                      "builder_image: 'Debian:12' is not an image reference: repository names must be lowercase"),
    "config-not-utf8": (["plan", "--config", "{d}/latin1.toml", "--builder", CLOSED],
                        "latin1.toml is not UTF-8 text (byte 0xe9 at offset 21); save it as UTF-8"),
    "bake-not-utf8": (["bake", "{d}/bake-latin1.toml", "--print"],
                      "bake-latin1.toml is not UTF-8 text (byte 0xe9 at offset 16); save it as UTF-8"),
    "secret-dev-zero-build": (["build", *CPU, "--secret", "id=big,src=/dev/zero", "--dry-run", "--builder", CLOSED],
                              "--secret id=big: larger than 500 KiB, the most BuildKit passes as a secret"),
    "secret-dev-zero-solve": (["solve", "examples/graphs/hello.py:graph", "--output", "type=image,name=a:1",
                               "--secret", "id=big,src=/dev/zero", "--builder", CLOSED], "larger than 500 KiB"),
    "graph-raises-llb": (["llb", "{d}/raises.py:graph", "--format", "json"],
                         "graph '{d}/raises.py:graph': graph() raised RuntimeError: no base for you"),
    "graph-raises-solve": (["solve", "{d}/raises.py:graph", "--output", "type=image,name=a:1", "--builder", CLOSED],
                           "graph() raised RuntimeError: no base for you"),
    "graph-missing-solve": (["solve", "{d}/missing.py:graph", "--output", "type=image,name=a:1",
                             "--builder", CLOSED], "graph file {d}/missing.py not found"),
    "esc-pip-package": (["plan", *CPU, "--pip-package", "numpy\x1b[2J", "--builder", CLOSED],
                        "pip_packages: 'numpy\\x1b[2J' contains a control character"),
    "bel-proxy": (["export-dockerfile", *CPU, "--https-proxy", "http://p.example:3128/\x07", "-o", "{d}/out"],
                  "proxy.https_proxy: 'http://p.example:3128/\\x07' contains a control character"),
    "bel-tag-template-toml": (["plan", "--config", "{d}/bell.toml", "--builder", CLOSED],
                              "tag_template: 'x:{{torch}}\\x07' contains a control character"),
    "esc-mirror": (["build", *CPU, "--pip-index-url", "https://pypi.example/\x1b]0;x\x07", "--builder", CLOSED],
                   "mirrors.pip_index_url: 'https://pypi.example/\\x1b]0;x\\x07' contains a control character"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_before_any_build(case: str, files: Path) -> None:
    args, expected = CASES[case]
    line = one_error_line(run_cli(*(a.replace("{d}", str(files)) for a in args)))
    assert expected.replace("{d}", str(files)).replace("{{", "{").replace("}}", "}") in line, line
    assert "cannot reach BuildKit" not in line
    assert not (files / "out").exists()  # export-dockerfile wrote nothing


def test_a_graph_that_needs_the_builder_is_checked_up_to_it(files: Path) -> None:
    """A function taking ``resolve`` runs once a builder answers; its file and name are checked before."""
    proc = run_cli("solve", f"{files}/raises_with_resolve.py:nothing", "--output", "type=image,name=a:1",
                   "--builder", CLOSED)
    assert "has no 'nothing'" in one_error_line(proc)
    proc = run_cli("solve", f"{files}/raises_with_resolve.py:graph", "--output", "type=image,name=a:1",
                   "--builder", CLOSED)
    assert "cannot reach BuildKit at tcp://127.0.0.1:1" in one_error_line(proc)


def test_build_and_export_take_the_same_miniconda_urls(tmp_path: Path) -> None:
    """A URL llbgen build takes (a query, a quote, a dollar) is a quoted Dockerfile ARG default, not an error."""
    url = "https://mirror.example/conda?token=a&b=it's$HOME"
    proc = run_cli("plan", *CPU, "--miniconda-url", url, "--builder", CLOSED)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "ctx"
    proc = run_cli("export-dockerfile", *CPU, "--miniconda-url", url, "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    dockerfile = (out / "Dockerfile").read_text()
    assert ('ARG MINICONDA_URL="https://mirror.example/conda?token=a&b=it\'s\\$HOME/'
            'Miniconda3-py38_23.11.0-2-Linux-x86_64.sh"\n') in dockerfile


def test_bake_reports_every_problem_of_the_file_in_one_error(tmp_path: Path) -> None:
    """The file's shape, --set, every variant's spec and every tag template: one error, one pass."""
    bake = tmp_path / "bake.toml"
    bake.write_text('cpu = true\ncolour = "blue"\ntag = "Team/pytorch:{torch}"\n'
                    '[axes]\ntorch = ["2.3.0", "9.9.9"]\n')
    proc = run_cli("bake", str(bake), "--print", "--set", "nope=1")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("llbgen: error: 4 problems:\n"), proc.stderr
    for expected in ("bake.toml: colour: unknown key",  # the file's shape
                     "--set nope: unknown key",  # the command line
                     "torch: unknown release 9.9.9",  # a variant's spec
                     # the tag, for the variant that failed too: its fixed part is wrong for every variant
                     "bake.toml: tag 'Team/pytorch:{torch}': 'Team/pytorch:0' is not an image reference"):
        assert expected in proc.stderr, proc.stderr


def test_bake_checks_clashes_beside_other_problems(tmp_path: Path) -> None:
    bake = tmp_path / "bake.toml"
    bake.write_text('cpu = true\ntag = "x:1"\n[axes]\ntorch = ["2.3.0", "2.3.1", "9.9.9"]\n')
    proc = run_cli("bake", str(bake), "--print")
    assert "torch: unknown release 9.9.9" in proc.stderr and "would both write x:1" in proc.stderr, proc.stderr


def test_control_characters_from_a_file_are_refused(tmp_path: Path) -> None:
    """A NUL cannot come through argv, but TOML can carry one (and every other control character)."""
    from llbgen.errors import UsageError
    from llbgen.spec import load_spec

    config = tmp_path / "llbgen.toml"
    config.write_text('torch = "2.3.0"\ncpu = true\nca_cert = "ca\\u0000.pem"\npip_packages = ["a\\u001b[2J"]\n'
                      '[mirrors]\napt = "https://a.example/\\u0007"\n[proxy]\nno_proxy = "x\\u009b"\n')
    with pytest.raises(UsageError) as err:
        load_spec(config)
    text = str(err.value)
    for field, shown in (("ca_cert", r"'ca\x00.pem'"), ("pip_packages", r"'a\x1b[2J'"),
                         ("mirrors.apt", r"'https://a.example/\x07'"), ("proxy.no_proxy", r"'x\x9b'")):
        assert f"{field}: {shown} contains a control character" in text, text
    assert not any(c in text for c in "\x00\x1b\x07\x9b")


BAD_VALUES = ("", "UPPER", "x/y", "a::b@@", "local://x", "3", "\x1b", 3, 1.5, True, ["x"], {"k": "v"})


@pytest.mark.parametrize("field", ["torch", "torchvision", "torchaudio", "cuda", "cpu", "cudnn", "python", "distro",
                                   "flavour", "base_image", "builder_image", "apt_packages", "pip_packages",
                                   "miniconda_installer", "miniconda_sha256", "tag_template", "ca_cert",
                                   "mirrors", "proxy"])
def test_any_bad_value_of_any_field_is_a_problem_not_a_crash(field: str) -> None:
    from llbgen.spec import check_values

    for value in BAD_VALUES:
        for base in ({"torch": "2.3.0"}, {"torch": "2.3.0", "cpu": True}, {"torch": "2.3.0", "cuda": "12.1.1"}):
            resolved, problems = check_values({**base, field: value})
            assert resolved is not None or problems, (field, value)
