"""``llbgen bake`` without a builder: the file model, matrix expansion, include/exclude, names,
tag and cache templates, every invalid combination in one error, --print, the scheduler,
the crediting of shared steps, the summary, and the examples (bake matrix, CI workflow)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from llbgen.bake import Overrides, expand, load_bake, parse_sets, resolve_variants
from llbgen.bake.progress import VariantStream, check_bake_progress
from llbgen.bake.schedule import BuilderPool
from llbgen.bake.sharing import ran_elsewhere, step_counts
from llbgen.builder.progress import VertexState
from llbgen.errors import UsageError
from llbgen.recipe import layer_statuses

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "from llbgen.cli.main import main; main()"]


def bake(text: str, tmp_path: Path, name: str = "bake.toml"):
    path = tmp_path / name
    path.write_text(text)
    return load_bake(path)


def names(b) -> list[str]:
    return [a.name for a in expand(b)]


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "BUILDKIT_HOST": "tcp://127.0.0.1:9"})


# --- the model ------------------------------------------------------------------------------


def test_top_level_splits_spec_values_options_and_globals(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    b = bake("""
python = "3.11"
ca_cert = "ca.pem"
tag = "r/x:{torch}"
cache_to = "type=registry,ref=r/c:{name},mode=max"
push = true
network = "host"
builders = ["docker://", "tcp://10.0.0.2:1234"]
max_parallel = 3
[mirrors]
pip_index_url = "https://pypi.example/simple"
[axes]
torch = ["2.4.1", "2.5.1"]
""", tmp_path)
    assert b.defaults["python"] == "3.11"
    assert b.defaults["ca_cert"] == str(ca.resolve())  # relative to the file
    assert b.defaults["mirrors"] == {"pip_index_url": "https://pypi.example/simple"}
    assert b.options.tag == ("r/x:{torch}",) and b.options.cache_to == ("type=registry,ref=r/c:{name},mode=max",)
    assert (b.push, b.network, b.builders, b.max_parallel) == (True, "host", ("docker://", "tcp://10.0.0.2:1234"), 3)
    assert b.axes == {"torch": ("2.4.1", "2.5.1")}


def test_shape_problems_all_at_once(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as err:
        bake("""
pyhton = "3.11"
push = "maybe"
[axes]
torch = "2.4.1"
flavor = ["devel"]
cuda = []
[[exclude]]
python = "3.11"
[[include]]
torch = "2.5.1"
builders = ["x"]
""", tmp_path)
    text = str(err.value)
    for needle in ("bake.toml: pyhton: unknown key", "axes.torch: expected a non-empty list",
                   "axes.flavor: not a spec key", "axes.cuda: expected a non-empty list",
                   "exclude[1].python: exclude matches axis keys only",
                   "include[1].builders: only the top level", "bake.toml: push: Input should be a valid boolean"):
        assert needle in text, text
    assert text.startswith("7 problems:"), text


def test_bad_toml_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not valid TOML"):
        bake("axes = [", tmp_path)
    with pytest.raises(UsageError, match="no file at"):
        load_bake(tmp_path / "missing.toml")


# --- expansion ------------------------------------------------------------------------------


def test_axes_product_in_order_with_names(tmp_path: Path) -> None:
    b = bake("""
python = "3.11"
[axes]
torch = ["2.4.1", "2.5.1"]
cuda = ["12.1", "12.4"]
flavour = ["devel"]
""", tmp_path)
    assert names(b) == ["torch2.4.1-cu121", "torch2.4.1-cu124", "torch2.5.1-cu121", "torch2.5.1-cu124"]
    first = expand(b)[0]
    assert dict(first.values) == {"torch": "2.4.1", "cuda": "12.1", "flavour": "devel"}


def test_exclude_drops_partial_matches(tmp_path: Path) -> None:
    b = bake("""
[axes]
torch = ["2.1.2", "2.5.1"]
cuda = ["11.8", "12.4"]
python = ["3.10", "3.11"]
[[exclude]]
torch = "2.1.2"
cuda = "12.4"
[[exclude]]
torch = "2.5.1"
cuda = "11.8"
python = "3.10"
""", tmp_path)
    got = [tuple(a.axes.values()) for a in expand(b)]
    assert got == [("2.1.2", "11.8", "3.10"), ("2.1.2", "11.8", "3.11"), ("2.5.1", "11.8", "3.11"),
                   ("2.5.1", "12.4", "3.10"), ("2.5.1", "12.4", "3.11")]


def test_include_extends_matching_or_adds_a_variant(tmp_path: Path) -> None:
    b = bake("""
[axes]
torch = ["2.4.1", "2.5.1"]
cuda = ["12.1", "12.4"]
[[include]]               # extends both 2.5.1 variants
torch = "2.5.1"
pip_packages = ["transformers"]
tag = "r/x:{torch}-{cuda}-hf"
[[include]]               # contradicts every axis value: a variant of its own
torch = "2.3.1"
cpu = true
name = "cpu-old"
[[include]]               # no axis key: extends every original combination
apt_packages = ["htop"]
""", tmp_path)
    got = {a.name: a for a in expand(b)}
    assert list(got) == ["torch2.4.1-cu121", "torch2.4.1-cu124", "torch2.5.1-cu121", "torch2.5.1-cu124", "cpu-old"]
    assert got["torch2.5.1-cu124"].values["pip_packages"] == ["transformers"]
    assert got["torch2.5.1-cu124"].values["tag"] == ("r/x:{torch}-{cuda}-hf",)
    assert "pip_packages" not in got["torch2.4.1-cu121"].values
    assert all(got[n].values["apt_packages"] == ["htop"] for n in list(got)[:4])
    assert dict(got["cpu-old"].values) == {"torch": "2.3.1", "cpu": True}
    assert got["cpu-old"].origin == "include[2]"


def test_excluded_combination_can_be_included_back(tmp_path: Path) -> None:
    b = bake("""
[axes]
torch = ["2.4.1", "2.5.1"]
[[exclude]]
torch = "2.4.1"
[[include]]
torch = "2.4.1"
cpu = true
""", tmp_path)
    assert [dict(a.values) for a in expand(b)] == [{"torch": "2.5.1"}, {"torch": "2.4.1", "cpu": True}]


def test_names_from_templates_and_duplicates(tmp_path: Path) -> None:
    b = bake("""
name = "pt{torch}-{python}"
[axes]
torch = ["2.5.1"]
python = ["3.10", "3.11"]
base_image = ["reg.example/cuda:12.4", "reg.example/other:12.4"]
""", tmp_path)
    assert names(b) == ["pt2.5.1-3.10", "pt2.5.1-3.10-2", "pt2.5.1-3.11", "pt2.5.1-3.11-2"]
    b = bake("""
[axes]
torch = ["2.5.1"]
base_image = ["llbgen-test/debian:bookworm", "llbgen-test/cuda-standin:bookworm"]
""", tmp_path)
    assert names(b) == ["debian-bookworm", "cuda-standin-bookworm"]  # single-valued axes leave names alone
    b = bake('torch = "2.5.1"\n', tmp_path)
    assert names(b) == ["default"]


# --- resolution -------------------------------------------------------------------------------


def test_every_invalid_combination_in_one_error(tmp_path: Path) -> None:
    b = bake("""
tag = "r/pt:{torch}-{cuda}-py{python}-{nope}"
[axes]
torch = ["2.1.2", "2.5.1"]
cuda = ["12.1", "12.4"]
python = ["3.8", "3.11"]
""", tmp_path)
    with pytest.raises(UsageError) as err:
        resolve_variants(b)
    text = str(err.value)
    lines = [line for line in text.splitlines() if line.startswith(" - ")]
    # The template once, not once per variant; then every variant the compat data rejects.
    assert sum("{nope}" in line for line in lines) == 1, text
    assert "torch2.1.2-cu124-py3.8 (torch=2.1.2, cuda=12.4, python=3.8): cuda: torch 2.1.2 has no CUDA 12.4 build" in text
    assert "torch2.1.2-cu124-py3.11 (torch=2.1.2, cuda=12.4, python=3.11): cuda:" in text
    assert "torch2.5.1-cu121-py3.8 (torch=2.5.1, cuda=12.1, python=3.8): python: torch 2.5.1" in text
    assert "torch2.5.1-cu124-py3.8" in text
    assert not any("torch2.5.1-cu121-py3.11 " in line for line in lines)  # valid ones are not named
    assert text.startswith(f"{len(lines)} problems:")


def test_tags_and_caches_rendered_per_variant(tmp_path: Path) -> None:
    b = bake("""
python = "3.11"
tag = ["r.example/pt:{torch}-{cuda}-py{python}", "r.example/pt:{name}"]
cache_to = ["type=registry,ref=r.example/cache:{variant}-py{python},mode=max"]
cache_from = ["type=registry,ref=r.example/cache:{variant}-py{python}", "type=registry,ref=r.example/cache:shared"]
[axes]
torch = ["2.5.1"]
cuda = ["12.1", "cpu"]
""", tmp_path)
    a, c = resolve_variants(b)
    assert a.tags == ("r.example/pt:2.5.1-12.1-py3.11", "r.example/pt:cu121")  # names: the varying axes
    assert c.tags == ("r.example/pt:2.5.1-cpu-py3.11", "r.example/pt:cpu")
    assert a.cache_to == ("type=registry,ref=r.example/cache:cu121-py3.11,mode=max",)
    assert c.cache_from[0] == "type=registry,ref=r.example/cache:cpu-py3.11"
    assert c.resolved.cpu and c.resolved.base_image == "ubuntu:22.04"
    to, frm = a.cache_entries()
    assert to[0].attrs == {"ref": "r.example/cache:cu121-py3.11", "mode": "max"} and len(frm) == 2


def test_default_tag_is_the_specs_and_clashes_are_refused(tmp_path: Path) -> None:
    # The bases' distro is named (debian12), so the default tag does not tell the bases apart.
    b = bake("""
cpu = true
python = "3.11"
distro = "debian12"
cache_to = ["type=registry,ref=r.example/cache:one,mode=max"]
[axes]
torch = ["2.5.1"]
base_image = ["llbgen-test/debian:bookworm", "llbgen-test/cuda-standin:bookworm"]
""", tmp_path)
    with pytest.raises(UsageError) as err:
        resolve_variants(b)
    text = str(err.value)
    assert "tag: variants debian-bookworm and cuda-standin-bookworm would both write pytorch:2.5.1-python3.11-cpu-debian12" in text
    assert "cache_to: variants debian-bookworm and cuda-standin-bookworm would both write type=registry r.example/cache:one" in text
    fixed = bake(b.path.read_text().replace("cache:one", "cache:{name}") + '\n', tmp_path)
    with pytest.raises(UsageError, match="would both write pytorch"):
        resolve_variants(fixed)
    # Bases of unknown distro: the default tag names each base, so there is no clash to refuse.
    unnamed = bake(fixed.path.read_text().replace('distro = "debian12"\n', ""), tmp_path)
    assert [v.tag for v in resolve_variants(unnamed)] == ["pytorch:2.5.1-python3.11-cpu-debian-bookworm",
                                                         "pytorch:2.5.1-python3.11-cpu-cuda-standin-bookworm"]


def test_command_line_overrides(tmp_path: Path) -> None:
    b = bake("""
python = "3.11"
tag = "r.example/pt:{name}"
cache_to = ["type=registry,ref=r.example/cache:{name},mode=max"]
[mirrors]
pip_index_url = "https://pypi.example/simple"
[axes]
torch = ["2.5.1"]
cuda = ["12.1", "12.4"]
""", tmp_path)
    sets = parse_sets(["mirrors.torch_index_url=http://127.0.0.1:1/whl/{variant}/", "pip_packages=a,b<2",
                       "python=3.10"])
    variants = resolve_variants(b, Overrides(spec=sets, cache_from=("type=registry,ref=r.example/c:{name}",)))
    v = variants[0]
    assert v.resolved.python == "3.10" and v.resolved.spec.pip_packages == ("a", "b<2")
    assert v.resolved.torch_index_url == "http://127.0.0.1:1/whl/cu121/"
    assert v.resolved.spec.mirrors.pip_index_url == "https://pypi.example/simple"  # tables merge key by key
    assert v.cache_from == ("type=registry,ref=r.example/c:cu121",)
    assert v.cache_to == ("type=registry,ref=r.example/cache:cu121,mode=max",)
    with pytest.raises(UsageError) as err:
        parse_sets(["nope=1", "cpu=perhaps", "python"])
    assert str(err.value).startswith("3 problems:")


# --- running: scheduling, sharing, statuses ------------------------------------------------------


def test_least_loaded_builder() -> None:
    pool = BuilderPool(2)
    a, b = pool.acquire(), pool.acquire()
    assert (a, b) == (0, 1)
    c = pool.acquire()  # both busy with one: the one given fewer so far, then order
    assert c == 0
    pool.release(b)
    assert pool.acquire() == 1  # B is idle now
    assert pool.given == (2, 2)


def vertex(digest: str, *, cached: bool = False, started: float = 1.0, error: str = "") -> VertexState:
    return VertexState(digest=digest, daemon_name=digest, name=digest, cached=cached, started=started,
                       completed=started + 1, error=error)


def test_a_shared_step_is_credited_once() -> None:
    first = [vertex("python", started=10.0), vertex("os-a", started=5.0)]
    second = [vertex("python", started=10.0), vertex("os-b", started=6.0), vertex("jupyter", cached=True)]
    third = [vertex("python", started=10.0)]  # same step, other builder: it ran there too
    elsewhere = ran_elsewhere([("a", "A", first), ("b", "A", second), ("c", "B", third)])
    assert elsewhere == {"a": frozenset(), "b": frozenset({"python"}), "c": frozenset()}
    assert step_counts(second, elsewhere["b"]) == {"run": 1, "shared": 1, "cached": 1}
    layers = {"os": {"os-b"}, "python": {"python"}, "jupyter": {"jupyter"}, "init": set()}
    assert layer_statuses(layers, second, elsewhere["b"]) == {
        "os": "built", "python": "reused", "jupyter": "reused", "init": "reused"}
    assert layer_statuses(layers, second)["python"] == "built"
    failed = [vertex("os-b", error="process exited with code 1")]
    assert layer_statuses({"os": {"os-b"}}, failed) == {"os": "failed"}


def test_summary_table_and_json(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from llbgen.bake.report import summary_rows, summary_table
    from llbgen.bake.run import VariantResult
    from llbgen.builder.solve import SolveResult

    b = bake("""
cpu = true
python = "3.11"
tag = "r.example/pt:{name}"
[axes]
torch = ["2.5.1"]
base_image = ["r.example/a:1", "r.example/b:1"]
""", tmp_path)
    va, vb = resolve_variants(b)
    shared = [vertex("python", started=3.0), vertex("torch", started=4.0)]
    ra = SolveResult({"containerimage.digest": "sha256:" + "a" * 64}, (vertex("os-a"), *shared))
    rb = SolveResult({"containerimage.digest": "sha256:" + "b" * 64}, (vertex("os-b", cached=True), *shared))
    layers_a = {"os": frozenset({"os-a"}), "python": frozenset({"python"}), "torch": frozenset({"torch"})}
    layers_b = {"os": frozenset({"os-b"}), "python": frozenset({"python"}), "torch": frozenset({"torch"})}
    results = [
        VariantResult(va, "docker://A", "ok", SimpleNamespace(result=ra, layer_vertices=layers_a,
                                                             image_digest=ra.image_digest), None, 12.0, 2_000_000_000),
        VariantResult(vb, "docker://A", "ok", SimpleNamespace(result=rb, layer_vertices=layers_b,
                                                             image_digest=rb.image_digest), None, 11.0, 2_000_000_000),
        VariantResult(va, "docker://B", "failed", None, "step torch: pip install failed with exit code 1\nlogs", 3.0),
    ]
    rows = summary_rows(results)
    assert rows[0]["layers_built"] == ["os", "python", "torch"] and rows[0]["steps"] == {"run": 3, "shared": 0, "cached": 0}
    assert rows[1]["layers_built"] == [] and rows[1]["layers_reused"] == ["os", "python", "torch"]
    assert rows[1]["steps"] == {"run": 0, "shared": 2, "cached": 1}
    text = "\n".join(summary_table(results, 20.0))
    assert "3 built / 0 reused" in text and "0 built / 3 reused" in text and "FAILED" in text
    assert "2.00GB" in text and "3 variants: 2 ok, 1 failed; 2 builders; 20.0s in all" in text
    assert "step torch: pip install failed with exit code 1" in text
    json.dumps(rows)  # serialisable as --json prints it


def test_prefixed_progress_lines() -> None:
    import io

    out = io.StringIO()
    stream = VariantStream("a", out)
    stream.write("#1 [internal] load\n#1 DO")
    stream.write("NE 0.1s\n\n")
    stream.flush()
    assert out.getvalue() == "[a] #1 [internal] load\n[a] #1 DONE 0.1s\n"
    out = io.StringIO()
    VariantStream("b", out, json_lines=True).write('{"vertexes":[]}\n')
    assert json.loads(out.getvalue()) == {"variant": "b", "vertexes": []}
    assert check_bake_progress("auto") == "plain"
    with pytest.raises(UsageError, match="tty"):
        check_bake_progress("tty")


# --- the command line, without a builder -------------------------------------------------------------


def test_print_table_and_json_need_no_builder(tmp_path: Path) -> None:
    path = tmp_path / "bake.toml"
    path.write_text("""
python = "3.11"
tag = "r.example/pt:{torch}-{cuda}"
[axes]
torch = ["2.4.1", "2.5.1"]
cuda = ["12.1", "12.4"]
[[exclude]]
torch = "2.4.1"
cuda = "12.4"
""")
    result = run_cli("bake", str(path), "--print")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:6] == ["VARIANT", "TORCH", "CUDA", "PYTHON", "BASE", "TAG"]
    assert lines[1].split()[:5] == ["torch2.4.1-cu121", "2.4.1", "12.1.0", "3.11",
                                    "nvidia/cuda:12.1.0-cudnn8-devel-ubuntu22.04"]
    assert lines[-1] == "3 variants"
    result = run_cli("bake", str(path), "--print", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [d["name"] for d in data] == ["torch2.4.1-cu121", "torch2.5.1-cu121", "torch2.5.1-cu124"]
    assert data[2]["spec"]["base_image"] == "nvidia/cuda:12.4.1-cudnn-devel-ubuntu22.04"
    assert data[2]["tags"] == ["r.example/pt:2.5.1-12.4"]


def test_invalid_combinations_fail_before_any_builder(tmp_path: Path) -> None:
    path = tmp_path / "bake.toml"
    path.write_text('[axes]\ntorch = ["2.1.2"]\ncuda = ["12.1", "12.4"]\npython = ["3.12"]\n')
    # BUILDKIT_HOST points at a closed port: a contacted builder would fail differently.
    result = run_cli("bake", str(path), "--network", "host")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("llbgen: error: 3 problems:"), result.stderr
    assert " - cu124 (torch=2.1.2, cuda=12.4, python=3.12): cuda: torch 2.1.2 has no CUDA 12.4 build" in result.stderr
    assert " - cu121 (torch=2.1.2, cuda=12.1, python=3.12): python: torch 2.1.2 has wheels for Python 3.8-3.11" in result.stderr
    assert "cannot reach" not in result.stderr


# --- the examples ---------------------------------------------------------------------------------


def test_example_bake_matrix_prints() -> None:
    result = run_cli("bake", "examples/bake-matrix.toml", "--print", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    combos = {(d["spec"]["torch"], d["spec"]["cuda"], d["spec"]["python"]) for d in data}
    assert len(combos) == len(data) == 24  # 5 torch x 3 CUDA x 2 Python, minus CUDA 12.4 before torch 2.4
    assert {t for t, _, _ in combos} == {"2.1.2", "2.2.2", "2.3.1", "2.4.1", "2.5.1"}
    assert {c for _, c, _ in combos} == {"11.8", "12.1", "12.4"} and {p for _, _, p in combos} == {"3.10", "3.11"}
    # The real defaults: Docker Hub bases, download.pytorch.org, repo.anaconda.com.
    assert all(d["spec"]["base_image"].startswith("nvidia/cuda:") for d in data)
    assert all(d["spec"]["torch_index_url"].startswith("https://download.pytorch.org/whl/cu") for d in data)
    assert all(d["spec"]["miniconda"]["url"].startswith("https://repo.anaconda.com/miniconda/") for d in data)
    assert len({tuple(d["tags"]) for d in data}) == 24
    assert all(d["cache_to"] and d["cache_from"] for d in data)
    table = run_cli("bake", "examples/bake-matrix.toml", "--print")
    assert table.returncode == 0 and table.stdout.splitlines()[-1] == "24 variants"


def test_example_ci_workflow() -> None:
    path = ROOT / "examples" / "ci" / "github-actions.yml"
    text = path.read_text()
    assert "\t" not in text
    for needle in ("llbgen bake", "examples/bake-matrix.toml", "--push", "type=registry", "mode=max", "--cache-from"):
        assert needle in text, needle
    try:
        import yaml
    except ImportError:  # PyYAML is not a dependency: the structure is checked by text above
        assert text.lstrip().startswith(("name:", "#")) and "\njobs:\n" in text and "\non:\n" in text
        return
    data = yaml.safe_load(text)
    on = data.get("on", data.get(True))  # YAML 1.1 reads a bare `on` key as True
    assert on and "push" in on
    steps = [step for job in data["jobs"].values() for step in job["steps"]]
    runs = "\n".join(step.get("run", "") for step in steps)
    assert "llbgen bake" in runs and "--print" in runs
