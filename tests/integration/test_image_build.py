"""The PyTorch image, built for real and checked the way a user would.

With the loopback stand-ins of conftest.py (a PEP 503 index with the torch 2.13.0+cpu wheel,
a stand-in Miniconda installer laying down a relocatable CPython 3.11 with pip) and real
PyPI through the CA-mounted proxy, exactly as a user in China points llbgen at mirrors:

1. ``llbgen build --network host --cpu --torch 2.13.0 --python 3.11 ...`` on the debootstrap
   Debian base, then ``llbgen verify`` on it (real OpenSSH client, real HTTP) exits 0;
2. the same spec on a second base (``llbgen-test/cuda-standin:bookworm``: same files, CUDA
   environment): the python, jupyter and torch layers have identical digests and progress shows
   their steps CACHED; the base and os layers differ; the runtime files under /init are one
   layer shared by both, and only the small /init/image-info.env layer (which records the base
   image and the tag) differs;
3. the image holds no CA bundle (filesystem, config, history), no default password, no host
   keys, no authorized key; its ``io.llbgen.spec`` label parses as a ResolvedSpec.

The build is the slow part (cold: a few minutes each on 2 cores; the pip cache mounts and
BuildKit's cache make reruns fast). Run with -x: later tests use the images of earlier ones.
"""

from __future__ import annotations

import json
import re
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from llbgen.fingerprint import FINGERPRINT_LABEL
from tests.integration.conftest import Mirror
from tests.integration.helpers import HOST_CA, cached_steps, llbgen

pytestmark = pytest.mark.integration

DEBIAN_CA_DIR = Path("/usr/share/ca-certificates")  # the distribution's own CAs on the host
CPU_TAG = "llbgen-test/pytorch:cpu"
SECOND_TAG = "llbgen-test/pytorch:cpu-on-cuda-standin"
BUILD_TIMEOUT = 1500
VERIFY_TIMEOUT = 600


@dataclass(frozen=True)
class Built:
    tag: str
    base: str
    output: str  # the build's plain progress and messages


def spec_flags(mirror: Mirror, base: str, builder: str) -> list[str]:
    return [
        "--network", "host",
        "--cpu", "--torch", "2.13.0", "--python", "3.11", "--torchvision", "none", "--torchaudio", "none",
        "--base-image", base, "--builder-image", builder,
        *mirror.build_flags(),
        "--pip-index-url", "https://pypi.org/simple",
        "--ca-cert", str(HOST_CA),
    ]


def build(mirror: Mirror, base: str, builder: str, tag: str, *extra: str) -> Built:
    """``llbgen build`` that always solves (an earlier run's image under ``tag`` would be up to date and show no steps)."""
    result = llbgen("build", *spec_flags(mirror, base, builder), "--progress", "plain", "-t", tag, "--always-solve",
                    *extra, timeout=BUILD_TIMEOUT)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"llbgen build -t {tag} failed (exit {result.returncode}):\n{output[-6000:]}"
    return Built(tag, base, output)


def inspect(ref: str) -> dict:
    out = subprocess.run(["docker", "image", "inspect", ref], check=True, capture_output=True, text=True).stdout
    return json.loads(out)[0]


def history(ref: str) -> list[dict]:
    """``docker history`` entries, oldest first."""
    out = subprocess.run(["docker", "history", "--no-trunc", "--format", "{{json .}}", ref], check=True,
                         capture_output=True, text=True).stdout
    return [json.loads(line) for line in reversed(out.splitlines()) if line.strip()]


def layer_kind(created_by: str) -> str:
    """Which stage made a layer, from the history entry llbgen writes for it."""
    if created_by.startswith("init:"):
        return "init"
    if created_by.startswith("python:") or "standin-py311.sh" in created_by:
        return "python"
    if "jupyterlab" in created_by:
        return "jupyter"
    if "torch==" in created_by:
        return "torch"
    if "apt-get" in created_by or created_by.startswith("os:"):
        return "os"
    return "base"


# llbgen's layers of the test images, in plan order (no extra pip packages): after the base's own.
PLAN_LAYERS = ("os", "python", "jupyter", "torch", "init", "init")


def named_layers(ref: str) -> list[tuple[str, str]]:
    """(stage, diff ID) for each layer of ``ref``, oldest first.

    BuildKit after 0.13 writes ``imported sha256:…`` instead of the step for a layer it took
    from a cache; such a layer among llbgen's is named by its place in the plan.
    """
    layers = inspect(ref)["RootFS"]["Layers"]
    entries = history(ref)
    if len(entries) != len(layers):  # drop config-only entries (ENV, LABEL, ...) if any
        entries = [e for e in entries if e.get("Size") not in ("0B", "0")]
    assert len(entries) == len(layers), f"{ref}: cannot pair {len(entries)} history entries with {len(layers)} layers"
    first_own = len(entries) - len(PLAN_LAYERS)
    kinds = [PLAN_LAYERS[i - first_own] if i >= first_own and e.get("CreatedBy", "").startswith("imported sha256:")
             else layer_kind(e.get("CreatedBy", "")) for i, e in enumerate(entries)]
    return list(zip(kinds, layers, strict=True))


def by_kind(layers: list[tuple[str, str]]) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for kind, diff_id in layers:
        result.setdefault(kind, []).append(diff_id)
    return result


def proxy_ca_lines() -> list[bytes]:
    """Distinctive base64 lines of the CAs in the host bundle that the distribution does not ship (the proxy's)."""
    def bodies(text: str) -> list[list[str]]:
        blocks = re.findall(r"-----BEGIN CERTIFICATE-----\s*(.*?)-----END CERTIFICATE-----", text, re.S)
        return [[line.strip() for line in b.split() if line.strip()] for b in blocks]

    shipped = set()
    for crt in DEBIAN_CA_DIR.rglob("*.crt"):
        shipped.update("".join(b) for b in bodies(crt.read_text(errors="replace")))
    lines = []
    for body in bodies(HOST_CA.read_text(errors="replace")):
        if "".join(body) not in shipped and len(body) > 4:
            lines += [body[len(body) // 2].encode(), body[len(body) // 2 + 1].encode()]
    return lines


def control_line() -> bytes | None:
    """A line of a CA the distribution ships (ISRG Root X1): the image's own ca-certificates must hold it."""
    crt = next(DEBIAN_CA_DIR.rglob("ISRG_Root_X1.crt"), None)
    if crt is None:
        return None
    body = [line.strip() for line in crt.read_text().split("-----")[2].split() if line.strip()]
    return body[len(body) // 2].encode()


@dataclass
class FilesystemScan:
    shadow: str
    hits: dict[bytes, list[str]]
    forbidden: list[str]  # host keys, authorized keys found in the image


def scan_filesystem(ref: str, needles: list[bytes]) -> FilesystemScan:
    """Stream ``docker export`` of a container of ``ref`` once: /etc/shadow, needle hits, forbidden files."""
    container = subprocess.run(["docker", "create", "--entrypoint", "true", ref], check=True, capture_output=True,
                               text=True).stdout.strip()
    hits: dict[bytes, list[str]] = {n: [] for n in needles}
    forbidden: list[str] = []
    shadow = ""
    overlap = max((len(n) for n in needles), default=1) - 1
    try:
        export = subprocess.Popen(["docker", "export", container], stdout=subprocess.PIPE)
        assert export.stdout is not None
        with tarfile.open(fileobj=export.stdout, mode="r|") as tar:
            for member in tar:
                name = member.name.lstrip("./")
                if re.fullmatch(r"etc/ssh/ssh_host_.*", name) or name == "root/.ssh/authorized_keys":
                    forbidden.append(name)
                if not member.isfile():
                    continue
                f = tar.extractfile(member)
                assert f is not None
                tail = b""
                while chunk := f.read(1 << 22):
                    data = tail + chunk
                    for needle in needles:
                        if needle in data and name not in hits[needle]:
                            hits[needle].append(name)
                    tail = data[-overlap:] if overlap else b""
                    if name == "etc/shadow":
                        shadow += data.decode("utf-8", "replace")
        assert export.wait() == 0, "docker export failed"
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True)
    return FilesystemScan(shadow, hits, forbidden)


def init_files(ref: str) -> dict[str, bytes]:
    """The files under /init of ``ref`` (path -> content)."""
    container = subprocess.run(["docker", "create", "--entrypoint", "true", ref], check=True, capture_output=True,
                               text=True).stdout.strip()
    files: dict[str, bytes] = {}
    try:
        cp = subprocess.Popen(["docker", "cp", f"{container}:/init", "-"], stdout=subprocess.PIPE)
        assert cp.stdout is not None
        with tarfile.open(fileobj=cp.stdout, mode="r|") as tar:
            for member in tar:
                if member.isfile():
                    f = tar.extractfile(member)
                    assert f is not None
                    files[member.name] = f.read()
        assert cp.wait() == 0
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True)
    return files


# --------------------------------------------------------------------------- the images


@pytest.fixture(scope="module")
def cpu_image(docker_engine: str, base_image: str, mirror: Mirror) -> Built:
    """The CPU image on the debootstrap Debian base (the builder image is the same Debian)."""
    return build(mirror, base_image, base_image, CPU_TAG)


@pytest.fixture(scope="module")
def second_image(cpu_image: Built, cuda_standin_base: str, base_image: str, mirror: Mirror) -> Built:
    """The same spec on the CUDA stand-in base, built after the first so its shared layers can come from the cache."""
    return build(mirror, cuda_standin_base, base_image, SECOND_TAG)


# --------------------------------------------------------------------------- the tests


def test_cpu_image_passes_verify(cpu_image: Built) -> None:
    result = llbgen("verify", cpu_image.tag, "--timeout", "240", timeout=VERIFY_TIMEOUT)
    assert result.returncode == 0, f"llbgen verify {cpu_image.tag} failed:\n{result.stdout}\n{result.stderr}"
    assert "OK: all" in result.stdout


def test_cpu_image_verifies_password_login(cpu_image: Built) -> None:
    result = llbgen("verify", cpu_image.tag, "--password", "--timeout", "240", timeout=VERIFY_TIMEOUT)
    assert result.returncode == 0, f"llbgen verify --password failed:\n{result.stdout}\n{result.stderr}"
    assert re.search(r"password login \(ROOT_PASSWORD\)\s*│\s*PASS", result.stdout), result.stdout


def test_spec_label_parses(cpu_image: Built, mirror: Mirror) -> None:
    from llbgen.spec import ResolvedSpec

    label = inspect(cpu_image.tag)["Config"]["Labels"]["io.llbgen.spec"]
    spec = ResolvedSpec.model_validate_json(label)
    assert (spec.torch, spec.python, spec.cpu, spec.torchaudio) == ("2.13.0", "3.11", True, None)
    assert spec.base_image == cpu_image.base
    assert spec.miniconda.sha256 == mirror.installer.sha256
    assert spec.torch_index_url == mirror.torch_index_url


def test_image_config(cpu_image: Built) -> None:
    config = inspect(cpu_image.tag)["Config"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["PATH"].startswith("/root/miniconda3/bin:")
    assert (env.get("LANG"), env.get("TZ"), env.get("SHELL")) == ("zh_CN.UTF-8", "Asia/Shanghai", "/bin/bash")
    assert {"22/tcp", "8888/tcp", "6006/tcp"} <= set(config.get("ExposedPorts") or {})
    assert config.get("WorkingDir") == "/root"


def test_nothing_secret_in_the_image(cpu_image: Built) -> None:
    """No CA bundle (files, config, history), no default password, no host keys, no authorized keys."""
    needles = proxy_ca_lines()
    if not needles:
        pytest.skip(f"{HOST_CA} holds only the distribution's CAs: nothing tells a leaked bundle from the image's own")
    control = control_line()
    scan = scan_filesystem(cpu_image.tag, needles + ([control] if control else []))
    if control:  # the scan does see certificates: the image's own bundle has this distribution CA
        assert "etc/ssl/certs/ca-certificates.crt" in scan.hits.pop(control), "control: the scan found no shipped CA"
    leaked = {n.decode(): where for n, where in scan.hits.items() if where}
    assert not leaked, f"the build's CA bundle is in the image: {leaked}"
    metadata = json.dumps(inspect(cpu_image.tag)) + json.dumps(history(cpu_image.tag))
    assert not [n for n in needles if n.decode() in metadata], "the CA bundle is in the image config or history"
    assert not scan.forbidden, f"baked into the image: {scan.forbidden}"

    root = next((line for line in scan.shadow.splitlines() if line.startswith("root:")), None)
    assert root is not None, "no root entry in /etc/shadow"
    password = root.split(":")[1]
    assert password in ("*", "!", "!*") or password.startswith("!"), f"root has a usable password in the image: {password[:3]}…"
    hashed = [line.split(":")[0] for line in scan.shadow.splitlines() if line.count(":") > 1 and line.split(":")[1].startswith("$")]
    assert not hashed, f"accounts with a password hash in the image: {hashed}"


def test_second_base_shares_python_jupyter_torch_layers(cpu_image: Built, second_image: Built) -> None:
    first, second = named_layers(cpu_image.tag), named_layers(second_image.tag)
    a, b = by_kind(first), by_kind(second)
    for kind in ("python", "jupyter", "torch"):
        assert a.get(kind), f"{cpu_image.tag}: no {kind} layer in {first}"
        assert a[kind] == b.get(kind), f"the {kind} layers differ between the two bases:\n{a[kind]}\n{b.get(kind)}"
    assert a["base"] != b["base"] and a.get("os") != b.get("os"), "the base and os layers should be the bases' own"
    # Each image is its base's layers, then llbgen's.
    assert [d for _, d in first][: len(a["base"])] == inspect(cpu_image.base)["RootFS"]["Layers"]
    assert [d for _, d in second][: len(b["base"])] == inspect(second_image.base)["RootFS"]["Layers"]
    assert [k for k, _ in first] == [k for k, _ in second], "the two images have different layer plans"

    # The runtime files are one layer both images share; image-info.env (tag, base image) is a layer of its own.
    assert len(a["init"]) == len(b["init"]) == 2, (first, second)
    assert a["init"][0] == b["init"][0], "the runtime files layer should be shared"
    assert a["init"][1] != b["init"][1], "image-info.env names each image"
    init_a, init_b = init_files(cpu_image.tag), init_files(second_image.tag)
    info = "init/image-info.env"
    assert {k: v for k, v in init_a.items() if k != info} == {k: v for k, v in init_b.items() if k != info}
    diff = set(init_a[info].decode().splitlines()) ^ set(init_b[info].decode().splitlines())
    assert {line.split("=", 1)[0] for line in diff} <= {"IMAGE", "BASE_IMAGE", "CUDA_VERSION"}, diff


def test_second_build_reports_shared_steps_cached(second_image: Built) -> None:
    steps = cached_steps(second_image.output)
    for stage in ("python:", "jupyter:", "torch:"):
        named = {name: cached for name, cached in steps.items() if name.startswith(stage)}
        assert named, f"no {stage} step in the progress:\n{second_image.output[-3000:]}"
        assert all(named.values()), f"{stage} steps not CACHED on the second base: {named}"


def test_second_base_keeps_cuda_environment(second_image: Built) -> None:
    env = dict(item.split("=", 1) for item in inspect(second_image.tag)["Config"]["Env"])
    assert env.get("NVIDIA_REQUIRE_CUDA", "").startswith("cuda>=12.1"), env
    assert env.get("CUDA_VERSION") == "12.1.0"
    assert "/usr/local/cuda/bin" in env["PATH"].split(":") and env["PATH"].startswith("/root/miniconda3/bin:")


def test_image_info_and_labels_say_what_the_base_is(cpu_image: Built, second_image: Built) -> None:
    """Both bases are Debian and say nothing of their distro; the stand-in has CUDA 12.1.0 under a CPU spec."""
    info = "init/image-info.env"
    first = dict(line.split("=", 1) for line in init_files(cpu_image.tag)[info].decode().splitlines())
    second = dict(line.split("=", 1) for line in init_files(second_image.tag)[info].decode().splitlines())
    assert "DISTRO" not in first and "DISTRO" not in second, (first, second)  # never a guessed ubuntu22.04
    assert "CUDA_VERSION" not in first and second["CUDA_VERSION"] == "12.1.0", (first, second)
    assert first["WHEEL_VARIANT"] == second["WHEEL_VARIANT"] == "cpu"
    labels = inspect(second_image.tag)["Config"]["Labels"]
    assert labels["org.opencontainers.image.description"].startswith(
        f"PyTorch 2.13.0 (Python 3.11, CUDA 12.1.0, {second_image.base})"), labels
    assert "ubuntu" not in inspect(cpu_image.tag)["Config"]["Labels"]["org.opencontainers.image.description"]
    # The CPU spec on a CUDA base was said before the build.
    assert (f"llbgen: warning: base {second_image.base} has CUDA 12.1.0 but the spec is CPU-only"
            in second_image.output), second_image.output[-3000:]
    assert "llbgen: warning:" not in cpu_image.output


# --------------------------------------------------------------------------- the up-to-date check

UP_TO_DATE_TAG = "llbgen-test/pytorch:cpu-up-to-date"
STEP_LINE = re.compile(r"^#\d+ ", re.M)  # a step BuildKit reported: something was solved


def build_as_user(mirror: Mirror, base: str, *tags_and_flags: str) -> subprocess.CompletedProcess[str]:
    """``llbgen build`` as a user runs it: the up-to-date check on."""
    result = llbgen("build", *spec_flags(mirror, base, base), "--progress", "plain", *tags_and_flags,
                    timeout=BUILD_TIMEOUT)
    assert result.returncode == 0, f"llbgen build {tags_and_flags} failed:\n{result.stderr[-6000:]}"
    return result


def printed_digest(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout.strip().splitlines()[-1]


def test_unchanged_rebuild_is_up_to_date_without_a_solve(cpu_image: Built, mirror: Mirror) -> None:
    result = build_as_user(mirror, cpu_image.base, "-t", cpu_image.tag)
    assert f"up to date: {cpu_image.tag} already holds the image" in result.stderr, result.stderr
    assert not STEP_LINE.search(result.stderr), f"BuildKit was asked to solve:\n{result.stderr[-3000:]}"
    image = inspect(cpu_image.tag)
    assert printed_digest(result) == image["Id"]
    fingerprint = image["Config"]["Labels"][FINGERPRINT_LABEL]
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", fingerprint) and f"build fingerprint {fingerprint[:19]}" in result.stderr


def test_up_to_date_only_while_every_tag_holds_this_exact_image(cpu_image: Built, mirror: Mirror) -> None:
    tag, second_tag = UP_TO_DATE_TAG, f"{UP_TO_DATE_TAG}-2"
    subprocess.run(["docker", "image", "rm", "-f", tag, second_tag], capture_output=True, check=False)
    try:
        # A new tag is a new graph (/init/image-info.env names it): solved, all but that file from the cache.
        first = build_as_user(mirror, cpu_image.base, "-t", tag)
        assert "up to date" not in first.stderr and STEP_LINE.search(first.stderr)
        digest = printed_digest(first)
        assert digest == inspect(tag)["Id"] != inspect(cpu_image.tag)["Id"]

        again = build_as_user(mirror, cpu_image.base, "-t", tag)
        assert "up to date" in again.stderr and not STEP_LINE.search(again.stderr) and printed_digest(again) == digest

        # --always-solve asks BuildKit anyway: every step cached, the same image.
        forced = build_as_user(mirror, cpu_image.base, "-t", tag, "--always-solve")
        assert "up to date" not in forced.stderr and printed_digest(forced) == digest
        steps = {name: cached for name, cached in cached_steps(forced.stderr).items()
                 if name.startswith(("os:", "python:", "jupyter:", "torch:"))}
        assert steps and all(steps.values()), steps

        # A second tag that does not hold the image yet: solved, then both are up to date.
        both = build_as_user(mirror, cpu_image.base, "-t", tag, "-t", second_tag)
        assert "up to date" not in both.stderr and printed_digest(both) == digest == inspect(second_tag)["Id"]
        assert "up to date" in build_as_user(mirror, cpu_image.base, "-t", tag, "-t", second_tag).stderr

        # The tag moved to another image (the base): solved, and the tag holds the build's image again.
        subprocess.run(["docker", "tag", cpu_image.base, tag], check=True)
        moved = build_as_user(mirror, cpu_image.base, "-t", tag)
        assert "up to date" not in moved.stderr and STEP_LINE.search(moved.stderr)
        assert printed_digest(moved) == digest == inspect(tag)["Id"]
    finally:
        subprocess.run(["docker", "image", "rm", "-f", tag, second_tag], capture_output=True, check=False)
