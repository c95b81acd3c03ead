"""``llbgen export-dockerfile``: the Dockerfile lowered from the same stage objects as the LLB.

Golden Dockerfiles for three specs live in tests/unit/golden/dockerfile/; refresh with
``LLBGEN_UPDATE_GOLDEN=1 pytest tests/unit/test_dockerfile.py`` and review the diff.
The drift guard walks every Step of the layer plan and finds it in the Dockerfile; the
export runs as a subprocess with no builder and no Docker reachable.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from llbgen.dockerfile import render_export
from llbgen.dockerfile.layout import LAYERS_TOOL, SYNTAX_LINE
from llbgen.dockerfile.readme import default_lang
from llbgen.dockerfile.text import arg_defaults, expand_args
from llbgen.fingerprint import FINGERPRINT_LABEL
from llbgen.spec import load_spec
from stages import StageContext, layer_plan
from stages.init import IMAGE_INFO, read_runtime_files
from stages.plan import CMD, ENTRYPOINT, SPEC_LABEL
from stages.step import CA_PATH

ROOT = Path(__file__).resolve().parents[2]
GOLDEN_DIR = Path(__file__).parent / "golden" / "dockerfile"
EXAMPLE_TOML = ROOT / "examples" / "llbgen.toml"
PROXY = "http://proxy.example:3128"


@pytest.fixture(scope="module")
def ca_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "corp-ca.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\nTESTCAcontentMUSTNOTLEAK\n-----END CERTIFICATE-----\n")
    return path


def spec_for(name: str, ca_file: Path):
    if name == "default":  # the seed's image
        return load_spec(None, {"torch": "2.3.0", "cuda": "12.1"})
    if name == "cpu":
        return load_spec(None, {"torch": "2.3.0", "cpu": True})
    if name == "mirrors-ca":  # examples/llbgen.toml (mirrors, extra apt/pip packages) + a CA bundle + a proxy
        return load_spec(EXAMPLE_TOML, {"ca_cert": str(ca_file), "proxy.https_proxy": PROXY})
    raise KeyError(name)


NAMES = ("default", "cpu", "mirrors-ca")


def export_for(name: str, ca_file: Path, **kwargs):
    return render_export(spec_for(name, ca_file), **kwargs)


def text(export, path: str = "Dockerfile") -> str:
    return export.files[path][1].decode()


def instructions(dockerfile: str) -> list[str]:
    """Each instruction with its continuation lines and heredoc body (comments and blank lines dropped)."""
    out: list[str] = []
    lines = iter(dockerfile.splitlines())
    for line in lines:
        if not line.strip() or line.startswith("#"):
            continue
        parts = [line]
        while parts[-1].endswith("\\"):
            parts.append(next(lines))
        m = re.search(r"<<'([A-Z_0-9]+)'", parts[-1])
        if m:
            while (body := next(lines)) != m.group(1):
                parts.append(body)
            parts.append(m.group(1))
        out.append("\n".join(parts))
    return out


# --- goldens ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_golden_dockerfile(name: str, ca_file: Path) -> None:
    golden = GOLDEN_DIR / f"{name}.Dockerfile"
    dockerfile = text(export_for(name, ca_file))
    if os.environ.get("LLBGEN_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(dockerfile)
    assert golden.exists(), f"no golden {golden}; run with LLBGEN_UPDATE_GOLDEN=1"
    assert dockerfile == golden.read_text(), f"{golden.name} changed; refresh with LLBGEN_UPDATE_GOLDEN=1, review the diff"


def test_rendering_is_deterministic(ca_file: Path) -> None:
    assert {text(export_for("default", ca_file)) for _ in range(5)} == {text(export_for("default", ca_file))}


# --- the drift guard: every Step of every stage is in the Dockerfile -------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_every_step_of_every_stage_is_in_the_dockerfile(name: str, ca_file: Path) -> None:
    resolved = spec_for(name, ca_file)
    ctx = StageContext.create(resolved)
    plan = layer_plan(ctx, merge_supported=True)
    dockerfile = text(render_export(resolved))
    shell_view = expand_args(dockerfile, arg_defaults(dockerfile))  # what the shell runs with the ARG defaults
    steps = plan.steps()
    assert {layer.name for layer in plan.layers if layer.steps} <= {"os", "python", "jupyter", "torch", "extras"}
    assert steps
    for step in steps:
        assert step.script in shell_view, f"step {step.name!r}: its script is not in the Dockerfile"
        for env, value in step.env:
            assert f"export {env}={shlex.quote(value)}" in dockerfile, (step.name, env)
        for cache in step.caches:
            assert f"--mount=type=cache,target={cache.dest},id={cache.id},sharing={cache.sharing}" in dockerfile
        for f in step.http_files:
            assert f"ARG MINICONDA_URL={f.url}" in dockerfile and f"ARG MINICONDA_SHA256={f.sha256}" in dockerfile
            assert f"ADD --checksum=sha256:${{MINICONDA_SHA256}} ${{MINICONDA_URL}} /{f.filename}" in dockerfile
            assert f"target={f.dest_dir}" in dockerfile
        for w in step.writes:
            assert f"COPY --chmod={w.mode:o} <<'LLBGEN_EOF' {w.path}\n{w.content}LLBGEN_EOF\n" in dockerfile
    # Each stage in order, each on the one below, the first on the builder image.
    order = [layer.name for layer in plan.layers if layer.name not in ("os", "init")]
    below = "builder"
    for stage in order:
        assert f"\nFROM {below} AS {stage}\n" in dockerfile
        assert f"\nFROM {stage} AS {stage}-layer\n" in dockerfile
        assert f"--mount=type=bind,from={below},target=/llbgen/lower" in dockerfile
        assert f"COPY --link --from={stage}-layer /llbgen/layer/ /\n" in dockerfile
        below = stage
    assert f"--mount=type=bind,from={order[-1]},target=/llbgen/final" in dockerfile
    assert "FROM ${BUILDER_IMAGE} AS builder" in dockerfile and "FROM ${BASE_IMAGE} AS image" in dockerfile
    assert dockerfile.index("FROM ${BASE_IMAGE} AS image") > max(dockerfile.index(f"AS {s}-layer") for s in order)


def test_extras_stage_is_a_layer_of_its_own(ca_file: Path) -> None:
    dockerfile = text(export_for("mirrors-ca", ca_file))
    assert "\nFROM torch AS extras\n" in dockerfile and "COPY --link --from=extras-layer" in dockerfile
    # The extras keep torch's pins, through the same ARGs.
    extras = dockerfile[dockerfile.index("FROM torch AS extras"):dockerfile.index("# ---- layers")]
    assert "ARG TORCH_VERSION" in extras and "torch==${TORCH_VERSION}" in extras


def test_versions_are_args_with_the_resolved_defaults(ca_file: Path) -> None:
    dockerfile = text(export_for("default", ca_file))
    defaults = arg_defaults(dockerfile)
    assert defaults == {
        "BASE_IMAGE": "nvidia/cuda:12.1.0-cudnn8-devel-ubuntu22.04", "BUILDER_IMAGE": "ubuntu:22.04",
        "MINICONDA_URL": "https://repo.anaconda.com/miniconda/Miniconda3-py38_23.11.0-2-Linux-x86_64.sh",
        "MINICONDA_SHA256": "cb908ddbd603d789d94076ea4dd3f8517b15866719e007725dca778a8dfab823",
        "TORCH_VERSION": "2.3.0", "TORCHVISION_VERSION": "0.18.0", "TORCHAUDIO_VERSION": "2.3.0",
        "TORCH_INDEX_URL": "https://download.pytorch.org/whl/cu121",
    }
    torch = dockerfile[dockerfile.index("FROM jupyter AS torch"):]
    for name in ("TORCH_VERSION", "TORCHVISION_VERSION", "TORCHAUDIO_VERSION", "TORCH_INDEX_URL"):
        assert f"\nARG {name}\n" in torch  # declared in the stage that uses it
    assert "--index-url ${TORCH_INDEX_URL} " in torch and "torchaudio==${TORCHAUDIO_VERSION}" in torch


# --- what the Dockerfile must and must not contain -------------------------------------------------


def test_no_syntax_line_by_default(ca_file: Path) -> None:
    for name in NAMES:
        dockerfile = text(export_for(name, ca_file))
        assert not re.search(r"(?im)^#\s*syntax\s*=", dockerfile), name
    with_line = text(export_for("default", ca_file, syntax_line=True))
    assert with_line.splitlines()[0] == SYNTAX_LINE == "# syntax=docker/dockerfile:1"
    assert with_line.splitlines()[1:] == text(export_for("default", ca_file)).splitlines()


def test_ca_bundle_is_a_secret_mount_never_copied(ca_file: Path) -> None:
    export = export_for("mirrors-ca", ca_file)
    dockerfile = text(export)
    runs = [i for i in instructions(dockerfile) if i.startswith("RUN ")]
    secret = f"--mount=type=secret,id=llbgen-ca,target={CA_PATH},mode=0444,required=true"
    plan = layer_plan(StageContext.create(spec_for("mirrors-ca", ca_file)), merge_supported=True)
    downloads = [s for s in plan.steps() if s.network == "download"]
    assert len([r for r in runs if secret in r]) == len(downloads) >= 3
    offline = [r for r in runs if "--network=none" in r]
    assert offline and all(secret not in r for r in offline)  # the installer step has no network and no CA
    for line in dockerfile.splitlines():
        if re.match(r"^(COPY|ADD)\b", line):
            assert "llbgen-ca" not in line and "secrets" not in line and str(ca_file) not in line, line
    assert str(ca_file) not in dockerfile and "corp-ca" not in dockerfile
    for path, (_, data) in export.files.items():
        assert b"TESTCAcontentMUSTNOTLEAK" not in data, path
    assert f"CA_CERT={ca_file}" in text(export, "build.sh")
    assert '--secret id=llbgen-ca,src="$CA_CERT"' in text(export, "build.sh")
    # No CA: no secret mount, no CA variable.
    plain = export_for("default", ca_file)
    assert "type=secret" not in text(plain) and "CA_CERT" not in text(plain, "build.sh")


def test_proxies_are_build_args_not_in_the_dockerfile(ca_file: Path) -> None:
    export = export_for("mirrors-ca", ca_file)
    assert PROXY not in text(export)
    script = text(export, "build.sh")
    # By name: docker reads the value from the environment; a proxy without credentials is the default.
    assert "--build-arg https_proxy \\\n" in script and "--build-arg HTTPS_PROXY \\\n" in script
    assert f"https_proxy={PROXY}\n" in script
    assert PROXY not in text(export_for("default", ca_file), "build.sh")


def test_image_config_is_with_image_config(ca_file: Path) -> None:
    resolved = spec_for("default", ca_file)
    ctx = StageContext.create(resolved)
    config = layer_plan(ctx, merge_supported=True).image.image_config()["config"]
    dockerfile = text(render_export(resolved))
    tail = dockerfile[dockerfile.index("# Image config"):]
    assert 'ENTRYPOINT ["/init/boot/entry.sh", "/usr/bin/tini", "-g", "--"]' in tail and list(ENTRYPOINT) == config["Entrypoint"]
    assert 'CMD ["/init/boot/boot.sh"]' in tail and list(CMD) == config["Cmd"]
    assert "WORKDIR /root\n" in tail and config["WorkingDir"] == "/root"
    assert "EXPOSE 22/tcp 6006/tcp 8888/tcp\n" in tail and sorted(config["ExposedPorts"]) == ["22/tcp", "6006/tcp", "8888/tcp"]
    assert ("HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 CMD "
            '["/init/bin/healthcheck"]') in tail
    env = dict(item.split("=", 1) for item in config["Env"])
    assert "ENV PATH=/root/miniconda3/bin:${PATH}" in tail and env["PATH"].startswith("/root/miniconda3/bin:")
    for key in ("LANG", "TZ", "SHELL"):
        assert f'{key}="{env[key]}"' in tail
    label_block = tail[tail.index("LABEL "):tail.index("ENTRYPOINT")].replace("\\\n", " ")
    labels = dict(word.split("=", 1) for word in shlex.split(label_block)[1:])
    # Every label but llbgen's build fingerprint, which vouches only for llbgen's own graph.
    assert FINGERPRINT_LABEL in config["Labels"] and FINGERPRINT_LABEL not in labels
    assert labels == {k: v for k, v in config["Labels"].items() if k != FINGERPRINT_LABEL}
    assert SPEC_LABEL in labels and "ca_cert" not in labels[SPEC_LABEL] and "proxy" not in labels[SPEC_LABEL]


def test_init_files_are_the_runtime_files(ca_file: Path) -> None:
    export = export_for("default", ca_file)
    runtime = read_runtime_files()
    assert {f"init/{f.path}": (f.mode, f.data) for f in runtime} == {
        path: value for path, value in export.files.items() if path.startswith("init/")}
    dockerfile = text(export)
    assert "COPY --link init/ /init/\n" in dockerfile and "COPY --link init/etc/ /etc/\n" in dockerfile
    assert f"COPY --link --chmod=644 <<'LLBGEN_EOF' {IMAGE_INFO}\nIMAGE=" in dockerfile
    assert export.files[LAYERS_TOOL][0] == 0o755 and export.files["build.sh"][0] == 0o755


def test_seed_defects_stay_fixed(ca_file: Path) -> None:
    dockerfile = text(export_for("default", ca_file))
    assert "export DEBIAN_FRONTEND=noninteractive" in dockerfile and "noninteracti " not in dockerfile
    assert "chpasswd" not in dockerfile and "123456" not in dockerfile
    assert "rm -f /etc/ssh/ssh_host_*" in dockerfile
    assert "ln -snf /usr/share/zoneinfo/Asia/Shanghai /etc/localtime" in dockerfile
    assert "curl -o" not in dockerfile and not re.search(r"(?m)^RUN (curl|wget)", dockerfile)
    assert "start.sh" not in dockerfile and "sharefile" not in dockerfile


# --- build.sh and README.md ------------------------------------------------------------------------


def test_build_script(ca_file: Path, tmp_path: Path) -> None:
    export = render_export(spec_for("default", ca_file), network="host", tag="example/pytorch:test")
    script = text(export, "build.sh")
    assert script.startswith("#!/bin/sh\n")
    assert "IMAGE_TAG=example/pytorch:test" in script and '-t "$IMAGE_TAG"' in script
    assert "exec docker buildx build" in script and "--network host" in script and "--load" in script
    assert '"$@"' in script and script.rstrip().endswith(".")
    for name in arg_defaults(text(export)):
        assert f'--build-arg {name}="${name}"' in script
    path = tmp_path / "build.sh"
    path.write_text(script)
    assert subprocess.run(["sh", "-n", str(path)]).returncode == 0
    assert "--network host" not in text(export_for("default", ca_file), "build.sh")


@pytest.mark.parametrize("lang,marker", [("en", "## 4 Parameters"), ("zh", "## 4 参数")])
def test_readme_explains_every_parameter(lang: str, marker: str, ca_file: Path) -> None:
    export = export_for("mirrors-ca", ca_file, lang=lang)
    readme = text(export, "README.md")
    assert marker in readme
    table = readme[readme.index(marker):]
    for name in ["IMAGE_TAG", "CA_CERT", *arg_defaults(text(export))]:
        row = next((line for line in table.splitlines() if line.startswith(f"| `{name}` |")), None)
        assert row is not None, f"README ({lang}) does not explain {name}"
        assert len(row.split("|")[3].strip()) > 10, row


def test_default_lang_from_locale() -> None:
    assert default_lang({"LANG": "zh_CN.UTF-8"}) == "zh"
    assert default_lang({"LC_ALL": "en_US.UTF-8", "LANG": "zh_CN.UTF-8"}) == "en"
    assert default_lang({"LC_ALL": "zh_TW.UTF-8"}) == "zh"
    assert default_lang({}) == "en"


# --- the command, on a machine without a builder ---------------------------------------------------


def run_export(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG"))}
    base.update({"BUILDKIT_HOST": "unix:///nonexistent", "DOCKER_HOST": "unix:///nonexistent",
                 "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"})
    base.update(env or {})
    return subprocess.run([sys.executable, "-m", "llbgen", "export-dockerfile", *args], cwd=ROOT, env=base,
                          capture_output=True, text=True, timeout=120)


def test_export_needs_no_builder_and_no_docker(tmp_path: Path) -> None:
    out = tmp_path / "ctx"
    result = run_export("--torch", "2.3.0", "--cuda", "12.1", "-o", str(out), env={"LANG": "zh_CN.UTF-8"})
    assert result.returncode == 0, result.stderr
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert names[:4] == ["Dockerfile", "README.md", "build.sh", "init/README.md"] and LAYERS_TOOL in names
    assert os.access(out / "build.sh", os.X_OK) and os.access(out / "init" / "boot" / "boot.sh", os.X_OK)
    assert "## 4 参数" in (out / "README.md").read_text()  # the locale chose Chinese
    expected = render_export(load_spec(None, {"torch": "2.3.0", "cuda": "12.1"}), lang="zh")
    for rel, (mode, data) in expected.files.items():
        assert (out / rel).read_bytes() == data, rel
        assert (out / rel).stat().st_mode & 0o777 == mode, rel


def test_export_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    out = tmp_path / "ctx"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = run_export("--torch", "2.3.0", "--cpu", "-o", str(out))
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "not empty" in result.stderr and "--force" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    result = run_export("--torch", "2.3.0", "--cpu", "-o", str(out), "--force", "--lang", "en")
    assert result.returncode == 0, result.stderr
    assert (out / "notes.txt").read_text() == "mine" and (out / "Dockerfile").is_file()
    assert "## 4 Parameters" in (out / "README.md").read_text()


def test_export_rejects_bad_input_in_one_line(tmp_path: Path) -> None:
    result = run_export("--torch", "2.3.0", "--cuda", "12.1", "--lang", "fr", "-o", str(tmp_path / "a"))
    assert result.returncode == 2 and "--lang" in result.stderr and result.stderr.count("\n") == 1
    result = run_export("--torch", "2.3.0", "--cuda", "11.2", "-o", str(tmp_path / "b"))
    assert result.returncode == 2 and "cuda" in result.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


# --- llbgen-layers.py: DiffOp's stand-in ------------------------------------------------------------


def _tool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = ROOT / "llbgen" / "dockerfile" / "layers_tool.py"
    return subprocess.run([sys.executable, "-I", "-B", str(tool), *args], capture_output=True, text=True)


def test_layers_tool_diff_and_prune(tmp_path: Path) -> None:
    """diff copies what changed (with parents' modes); merged over the lower, pruned, it is the upper tree."""
    upper = tmp_path / "upper" / "home"
    lower_fs = tmp_path / "lowerfs"
    lower = lower_fs / str(upper).lstrip("/")
    for tree in (lower, upper):
        (tree / "pkg" / "old").mkdir(parents=True)
        (tree / "same.txt").write_text("same")
        (tree / "pkg" / "old" / "gone.py").write_text("removed by the upper stage")
        (tree / "changed.txt").write_text("v1")
        os.utime(tree / "same.txt", ns=(1, 1))
    (upper.parent).chmod(0o700)
    import shutil

    shutil.rmtree(upper / "pkg" / "old")
    (upper / "changed.txt").write_text("v2!")
    (upper / "pkg" / "new").mkdir()
    (upper / "pkg" / "new" / "mod.py").write_text("new")
    os.link(upper / "pkg" / "new" / "mod.py", upper / "pkg" / "new" / "alias.py")
    (upper / "link").symlink_to("pkg/new/mod.py")
    (upper / "run.sh").write_text("#!/bin/sh\n")
    (upper / "run.sh").chmod(0o755)

    out = tmp_path / "layer"
    result = _tool("diff", str(lower_fs), str(out), str(upper))
    assert result.returncode == 0, result.stderr
    assert "1 deleted" in result.stdout
    copied = out / str(upper).lstrip("/")
    names = sorted(p.relative_to(copied).as_posix() for p in copied.rglob("*"))
    assert names == ["changed.txt", "link", "pkg", "pkg/new", "pkg/new/alias.py", "pkg/new/mod.py", "run.sh"]
    assert (copied / "changed.txt").read_text() == "v2!" and os.readlink(copied / "link") == "pkg/new/mod.py"
    assert (copied / "pkg/new/alias.py").stat().st_ino == (copied / "pkg/new/mod.py").stat().st_ino
    assert (copied / "run.sh").stat().st_mode & 0o777 == 0o755
    assert (out / str(upper.parent).lstrip("/")).stat().st_mode & 0o777 == 0o700  # the parent's own mode

    # The image: the lower tree with the layer copied over it, then pruned against the upper tree.
    image = tmp_path / "image" / "home"
    shutil.copytree(lower, image, symlinks=True)
    shutil.copytree(copied, image, symlinks=True, dirs_exist_ok=True)
    final_fs = tmp_path / "finalfs"
    (final_fs / str(image.parent).lstrip("/")).mkdir(parents=True)
    shutil.copytree(upper, final_fs / str(image).lstrip("/"), symlinks=True)
    result = _tool("prune", str(final_fs), str(image))
    assert result.returncode == 0, result.stderr
    assert "removed 1 entries" in result.stdout and not (image / "pkg" / "old").exists()

    (image / "extra.txt").write_text("x")
    (final_fs / str(image).lstrip("/") / "changed.txt").write_text("other size")
    result = _tool("prune", str(final_fs), str(image))
    assert result.returncode == 1 and "do not reproduce" in result.stderr and "changed.txt" in result.stderr
    assert not (image / "extra.txt").exists()
