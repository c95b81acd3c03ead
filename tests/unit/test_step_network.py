"""Which network each step gets: a loopback URL puts only the steps that reach it on the host's network.

The graph is read back from the marshalled LLB (the exec ops' network modes), and the
Dockerfile export is read as text: both lowerings of the same Step must agree.
"""

from __future__ import annotations

import pytest

from llbgen import llb
from llbgen._proto.buildkit import ops_pb2
from llbgen.dockerfile import render_export
from llbgen.spec import load_spec
from stages import StageContext, layer_plan
from stages.network import is_loopback_url, needs_host_network

SEED = {"torch": "2.3.0", "cuda": "12.1"}
LOOPBACK_INDEX = "http://127.0.0.1:47501/simple"


def context(values: dict, **ctx_args) -> StageContext:
    return StageContext.create(load_spec(None, {**SEED, **values}), **ctx_args)


def networks(values: dict, **ctx_args) -> dict[str, list[int]]:
    """Layer name -> the network mode of each exec that layer's own steps run (in the merged plan)."""
    plan = layer_plan(context(values, **ctx_args), merge_supported=True)
    out: dict[str, list[int]] = {}
    for layer in plan.layers:
        if not layer.steps:
            continue
        ops = [ops_pb2.Op.FromString(dt) for dt in llb.marshal(layer.state).ops]
        names = {step.script for step in layer.steps}
        out[layer.name] = [op.exec.network for op in ops
                           if op.WhichOneof("op") == "exec" and op.exec.meta.args[-1] in names]
    return out


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:47501/simple", "http://127.8.9.10/", "http://localhost:8080/simple", "https://LOCALHOST/",
    "http://mirror.localhost/pypi", "http://[::1]:3128", "http://[::ffff:127.0.0.1]/", "http://0.0.0.0:8000/",
])
def test_loopback_urls(url: str):
    assert is_loopback_url(url)


@pytest.mark.parametrize("url", [
    "https://pypi.org/simple", "http://10.0.0.5/simple", "http://192.168.1.2:8080/", "http://172.17.0.1:5000/",
    "http://localhost.example.com/", "http://[fe80::1]/", "http://[::1/", "not a url",
])
def test_not_loopback_urls(url: str):
    assert not is_loopback_url(url)


def test_default_build_needs_no_host_network():
    assert networks({}) == {"os": [ops_pb2.UNSET], "python": [ops_pb2.NONE], "jupyter": [ops_pb2.UNSET],
                            "torch": [ops_pb2.UNSET]}
    ctx = context({})
    assert not needs_host_network(layer_plan(ctx, merge_supported=True).steps(), ctx)


def test_loopback_torch_index_puts_only_the_torch_step_on_the_host_network():
    values = {"mirrors.torch_index_url": LOOPBACK_INDEX}
    assert networks(values) == {"os": [ops_pb2.UNSET], "python": [ops_pb2.NONE], "jupyter": [ops_pb2.UNSET],
                                "torch": [ops_pb2.HOST]}
    # The other layers keep their cache keys: a loopback torch mirror rebuilds only torch.
    mirrored = layer_plan(context(values), merge_supported=True).digests()
    plain = layer_plan(context({}), merge_supported=True).digests()
    assert {n: mirrored[n] for n in ("os", "python", "jupyter")} == {n: plain[n] for n in ("os", "python", "jupyter")}
    ctx = context(values)
    assert needs_host_network(layer_plan(ctx, merge_supported=True).steps(), ctx)


def test_loopback_pip_index_reaches_every_pip_step_and_nothing_else():
    values = {"mirrors.pip_extra_index_urls": ("http://localhost:3141/root/pypi/+simple/",),
              "pip_packages": ("transformers",)}
    assert networks(values) == {"os": [ops_pb2.UNSET], "python": [ops_pb2.NONE], "jupyter": [ops_pb2.HOST],
                                "torch": [ops_pb2.HOST], "extras": [ops_pb2.HOST]}


def test_loopback_apt_mirror_reaches_only_the_os_step():
    values = {"mirrors.apt": "http://[::1]:3142/ubuntu/"}
    assert networks(values) == {"os": [ops_pb2.HOST], "python": [ops_pb2.NONE], "jupyter": [ops_pb2.UNSET],
                                "torch": [ops_pb2.UNSET]}


def test_loopback_proxy_reaches_every_download_step():
    values = {"proxy.https_proxy": "http://127.0.0.1:7890"}
    assert networks(values) == {"os": [ops_pb2.HOST], "python": [ops_pb2.NONE], "jupyter": [ops_pb2.HOST],
                                "torch": [ops_pb2.HOST]}


def test_private_and_http_source_urls_need_nothing():
    # RFC 1918 mirrors are reached through the builder's bridge; the installer is fetched by the daemon.
    values = {"mirrors.torch_index_url": "http://10.1.2.3/whl/{variant}", "mirrors.pip_index_url": "http://192.168.0.9/simple",
              "mirrors.miniconda_url": "http://127.0.0.1:47501/miniconda"}
    assert networks(values) == {"os": [ops_pb2.UNSET], "python": [ops_pb2.NONE], "jupyter": [ops_pb2.UNSET],
                                "torch": [ops_pb2.UNSET]}


def test_network_host_still_puts_every_download_step_on_the_host():
    assert networks({"mirrors.torch_index_url": LOOPBACK_INDEX}, network="host") == {
        "os": [ops_pb2.HOST], "python": [ops_pb2.NONE], "jupyter": [ops_pb2.HOST], "torch": [ops_pb2.HOST]}


def _runs(dockerfile: str) -> list[str]:
    """Each RUN instruction with its flags (the lines up to the heredoc opener)."""
    runs, current = [], None
    for line in dockerfile.splitlines():
        if line.startswith("RUN "):
            current = line
        elif current is not None:
            current += "\n" + line
        if current is not None and "<<" in line:
            runs.append(current)
            current = None
    return runs


def test_dockerfile_gives_host_network_to_the_same_steps():
    export = render_export(load_spec(None, {**SEED, "mirrors.torch_index_url": LOOPBACK_INDEX}))
    text, build_sh = export.files["Dockerfile"][1].decode(), export.files["build.sh"][1].decode()
    host_runs = [run for run in _runs(text) if "--network=host" in run]
    assert len(host_runs) == 1 and "--index-url ${TORCH_INDEX_URL}" in text.split(host_runs[0], 1)[1].split("LLBGEN_EOF", 1)[0]
    assert "--allow network.host" in build_sh and "--network host" not in build_sh
    assert "--allow network.host" in export.files["README.md"][1].decode()

    plain = render_export(load_spec(None, SEED))
    assert "--network=host" not in plain.files["Dockerfile"][1].decode()
    assert "network.host" not in plain.files["build.sh"][1].decode()

    everything = render_export(load_spec(None, {**SEED, "mirrors.torch_index_url": LOOPBACK_INDEX}), network="host")
    assert "--network=host" not in everything.files["Dockerfile"][1].decode()
    assert "--network host" in everything.files["build.sh"][1].decode()


def test_plan_notes_name_the_host_network_steps_without_secrets():
    values = {"mirrors.torch_index_url": "http://127.0.0.1:47501/simple", "proxy.https_proxy": "http://u:pw@localhost:7890"}
    notes = layer_plan(context(values), merge_supported=True).notes
    assert notes == ("os: runs on the host's network to reach the proxy (on the loopback)",
                     "jupyter: runs on the host's network to reach the proxy (on the loopback)",
                     "torch: runs on the host's network to reach 127.0.0.1:47501, the proxy (on the loopback)")
    assert not any("pw" in note or "7890" in note for note in notes)
    assert layer_plan(context(values, network="host"), merge_supported=True).notes == ()
    assert layer_plan(context({}), merge_supported=True).notes == ()
