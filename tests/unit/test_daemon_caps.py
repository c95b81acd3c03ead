"""A standalone buildkitd's capabilities are asked (gateway Ping), not assumed from a profile of a recent BuildKit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.old_buildkitd import OLD_LLB_CAPS, OldBuildkitd

ROOT = Path(__file__).resolve().parents[2]


def llbgen(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llbgen", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120, env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"})


@pytest.fixture
def old_buildkitd(tmp_path: Path):
    with OldBuildkitd(tmp_path / "buildkitd.sock") as daemon:
        yield daemon


def test_inspect_reports_what_an_old_buildkitd_said(old_buildkitd: OldBuildkitd) -> None:
    proc = llbgen("builder", "inspect", "--builder", old_buildkitd.address, "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["merge_op"] is False and info["diff_op"] is False
    assert info["multiple_exporters"] is False
    # Only the backends every BuildKit has: no gha/s3/azblob cap was listed.
    assert info["cache_exporters"] == ["registry", "inline", "local"]
    assert info["cache_importers"] == ["registry", "local"]
    assert info["sources"]["merge_op"].startswith("asked")
    assert info["sources"]["cache_exporters"].startswith("asked")
    assert info["sources"]["exporters"].startswith("assumed")


def test_a_recent_buildkitd_keeps_its_merge_op_and_cache_backends(tmp_path: Path) -> None:
    caps = (*OLD_LLB_CAPS, "mergeop", "diffop", "exporter.multiple", "cache.gha", "cache.s3")
    with OldBuildkitd(tmp_path / "buildkitd.sock", llb_caps=caps) as daemon:
        proc = llbgen("builder", "inspect", "--builder", daemon.address, "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["merge_op"] and info["diff_op"] and info["multiple_exporters"]
    assert info["cache_exporters"] == ["registry", "inline", "local", "gha", "s3"]


def test_the_plan_for_an_old_buildkitd_is_the_linear_chain(old_buildkitd: OldBuildkitd) -> None:
    proc = llbgen("plan", "--torch", "2.3.0", "--cpu", "--builder", old_buildkitd.address)
    assert proc.returncode == 0, proc.stderr
    assert "(linear chain)" in proc.stdout, proc.stdout


def test_inspect_table_says_asked_or_assumed(old_buildkitd: OldBuildkitd) -> None:
    proc = llbgen("builder", "inspect", "--builder", old_buildkitd.address)
    assert proc.returncode == 0, proc.stderr
    merge = next(line for line in proc.stdout.splitlines() if "MergeOp" in line)
    assert "no" in merge and "asked" in merge
    exporters = next(line for line in proc.stdout.splitlines() if "exporters" in line)
    assert "assumed" in exporters


def test_a_buildkitd_too_old_for_gateway_builds_is_refused_in_one_line(tmp_path: Path) -> None:
    with OldBuildkitd(tmp_path / "buildkitd.sock", frontend_caps=("solve.base",)) as daemon:
        proc = llbgen("builder", "inspect", "--builder", daemon.address)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "too old for client-side gateway builds" in proc.stderr


def write_graph(tmp_path: Path, body: str) -> str:
    graph = tmp_path / "graph.py"
    graph.write_text("from llbgen import llb\n\n\ndef graph(resolve):\n    " + body + "\n")
    return f"{graph}:graph"


def test_a_merge_graph_is_refused_before_solving_on_a_daemon_without_mergeop(old_buildkitd: OldBuildkitd,
                                                                               tmp_path: Path) -> None:
    files = "llb.scratch().file(llb.mkfile('/a', 0o644, 'a'))"
    graph = write_graph(tmp_path, f"return llb.merge([{files}, llb.scratch().file(llb.mkfile('/b', 0o644, 'b'))])")
    proc = llbgen("solve", graph, "--builder", old_buildkitd.address, "--output", f"type=tar,dest={tmp_path / 'o.tar'}")
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"BuildKit at {old_buildkitd.address} does not support MergeOp/DiffOp" in proc.stderr, proc.stderr


def test_two_outputs_are_refused_on_a_daemon_that_takes_one(old_buildkitd: OldBuildkitd, tmp_path: Path) -> None:
    # A daemon before BuildKit 0.13 reads only the single legacy exporter field: the second would vanish.
    graph = write_graph(tmp_path, "return llb.scratch().file(llb.mkfile('/a', 0o644, 'a'))")
    proc = llbgen("solve", graph, "--builder", old_buildkitd.address, "--output", f"type=tar,dest={tmp_path / 'o.tar'}",
                  "--output", f"type=oci,dest={tmp_path / 'o.oci'}")
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "takes one output per build" in proc.stderr, proc.stderr
