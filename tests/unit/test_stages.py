"""The stages and the layer plan: commands, layer independence, secrets, image config, the CLI.

The core promise is checked on digests: the python, jupyter and torch layers of one
spec are the same bytes under two different bases. Golden digests for the seed's
image (torch 2.3.0, CUDA 12.1) live in tests/unit/golden/stages.json; refresh with
``LLBGEN_UPDATE_GOLDEN=1 pytest tests/unit/test_stages.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from llbgen import llb
from llbgen._proto.buildkit import ops_pb2
from llbgen.cli.build_cmd import cached_layers, spec_overrides
from llbgen.errors import UsageError
from llbgen.fingerprint import FINGERPRINT_LABEL
from llbgen.spec import load_spec
from stages import StageContext, layer_plan
from stages.context import CA_SECRET_ID, PLATFORM
from stages.init import IMAGE_INFO, read_runtime_files, runtime_dir
from stages.jupyter import numpy_pin
from stages.os import mirror_rewrite
from stages.plan import LINEAR_NOTICE, SPEC_LABEL
from stages.step import CA_PATH

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden" / "stages.json"
SEED = {"torch": "2.3.0", "cuda": "12.1"}


def plan_for(values: dict, *, merge: bool = True, **ctx_args):
    return layer_plan(StageContext.create(load_spec(None, values), **ctx_args), merge)


def ops(state: llb.State) -> list[ops_pb2.Op]:
    return [ops_pb2.Op.FromString(dt) for dt in llb.marshal(state).ops]


def execs(state: llb.State) -> list[ops_pb2.ExecOp]:
    return [op.exec for op in ops(state) if op.WhichOneof("op") == "exec"]


def exec_of(layer_state: llb.State, marker: str) -> ops_pb2.ExecOp:
    return next(e for e in execs(layer_state) if marker in e.meta.args[-1])


# --- the plan for the seed's image ---------------------------------------------------------------


def test_seed_plan_layers_and_commands():
    plan = plan_for(SEED)
    assert plan.names == ("os", "python", "jupyter", "torch", "init")
    assert plan.merged and plan.notice is None
    os_step, py_step, jup_step, torch_step = plan.steps()

    assert dict(os_step.env) == {"DEBIAN_FRONTEND": "noninteractive"}
    for text in ("apt-get -o Acquire::Retries=5 update", "install -y --no-install-recommends",
                 "openssh-server locales tzdata curl ca-certificates vim tmux wget tini supervisor procps less",
                 "locale-gen zh_CN.UTF-8", "update-locale LANG=zh_CN.UTF-8",
                 "ln -snf /usr/share/zoneinfo/Asia/Shanghai /etc/localtime", "echo Asia/Shanghai > /etc/timezone",
                 "mkdir -p /run/sshd", "/etc/apt/apt.conf.d/docker-clean"):
        assert text in os_step.script, text
    assert "noninteracti " not in os_step.script  # the seed's typo

    (installer,) = py_step.http_files
    assert installer.url == "https://repo.anaconda.com/miniconda/Miniconda3-py38_23.11.0-2-Linux-x86_64.sh"
    assert installer.sha256 == "cb908ddbd603d789d94076ea4dd3f8517b15866719e007725dca778a8dfab823"
    assert f"bash {installer.path} -b -p /root/miniconda3" in py_step.script
    assert py_step.writes == ()  # no mirrors given: no pip.conf, no .condarc

    assert jup_step.script.endswith("install --retries 5 --timeout 60 jupyterlab jupyterlab-language-pack-zh-CN "
                                    "jupyterlab_pygments tensorboard 'numpy<2'")
    assert ("pip download --retries 5 --timeout 60 --no-deps --only-binary=:all: --dest /tmp/llbgen-torch-wheels "
            "--index-url https://download.pytorch.org/whl/cu121 torch==2.3.0 torchvision==0.18.0 torchaudio==2.3.0"
            ) in torch_step.script
    assert "--extra-index-url" not in torch_step.script  # torch comes from its index or not at all
    assert torch_step.script.endswith("' cu121 12.1 torch==2.3.0 torchvision==0.18.0 torchaudio==2.3.0")


def test_seed_plan_graph():
    plan = plan_for(SEED)
    os_exec = exec_of(plan.layer("os").state, "apt-get")
    caches = {m.dest: (m.cacheOpt.ID, m.cacheOpt.sharing) for m in os_exec.mounts if m.mountType == ops_pb2.CACHE}
    assert caches == {"/var/cache/apt": ("llbgen-apt-cache-ubuntu22.04", ops_pb2.LOCKED),
                      "/var/lib/apt": ("llbgen-apt-lib-ubuntu22.04", ops_pb2.LOCKED)}
    assert "DEBIAN_FRONTEND=noninteractive" in os_exec.meta.env

    py_ops = ops(plan.layer("python").state)
    assert py_ops[-2].WhichOneof("op") == "diff"
    http = next(op.source for op in py_ops if op.WhichOneof("op") == "source" and op.source.identifier.startswith("https"))
    assert http.attrs["http.checksum"] == "sha256:cb908ddbd603d789d94076ea4dd3f8517b15866719e007725dca778a8dfab823"
    assert http.attrs["http.filename"] == "Miniconda3-py38_23.11.0-2-Linux-x86_64.sh"
    py_exec = exec_of(plan.layer("python").state, "miniconda")
    assert py_exec.network == ops_pb2.NONE  # the installer needs no network, and gets none
    assert any(m.dest == "/tmp/llbgen-miniconda" and m.readonly for m in py_exec.mounts)

    for name in ("jupyter", "torch"):
        layer_ops = ops(plan.layer(name).state)
        assert layer_ops[-2].WhichOneof("op") == "diff"
        pip_exec = exec_of(plan.layer(name).state, "pip install")
        pip_caches = [(m.dest, m.cacheOpt.ID) for m in pip_exec.mounts if m.mountType == ops_pb2.CACHE]
        assert pip_caches == [("/root/.cache/pip", "llbgen-pip-py3.8")]
    # Each stage runs on the previous stage's own result (no merge to materialize): the torch
    # layer's graph has no merge, and its diff starts where the jupyter diff ends.
    assert not [op for op in ops(plan.layer("torch").state) if op.WhichOneof("op") == "merge"]
    jupyter_diff, torch_diff = (ops(plan.layer(n).state)[-2] for n in ("jupyter", "torch"))
    assert torch_diff.inputs[0].digest == jupyter_diff.inputs[1].digest

    image_ops = ops(plan.image)
    assert image_ops[-2].WhichOneof("op") == "merge" and len(image_ops[-2].merge.inputs) == 5


def test_layers_do_not_depend_on_the_base():
    """The core promise: python, jupyter and torch layers are the same under any base."""
    cu121 = plan_for(SEED).digests()
    other_base = plan_for({**SEED, "base_image": "nvidia/cuda:11.8.0-cudnn8-devel-ubuntu22.04"}).digests()
    assert other_base["os"] != cu121["os"]
    for name in ("python", "jupyter", "torch"):
        assert other_base[name] == cu121[name], name

    # A base resolved by a builder (pinned, with its own config) changes nothing either.
    pinned = llb.image("nvidia/cuda:11.8.0-cudnn8-devel-ubuntu22.04", platform=PLATFORM, digest="sha256:" + "1" * 64,
                       config={"config": {"Env": ["PATH=/usr/local/cuda/bin:/usr/bin:/bin", "CUDA_VERSION=11.8.0"]}})
    resolved_base = plan_for(SEED, base=pinned).digests()
    for name in ("python", "jupyter", "torch"):
        assert resolved_base[name] == cu121[name], name

    # Another CUDA build of the same torch: a new torch layer (another wheel index), same python and jupyter.
    cu118 = plan_for({"torch": "2.3.0", "cuda": "11.8"}).digests()
    assert (cu118["python"], cu118["jupyter"]) == (cu121["python"], cu121["jupyter"])
    assert cu118["torch"] != cu121["torch"] and cu118["os"] != cu121["os"]


def test_torch_change_rebuilds_only_torch():
    a = plan_for(SEED).digests()
    b = plan_for({"torch": "2.3.1", "cuda": "12.1"}).digests()
    assert (a["os"], a["python"], a["jupyter"]) == (b["os"], b["python"], b["jupyter"])
    assert a["torch"] != b["torch"]


def test_numpy_pin_follows_torch():
    assert numpy_pin("2.3.0") == "numpy<2" and numpy_pin("1.13.0") == "numpy<2"
    assert numpy_pin("2.4.0") is None and numpy_pin("2.10.0") is None


# --- secrets: the CA bundle and the proxies never reach a layer ------------------------------------


def test_ca_bundle_only_as_secret_mount(tmp_path: Path):
    ca = tmp_path / "ca.pem"
    ca_text = "-----BEGIN CERTIFICATE-----\nLLBGEN-TEST-CA-CONTENT\n-----END CERTIFICATE-----\n"
    ca.write_text(ca_text)
    spec = load_spec(None, {**SEED, "ca_cert": str(ca), "pip_packages": ("transformers",)})
    ctx = StageContext.create(spec)
    plan = layer_plan(ctx, True)
    definition = llb.marshal(plan.image)
    assert b"LLBGEN-TEST-CA-CONTENT" not in definition.to_bytes()
    assert str(ca).encode() not in definition.to_bytes()
    assert ctx.secrets() == {CA_SECRET_ID: ca_text.encode()}

    download_execs = [e for e in execs(plan.image) if e.network != ops_pb2.NONE]
    assert len(download_execs) == 4  # os, jupyter, torch, extras
    for e in download_execs:
        secrets = [(m.dest, m.secretOpt.ID) for m in e.mounts if m.mountType == ops_pb2.SECRET]
        assert secrets == [(CA_PATH, CA_SECRET_ID)]
    offline = [e for e in execs(plan.image) if e.network == ops_pb2.NONE]
    assert offline and all(m.mountType != ops_pb2.SECRET for e in offline for m in e.mounts)
    assert f"Acquire::https::CAInfo={CA_PATH}" in exec_of(plan.image, "apt-get").meta.args[-1]
    assert f"PIP_CERT={CA_PATH}" in exec_of(plan.image, "jupyterlab").meta.env
    # Nothing is written from the CA: no file op carries it, and the spec label leaves out its path.
    for op in ops(plan.image):
        if op.WhichOneof("op") == "file":
            assert all(b"LLBGEN-TEST-CA" not in a.mkfile.data for a in op.file.actions)
    assert "ca_cert" not in json.loads(plan.image.image_config()["config"]["Labels"][SPEC_LABEL])["spec"]


def test_proxies_are_secret_env_not_in_the_definition():
    proxy = "http://user:s3cret@proxy.example:3128"
    spec = load_spec(None, {**SEED, "proxy.http_proxy": proxy, "proxy.no_proxy": "127.0.0.1,localhost"})
    ctx = StageContext.create(spec)
    plan = layer_plan(ctx, True)
    assert b"s3cret" not in llb.marshal(plan.image).to_bytes()
    assert ctx.secrets()["llbgen-http-proxy"] == proxy.encode()
    apt = exec_of(plan.image, "apt-get")
    assert sorted((s.ID, s.name) for s in apt.secretenv) == [
        ("llbgen-http-proxy", "HTTP_PROXY"), ("llbgen-http-proxy", "http_proxy"),
        ("llbgen-no-proxy", "NO_PROXY"), ("llbgen-no-proxy", "no_proxy")]
    assert "s3cret" not in json.dumps(plan.image.image_config())
    # Proxy values are not part of any cache key (their presence is: the steps read secrets).
    other = plan_for({**SEED, "proxy.http_proxy": "http://other.example:8080", "proxy.no_proxy": "10.0.0.1"})
    assert plan.digests() == other.digests()


def test_no_ssh_host_keys_in_the_image():
    plan = plan_for(SEED)
    script = plan.layer("os").steps[0].script
    assert script.index("rm -f /etc/ssh/ssh_host_*") > script.index("install -y")
    init_paths = [path for path, _, _ in plan.layer("init").stage.outputs()]
    assert not any("ssh_host_" in p for p in init_paths)


# --- the init layer and the image config ---------------------------------------------------------


def test_init_layer_files_modes_and_image_info():
    plan = plan_for(SEED)
    init = plan.layer("init").stage
    written = {path: (mode, data) for path, mode, data in init.outputs()}
    files = read_runtime_files()
    assert files, "init/ is empty"
    for f in files:
        source = runtime_dir() / f.path
        assert written[f"/init/{f.path}"] == (0o755 if os.access(source, os.X_OK) else 0o644, source.read_bytes())
        if f.path.startswith("etc/"):
            assert written[f"/{f.path}"] == written[f"/init/{f.path}"]
    assert written["/init/boot/boot.sh"][0] == written["/init/boot/entry.sh"][0] == 0o755
    info = dict(line.split("=", 1) for line in written[IMAGE_INFO][1].decode().splitlines())
    assert info["IMAGE"] == "pytorch:2.3.0-python3.8-cuda12.1.0-cudnn8-devel-ubuntu22.04"
    assert (info["TORCH_VERSION"], info["TORCHVISION_VERSION"], info["TORCHAUDIO_VERSION"]) == ("2.3.0", "0.18.0", "2.3.0")
    assert (info["PYTHON_VERSION"], info["CUDA_VERSION"], info["CUDNN_VERSION"]) == ("3.8", "12.1.0", "8")
    assert info["DISTRO"] == "ubuntu22.04" and info["LLBGEN_VERSION"]

    file_ops = [op for op in ops(plan.layer("init").state) if op.WhichOneof("op") == "file"]
    assert len(file_ops) == 2  # the runtime files, then image-info.env: two layers
    for file_op in file_ops:
        assert len(file_op.inputs) == 0  # layers of their own, on scratch
        assert all(getattr(a, a.WhichOneof("action")).timestamp == 0 for a in file_op.file.actions)
        # /root is never created by this layer (it would replace the base's 0700 /root).
        assert not any(a.mkdir.path == "/root" for a in file_op.file.actions if a.WhichOneof("action") == "mkdir")
    written_by = [[a.mkfile.path for a in op.file.actions if a.WhichOneof("action") == "mkfile"] for op in file_ops]
    assert sorted(p for paths in written_by for p in paths) == sorted(written)
    assert [IMAGE_INFO] in written_by


def test_init_runtime_files_layer_is_the_same_for_every_image():
    """Only image-info.env names the image: the runtime files' op is shared by a whole matrix, any base."""
    def files_op_digest(plan) -> str:
        named = {md.name: digest for digest, md in llb.marshal(plan.layer("init").state).metadata}
        return next(d for name, d in named.items() if name and name.startswith("init:") and IMAGE_INFO not in name)

    one = plan_for(SEED)
    other = plan_for({"torch": "2.1.0", "cuda": "11.8", "python": "3.10"}, image_tag="other:tag")
    assert files_op_digest(one) == files_op_digest(other)
    assert one.layer("init").digest != other.layer("init").digest  # image-info differs


def test_image_config():
    base = llb.image("nvidia/cuda:12.1.0-cudnn8-devel-ubuntu22.04", platform=PLATFORM, digest="sha256:" + "2" * 64,
                     config={"config": {
                         "Env": ["PATH=/usr/local/nvidia/bin:/usr/local/cuda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                 "NVIDIA_REQUIRE_CUDA=cuda>=12.1 brand=tesla,driver>=470,driver<471", "CUDA_VERSION=12.1.0",
                                 "LC_ALL=C.UTF-8"],
                         "Entrypoint": ["/opt/nvidia/nvidia_entrypoint.sh"], "Labels": {"maintainer": "NVIDIA CORPORATION"}}})
    config = plan_for(SEED, base=base).image.image_config()["config"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["PATH"] == ("/root/miniconda3/bin:/usr/local/nvidia/bin:/usr/local/cuda/bin:/usr/local/sbin:"
                           "/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    assert env["NVIDIA_REQUIRE_CUDA"].startswith("cuda>=12.1") and env["CUDA_VERSION"] == "12.1.0"
    assert (env["LANG"], env["TZ"], env["SHELL"]) == ("zh_CN.UTF-8", "Asia/Shanghai", "/bin/bash")
    assert "LC_ALL" not in env and "DEBIAN_FRONTEND" not in env
    assert config["WorkingDir"] == "/root"
    assert config["Entrypoint"] == ["/init/boot/entry.sh", "/usr/bin/tini", "-g", "--"]
    assert config["Cmd"] == ["/init/boot/boot.sh"]
    assert config["Healthcheck"]["Test"] == ["CMD", "/init/bin/healthcheck"]
    assert set(config["ExposedPorts"]) == {"22/tcp", "8888/tcp", "6006/tcp"}
    labels = config["Labels"]
    assert labels["maintainer"] == "NVIDIA CORPORATION"
    assert labels["org.opencontainers.image.version"] == "2.3.0"
    assert labels["org.opencontainers.image.base.name"] == "nvidia/cuda:12.1.0-cudnn8-devel-ubuntu22.04"
    assert labels["org.opencontainers.image.base.digest"] == "sha256:" + "2" * 64
    assert not any("created" in key for key in labels)  # reproducible: no timestamps
    spec = json.loads(labels[SPEC_LABEL])
    assert spec["tag"] == "pytorch:2.3.0-python3.8-cuda12.1.0-cudnn8-devel-ubuntu22.04" and "proxy" not in spec["spec"]


# --- the linear fallback, network mode, extras, mirrors --------------------------------------------


def test_linear_fallback_has_the_same_commands():
    merged, linear = plan_for(SEED), plan_for(SEED, merge=False)
    assert linear.names == merged.names and linear.notice == LINEAR_NOTICE and not linear.merged
    assert linear.steps() == merged.steps()
    assert merged.layer("init").stage.outputs() == linear.layer("init").stage.outputs()
    kinds = {op.WhichOneof("op") for op in ops(linear.image)}
    assert "merge" not in kinds and "diff" not in kinds
    # The same config but for the build fingerprint: the graphs differ.
    linear_config, merged_config = linear.image.image_config(), merged.image.image_config()
    assert linear_config["config"]["Labels"].pop(FINGERPRINT_LABEL) != merged_config["config"]["Labels"].pop(FINGERPRINT_LABEL)
    assert linear_config == merged_config
    assert [e.meta.args[-1] for e in execs(linear.image)] == [e.meta.args[-1] for e in execs(merged.image)]


def test_network_host_only_for_download_steps():
    plan = plan_for(SEED, network="host")
    networks = [e.network for e in execs(plan.image)]
    assert sorted(networks) == sorted([ops_pb2.HOST, ops_pb2.NONE, ops_pb2.HOST, ops_pb2.HOST])
    assert exec_of(plan.image, "miniconda").network == ops_pb2.NONE
    # The offline python layer does not even change with the network mode.
    assert plan.digests()["python"] == plan_for(SEED).digests()["python"]


def test_extras_layer_after_torch():
    plan = plan_for({**SEED, "pip_packages": ("transformers", "accelerate>=0.30")})
    assert plan.names == ("os", "python", "jupyter", "torch", "extras", "init")
    (step,) = plan.layer("extras").steps
    assert step.script.endswith("transformers 'accelerate>=0.30' torch==2.3.0 torchvision==0.18.0 "
                                "torchaudio==2.3.0 'numpy<2'")
    # Extras never rebuild the layers below them.
    base = plan_for(SEED).digests()
    assert all(plan.digests()[n] == base[n] for n in ("os", "python", "jupyter", "torch"))


def test_mirrors_are_used_and_written(tmp_path: Path):
    plan = plan_for({**SEED, "mirrors.pip_index_url": "https://pypi.tuna.tsinghua.edu.cn/simple",
                     "mirrors.conda_channels": ("https://mirrors.tuna.tsinghua.edu.cn/anaconda/pkgs/main",),
                     "mirrors.miniconda_url": "https://mirrors.tuna.tsinghua.edu.cn/anaconda/miniconda",
                     "mirrors.torch_index_url": "https://mirrors.aliyun.com/pytorch-wheels/{variant}/",
                     "mirrors.apt": "https://mirrors.tuna.tsinghua.edu.cn/ubuntu/"})
    py_step = plan.layer("python").steps[0]
    assert py_step.http_files[0].url.startswith("https://mirrors.tuna.tsinghua.edu.cn/anaconda/miniconda/")
    writes = {w.path: w.content for w in py_step.writes}
    assert writes["/root/miniconda3/pip.conf"] == "[global]\nindex-url = https://pypi.tuna.tsinghua.edu.cn/simple\n"
    assert "  - https://mirrors.tuna.tsinghua.edu.cn/anaconda/pkgs/main\n" in writes["/root/miniconda3/.condarc"]
    assert "trusted-host" not in writes["/root/miniconda3/pip.conf"]
    assert "--index-url https://pypi.tuna.tsinghua.edu.cn/simple" in plan.layer("jupyter").steps[0].script
    torch_script = plan.layer("torch").steps[0].script
    assert ("--index-url https://mirrors.aliyun.com/pytorch-wheels/cu121/ torch==2.3.0 torchvision==0.18.0 "
            "torchaudio==2.3.0") in torch_script
    assert ("pip install --retries 5 --timeout 60 --index-url https://pypi.tuna.tsinghua.edu.cn/simple "
            "/tmp/llbgen-torch-wheels/*.whl") in torch_script
    assert "mirrors.tuna.tsinghua.edu.cn/ubuntu/" in plan.layer("os").steps[0].script


def test_apt_mirror_rewrite_on_real_files(tmp_path: Path):
    apt = tmp_path / "etc" / "apt"
    (apt / "sources.list.d").mkdir(parents=True)
    (apt / "sources.list").write_text(
        "deb http://archive.ubuntu.com/ubuntu/ jammy main restricted\n"
        "deb http://security.ubuntu.com/ubuntu jammy-security main\n"
        "deb http://deb.debian.org/debian bookworm main\n"
        "deb http://deb.debian.org/debian-security bookworm-security main\n")
    (apt / "sources.list.d" / "debian.sources").write_text("Types: deb\nURIs: http://deb.debian.org/debian\n")
    (apt / "sources.list.d" / "cuda.list").write_text("deb https://developer.download.nvidia.com/compute/cuda/repos/x /\n")
    rewrite = mirror_rewrite("https://mirror.example/debian/").replace("/etc/apt", str(apt))
    subprocess.run(["sh", "-ec", rewrite], check=True)
    assert (apt / "sources.list").read_text() == (
        "deb https://mirror.example/debian/ jammy main restricted\n"
        "deb https://mirror.example/debian/ jammy-security main\n"
        "deb https://mirror.example/debian/ bookworm main\n"
        "deb https://mirror.example/debian-security/ bookworm-security main\n")
    assert (apt / "sources.list.d" / "debian.sources").read_text() == "Types: deb\nURIs: https://mirror.example/debian/\n"
    assert "developer.download.nvidia.com" in (apt / "sources.list.d" / "cuda.list").read_text()


def test_cached_layers_marks_what_will_run():
    plan = plan_for(SEED)
    have = {plan.layer(n).steps[0].description for n in ("os", "python", "torch")}
    assert cached_layers(plan, have) == {"os": "likely", "python": "likely", "jupyter": "no", "torch": "no",
                                         "init": "unknown"}
    assert cached_layers(plan, set(), cache_from_given=True)["python"] == "unknown (--cache-from)"
    linear = plan_for(SEED, merge=False)
    assert cached_layers(linear, {linear.layer("python").steps[0].description}) == {
        "os": "no", "python": "no", "jupyter": "no", "torch": "no", "init": "no"}


def test_spec_overrides_from_flags():
    values = {"torch": "2.3.0", "cpu": None, "apt_package": ["git"], "pip_extra_index_url": [],
              "apt_mirror": "https://m/ubuntu", "ca_cert": Path("ca.pem"), "http_proxy": None}
    overrides = spec_overrides(values)
    assert overrides == {"torch": "2.3.0", "apt_packages": ("git",), "mirrors.apt": "https://m/ubuntu",
                         "ca_cert": str(Path("ca.pem").absolute())}
    with pytest.raises(UsageError):
        StageContext.create(load_spec(None, SEED), network="bridge")  # type: ignore[arg-type]


# --- golden digests ----------------------------------------------------------------------------------


def test_golden_digests():
    """Digests of the seed plan's os/python/jupyter/torch layers (init follows init/, which changes often)."""
    plan = plan_for(SEED)
    actual = {name: digest for name, digest in plan.digests().items() if name != "init"}
    actual |= {f"linear.{name}": digest for name, digest in plan_for(SEED, merge=False).digests().items()
               if name in ("os", "python", "jupyter", "torch")}
    if os.environ.get("LLBGEN_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(actual, indent=2, sort_keys=True) + "\n")
        pytest.skip("golden digests refreshed")
    assert actual == json.loads(GOLDEN.read_text())


# --- the command line ----------------------------------------------------------------------------------


def _llbgen(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llbgen", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120, env={"PATH": "/usr/bin:/bin", **(env or {})})


def test_dry_run_prints_the_plan_without_a_builder():
    proc = _llbgen("build", "--dry-run", "--torch", "2.3.0", "--cuda", "12.1",
                   env={"BUILDKIT_HOST": "unix:///nonexistent"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "pytorch:2.3.0-python3.8-cuda12.1.0-cudnn8-devel-ubuntu22.04" in lines[0]
    assert lines[1].split()[:3] == ["LAYER", "DIGEST", "DEPENDS"]
    digests = plan_for(SEED).digests()
    rows = {line.split()[0]: line.split()[1] for line in lines[2:] if line.split() and line.split()[0] in digests}
    assert list(rows) == ["os", "python", "jupyter", "torch", "init"]
    for name, shown in rows.items():
        assert digests[name].startswith(shown), name
    assert "no builder" in proc.stdout and "Traceback" not in proc.stderr


@pytest.fixture
def listening_socket(tmp_path: Path):
    """A unix socket standing in for a builder; records whether anything connected."""
    path = tmp_path / "buildkitd.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(8)
    server.setblocking(False)
    yield path, server
    server.close()


@pytest.mark.parametrize("args", [
    ["--torch", "2.3.0", "--cuda", "12.4", "--python", "3.13"],
    ["--torch", "2.3.0", "--cuda", "12.1", "--network", "bridge"],
    ["--torch", "2.3.0", "--cuda", "12.1", "--ca-cert", "/nonexistent/ca.pem"],
    ["--torch", "2.3.0", "--cuda", "12.1", "--secret", "id=llbgen-ca,env=PATH"],
    ["--torch", "2.3.0", "--cuda", "12.1", "--cache-to", "type=local"],
    ["--cuda", "12.1"],
])
def test_invalid_input_fails_before_connecting(listening_socket, args: list[str]):
    path, server = listening_socket
    proc = _llbgen("build", *args, "--output", "type=image,name=x", env={"BUILDKIT_HOST": f"unix://{path}"})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith("llbgen: error:") and proc.stderr.count("llbgen: error:") == 1
    assert "Traceback" not in proc.stderr
    with pytest.raises(BlockingIOError):
        server.accept()  # nobody connected


def test_invalid_spec_names_every_problem(listening_socket):
    path, _ = listening_socket
    proc = _llbgen("build", "--torch", "2.3.0", "--cuda", "12.4", "--python", "3.13", "--dry-run",
                   env={"BUILDKIT_HOST": f"unix://{path}"})
    assert proc.returncode == 2
    assert "cuda:" in proc.stderr and "python:" in proc.stderr and "valid:" in proc.stderr


# --- packaging -------------------------------------------------------------------------------------------


def test_wheel_ships_stages_and_init(tmp_path: Path):
    """A non-editable install carries the stages and every init/ file, executables still executable."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "llbgen", "stages", "init"):
        path = ROOT / name
        if path.is_dir():
            import shutil

            shutil.copytree(path, src / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (src / name).write_bytes(path.read_bytes())
    readme = ROOT / "README.md"
    (src / "README.md").write_text(readme.read_text() if readme.exists() else "llbgen\n")
    out = tmp_path / "dist"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation",
                           "--no-index", "-q", "-w", str(out)], cwd=src, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = out.glob("llbgen-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        entries = {info.filename: (info.external_attr >> 16) & 0o777 for info in zf.infolist()}
    for module in ("__init__", "context", "os", "python", "jupyter", "torch", "init", "plan", "step"):
        assert f"stages/{module}.py" in entries
    assert "llbgen/cli/build_cmd.py" in entries
    for f in read_runtime_files():
        mode = entries[f"stages/runtime/{f.path}"]
        assert bool(mode & 0o100) == (f.mode == 0o755), f.path
    assert not any(name.startswith("init/") for name in entries)  # no top-level "init" package

    # Installed from the wheel alone, the stages find their runtime files.
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(target),
                    str(wheel)], check=True, capture_output=True, timeout=300)
    code = ("import stages, stages.init as i; print(stages.__file__); "
            "print(len(i.read_runtime_files()), oct(next(f.mode for f in i.read_runtime_files() if f.path == 'boot/boot.sh')))")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True,
                           env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}).stdout.split()
    assert shown[0].startswith(str(target))
    assert shown[1:] == [str(len(read_runtime_files())), "0o755"]


def test_init_plan_line_names_the_shared_files_apart_from_image_info():
    a = plan_for(SEED, image_tag="pytorch:a").layer("init").depends_on
    b = plan_for(SEED, image_tag="pytorch:b").layer("init").depends_on
    assert a["files"] == b["files"]  # the runtime files layer is the same in every image
    assert "pytorch:a" in a["image-info"] and "pytorch:b" in b["image-info"]
