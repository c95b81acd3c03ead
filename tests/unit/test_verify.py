"""The pure parts of ``llbgen verify``: the report, the judgments of command output, versions, HTTP classification."""

from __future__ import annotations

import doctest
import json

import pytest
from rich.console import Console

from llbgen.verify import expect, http, report, ssh, versions
from llbgen.verify.report import Report, Status


@pytest.mark.parametrize("module", [report, expect, http, ssh, versions])
def test_doctests(module) -> None:
    failures, _ = doctest.testmod(module, raise_on_error=False)
    assert failures == 0


# --------------------------------------------------------------------------- report


def test_report_exit_code_and_summary() -> None:
    r = Report(image="img")
    assert not r.ok and r.exit_code == 1 and r.summary() == "FAILED: nothing was checked"
    r.passed("a").skipped("b", "why")
    assert r.ok and r.exit_code == 0 and r.summary() == "OK: all 1 checks passed (1 skipped)"
    assert r.check("c", False, "bad") is False
    assert r.exit_code == 1 and [f.name for f in r.failures] == ["c"]
    assert r.summary() == "FAILED: 1 of 2 checks failed (1 skipped)"


def test_report_renders_every_row() -> None:
    r = Report(image="llbgen-test/pytorch:cpu").passed("locale zh_CN.UTF-8", "LANG=zh_CN.UTF-8").failed("timezone", "UTC+0000")
    console = Console(record=True, width=120, color_system=None)
    r.render(console)
    text = console.export_text()
    for word in ("llbgen verify llbgen-test/pytorch:cpu", "locale zh_CN.UTF-8", "PASS", "timezone", "FAIL", "UTC+0000",
                 "FAILED: 1 of 2"):
        assert word in text


def test_report_clips_long_details() -> None:
    r = Report().failed("x", "line\n" * 500)
    detail = r.results[0].detail
    assert "\n" not in detail and len(detail) <= report.DETAIL_LIMIT and detail.endswith("…")


# --------------------------------------------------------------------------- §6 judgments

LOCALE_OK = """LANG=zh_CN.UTF-8
LANGUAGE=
LC_CTYPE="zh_CN.UTF-8"
LC_ALL=
---
C
C.utf8
POSIX
zh_CN.utf8
"""


def test_locale_judgment() -> None:
    assert expect.judge_locale(LOCALE_OK, "")[0]
    ok, detail = expect.judge_locale(LOCALE_OK.replace("LANG=zh_CN.UTF-8", "LANG=C.UTF-8"), "")
    assert not ok and "LANG=C.UTF-8" in detail
    ok, detail = expect.judge_locale(LOCALE_OK.replace("zh_CN.utf8\n", ""), "")
    assert not ok and "not generated" in detail
    ok, detail = expect.judge_locale(LOCALE_OK, "locale: Cannot set LC_CTYPE to default locale: No such file or directory\n")
    assert not ok and "Cannot set" in detail


def test_chinese_timezone_and_path_judgments() -> None:
    assert not expect.judge_chinese("ä¸\xadæ–‡\n中文测试\n")[0]
    assert not expect.judge_chinese("中文测试\n")[0]
    assert expect.judge_timezone("CST+0800") == (True, "CST+0800")
    assert expect.judge_timezone("UTC+0000\n") == (False, "UTC+0000")
    assert expect.judge_paths("/root/miniconda3/bin/python\n/root/miniconda3/bin/pip\n")[0]
    assert not expect.judge_paths("/usr/bin/python\n/root/miniconda3/bin/pip\n")[0]
    assert not expect.judge_paths("")[0]


# --------------------------------------------------------------------------- ssh output


def test_offered_methods_and_banner() -> None:
    assert ssh.offered_methods("root@127.0.0.1: Permission denied (publickey).\r\n") == ["publickey"]
    assert ssh.offered_methods("Connection refused") == []
    assert ssh.strip_ansi("\x1b[32mPyTorch\x1b[0m\r\n") == "PyTorch\n"
    assert not ssh.has_banner("Linux abc 6.1 #1 SMP\nroot@abc:~# ")


# --------------------------------------------------------------------------- http


@pytest.mark.parametrize(
    ("status", "location", "body", "kind"),
    [
        (302, "/jupyter/login?next=%2Fjupyter%2Flab", "", "login"),
        (403, None, "", "login"),
        (302, "/jupyter/tree", "", "other"),
        (200, None, '<script id="jupyter-config-data" type="application/json">{}</script><title>JupyterLab</title>', "lab"),
        (200, None, '<form action="/jupyter/login"><input name="password"></form>', "login"),
        (200, None, "<html>hello</html>", "other"),
        (0, None, "", "other"),
    ],
)
def test_classify_lab(status: int, location: str | None, body: str, kind: str) -> None:
    assert http.classify_lab(status, location, body)[0] == kind


def test_http_get_without_server() -> None:
    answer = http.get("http://127.0.0.1:9/", timeout=2)
    assert answer.status == 0 and "no answer" in answer.describe()


# --------------------------------------------------------------------------- versions

LABEL = {
    "torch": "2.3.0", "torchvision": "0.18.0", "torchaudio": None, "python": "3.8", "cpu": False,
    "cuda": "12.1", "cuda_full": "12.1.0", "cudnn": "8", "tag": "pytorch:2.3.0", "spec": {"torch": "2.3.0"},
}


def test_expected_from_label() -> None:
    e = versions.Expected.from_label(json.dumps(LABEL))
    assert (e.torch, e.torchvision, e.torchaudio, e.cpu, e.cuda_full, e.cudnn) == ("2.3.0", "0.18.0", None, False, "12.1.0", "8")
    assert "torchaudio" in e.describe() and "CUDA 12.1.0" in e.describe()
    with pytest.raises(ValueError, match="not JSON"):
        versions.Expected.from_label("{")
    with pytest.raises(ValueError, match="'torch'"):
        versions.Expected.from_label(json.dumps({"python": "3.8"}))


def _statuses(rows) -> dict[str, Status]:
    return {r.name: r.status for r in rows}


def test_compare_cpu_image() -> None:
    e = versions.Expected.from_label(json.dumps({**LABEL, "cpu": True, "cuda": None, "cuda_full": None, "cudnn": None,
                                                 "torchvision": None}))
    found = {"python": "3.8.18", "torch": "2.3.0+cpu", "torchvision": None, "torchaudio": None, "torch_cuda": None,
             "cuda_available": False}
    rows = _statuses(versions.compare(e, found, gpus=False))
    assert rows == {"python version": Status.PASS, "torch version": Status.PASS, "torchvision version": Status.SKIP,
                    "torchaudio version": Status.SKIP, "CUDA": Status.PASS}
    rows = _statuses(versions.compare(e, {**found, "torch": "2.2.0+cpu", "python": "3.80.1"}, gpus=False))
    assert rows["torch version"] is Status.FAIL and rows["python version"] is Status.FAIL
    rows = _statuses(versions.compare(e, {**found, "torch_error": "ImportError: x"}, gpus=False))
    assert rows["torch version"] is Status.FAIL


def test_compare_gpu_image() -> None:
    e = versions.Expected.from_label(json.dumps(LABEL))
    found = {"python": "3.8.18", "torch": "2.3.0+cu121", "torchvision": "0.18.0+cu121", "torchaudio": None,
             "torch_cuda": "12.1", "cudnn": 8902, "cuda_available": True, "gpus": ["NVIDIA A100"]}
    assert _statuses(versions.compare(e, found, gpus=False))["CUDA / cuDNN / GPU"] is Status.SKIP
    rows = _statuses(versions.compare(e, found, gpus=True))
    assert rows["torch CUDA version"] is Status.PASS and rows["cuDNN version"] is Status.PASS
    assert rows["torch.cuda.is_available()"] is Status.PASS and rows["torchvision version"] is Status.PASS
    rows = _statuses(versions.compare(e, {**found, "cuda_available": False, "torch_cuda": "11.8", "cudnn": 90100}, gpus=True))
    assert rows["torch CUDA version"] is Status.FAIL and rows["cuDNN version"] is Status.FAIL
    assert rows["torch.cuda.is_available()"] is Status.FAIL


def test_parse_probe() -> None:
    assert versions.parse_probe("banner\nLLBGEN-VERIFY-PROBE {\"python\": \"3.11.7\"}\n") == {"python": "3.11.7"}
    with pytest.raises(ValueError, match="no probe output"):
        versions.parse_probe("Traceback ...")


def test_probe_runs_here() -> None:
    """The probe is valid Python that prints its line even where torch is not installed."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", versions.PROBE], capture_output=True, text=True, timeout=120).stdout
    found = versions.parse_probe(out)
    assert found["python"].startswith(f"{sys.version_info[0]}.{sys.version_info[1]}.")
