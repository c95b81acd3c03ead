"""What the seed's §6 expects a login session in the image to print, as pure judgments.

Each function takes what a command printed and returns (ok, detail) for the report.

>>> judge_timezone("CST+0800\\n")
(True, 'CST+0800')
>>> judge_chinese("中文测试\\n中文测试\\n")[0]
True
"""

from __future__ import annotations

LOCALE = "zh_CN.UTF-8"
CHINESE = "中文测试"
TIMEZONE = "CST+0800"
CONDA_BIN = "/root/miniconda3/bin/"

LOCALE_COMMAND = "locale; echo ---; locale -a"
CHINESE_COMMAND = f"echo {CHINESE}; python -c \"print('{CHINESE}')\""
TIMEZONE_COMMAND = "date +%Z%z"
PATH_COMMAND = "command -v python; command -v pip"


def judge_locale(stdout: str, stderr: str) -> tuple[bool, str]:
    """``locale`` says LANG=zh_CN.UTF-8 and LC_CTYPE follows it, ``locale -a`` has it, and nothing complains."""
    settings, _, available = stdout.partition("---")
    values = {}
    for line in settings.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep:
            values[key] = value.strip('"')
    generated = {name.strip().lower().replace("-", "") for name in available.split()}
    problems = []
    if values.get("LANG") != LOCALE:
        problems.append(f"LANG={values.get('LANG', '(unset)')}")
    if values.get("LC_CTYPE") not in (LOCALE, None) or values.get("LC_ALL") not in ("", None, LOCALE):
        problems.append(f"LC_CTYPE={values.get('LC_CTYPE')} LC_ALL={values.get('LC_ALL')}")
    if "zh_cn.utf8" not in generated:
        problems.append(f"{LOCALE} is not generated (locale -a)")
    if "Cannot set" in stderr or "cannot set" in stderr.lower():
        problems.append(stderr.strip().splitlines()[0])
    if problems:
        return False, "; ".join(problems)
    return True, f"LANG={LOCALE}, LC_CTYPE={values.get('LC_CTYPE')}, generated"


def judge_chinese(stdout: str) -> tuple[bool, str]:
    """The shell and Python both print 中文测试 back intact."""
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    if lines[:2] == [CHINESE, CHINESE]:
        return True, f"echo and python print {CHINESE} intact"
    return False, f"expected {CHINESE} twice, got {lines[:2]!r}"


def judge_timezone(stdout: str) -> tuple[bool, str]:
    value = stdout.strip()
    return value == TIMEZONE, value or "(nothing)"


def judge_paths(stdout: str) -> tuple[bool, str]:
    """``python`` and ``pip`` resolve to Miniconda's in an SSH session."""
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    ok = len(lines) == 2 and all(line.startswith(CONDA_BIN) for line in lines)
    return ok, ", ".join(lines) or "python and pip not on PATH"
