"""scripts/install.sh, the user's set-up: keeps an existing engine's configuration, asks before restarting.

Run for real with a temporary root for /etc (LLBGEN_INSTALL_ROOT), a fake os-release and
--dry-run, which prints the package and service commands instead of running them.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "install.sh"

DEBIAN_12 = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'
UBUNTU_24 = 'NAME="Ubuntu"\nID=ubuntu\nID_LIKE=debian\nVERSION_ID="24.04"\nVERSION_CODENAME=noble\n'
MINT = 'NAME="Linux Mint"\nID=linuxmint\nID_LIKE="ubuntu debian"\nVERSION_CODENAME=wilma\n'


def install(root: Path, os_release: str, *args: str, engine: bool = True) -> subprocess.CompletedProcess[str]:
    release = root / "os-release"
    release.write_text(os_release)
    env = {**os.environ, "LLBGEN_INSTALL_ROOT": str(root), "LLBGEN_OS_RELEASE": str(release),
           "LLBGEN_DOCKERD": "sh" if engine else "llbgen-test-no-such-dockerd"}
    return subprocess.run(["bash", str(SCRIPT), "--dry-run", *args], capture_output=True, text=True, env=env,
                          timeout=60)


def daemon_json(root: Path) -> Path:
    return root / "etc" / "docker" / "daemon.json"


def test_an_existing_daemon_json_keeps_its_keys_and_is_backed_up(tmp_path: Path) -> None:
    path = daemon_json(tmp_path)
    path.parent.mkdir(parents=True)
    original = {"runtimes": {"nvidia": {"path": "nvidia-container-runtime", "runtimeArgs": []}},
                "registry-mirrors": ["https://mirror.example"], "data-root": "/data/docker",
                "features": {"buildkit": True}}
    path.write_text(json.dumps(original))

    # --dry-run writes nothing; the runs after it merge for real (the engine "exists", so no
    # package or service command is reached).
    env_run = install(tmp_path, DEBIAN_12, "--containerd-store")
    assert env_run.returncode == 0, env_run.stderr
    assert json.loads(path.read_text()) == original, "a dry run must not write daemon.json"
    assert "would run:" in env_run.stdout and "cp -p" in env_run.stdout

    result = subprocess.run(["bash", str(SCRIPT), "--containerd-store"], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "LLBGEN_INSTALL_ROOT": str(tmp_path),
                                 "LLBGEN_OS_RELEASE": str(tmp_path / "os-release"), "LLBGEN_DOCKERD": "sh"})
    assert result.returncode == 0, result.stderr
    merged = json.loads(path.read_text())
    assert merged == {**original, "features": {"buildkit": True, "containerd-snapshotter": True}}
    backups = list(path.parent.glob("daemon.json.llbgen-backup-*"))
    assert len(backups) == 1 and json.loads(backups[0].read_text()) == original
    assert "must restart" in result.stderr and "--restart-engine" in result.stderr
    assert "restarting the Docker Engine" not in result.stderr, "an existing engine was restarted unasked"

    again = subprocess.run(["bash", str(SCRIPT), "--containerd-store"], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "LLBGEN_INSTALL_ROOT": str(tmp_path),
                                "LLBGEN_OS_RELEASE": str(tmp_path / "os-release"), "LLBGEN_DOCKERD": "sh"})
    assert again.returncode == 0, again.stderr
    assert json.loads(path.read_text()) == merged
    assert len(list(path.parent.glob("daemon.json.llbgen-backup-*"))) == 1, "a second run changed something"
    assert "already enabled" in again.stderr


def test_without_the_flag_daemon_json_is_not_touched(tmp_path: Path) -> None:
    result = install(tmp_path, DEBIAN_12)
    assert result.returncode == 0, result.stderr
    assert not daemon_json(tmp_path).exists()
    assert "daemon.json" not in result.stdout


def test_an_existing_engine_is_restarted_only_when_asked(tmp_path: Path) -> None:
    asked = install(tmp_path, DEBIAN_12, "--containerd-store", "--restart-engine")
    assert asked.returncode == 0, asked.stderr
    assert "restart" in asked.stdout and "apt-get" not in asked.stdout
    (tmp_path / "other").mkdir()
    unasked = install(tmp_path / "other", DEBIAN_12, "--containerd-store")
    assert unasked.returncode == 0, unasked.stderr
    assert "restart" not in unasked.stdout and "--restart-engine" in unasked.stderr


@pytest.mark.parametrize("os_release", [UBUNTU_24, MINT], ids=["ubuntu", "ubuntu-like"])
def test_ubuntu_gets_ubuntus_own_docker_io_and_no_debian_source(tmp_path: Path, os_release: str) -> None:
    result = install(tmp_path, os_release, engine=False)
    assert result.returncode == 0, result.stderr
    assert "apt-get install -y --no-install-recommends docker.io docker-buildx" in result.stdout
    assert "trixie" not in result.stdout + result.stderr
    assert not (tmp_path / "etc" / "apt").exists()


def test_debian_12_gets_trixies_docker_io_pinned(tmp_path: Path) -> None:
    result = install(tmp_path, DEBIAN_12, engine=False)
    assert result.returncode == 0, result.stderr
    assert "docker.io/trixie" in result.stdout and "llbgen-trixie.sources" in result.stdout


def test_a_fresh_engine_is_started_with_the_store_it_was_asked_for(tmp_path: Path) -> None:
    result = install(tmp_path, UBUNTU_24, "--containerd-store", engine=False)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    install_line = next(i for i, line in enumerate(lines) if "apt-get install" in line)
    restart_line = next(i for i, line in enumerate(lines) if "restart" in line)
    assert install_line < restart_line


def test_another_system_is_refused_in_one_line(tmp_path: Path) -> None:
    result = install(tmp_path, 'ID=fedora\nVERSION_ID=40\n', engine=False)
    assert result.returncode == 1
    assert "neither Debian nor Ubuntu" in result.stderr and "Traceback" not in result.stderr
