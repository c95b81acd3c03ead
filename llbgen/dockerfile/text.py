"""Dockerfile text: quoting, heredocs, exec-form arrays and continued instruction lines.

Only what the Dockerfile frontend built into BuildKit >= 0.10 understands without a
``# syntax=`` line (heredocs, ``RUN --mount``, ``COPY --link``, ``ADD --checksum``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence

HEREDOC_MARKER = "LLBGEN_EOF"
_ARG_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PLAIN = re.compile(r"^[A-Za-z0-9_./:@+=,%~-]*$")  # nothing the frontend's word parsing changes


def exec_form(args: Sequence[str]) -> str:
    """``["a", "b"]``: the JSON array of ENTRYPOINT, CMD and HEALTHCHECK CMD."""
    return json.dumps(list(args), ensure_ascii=False)


def quoted(value: str) -> str:
    """A double-quoted ENV/LABEL value: ``\\``, ``"`` and ``$`` escaped (no variable expansion)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'


def word(value: str) -> str:
    """``value`` as one Dockerfile word, as data: as it is when plain, else ``quoted``."""
    return value if _PLAIN.match(value) else quoted(value)


def unquoted(word: str) -> str:
    """The value ``quoted`` wrote (a word that is not double-quoted is returned as it is)."""
    if len(word) < 2 or not (word.startswith('"') and word.endswith('"')):
        return word
    return re.sub(r'\\([\\"$])', r"\1", word[1:-1])


def heredoc_marker(body: str) -> str:
    """A heredoc delimiter that no line of ``body`` equals."""
    marker, n = HEREDOC_MARKER, 1
    lines = set(body.splitlines())
    while marker in lines:
        n += 1
        marker = f"{HEREDOC_MARKER}_{n}"
    return marker


def heredoc(body: str) -> tuple[str, list[str]]:
    """(``<<'MARKER'``, the body's lines and the closing marker).

    The delimiter is quoted, so the frontend expands nothing: the text reaches the shell
    (RUN) or the file (COPY) as it is. A body must end with a newline to be written exactly.
    """
    marker = heredoc_marker(body)
    return f"<<'{marker}'", [*body.splitlines(), marker]


def instruction(keyword: str, flags: Iterable[str], tail: str, indent: str = "    ") -> list[str]:
    """``KEYWORD --flag \\`` lines, one flag per line when there are several, then ``tail``."""
    flags = list(flags)
    if len(flags) <= 1:
        return [" ".join([keyword, *flags, tail])]
    lines = [f"{keyword} {flags[0]} \\"]
    lines += [f"{indent}{flag} \\" for flag in flags[1:]]
    lines.append(f"{indent}{tail}")
    return lines


def comment(text: str, width: int = 100) -> list[str]:
    """``text`` as ``#`` lines wrapped at ``width``; each line's indentation is kept on its continuations."""
    out: list[str] = []
    for paragraph in text.splitlines() or [""]:
        if not paragraph.strip():
            out.append("#")
            continue
        prefix = "# " + " " * (len(paragraph) - len(paragraph.lstrip(" ")))
        line = prefix
        for word in paragraph.split():
            if line != prefix and len(line) + len(word) > width:
                out.append(line.rstrip())
                line = prefix
            line += word + " "
        out.append(line.rstrip())
    return out


def expand_args(text: str, values: Mapping[str, str]) -> str:
    """``${NAME}`` replaced by ``values[NAME]`` (what the shell sees with the ARG defaults)."""
    return _ARG_REF.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def arg_defaults(dockerfile: str) -> dict[str, str]:
    """The ``ARG NAME=default`` values declared before the first ``FROM``."""
    values: dict[str, str] = {}
    for line in dockerfile.splitlines():
        if line.startswith("FROM "):
            break
        m = re.match(r"^ARG ([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line)
        if m:
            values[m.group(1)] = unquoted(m.group(2))
    return values
