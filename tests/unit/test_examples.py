"""The examples users copy must stay valid."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from llbgen.spec import load_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_kubernetes_manifest_is_valid_and_requests_a_gpu():
    docs = list(yaml.safe_load_all((EXAMPLES / "kubernetes" / "pytorch.yaml").read_text()))
    kinds = {d["kind"]: d for d in docs}
    assert set(kinds) == {"Deployment", "Service", "PersistentVolumeClaim"}
    deployment = kinds["Deployment"]
    assert deployment["spec"]["selector"]["matchLabels"] == deployment["spec"]["template"]["metadata"]["labels"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"ssh": 22, "jupyter": 8888, "tensorboard": 6006}
    service_targets = {p["targetPort"] for p in kinds["Service"]["spec"]["ports"]}
    assert service_targets == set(ports)
    env = {e["name"] for e in container["env"]}
    assert "ROOT_PASSWORD" not in env  # no password in a manifest


def test_docker_run_script_is_valid_bash():
    script = EXAMPLES / "docker-run.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    for flag in ("GPUS=${GPUS:-all}", '--gpus "$GPUS"', "--ipc=host", "SSH_PORT=${SSH_PORT:-2222}", '"$SSH_PORT:22"',
                 "JUPYTER_PORT=${JUPYTER_PORT:-8888}", "TENSORBOARD_PORT=${TENSORBOARD_PORT:-6006}", "PUBLIC_KEY_FILE"):
        assert flag in text
    # A volume over /root would hold /root/miniconda3 and keep an old image's packages.
    volumes = [line.split()[1].strip('"') for line in text.splitlines() if line.strip().startswith("-v ")]
    assert [v.split(":")[1] for v in volumes] == ["/root/work", "/root/tensorboard-logs"]


def test_example_config_resolves():
    resolved = load_spec(EXAMPLES / "llbgen.toml", {})
    assert resolved.tag == "pytorch:2.3.0-python3.10-cuda12.1.0-cudnn8-devel-ubuntu22.04"
    assert resolved.torch_index_url.endswith("/cu121")
