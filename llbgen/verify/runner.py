"""``llbgen verify``: start a container of the image and run the seed's §6 checks against it.

The order: what the image itself holds (spec label, no SSH host keys), then one container
with a throwaway key (PUBLIC_KEY), a random JUPYTER_TOKEN and, with ``password``, a random
ROOT_PASSWORD; wait (bounded) for sshd, JupyterLab and TensorBoard; then SSH (banner,
locale, Chinese, timezone, PATH, host keys, password), HTTP (Jupyter, TensorBoard), the
versions against the spec, secrets kept from every process (PID 1 too), and the GPU. The container is
always removed unless ``keep``.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shlex
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from llbgen.verify import container as containers
from llbgen.verify import expect, http, ssh, versions
from llbgen.verify.report import Report


@dataclass(frozen=True)
class VerifyOptions:
    image: str
    docker_host: str | None = None
    timeout: float = 180.0  # seconds for the services to come up
    password: bool = False  # also set ROOT_PASSWORD and check password login
    gpus: str | None = None  # docker run --gpus value: all, N, device=...
    keep: bool = False  # leave the container running


@dataclass
class KeptContainer:
    """What ``keep`` leaves behind, for the user to poke at."""

    name: str
    ssh_command: str
    jupyter_url: str
    tensorboard_url: str
    workdir: Path


def verify(opts: VerifyOptions, *, say: Callable[[str], None] = lambda _: None) -> tuple[Report, KeptContainer | None]:
    """Run every check; the report, and what was kept when ``opts.keep``."""
    report = Report(image=opts.image)
    client = containers.connect(opts.docker_host)
    labels = containers.image_labels(client, opts.image)

    expected: versions.Expected | None = None
    label = labels.get(versions.SPEC_LABEL)
    if label is None:
        report.failed("spec label", f"no {versions.SPEC_LABEL} label: not an llbgen image? versions are not checked")
    else:
        try:
            expected = versions.Expected.from_label(label)
            report.passed("spec label", expected.describe())
        except ValueError as err:
            report.failed("spec label", str(err))

    say("checking the image for SSH host keys (a fresh container running ls)")
    code, names = containers.ls_fresh(client, opts.image, "/etc/ssh")
    baked = [n for n in names if n.startswith("ssh_host_")]
    if code != 0:
        report.failed("no SSH host keys in the image", f"ls /etc/ssh exited {code}")
    else:
        report.check("no SSH host keys in the image", not baked, ", ".join(baked) or "none in /etc/ssh")

    workdir = Path(tempfile.mkdtemp(prefix="llbgen-verify-"))
    token = secrets.token_hex(24)
    password = secrets.token_urlsafe(18) if opts.password else None
    client_ssh = ssh.SshClient.with_new_key(workdir)
    environment = {"PUBLIC_KEY": client_ssh.public_key, "JUPYTER_TOKEN": token}
    if password:
        environment["ROOT_PASSWORD"] = password

    say(f"starting a container of {opts.image}")
    running = containers.RunningContainer.start(client, opts.image, environment=environment, gpus=opts.gpus)
    kept: KeptContainer | None = None
    try:
        _run_checks(report, running, client_ssh, expected, token, password, opts, say)
    finally:
        if opts.keep:
            ports = running.ports
            kept = KeptContainer(
                name=running.name,
                ssh_command=shlex.join(client_ssh.command_line(extra=["-i", str(client_ssh.key)])),
                jupyter_url=f"http://{running.host}:{ports.get(8888, '?')}/jupyter/lab?token={token}",
                tensorboard_url=f"http://{running.host}:{ports.get(6006, '?')}/monitor/",
                workdir=workdir,
            )
        else:
            running.remove()
            shutil.rmtree(workdir, ignore_errors=True)
    return report, kept


def _run_checks(report: Report, running: containers.RunningContainer, client_ssh: ssh.SshClient,
                expected: versions.Expected | None, token: str, password: str | None,
                opts: VerifyOptions, say: Callable[[str], None]) -> None:
    started = time.monotonic()
    deadline = started + opts.timeout
    ports = running.published_ports(deadline)
    if len(ports) < len(containers.PORTS):
        report.failed("container starts", f"status {running.status()}; ports published: {ports}; log: {running.logs_tail()}")
        return
    host = running.host
    client_ssh.at(host, ports[22])
    jupyter = f"http://{host}:{ports[8888]}/jupyter"
    monitor = f"http://{host}:{ports[6006]}/monitor/"

    say(f"waiting up to {opts.timeout:.0f} s for sshd, JupyterLab and TensorBoard")
    sshd_line = ssh.wait_for_sshd(host, ports[22], deadline)
    api = http.wait_for(jupyter + "/api", deadline)
    tensorboard = http.wait_for(monitor, deadline)
    status = running.status()
    waited = time.monotonic() - started
    up = {"sshd": bool(sshd_line), "jupyter": api.status == 200, "tensorboard": tensorboard.status == 200}
    if status != "running":
        report.failed("services start", f"container {status}; log: {running.logs_tail()}")
        return
    detail = ", ".join(f"{k} {'up' if v else 'NOT up'}" for k, v in up.items()) + f" after {waited:.0f} s"
    all_up = report.check("services start", all(up.values()), detail if all(up.values()) else f"{detail}; log: {running.logs_tail(15)}")
    if not all_up and not any(up.values()):
        return

    if sshd_line:
        say("SSH checks")
        _ssh_checks(report, running, client_ssh, expected, password)
    else:
        report.failed("SSH", "sshd never answered; SSH checks not run")

    say("HTTP checks")
    _http_checks(report, jupyter, monitor, token, api, tensorboard)

    say("versions (python, torch, torchvision, torchaudio)")
    _version_checks(report, running, expected, gpus=bool(opts.gpus))

    _secret_checks(report, running, [s for s in (token, password) if s])
    if opts.gpus:
        result = running.exec(["nvidia-smi", "-L"])
        report.check("nvidia-smi", result.exit_code == 0, (result.stdout or result.stderr).strip() or f"exit {result.exit_code}")


def _ssh_checks(report: Report, running: containers.RunningContainer, client_ssh: ssh.SshClient,
                expected: versions.Expected | None, password: str | None) -> None:
    login = client_ssh.interactive([])
    banner_ok = login.ok and ssh.END_MARK in login.stdout and ssh.has_banner(login.stdout)
    shown = [v for v in ((expected.torch, expected.python) if expected else ()) if v]
    missing = [v for v in shown if v not in login.stdout]
    if not login.ok and ssh.END_MARK not in login.stdout:
        report.failed("SSH key login shows the banner", login.describe())
    elif not banner_ok:
        report.failed("SSH key login shows the banner", "logged in, but no banner: " + login.stdout[-200:])
    elif missing:
        report.failed("SSH key login shows the banner", f"banner without {', '.join(missing)}")
    else:
        lines = [" ".join(line.split()) for line in login.stdout.splitlines() if "PyTorch" in line or line.strip().startswith("Python")]
        report.passed("SSH key login shows the banner", " | ".join(lines[:2]) or "banner shown")

    # The host key sshd showed is one the container made at boot.
    pubs = running.exec(["sh", "-c", "cat /etc/ssh/ssh_host_*_key.pub"])
    made = {" ".join(line.split()[:2]) for line in pubs.stdout.splitlines() if line.strip()}
    seen = client_ssh.known_host_keys()
    if pubs.exit_code != 0 or not made:
        report.failed("SSH host keys made at boot", f"none in the running container ({pubs.stderr.strip()})")
    else:
        report.check("SSH host keys made at boot", bool(seen) and set(seen) <= made,
                     f"{len(made)} keys; the key sshd showed is the container's" if seen and set(seen) <= made
                     else f"sshd showed {seen or 'nothing'}")

    for name, command, judge in (
        ("locale zh_CN.UTF-8", expect.LOCALE_COMMAND, lambda r: expect.judge_locale(r.stdout, r.stderr)),
        ("Chinese prints intact", expect.CHINESE_COMMAND, lambda r: expect.judge_chinese(r.stdout)),
        ("timezone CST (+0800)", expect.TIMEZONE_COMMAND, lambda r: expect.judge_timezone(r.stdout)),
        ("python/pip on PATH over SSH", expect.PATH_COMMAND, lambda r: expect.judge_paths(r.stdout)),
    ):
        result = client_ssh.run(command)
        if result.returncode == 255:
            report.failed(name, result.describe())
            continue
        ok, detail = judge(result)
        report.check(name, ok, detail)

    if password:
        good = client_ssh.password_login(password)
        report.check("password login (ROOT_PASSWORD)", good.ok and "LLBGEN-PASSWORD-OK" in good.stdout,
                     "accepted" if good.ok else good.describe())
        bad = client_ssh.password_login(password + "-wrong")
        report.check("wrong password refused", not bad.ok, "refused" if not bad.ok else "a wrong password logged in")
    else:
        attempt = client_ssh.password_login(secrets.token_urlsafe(12))
        methods = ssh.offered_methods(attempt.stderr)
        offers_password = any(m in ("password", "keyboard-interactive") for m in methods)
        if attempt.ok:
            report.failed("password login refused (no ROOT_PASSWORD)", "a random password logged in")
        else:
            report.check("password login refused (no ROOT_PASSWORD)", not offers_password,
                         f"server offers only: {', '.join(methods) or '?'}" if not offers_password
                         else f"refused, but the server offers {', '.join(methods)}")


def _http_checks(report: Report, jupyter: str, monitor: str, token: str, api: http.Answer, tensorboard: http.Answer) -> None:
    version = ""
    if api.status == 200:
        with contextlib.suppress(ValueError, AttributeError):
            version = json.loads(api.body).get("version", "")
    report.check("/jupyter/api answers 200", api.status == 200, f"{api.describe()}" + (f", jupyter_server {version}" if version else ""))

    kind, detail = http.classify_lab(*_lab(jupyter + "/lab"))
    report.check("/jupyter/lab demands the token", kind == "login", detail)
    kind, detail = http.classify_lab(*_lab(jupyter + f"/lab?token={token}"))
    report.check("/jupyter/lab with the token", kind == "lab", detail)

    closed = http.get(jupyter + "/api/status")
    opened = http.get(jupyter + "/api/status", headers={"Authorization": f"token {token}"})
    report.check("/jupyter/api/status needs the token", closed.status in (401, 403) and opened.status == 200,
                 f"without: {closed.describe()}, with: {opened.describe()}")

    report.check("/monitor/ answers 200 (TensorBoard)", tensorboard.status == 200,
                 tensorboard.describe() + (", TensorBoard page" if "tensorboard" in tensorboard.body.lower() else ""))
    del monitor


def _lab(url: str) -> tuple[int, str | None, str]:
    answer = http.get(url)
    return answer.status, answer.location, answer.body


def _version_checks(report: Report, running: containers.RunningContainer, expected: versions.Expected | None, *, gpus: bool) -> None:
    if expected is None:
        report.skipped("versions", "no spec label to compare with")
        return
    probe = running.exec(["/bin/bash", "-lc", f"python -c {shlex.quote(versions.PROBE)}"])
    try:
        found = versions.parse_probe(probe.stdout)
    except ValueError as err:
        report.failed("versions", f"{err} {probe.stderr.strip()[-300:]}")
        return
    report.extend(versions.compare(expected, found, gpus=gpus))


def _secret_checks(report: Report, running: containers.RunningContainer, values: list[str]) -> None:
    """No process, PID 1 included (the image's entry step takes them out of its environment), holds the token or password in its environment."""
    script = (
        'for f in /proc/[0-9]*/environ; do p=${f#/proc/}; p=${p%/environ}; '
        '[ "$p" = "$$" ] && continue; '
        'for s in "$@"; do if grep -qF -- "$s" "$f" 2>/dev/null; then echo "$p $(cat /proc/$p/comm 2>/dev/null)"; fi; done; done; exit 0'
    )
    # The exec's own environment has the inputs blanked, so only the container's processes can match.
    blank = {"JUPYTER_TOKEN": "", "ROOT_PASSWORD": "", "PUBLIC_KEY": ""}
    result = running.exec(["sh", "-c", script, "sh", *values], environment=blank)
    holders = sorted(set(result.stdout.split("\n")) - {""})
    report.check("secrets kept from every process", result.exit_code == 0 and not holders,
                 "token/password in no process's environment, PID 1's included" if not holders
                 else "held by: " + ", ".join(holders))
