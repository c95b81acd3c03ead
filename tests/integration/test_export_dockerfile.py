"""``llbgen export-dockerfile``, built for real with ``docker buildx build`` and compared with ``llbgen build``.

1. export the image-build test's spec (loopback stand-ins, ``--network host``, the host CA
   bundle) — with no builder contacted — and build it with the generated ``build.sh``: the real
   Docker CLI and buildx plugin on the same engine;
2. ``llbgen verify`` passes on that image exactly as on the ``llbgen build`` image;
3. the two images have the same file tree under /root/miniconda3, /init and /etc (type, mode,
   owner, content, link target) apart from timestamps, logs, caches, bytecode and the entries
   listed in ``LEGITIMATE`` with their reasons — any other difference is listed;
4. their image configs agree (the one documented exception: the base digest label, which only
   a builder that resolved the base can write);
5. the Dockerfile image keeps python, jupyter and torch as layers of their own, and the CA bundle
   is nowhere in it.

Run with -x: later tests use the images of earlier ones. Cold, the Dockerfile build takes a few
minutes (apt, pip from PyPI through the proxy; the pip cache mount is shared with llbgen build's).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from llbgen.fingerprint import FINGERPRINT_LABEL
from tests.integration.conftest import Mirror
from tests.integration.test_image_build import (
    BUILD_TIMEOUT,
    VERIFY_TIMEOUT,
    Built,
    build,
    control_line,
    history,
    inspect,
    llbgen,
    proxy_ca_lines,
    spec_flags,
)

pytestmark = pytest.mark.integration

DOCKERFILE_TAG = "llbgen-test/pytorch:cpu-dockerfile"
LLBGEN_TAG = "llbgen-test/pytorch:cpu-llbgen-for-dockerfile"
COMPARED = ("root/miniconda3", "init", "etc")
# Left out of the comparison: logs and caches (none are expected under the compared roots).
IGNORED = ("*.log", "*/.cache/*")
# Entries that legitimately differ between the two images (glob -> why). Timestamps are never compared.
LEGITIMATE = {
    "init/image-info.env": "records the tag each image was built under (IMAGE=); compared without that line below",
}
# Compared by presence, type, mode and owner, not content (glob -> why).
CONTENT_DIFFERS = {
    "*.pyc": "bytecode embeds its source file's mtime, i.e. when pip unpacked the wheel in each build",
}


@dataclass(frozen=True)
class Entry:
    kind: str  # file, dir, symlink, other
    mode: int
    uid: int
    gid: int
    content: str  # sha256 of a file, target of a symlink, "" otherwise

    def describe(self) -> str:
        what = {"file": f"sha256 {self.content[:12]}", "symlink": f"-> {self.content}"}.get(self.kind, "")
        return f"{self.kind} {self.mode:o} {self.uid}:{self.gid} {what}".rstrip()


@dataclass
class Scan:
    tree: dict[str, Entry]
    hits: dict[bytes, list[str]]


def ignored(path: str) -> bool:
    return any(fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch("/" + path, pattern) for pattern in IGNORED)


def scan_image(ref: str, needles: list[bytes] = ()) -> Scan:
    """One pass over ``docker export`` of a container of ``ref``: the compared trees, and where each needle is."""
    container = subprocess.run(["docker", "create", "--entrypoint", "true", ref], check=True, capture_output=True,
                               text=True).stdout.strip()
    tree: dict[str, Entry] = {}
    hits: dict[bytes, list[str]] = {n: [] for n in needles}
    overlap = max((len(n) for n in needles), default=1) - 1
    try:
        export = subprocess.Popen(["docker", "export", container], stdout=subprocess.PIPE)
        assert export.stdout is not None
        with tarfile.open(fileobj=export.stdout, mode="r|") as tar:
            for member in tar:
                name = member.name.lstrip("./").rstrip("/")
                wanted = any(name == root or name.startswith(root + "/") for root in COMPARED) and not ignored(name)
                if member.islnk():  # a hard link: the same content as its target, seen earlier
                    target = tree.get(member.linkname.lstrip("./"))
                    if wanted and target is not None:
                        tree[name] = Entry("file", member.mode, member.uid, member.gid, target.content)
                    continue
                if member.isfile():
                    f = tar.extractfile(member)
                    assert f is not None
                    digest, tail = hashlib.sha256(), b""
                    while chunk := f.read(1 << 22):
                        digest.update(chunk)
                        data = tail + chunk
                        for needle in needles:
                            if needle in data and name not in hits[needle]:
                                hits[needle].append(name)
                        tail = data[-overlap:] if overlap else b""
                    content = "" if any(fnmatch.fnmatch(name, p) for p in CONTENT_DIFFERS) else digest.hexdigest()
                    entry = Entry("file", member.mode, member.uid, member.gid, content)
                elif member.isdir():
                    entry = Entry("dir", member.mode, member.uid, member.gid, "")
                elif member.issym():
                    entry = Entry("symlink", member.mode, member.uid, member.gid, member.linkname)
                else:
                    entry = Entry("other", member.mode, member.uid, member.gid, str(member.type))
                if wanted or name == "root":
                    tree[name] = entry
        assert export.wait() == 0, "docker export failed"
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True)
    return Scan(tree, hits)


def file_text(ref: str, path: str) -> str:
    out = subprocess.run(["docker", "run", "--rm", "--entrypoint", "cat", ref, path], check=True,
                         capture_output=True, text=True)
    return out.stdout


def tree_differences(a: dict[str, Entry], b: dict[str, Entry]) -> list[str]:
    """Every path whose entry differs (or exists on one side only), minus the LEGITIMATE ones."""
    out = []
    for path in sorted(a.keys() | b.keys()):
        if any(fnmatch.fnmatch(path, pattern) for pattern in LEGITIMATE):
            continue
        ea, eb = a.get(path), b.get(path)
        if ea != eb:
            out.append(f"/{path}: llbgen {ea.describe() if ea else 'missing'}; "
                       f"Dockerfile {eb.describe() if eb else 'missing'}")
    return out


# --------------------------------------------------------------------------- the images


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, docker_engine: str, base_image: str, mirror: Mirror) -> Path:
    """The build context, written by ``llbgen export-dockerfile`` with the image test's spec."""
    out = tmp_path_factory.mktemp("export") / "context"
    result = llbgen("export-dockerfile", *spec_flags(mirror, base_image, base_image), "-t", DOCKERFILE_TAG,
                    "-o", str(out), "--lang", "en", timeout=120)
    assert result.returncode == 0, f"export-dockerfile failed:\n{result.stdout}\n{result.stderr}"
    return out


@pytest.fixture(scope="module")
def dockerfile_image(exported: Path) -> Built:
    """The image ``build.sh`` builds: the real ``docker buildx build`` on the engine's BuildKit."""
    result = subprocess.run(["sh", str(exported / "build.sh"), "--progress", "plain"], capture_output=True, text=True,
                            timeout=BUILD_TIMEOUT)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"build.sh failed (exit {result.returncode}):\n{output[-8000:]}"
    return Built(DOCKERFILE_TAG, "", output)


@pytest.fixture(scope="module")
def llbgen_image(docker_engine: str, base_image: str, mirror: Mirror) -> Built:
    """The same spec built by ``llbgen build`` (test_image_build's invocation; cached when that test ran)."""
    return build(mirror, base_image, base_image, LLBGEN_TAG)


@pytest.fixture(scope="module")
def scans(llbgen_image: Built, dockerfile_image: Built) -> tuple[Scan, Scan]:
    needles = proxy_ca_lines()
    control = control_line()
    return scan_image(llbgen_image.tag), scan_image(dockerfile_image.tag, needles + ([control] if control else []))


# --------------------------------------------------------------------------- the tests


def test_build_script_uses_buildx_with_the_export_options(exported: Path) -> None:
    script = (exported / "build.sh").read_text()
    assert "exec docker buildx build" in script
    assert "--secret id=llbgen-ca,src=" in script and "--network host" in script and "--load" in script
    assert f"IMAGE_TAG={DOCKERFILE_TAG}" in script
    assert not (exported / "Dockerfile").read_text().startswith("# syntax")


def test_dockerfile_image_passes_verify(dockerfile_image: Built) -> None:
    result = llbgen("verify", dockerfile_image.tag, "--timeout", "240", timeout=VERIFY_TIMEOUT)
    assert result.returncode == 0, f"llbgen verify {dockerfile_image.tag} failed:\n{result.stdout}\n{result.stderr}"
    assert "OK: all" in result.stdout


def test_same_file_tree(scans: tuple[Scan, Scan], llbgen_image: Built, dockerfile_image: Built) -> None:
    a, b = scans[0].tree, scans[1].tree
    assert len(a) > 1000 and any(p.startswith("root/miniconda3/lib/python3.11/site-packages/torch/") for p in a)
    differences = tree_differences(a, b)
    assert not differences, (f"{len(differences)} differences under /{', /'.join(COMPARED)}:\n"
                             + "\n".join(differences[:200]))
    info_a = file_text(llbgen_image.tag, "/init/image-info.env").splitlines()
    info_b = file_text(dockerfile_image.tag, "/init/image-info.env").splitlines()
    assert [line for line in info_a if not line.startswith("IMAGE=")] == \
        [line for line in info_b if not line.startswith("IMAGE=")]
    assert f"IMAGE={dockerfile_image.tag}" in info_b


def test_root_home_keeps_its_mode(scans: tuple[Scan, Scan]) -> None:
    """COPY --link of /root/miniconda3 alone would make /root 0755; the layer trees carry /root's own mode."""
    assert scans[0].tree["root"] == scans[1].tree["root"]
    assert scans[1].tree["root"].mode & 0o077 == 0


def test_same_image_config(llbgen_image: Built, dockerfile_image: Built) -> None:
    a, b = inspect(llbgen_image.tag)["Config"], inspect(dockerfile_image.tag)["Config"]
    # ArgsEscaped: a Windows-only field the Dockerfile frontend sets; Linux ignores it.
    keys = sorted((a.keys() | b.keys()) - {"Env", "Labels", "ArgsEscaped"})
    assert {k: a.get(k) for k in keys} == {k: b.get(k) for k in keys}
    assert sorted(a["Env"]) == sorted(b["Env"])
    labels_a, labels_b = dict(a.get("Labels") or {}), dict(b.get("Labels") or {})
    # llbgen build resolves the base and records its digest; the export had no builder to ask.
    labels_a.pop("org.opencontainers.image.base.digest", None)
    # The build fingerprint vouches for llbgen's own graph only.
    assert labels_a.pop(FINGERPRINT_LABEL, "").startswith("sha256:") and FINGERPRINT_LABEL not in labels_b
    assert labels_a == labels_b


def test_stages_are_layers_of_their_own(dockerfile_image: Built) -> None:
    created = [entry.get("CreatedBy", "") for entry in history(dockerfile_image.tag)]
    assert len([c for c in created if re.search(r"COPY /llbgen/layer/ / ", c)]) == 3, created
    # The python layer is the same blob when the export names another base (COPY --link).
    layers = inspect(dockerfile_image.tag)["RootFS"]["Layers"]
    assert len(layers) >= len(inspect("llbgen-test/debian:bookworm")["RootFS"]["Layers"]) + 5


def test_no_ca_bundle_in_the_dockerfile_image(scans: tuple[Scan, Scan], dockerfile_image: Built) -> None:
    hits = dict(scans[1].hits)
    control = control_line()
    if control:
        assert "etc/ssl/certs/ca-certificates.crt" in hits.pop(control), "control: the scan found no shipped CA"
    leaked = {n.decode(): where for n, where in hits.items() if where}
    assert not leaked, f"the build's CA bundle is in the image: {leaked}"
    metadata = json.dumps(inspect(dockerfile_image.tag)) + json.dumps(history(dockerfile_image.tag))
    assert not [n for n in proxy_ca_lines() if n.decode() in metadata]
