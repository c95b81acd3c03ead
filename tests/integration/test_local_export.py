"""``--output type=local,dest=DIR`` against the Docker Engine's BuildKit: the daemon is
the fsutil sender, our session the receiver."""

from __future__ import annotations

import hashlib
import os
import signal
import stat
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from llbgen import llb
from llbgen.builder.client import Builder
from llbgen.builder.options import Output
from llbgen.builder.solve import SolveOptions
from llbgen.errors import BuildFailed, UsageError
from tests.integration.engine_helpers import default_sigint

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]

MAKE_FILES = (
    "set -e; mkdir -p /out/nested/deeper/deepest /out/private; "
    "echo hello > /out/hello.txt; "
    "printf '#!/bin/sh\\necho tool\\n' > /out/tool.sh; chmod 0755 /out/tool.sh; "
    "echo secret > /out/private/key; chmod 0640 /out/private/key; chmod 0700 /out/private; "
    "ln -s tool.sh /out/link; ln -s /etc/hostname /out/abs-link; "
    "ln /out/hello.txt /out/hardlink; "
    ": > /out/empty; "
    "echo deep > /out/nested/deeper/deepest/file; "
    "head -c 5242880 /dev/urandom > /out/big.bin; sha256sum /out/big.bin | cut -d' ' -f1 > /out/big.sha256"
)


@pytest.fixture(scope="module")
def builder(docker_engine: str, base_image: str):
    with Builder.connect(f"docker://{docker_engine}") as b:
        yield b


def quiet(**kwargs) -> SolveOptions:
    return SolveOptions(progress="quiet", **kwargs)


def leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if p.name.endswith(".partial")]


def test_local_export_writes_the_tree(builder: Builder, base_image: str, tmp_path: Path) -> None:
    built = builder.resolve(base_image).run(["sh", "-c", MAKE_FILES], name="make files").root
    exported = llb.scratch().file(llb.copy(built, "/out", "/", contents_only=True))
    dest = tmp_path / "out"
    builder.solve(exported, quiet(outputs=[Output("local", {}, dest=dest)]))

    assert sorted(os.listdir(dest)) == ["abs-link", "big.bin", "big.sha256", "empty", "hardlink", "hello.txt",
                                        "link", "nested", "private", "tool.sh"]
    assert (dest / "hello.txt").read_text() == "hello\n"
    assert (dest / "nested" / "deeper" / "deepest" / "file").read_text() == "deep\n"
    assert stat.S_IMODE(os.stat(dest / "tool.sh").st_mode) == 0o755
    assert stat.S_IMODE(os.stat(dest / "hello.txt").st_mode) == 0o644
    assert stat.S_IMODE(os.stat(dest / "private").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(dest / "private" / "key").st_mode) == 0o640
    assert os.readlink(dest / "link") == "tool.sh"
    assert os.readlink(dest / "abs-link") == "/etc/hostname"
    assert os.stat(dest / "hardlink").st_ino == os.stat(dest / "hello.txt").st_ino
    assert (dest / "empty").stat().st_size == 0
    big = (dest / "big.bin").read_bytes()
    assert len(big) == 5 * 1024 * 1024
    assert hashlib.sha256(big).hexdigest() == (dest / "big.sha256").read_text().strip()
    # Owned by whoever ran the export, as BuildKit's own client does.
    assert os.lstat(dest / "tool.sh").st_uid == os.getuid()
    assert leftovers(tmp_path) == []


def test_full_rootfs_matches_the_tar_export(builder: Builder, base_image: str, tmp_path: Path) -> None:
    """Every entry of a whole Debian rootfs — setuid binaries, hard links, symlinks, times — as tar would have it."""
    built = builder.resolve(base_image).run(["sh", "-c", MAKE_FILES], name="make files").root
    tar_path, dest = tmp_path / "rootfs.tar", tmp_path / "rootfs"
    builder.solve(built, quiet(outputs=[Output("tar", {}, dest=tar_path)]))
    builder.solve(built, quiet(outputs=[Output("local", {}, dest=dest)]))
    problems: list[str] = []
    names: set[str] = set()
    with tarfile.open(tar_path) as tar:
        for m in tar.getmembers():
            name = m.name.rstrip("/")
            names.add(name)
            p = dest / name
            st = os.lstat(p)
            if m.isdir() != stat.S_ISDIR(st.st_mode) or m.issym() != stat.S_ISLNK(st.st_mode):
                problems.append(f"{name}: type")
            if not m.issym() and stat.S_IMODE(st.st_mode) != m.mode:
                problems.append(f"{name}: mode {stat.S_IMODE(st.st_mode):o} != {m.mode:o}")
            if abs(st.st_mtime - m.mtime) > 0.5:  # Go's tar writer rounds to whole seconds
                problems.append(f"{name}: mtime {st.st_mtime} != {m.mtime}")
            if m.issym() and os.readlink(p) != m.linkname:
                problems.append(f"{name}: symlink")
            if m.islnk() and os.lstat(dest / m.linkname).st_ino != st.st_ino:
                problems.append(f"{name}: hard link")
            if m.isfile():
                f = tar.extractfile(m)
                assert f is not None
                if hashlib.sha256(f.read()).digest() != hashlib.sha256(p.read_bytes()).digest():
                    problems.append(f"{name}: content")
    local = {os.path.relpath(os.path.join(d, n), dest) for d, dirs, files in os.walk(dest) for n in dirs + files}
    assert local == names
    assert problems == []
    assert any(stat.S_IMODE(os.stat(dest / n).st_mode) & stat.S_ISUID for n in names if not os.path.islink(dest / n))


def test_failing_build_leaves_no_dest(builder: Builder, base_image: str, tmp_path: Path) -> None:
    failing = builder.resolve(base_image).run(["sh", "-c", "mkdir /out && echo x > /out/x && exit 3"], name="doomed").root
    dest = tmp_path / "out"
    with pytest.raises(BuildFailed):
        builder.solve(failing, quiet(outputs=[Output("local", {}, dest=dest)]))
    assert not dest.exists()
    assert os.listdir(tmp_path) == []


def test_non_empty_dest_is_refused(builder: Builder, base_image: str, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "keep").write_text("mine\n")
    with pytest.raises(UsageError, match="not empty"):
        builder.solve(llb.scratch().file(llb.mkfile("/x", 0o644, "x")), quiet(outputs=[Output("local", {}, dest=dest)]))
    assert os.listdir(dest) == ["keep"]


def test_cli_solve_with_local_output(base_image: str, tmp_path: Path) -> None:
    graph = tmp_path / "graph.py"
    graph.write_text(
        "from llbgen import llb\n\n"
        "def graph(resolve):\n"
        f"    built = resolve({base_image!r}).run(['sh', '-c', 'mkdir -p /out/bin && echo cli > /out/bin/hi "
        "&& chmod 755 /out/bin/hi && ln -s bin/hi /out/hi'], name='cli files').root\n"
        "    return llb.scratch().file(llb.copy(built, '/out', '/', contents_only=True))\n"
    )
    dest = tmp_path / "dist"
    proc = subprocess.run([sys.executable, "-m", "llbgen", "solve", f"{graph}:graph", "--output", f"type=local,dest={dest}",
                           "--progress", "plain"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert (dest / "bin" / "hi").read_text() == "cli\n"
    assert stat.S_IMODE(os.stat(dest / "bin" / "hi").st_mode) == 0o755
    assert os.readlink(dest / "hi") == "bin/hi"
    assert "exporting to client directory" in proc.stderr
    assert leftovers(tmp_path) == []


def test_ctrl_c_during_the_export_leaves_nothing(base_image: str, tmp_path: Path) -> None:
    """Interrupt while the daemon is sending a whole rootfs: no DEST, no staging directory."""
    graph = tmp_path / "graph.py"
    graph.write_text(
        "def graph(resolve):\n"
        f"    return resolve({base_image!r}).run(['sh', '-c', 'head -c 50000000 /dev/urandom > /big'], name='big').root\n"
    )
    out = tmp_path / "out"
    out.mkdir()
    dest = out / "dist"
    proc = subprocess.Popen([sys.executable, "-m", "llbgen", "solve", f"{graph}:graph", "--output", f"type=local,dest={dest}",
                             "--progress", "plain"], stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            preexec_fn=default_sigint)
    try:
        deadline = time.monotonic() + 120
        while not leftovers(out) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        assert leftovers(out), "the export never started"
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        stderr = proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert os.listdir(out) == []
