"""SSH checks with the real OpenSSH client (``ssh``, ``ssh-keygen``) run as subprocesses.

A throwaway ed25519 key and known_hosts file live in a private temporary directory; host
keys are accepted on first use (``accept-new``) and recorded there, so the key the server
showed can be compared with the container's own. Password logins go through SSH_ASKPASS
(``SSH_ASKPASS_REQUIRE=force``), never through a terminal.

>>> offered_methods("root@127.0.0.1: Permission denied (publickey,password).")
['publickey', 'password']
>>> has_banner("+---+\\n  Python   3.11.7\\n  PyTorch  torch 2.13.0\\n  JupyterLab  http://x/jupyter\\n  TensorBoard  ...")
True
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from llbgen.errors import LlbgenError

# Words the login banner (init/bin/login-banner) always prints, and only it does.
BANNER_MARKS = ("PyTorch", "JupyterLab", "TensorBoard")
END_MARK = "__LLBGEN_VERIFY_END__"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def strip_ansi(text: str) -> str:
    """Text without terminal escape sequences (colours, titles) and carriage returns."""
    return _ANSI.sub("", text).replace("\r", "")


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def describe(self) -> str:
        text = (self.stderr or self.stdout).strip()
        return f"exit {self.returncode}" + (f": {text}" if text else "")


def offered_methods(stderr: str) -> list[str]:
    """The authentication methods from ssh's "Permission denied (a,b)." line; [] when there is none."""
    m = re.search(r"Permission denied \(([^)]*)\)", stderr)
    return [part for part in m.group(1).split(",") if part] if m else []


def has_banner(text: str) -> bool:
    return all(mark in text for mark in BANNER_MARKS)


def wait_for_sshd(host: str, port: int, deadline: float) -> str:
    """Wait until the port speaks SSH (its identification line); that line, or '' at the deadline.

    A published port accepts TCP before sshd listens (docker-proxy), so only the line counts.
    """
    while True:
        try:
            with socket.create_connection((host, port), timeout=3) as sock:
                sock.settimeout(3)
                line = sock.recv(256).decode("ascii", "replace").strip()
                if line.startswith("SSH-"):
                    return line
        except OSError:
            pass
        if time.monotonic() >= deadline:
            return ""
        time.sleep(1)


class SshClient:
    """``ssh`` to root@HOST:PORT with a throwaway key, in ``workdir`` (kept private, 0700)."""

    def __init__(self, host: str, port: int, workdir: Path, *, ssh: str | None = None, keygen: str | None = None) -> None:
        self.host, self.port, self.workdir = host, port, workdir
        self.ssh = ssh or _find("ssh")
        self.keygen = keygen or _find("ssh-keygen")
        self.key = workdir / "id_ed25519"
        self.known_hosts = workdir / "known_hosts"
        self.askpass = workdir / "askpass.sh"

    @classmethod
    def with_new_key(cls, workdir: Path) -> SshClient:
        """A client whose key pair is made now; use ``public_key`` for the container."""
        workdir.mkdir(parents=True, exist_ok=True)
        os.chmod(workdir, 0o700)
        client = cls("127.0.0.1", 0, workdir)
        subprocess.run(
            [client.keygen, "-q", "-t", "ed25519", "-N", "", "-C", "llbgen-verify", "-f", str(client.key)],
            check=True, capture_output=True, timeout=30,
        )
        return client

    def at(self, host: str, port: int) -> SshClient:
        self.host, self.port = host, port
        return self

    @property
    def public_key(self) -> str:
        return self.key.with_suffix(".pub").read_text().strip()

    def command_line(self, *, extra: list[str] | None = None) -> list[str]:
        """The ssh command line (without the remote command); also what ``--keep`` prints."""
        return [
            self.ssh, "-F", "/dev/null",
            "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=accept-new",
            "-o", "GlobalKnownHostsFile=/dev/null", "-o", "CheckHostIP=no",
            "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3",
            "-o", "LogLevel=ERROR", "-p", str(self.port),
            *(extra or []),
            f"root@{self.host}",
        ]

    def _key_options(self) -> list[str]:
        return ["-i", str(self.key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                "-o", "PasswordAuthentication=no", "-o", "KbdInteractiveAuthentication=no"]

    def run(self, command: str, *, timeout: float = 60) -> Result:
        """Run ``command`` with key login, no terminal (as ``ssh host cmd`` does)."""
        return self._exec(self.command_line(extra=self._key_options()) + ["--", command], timeout=timeout)

    def interactive(self, lines: list[str], *, timeout: float = 60) -> Result:
        """A login with a terminal (``ssh -tt``, the user's shell, banner and all), typing ``lines`` then ``exit``."""
        script = "\n".join([*lines, f"echo {END_MARK}", "exit", ""])
        return self._exec(self.command_line(extra=["-tt", *self._key_options()]), stdin=script, timeout=timeout)

    def password_login(self, password: str, *, command: str = "echo LLBGEN-PASSWORD-OK", timeout: float = 60) -> Result:
        """Try to log in with ``password`` only (no keys), answering through SSH_ASKPASS."""
        self.askpass.write_text('#!/bin/sh\nprintf \'%s\\n\' "$LLBGEN_VERIFY_PASSWORD"\n')
        os.chmod(self.askpass, stat.S_IRWXU)
        env = {
            **os.environ,
            "SSH_ASKPASS": str(self.askpass), "SSH_ASKPASS_REQUIRE": "force",
            "DISPLAY": os.environ.get("DISPLAY", ":0"), "LLBGEN_VERIFY_PASSWORD": password,
        }
        extra = ["-o", "BatchMode=no", "-o", "PubkeyAuthentication=no", "-o", "IdentitiesOnly=yes",
                 "-o", "IdentityFile=/dev/null", "-o", "PreferredAuthentications=password,keyboard-interactive",
                 "-o", "NumberOfPasswordPrompts=1"]
        return self._exec(self.command_line(extra=extra) + ["--", command], timeout=timeout, env=env)

    def known_host_keys(self) -> list[str]:
        """``type base64`` of each host key recorded on first connection."""
        if not self.known_hosts.exists():
            return []
        keys = []
        for line in self.known_hosts.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and not line.startswith("#"):
                keys.append(f"{parts[1]} {parts[2]}")
        return keys

    def _exec(self, argv: list[str], *, timeout: float, stdin: str | None = None, env: dict[str, str] | None = None) -> Result:
        try:
            proc = subprocess.run(
                argv, input=stdin.encode() if stdin is not None else None,
                stdin=None if stdin is not None else subprocess.DEVNULL,
                capture_output=True, timeout=timeout, env=env, start_new_session=True,
            )
        except subprocess.TimeoutExpired as err:
            out = strip_ansi((err.stdout or b"").decode("utf-8", "replace"))
            return Result(124, out, f"timed out after {timeout:.0f} s")
        return Result(proc.returncode, strip_ansi(proc.stdout.decode("utf-8", "replace")),
                      strip_ansi(proc.stderr.decode("utf-8", "replace")))


def _find(tool: str) -> str:
    """The OpenSSH tool from /usr/bin first (an older build may sit earlier on PATH), else PATH."""
    for candidate in (f"/usr/bin/{tool}", shutil.which(tool)):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise LlbgenError(f"llbgen verify needs the OpenSSH client: {tool} not found (apt-get install openssh-client)")
