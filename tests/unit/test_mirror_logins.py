"""Logins in mirror URLs (``https://user:password@mirror/...``): build secrets, never in the graph or the image.

The password must be in no byte of the LLB definition (cache keys), the image config
(labels: ``io.llbgen.spec``), ``/init/image-info.env``, the files the steps write
(pip.conf, .condarc), the printed plan or bake's spec dump; it must reach the steps
as session secrets; and a changed password must not change a single digest.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from llbgen import llb
from llbgen._proto.buildkit import ops_pb2
from llbgen.bake.report import variant_data
from llbgen.dockerfile import render_export
from llbgen.errors import UsageError
from llbgen.fingerprint import FINGERPRINT_LABEL
from llbgen.recipe import check_secret_ids
from llbgen.spec import load_spec
from llbgen.spec.credentials import CredentialProblem, split_login
from stages import StageContext, layer_plan
from stages.plan import spec_label
from stages.step import APT_AUTH, PIP_NETRC

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "Hunter2-pw"
# What a user types: every mirror with a login (the password percent-encoded where it must be).
LOGGED_IN = {
    "torch": "2.3.0", "cpu": True,
    "mirrors.apt": f"http://deb:{PASSWORD}@deb.corp:8081/debian",
    "mirrors.pip_index_url": f"https://me:{PASSWORD}@pypi.corp/simple",
    "mirrors.pip_extra_index_urls": (f"https://me:{PASSWORD}@pypi.corp/extra",),
    "mirrors.torch_index_url": f"https://me:{PASSWORD}@pypi.corp/whl/{{variant}}",
    "mirrors.conda_channels": (f"https://c:{PASSWORD}@conda.corp/main",),
    "pip_packages": ("einops",),
}


def _plan(values: dict):
    ctx = StageContext.create(load_spec(None, values))
    return ctx, layer_plan(ctx, merge_supported=True)


def test_split_login_keeps_the_url_and_decodes_the_login():
    url, login = split_login("http://u%40corp:p%3Aw@host.corp:8443/a/b?x=1", "mirrors.apt")
    assert url == "http://host.corp:8443/a/b?x=1"
    assert login is not None and (login.scheme, login.host, login.port) == ("http", "host.corp", 8443)
    assert (login.username, login.password.get_secret_value()) == ("u@corp", "p:w")
    assert "p:w" not in repr(login)
    assert split_login("https://pypi.corp/simple", "mirrors.pip_index_url") == ("https://pypi.corp/simple", None)


@pytest.mark.parametrize("url", ["https://token@pypi.corp/simple", "https://me:two%20words@pypi.corp/simple",
                                 "https://me:@pypi.corp/simple", "https://me:a%22b@pypi.corp/simple"])
def test_a_login_netrc_cannot_carry_is_refused(url: str):
    with pytest.raises(CredentialProblem, match="mirrors.pip_index_url"):
        split_login(url, "mirrors.pip_index_url")


def test_the_resolved_spec_has_no_password_anywhere_it_is_shown_or_dumped():
    resolved = load_spec(None, LOGGED_IN)
    assert resolved.spec.mirrors.pip_index_url == "https://pypi.corp/simple"
    assert resolved.torch_index_url == "https://pypi.corp/whl/cpu"
    assert resolved.spec.mirrors.apt == "http://deb.corp:8081/debian"
    assert {x.field for x in resolved.logins} == {"mirrors.apt", "mirrors.pip_index_url",
                                                  "mirrors.pip_extra_index_urls", "mirrors.torch_index_url",
                                                  "mirrors.conda_channels"}
    for shown in (repr(resolved), str(resolved), json.dumps(resolved.model_dump(mode="json")),
                  resolved.model_dump_json()):
        assert PASSWORD not in shown


def test_no_password_in_the_definition_the_image_config_or_the_files_written():
    ctx, plan = _plan(LOGGED_IN)
    definition = llb.marshal(plan.image).to_bytes()
    assert PASSWORD.encode() not in definition
    assert b"pypi.corp" in definition  # the URLs are there, without their login
    config = json.dumps(plan.image.image_config())
    assert PASSWORD not in config
    label = json.loads(spec_label(ctx))
    assert label["spec"]["mirrors"]["pip_index_url"] == "https://pypi.corp/simple"
    info = dict(plan.layer("init").stage.info)  # type: ignore[attr-defined]
    assert info["TORCH_INDEX_URL"] == "https://pypi.corp/whl/cpu"
    writes = {w.path: w.content for step in plan.steps() for w in step.writes}
    assert "https://pypi.corp/simple" in writes["/root/miniconda3/pip.conf"]
    assert "https://conda.corp/main" in writes["/root/miniconda3/.condarc"]
    for step in plan.steps():
        assert PASSWORD not in step.name + step.script + repr(step.env)


def test_the_logins_reach_the_steps_as_secret_mounts():
    ctx, plan = _plan(LOGGED_IN)
    secrets = ctx.secrets()
    assert secrets[PIP_NETRC.id] == f"machine pypi.corp login me password {PASSWORD}\n".encode()
    assert secrets[APT_AUTH.id] == f"machine http://deb.corp:8081 login deb password {PASSWORD}\n".encode()
    definition = llb.marshal(plan.image)
    execs = [op.exec for op in map(definition.op, definition.digests) if op.WhichOneof("op") == "exec"]
    by_ids = [{m.secretOpt.ID for m in e.mounts if m.mountType == ops_pb2.MountType.SECRET} for e in execs]
    assert {APT_AUTH.id} in by_ids and by_ids.count({PIP_NETRC.id}) == 3  # apt; jupyter, torch, extras
    pip_steps = [s for s in plan.steps() if PIP_NETRC in s.secret_files]
    assert len(pip_steps) == 3 and all(("NETRC", PIP_NETRC.path) in s.env for s in pip_steps)
    (apt_step,) = [s for s in plan.steps() if APT_AUTH in s.secret_files]
    assert f"-o Dir::Etc::netrc={APT_AUTH.path}" in apt_step.script


def test_a_changed_password_changes_no_digest_and_no_fingerprint():
    _, plan = _plan(LOGGED_IN)
    other = {k: v.replace(PASSWORD, "another-password") if isinstance(v, str) else
             tuple(x.replace(PASSWORD, "another-password") for x in v) if isinstance(v, tuple) else v
             for k, v in LOGGED_IN.items()}
    _, plan2 = _plan(other)
    assert plan.digests() == plan2.digests()
    labels = plan.image.image_config()["config"]["Labels"]
    assert labels[FINGERPRINT_LABEL] == plan2.image.image_config()["config"]["Labels"][FINGERPRINT_LABEL]


def test_conda_channel_logins_are_noted_and_used_by_no_step():
    ctx, plan = _plan({"torch": "2.3.0", "cpu": True,
                       "mirrors.conda_channels": (f"https://c:{PASSWORD}@conda.corp/main",)})
    assert not ctx.pip_login and not ctx.apt_login and not ctx.secrets()
    assert any(".condarc" in note for note in plan.notes)
    assert all(not step.secret_files for step in plan.steps())


def test_a_login_in_the_miniconda_url_is_refused_naming_the_alternative():
    with pytest.raises(UsageError, match=r"mirrors.miniconda_url: .*serve the installer without a login"):
        load_spec(None, {"torch": "2.3.0", "cpu": True,
                         "mirrors.miniconda_url": f"https://me:{PASSWORD}@repo.corp/miniconda"})


def test_two_logins_for_one_pip_host_are_refused():
    with pytest.raises(UsageError, match="pypi.corp is given two different logins"):
        load_spec(None, {"torch": "2.3.0", "cpu": True,
                         "mirrors.pip_index_url": f"https://me:{PASSWORD}@pypi.corp/simple",
                         "mirrors.torch_index_url": "https://me:other@pypi.corp/whl/{variant}"})


def test_export_dockerfile_refuses_a_login_a_step_needs():
    with pytest.raises(UsageError, match="mirrors.pip_index_url: a login in the URL cannot go into an exported"):
        render_export(load_spec(None, {"torch": "2.3.0", "cpu": True,
                                       "mirrors.pip_index_url": f"https://me:{PASSWORD}@pypi.corp/simple"}))


def test_the_login_secret_ids_are_reserved():
    for secret_id in (PIP_NETRC.id, APT_AUTH.id):
        with pytest.raises(UsageError, match="llbgen's own"):
            check_secret_ids([secret_id])


def test_bake_print_dumps_no_password():
    class Variant:
        name, tags, axes, origin, cache_to, cache_from = "v", ("t",), {}, "test", (), ()
        resolved = load_spec(None, LOGGED_IN)

    assert PASSWORD not in json.dumps(variant_data(Variant()))  # type: ignore[arg-type]


def _llbgen(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llbgen", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120, env={"PATH": "/usr/bin:/bin", "BUILDKIT_HOST": "unix:///nonexistent"})


def test_plan_and_dry_run_print_no_password():
    flags = ["--torch", "2.3.0", "--cpu", "--pip-index-url", f"https://me:{PASSWORD}@pypi.corp/simple",
             "--apt-mirror", f"https://me:{PASSWORD}@deb.corp/debian",
             "--torch-index-url", f"https://me:{PASSWORD}@pypi.corp/whl/{{variant}}"]
    for command in (["plan"], ["build", "--dry-run"]):
        proc = _llbgen(*command, *flags)
        assert proc.returncode == 0, proc.stderr
        assert "https://pypi.corp/simple" in proc.stdout and "pip login: secret mount" in proc.stdout
        assert PASSWORD not in proc.stdout + proc.stderr


def test_a_bad_url_is_reported_without_its_password():
    proc = _llbgen("plan", "--torch", "2.3.0", "--cpu", "--pip-index-url", f"ftp://me:{PASSWORD}@pypi.corp/simple")
    assert proc.returncode == 2 and "mirrors.pip_index_url" in proc.stderr
    assert PASSWORD not in proc.stdout + proc.stderr and "Traceback" not in proc.stderr
